#include "daemon/engine/simulator.h"

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

}  // namespace

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

void Simulator::Commit(Slot* slot, Outcome outcome) {
  for (const auto& t : outcome.timers_cancelled) {
    timers_.erase({ToInstant(t.due_at()), slot, t.id()});
  }
  for (const auto& t : outcome.timers_set) timers_.insert({ToInstant(t.due_at()), slot, t.id()});
  slot->second = std::move(outcome.state);
}

void Simulator::FireNext() {
  const TimerKey next = *timers_.begin();
  timers_.erase(timers_.begin());
  if (clock_ < next.due) clock_ = next.due;
  Slot* slot = next.slot;  // Commit indexed the timer with its case's node
  // Taken, not copied: on a failure (a breach moving the case into a state whose deadline lies
  // past the calendar's data) the case stays as it was.
  auto outcome = engine_.FireTaking(&slot->second, next.timer_id, clock_, timeline_);
  if (!outcome.ok()) {
    ++failed_timers_;
    v1::Effect* e = timeline_->add_effects();
    e->mutable_at()->set_seconds(clock_.time_since_epoch().count());
    e->set_case_id(slot->first);
    e->set_cause("timer:" + std::to_string(next.timer_id));
    auto* r = e->mutable_rejected();
    r->set_event_type("timer");
    r->set_code(std::string(StatusCodeName(outcome.status().code())));
    r->set_reason(outcome.status().message());
    return;
  }
  Commit(slot, std::move(outcome).value());
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
  auto it = cases_.find(event.case_id());
  const bool exists = it != cases_.end();
  const int first = timeline_->effects_size();
  // Taken, not copied, when the case exists: a rejected event leaves it as it was.
  auto outcome = [&]() -> Result<Outcome> {
    if (take != nullptr) {
      return exists ? engine_.ApplyTaking(&it->second, std::move(*take), clock_, timeline_)
                    : engine_.Apply(nullptr, std::move(*take), clock_, timeline_);
    }
    return exists ? engine_.ApplyTaking(&it->second, event, clock_, timeline_)
                  : engine_.Apply(nullptr, event, clock_, timeline_);
  }();
  if (!outcome.ok()) {
    *timeline_->add_effects() = RejectionEffect(event, outcome.status(), clock_);
    return;
  }
  if (!exists) it = cases_.emplace(event.case_id(), v1::CaseState()).first;
  Commit(&*it, std::move(outcome).value());
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
