#include "daemon/engine/simulator.h"

#include <algorithm>
#include <functional>

namespace tandem::engine {
namespace {

// The first block, which the arena keeps across resets: most calls' effects fit in it, so they
// allocate no block at all.
constexpr std::size_t kArenaFirstBlock = 1 << 20;

// The arena's blocks: the simulator's first one, then large ones for a long call's effects.
google::protobuf::ArenaOptions ArenaBlocks(char* first_block) {
  google::protobuf::ArenaOptions options;
  options.initial_block = first_block;
  options.initial_block_size = kArenaFirstBlock;
  options.start_block_size = 64 << 10;
  options.max_block_size = 1 << 20;
  return options;
}

// Returns bytes [8 * word, 8 * word + 8) of `id` as a big-endian number, zero-padded: numbers
// compare as the bytes would under memcmp, which is how std::string compares.
uint64_t IdWord(const std::string& id, std::size_t word) {
  uint64_t w = 0;
  for (std::size_t i = 8 * word; i < 8 * word + 8; ++i) {
    w = (w << 8) | (i < id.size() ? static_cast<unsigned char>(id[i]) : 0u);
  }
  return w;
}

}  // namespace

Simulator::TimerKey::TimerKey(calendar::Instant due, Slot* slot, uint64_t timer_id)
    : due(due),
      head{IdWord(slot->first, 0), IdWord(slot->first, 1)},
      slot(slot),
      timer_id(timer_id) {}

Simulator::Simulator(const Engine& engine)
    : engine_(engine),
      arena_block_(new char[kArenaFirstBlock]),
      arena_(ArenaBlocks(arena_block_.get())) {}

v1::Timeline* Simulator::StartCall() {
  timeline_ = nullptr;
  arena_.Reset();
  timeline_ = google::protobuf::Arena::CreateMessage<v1::Timeline>(&arena_);
  return timeline_;
}

Simulator::Slot* Simulator::FindCase(std::string_view id, std::size_t hash) const {
  if (by_hash_.empty()) return nullptr;
  const std::size_t mask = by_hash_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const ByHash& e = by_hash_[i];
    if (e.slot == nullptr) return nullptr;
    if (e.hash == hash && e.slot->first == id) return e.slot;
  }
}

void Simulator::IndexCase(Slot* slot, std::size_t hash) {
  auto place = [](std::vector<ByHash>* table, ByHash entry) {
    const std::size_t mask = table->size() - 1;
    std::size_t i = entry.hash & mask;
    while ((*table)[i].slot != nullptr) i = (i + 1) & mask;
    (*table)[i] = entry;
  };
  // cases_ already holds the new case; the table stays at most half full.
  if (2 * cases_.size() > by_hash_.size()) {
    std::vector<ByHash> grown(std::max<std::size_t>(1024, 2 * by_hash_.size()));
    for (const ByHash& e : by_hash_) {
      if (e.slot != nullptr) place(&grown, e);
    }
    by_hash_.swap(grown);
  }
  place(&by_hash_, {hash, slot});
}

void Simulator::Commit(Slot* slot) {
  for (const auto& t : diff_.cancelled) timers_.erase({t.due, slot, t.id});
  for (const auto& t : diff_.set) timers_.insert({t.due, slot, t.id});
}

void Simulator::FireNext() {
  const TimerKey next = *timers_.begin();
  timers_.erase(timers_.begin());
  if (clock_ < next.due) clock_ = next.due;
  Slot* slot = next.slot;  // Commit indexed the timer with its case's node
  // Changed in place: on a failure (a breach moving the case into a state whose deadline lies
  // past the calendar's data) the case stays as it was.
  const Status fired = engine_.FireInPlace(&slot->second, next.timer_id, clock_, timeline_, &diff_);
  if (!fired.ok()) {
    ++failed_timers_;
    v1::Effect* e = timeline_->add_effects();
    e->mutable_at()->set_seconds(clock_.time_since_epoch().count());
    e->set_case_id(slot->first);
    e->set_cause("timer:" + std::to_string(next.timer_id));
    auto* r = e->mutable_rejected();
    r->set_event_type("timer");
    r->set_code(std::string(StatusCodeName(fired.code())));
    r->set_reason(fired.message());
    return;
  }
  Commit(slot);
}

void Simulator::Advance(calendar::Instant until) {
  while (!timers_.empty() && timers_.begin()->due <= until) FireNext();
  if (clock_ < until) clock_ = until;
}

const Simulator::Effects& Simulator::Publish(const v1::Event& event) {
  return PublishTaking(event, nullptr);
}

const Simulator::Effects& Simulator::Publish(v1::Event&& event) {
  return PublishTaking(event, &event);
}

const Simulator::Effects& Simulator::PublishTaking(const v1::Event& event, v1::Event* take) {
  StartCall();
  Advance(ToInstant(event.occurred_at()));
  if (!event.opened_by_case().empty()) {
    *timeline_->add_effects() = RejectionEffect(
        event, InvalidArgumentError("opened_by_case is set by tandem only"), clock_);
    return timeline_->effects();
  }
  ApplyAtClock(event, take, 0);
  return timeline_->effects();
}

void Simulator::ApplyAtClock(const v1::Event& event, v1::Event* take, int depth) {
  const std::size_t hash = std::hash<std::string_view>{}(event.case_id());
  Slot* slot = FindCase(event.case_id(), hash);
  const int first = timeline_->effects_size();
  // Changed in place, or made in fresh_ when new: a rejected event changes neither.
  const Status applied = engine_.ApplyInPlace(slot != nullptr ? &slot->second : nullptr, &fresh_,
                                              event, take, clock_, timeline_, &diff_);
  if (!applied.ok()) {
    *timeline_->add_effects() = RejectionEffect(event, applied, clock_);
    return;
  }
  if (slot == nullptr) {
    // Moving leaves fresh_ empty again.
    slot = &*cases_.emplace(event.case_id(), std::move(fresh_)).first;
    IndexCase(slot, hash);
  }
  Commit(slot);
  // The cases the change opened, each applied now like any event (and refused like one).
  for (OpenedCase& next : CasesOpened(*timeline_, first, depth)) {
    if (!next.refused.ok()) {
      *timeline_->add_effects() = RejectionEffect(next.event, next.refused, clock_);
      continue;
    }
    ApplyAtClock(next.event, &next.event, depth + 1);
  }
}

const Simulator::Effects& Simulator::AdvanceTo(calendar::Instant until) {
  StartCall();
  Advance(until);
  return timeline_->effects();
}

const Simulator::Effects& Simulator::RunOut(std::size_t max_timers, bool* exhausted) {
  StartCall();
  std::size_t fired = 0;
  while (!timers_.empty() && fired < max_timers) {
    FireNext();
    ++fired;
  }
  *exhausted = !timers_.empty();
  return timeline_->effects();
}

}  // namespace tandem::engine
