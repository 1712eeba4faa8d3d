#pragma once
// A virtual-clock driver for the engine: cases in memory, timers in due order, time moving only
// when told. `tandemctl simulate` and the benchmarks run event files through it; partnerships
// use it to check their configuration. Pure like the engine: it reads no clock and no file.

#include <google/protobuf/arena.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/engine/engine.h"

namespace tandem::engine {

// Lives on one thread; keeps a reference to `engine`, which must outlive it.
//
// Each method returns the effects it produced, in order, allocated on the simulator's arena:
// they stay valid until the next call of any of the three methods, which frees them all at
// once (a simulation produces millions; freeing them one by one cost more than making them).
class Simulator {
 public:
  using Effects = google::protobuf::RepeatedPtrField<v1::Effect>;

  explicit Simulator(const Engine& engine);

  // Fires every timer due at or before the event's occurred_at, then applies the event at that
  // instant (or at the clock, if the clock is already later). A rejected event becomes a
  // `rejected` effect and changes nothing. When the change opens cases of other workflows
  // (case_started effects), their starting events are applied next, at the same instant. An
  // event carrying opened_by_case, which only tandem sets, is rejected.
  const Effects& Publish(const v1::Event& event);
  // As Publish, taking the event's facts into the case instead of copying them when the event
  // is accepted.
  const Effects& Publish(v1::Event&& event);

  // Fires, in due order, every timer due at or before `until`, and moves the clock there.
  // Timers due at one instant fire in (case id, timer id) order.
  const Effects& AdvanceTo(calendar::Instant until);

  // Fires timers in due order until none is left or `max_timers` have fired. Sets `*exhausted`
  // when it stopped for the limit.
  const Effects& RunOut(std::size_t max_timers, bool* exhausted);

  // Timers whose firing the engine refused; each became a `rejected` effect with cause
  // "timer:<id>" and event_type "timer", and was dropped.
  std::size_t failed_timers() const { return failed_timers_; }
  calendar::Instant clock() const { return clock_; }
  // Every case, by id (in no particular order).
  const std::unordered_map<std::string, v1::CaseState>& cases() const { return cases_; }
  std::size_t pending_timers() const { return timers_.size(); }

 private:
  // Hashed: with hundreds of thousands of cases, a tree's lookups were a chain of cache misses.
  // Nodes do not move, so timers may point into them.
  using Cases = std::unordered_map<std::string, v1::CaseState>;
  using Slot = Cases::value_type;
  // A pending timer: its due instant, its case (the case's node in `cases_`, which never moves
  // while the case exists: firing it needs no lookup) and its id. `head` holds the first 16
  // bytes of the case id, big-endian and zero-padded, so that ordering timers due at one instant
  // (most deadlines of a day fall due at its end) rarely reads the case ids themselves: each
  // read was a cache miss on another case's node.
  struct TimerKey {
    TimerKey(calendar::Instant due, Slot* slot, uint64_t timer_id);
    calendar::Instant due;
    uint64_t head[2];
    Slot* slot;
    uint64_t timer_id;
  };
  // Due order, then (case id, timer id) for timers due at one instant. Heads that differ order
  // the ids as comparing the ids would (a zero pad sorts below any byte of a longer id, as the
  // end of the shorter id does); equal heads need the ids.
  struct TimerOrder {
    bool operator()(const TimerKey& a, const TimerKey& b) const {
      if (a.due != b.due) return a.due < b.due;
      if (a.slot != b.slot) {
        if (a.head[0] != b.head[0]) return a.head[0] < b.head[0];
        if (a.head[1] != b.head[1]) return a.head[1] < b.head[1];
        const int c = a.slot->first.compare(b.slot->first);
        if (c != 0) return c < 0;
      }
      return a.timer_id < b.timer_id;
    }
  };

  // Returns the node of the case with id `id` (whose hash is `hash`), or nullptr.
  Slot* FindCase(std::string_view id, std::size_t hash) const;
  // Adds the new case at `slot` to by_hash_.
  void IndexCase(Slot* slot, std::size_t hash);
  // Indexes the timers the change just made to `slot`'s case (its node in `cases_`) set, and
  // drops those it cancelled: diff_.
  void Commit(Slot* slot);
  // Frees the previous call's effects and returns the empty timeline for this call's.
  v1::Timeline* StartCall();
  void Advance(calendar::Instant until);
  void FireNext();
  // Both Publish: `take` is null, or `event` itself.
  const Effects& PublishTaking(const v1::Event& event, v1::Event* take);
  // Applies `event` at the clock, then the starting events of the cases its change opened
  // (case_started effects), `depth` counting how many such openings led to it.
  void ApplyAtClock(const v1::Event& event, v1::Event* take, int depth);

  const Engine& engine_;
  // The arena's first block (declared before the arena, which must not outlive it).
  std::unique_ptr<char[]> arena_block_;
  google::protobuf::Arena arena_;
  v1::Timeline* timeline_ = nullptr;  // on arena_
  calendar::Instant clock_{};
  std::size_t failed_timers_ = 0;
  Cases cases_;
  // cases_ again, by hash, in one open-addressed table (linear probing, at most half full; an
  // entry with a null slot is empty). A lookup in cases_ read the bucket, the node before the
  // case's and the case's own, each a cache miss once the cases outgrow the caches; here it reads
  // one entry and the case's node, which the change reads next anyway.
  struct ByHash {
    std::size_t hash;
    Slot* slot;
  };
  std::vector<ByHash> by_hash_;
  // The case a starting event makes, until it is accepted (empty between calls).
  v1::CaseState fresh_;
  // The timer diff of the latest change (reused: it keeps its capacity).
  TimerDiff diff_;
  // The earliest is begin().
  std::set<TimerKey, TimerOrder> timers_;
};

}  // namespace tandem::engine
