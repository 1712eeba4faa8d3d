#include "daemon/engine/simulator.h"

namespace tandem::engine {

void Simulator::Commit(Cases::iterator slot, Outcome outcome, std::vector<v1::Effect>* effects) {
  const std::string* id = &slot->first;
  for (const auto& t : outcome.timers_cancelled) timers_.erase({ToInstant(t.due_at()), id, t.id()});
  for (const auto& t : outcome.timers_set) timers_.insert({ToInstant(t.due_at()), id, t.id()});
  for (auto& e : outcome.effects) effects->push_back(std::move(e));
  slot->second = std::move(outcome.state);
}

void Simulator::FireNext(std::vector<v1::Effect>* effects) {
  const TimerKey next = *timers_.begin();
  timers_.erase(timers_.begin());
  if (clock_ < next.due) clock_ = next.due;
  auto it = cases_.find(*next.case_id);
  // Every indexed timer belongs to a case this simulator holds: Commit adds both together.
  TANDEM_CHECK(it != cases_.end());
  // Taken, not copied: on a failure (a breach moving the case into a state whose deadline lies
  // past the calendar's data) the case stays as it was.
  auto outcome = engine_.FireTaking(&it->second, next.timer_id, clock_);
  if (!outcome.ok()) {
    ++failed_timers_;
    v1::Effect e;
    *e.mutable_at() = ToTimestamp(clock_);
    e.set_case_id(it->first);
    e.set_cause("timer:" + std::to_string(next.timer_id));
    auto* r = e.mutable_rejected();
    r->set_event_type("timer");
    r->set_code(std::string(StatusCodeName(outcome.status().code())));
    r->set_reason(outcome.status().message());
    effects->push_back(std::move(e));
    return;
  }
  Commit(it, std::move(outcome).value(), effects);
}

std::vector<v1::Effect> Simulator::Publish(const v1::Event& event) {
  const calendar::Instant at = ToInstant(event.occurred_at());
  std::vector<v1::Effect> effects = AdvanceTo(at);
  auto it = cases_.find(event.case_id());
  // Taken, not copied, when the case exists: a rejected event leaves it as it was.
  auto outcome = it == cases_.end() ? engine_.Apply(nullptr, event, clock_)
                                    : engine_.ApplyTaking(&it->second, event, clock_);
  if (!outcome.ok()) {
    effects.push_back(RejectionEffect(event, outcome.status(), clock_));
    return effects;
  }
  if (it == cases_.end()) it = cases_.emplace(event.case_id(), v1::CaseState()).first;
  Commit(it, std::move(outcome).value(), &effects);
  return effects;
}

std::vector<v1::Effect> Simulator::AdvanceTo(calendar::Instant until) {
  std::vector<v1::Effect> effects;
  while (!timers_.empty() && timers_.begin()->due <= until) FireNext(&effects);
  if (clock_ < until) clock_ = until;
  return effects;
}

std::vector<v1::Effect> Simulator::RunOut(std::size_t max_timers, bool* exhausted) {
  std::vector<v1::Effect> effects;
  std::size_t fired = 0;
  while (!timers_.empty() && fired < max_timers) {
    FireNext(&effects);
    ++fired;
  }
  *exhausted = !timers_.empty();
  return effects;
}

}  // namespace tandem::engine
