#pragma once
// Helpers shared by the engine tests: events and instants written as text, the shipped calendar
// and workflows, a driver that threads one case through Engine::Apply and Engine::Fire, and
// one-line descriptions of effects and timers so a test can pin a whole timeline at once.
// Everything here is deterministic: no wall clock, no randomness, no files written.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/config/loader.h"
#include "daemon/config/shipped.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/workflow.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/event.pb.h"

namespace tandem::engine::test {

inline constexpr std::string_view kShippedWorkflowPath = "workflows/serious_incident.yaml";
inline constexpr std::string_view kEdition = "WT2023 (in force from 2023-12-15)";
inline constexpr std::string_view kPartnership = "staffordshire";

// An inline workflow for state-entered anchors, state scope, breach move_to, escalations,
// suppression and final-state notices. job_due is 2 working days after opened_on; its breach
// moves the case to overdue, whose chase deadline is 10 calendar days after entering it.
inline constexpr std::string_view kStages = R"yaml(name: stages
version: 1
edition: {name: S1, effective_from: "2020-01-01"}
events:
  - type: job.opened
    starts_case: true
    facts:
      - {name: opened_on, type: date, required: true}
  - type: job.reviewed
  - type: job.paused
  - type: job.finished
states:
  - name: open
  - name: review
    start_deadlines: [review_done]
    notify:
      - roles: [business_unit]
  - name: overdue
    start_deadlines: [chase]
  - name: paused
  - name: done
    final: true
    notify:
      - roles: [la_dsp]
        subject: "Case {case_id} finished"
transitions:
  - on: job.opened
    to: open
    start_deadlines: [job_due]
  - on: job.reviewed
    from: [open]
    to: review
  - on: job.reviewed
    from: [review]
    to: open
  - on: job.paused
    from: [open, overdue]
    to: paused
  - on: job.finished
    to: done
deadlines:
  - name: job_due
    title: Finish the job
    from: {facts: [opened_on]}
    offset: {working_days: 2}
    met_by:
      - {event: job.finished}
    on_breach:
      notify: [la_dsp]
      move_to: overdue
    escalations:
      - {working_days_after: 2, notify: [la_lsp]}
    suppressed_in_states: [paused]
    source: test
    confidence: v
  - name: review_done
    title: Finish the review
    from: {state_entered: true}
    offset: {working_days: 3}
    scope: state
    met_by:
      - {event: job.finished}
    source: test
    confidence: v1
  - name: chase
    title: Chase
    from: {state_entered: true}
    offset: {calendar_days: 10}
    source: test
    confidence: u
)yaml";

// A fact value as a test writes it: "2026-12-24", true, 3, 2.5.
struct FactValue {
  FactValue(const char* s) { value.set_string_value(s); }             // NOLINT: implicit on purpose
  FactValue(std::string s) { value.set_string_value(std::move(s)); }  // NOLINT
  FactValue(std::string_view s) { value.set_string_value(std::string(s)); }  // NOLINT
  FactValue(bool b) { value.set_bool_value(b); }                             // NOLINT
  FactValue(int n) { value.set_number_value(n); }                            // NOLINT
  FactValue(double d) { value.set_number_value(d); }                         // NOLINT
  google::protobuf::Value value;
};
using Facts = std::vector<std::pair<std::string, FactValue>>;

// Stops the test binary when data every test relies on cannot be loaded.
[[noreturn]] inline void Fatal(const std::string& what) {
  std::fprintf(stderr, "test setup failed: %s\n", what.c_str());
  std::abort();
}

// Returns the instant written "YYYY-MM-DDTHH:MM:SSZ".
inline calendar::Instant At(std::string_view rfc3339) {
  google::protobuf::Timestamp ts;
  if (!google::protobuf::util::TimeUtil::FromString(std::string(rfc3339), &ts)) {
    ADD_FAILURE() << "bad instant in test: " << rfc3339;
  }
  return ToInstant(ts);
}

inline std::string Show(calendar::Instant instant) { return calendar::FormatInstant(instant); }
inline std::string Show(const google::protobuf::Timestamp& ts) { return Show(ToInstant(ts)); }

// Returns an event of the shipped partnership; `occurred_at` is "YYYY-MM-DDTHH:MM:SSZ".
inline v1::Event Event(std::string event_id, std::string case_id, std::string type,
                       std::string_view occurred_at, const Facts& facts = {},
                       std::string partnership = std::string(kPartnership)) {
  v1::Event e;
  e.set_event_id(std::move(event_id));
  e.set_case_id(std::move(case_id));
  e.set_partnership(std::move(partnership));
  e.set_type(std::move(type));
  *e.mutable_occurred_at() = ToTimestamp(At(occurred_at));
  e.set_source("lcs");
  e.set_actor("la");
  for (const auto& [name, value] : facts)
    (*e.mutable_facts()->mutable_fields())[name] = value.value;
  return e;
}

// The shipped England & Wales calendar, loaded once. Read-only, so sharing it keeps tests
// hermetic.
inline const calendar::WorkingDayCalendar& Calendar() {
  static const std::unique_ptr<calendar::WorkingDayCalendar> cal = [] {
    auto loaded = config::LoadCalendar("");
    if (!loaded.ok()) Fatal(loaded.status().ToString());
    return std::move(loaded).value();
  }();
  return *cal;
}

// The shipped workflows, loaded once.
inline const WorkflowSet& ShippedWorkflows() {
  static const std::unique_ptr<WorkflowSet> set = [] {
    auto loaded = config::LoadWorkflows("");
    if (!loaded.ok()) Fatal(loaded.status().ToString());
    return std::move(loaded).value();
  }();
  return *set;
}

// Returns the text of the shipped file `path`, e.g. "workflows/serious_incident.yaml".
inline std::string ShippedText(std::string_view path = kShippedWorkflowPath) {
  for (const auto& f : config::ShippedFiles()) {
    if (f.path == path) return std::string(f.text);
  }
  Fatal("no shipped file " + std::string(path));
}

// Returns `text` with its one occurrence of `from` replaced by `to`; fails the test unless
// `from` occurs exactly once, so a mutation can never silently miss.
inline std::string Replace(std::string text, std::string_view from, std::string_view to) {
  const std::size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) {
    ADD_FAILURE() << "'" << from << "' must occur exactly once in the test's YAML";
    return text;
  }
  return text.replace(at, from.size(), to);
}

// Returns the 1-based line of the first occurrence of `needle` in `text` (0 if absent).
inline int LineOf(std::string_view text, std::string_view needle) {
  const std::size_t at = text.find(needle);
  if (at == std::string_view::npos) {
    ADD_FAILURE() << "'" << needle << "' not in the test's YAML";
    return 0;
  }
  int line = 1;
  for (std::size_t i = 0; i < at; ++i) line += text[i] == '\n' ? 1 : 0;
  return line;
}

// Returns a set holding the workflow in `yaml`; fails the test (and returns an empty set) if it
// does not load.
inline std::unique_ptr<WorkflowSet> SetOf(std::string_view yaml,
                                          std::string_view origin = "test.yaml") {
  auto set = std::make_unique<WorkflowSet>();
  auto wf = Workflow::FromYaml(yaml, origin);
  if (!wf.ok()) {
    ADD_FAILURE() << wf.status().ToString();
    return set;
  }
  const Status added = set->Add(std::move(wf).value());
  EXPECT_TRUE(added.ok()) << added.ToString();
  return set;
}

inline std::string KindName(v1::NotificationKind kind) {
  switch (kind) {
    case v1::NOTIFICATION_KIND_DEADLINE_WARNING:
      return "warning";
    case v1::NOTIFICATION_KIND_DEADLINE_BREACHED:
      return "breached";
    case v1::NOTIFICATION_KIND_DEADLINE_ESCALATED:
      return "escalated";
    case v1::NOTIFICATION_KIND_STATE_ENTERED:
      return "state_entered";
    case v1::NOTIFICATION_KIND_TRANSITION:
      return "transition";
    default:
      return "unspecified";
  }
}

inline std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One line per effect, e.g. "deadline sin_notification due 2027-01-05".
inline std::string Describe(const v1::Effect& e) {
  switch (e.kind_case()) {
    case v1::Effect::kState:
      return "state " + (e.state().from().empty() ? std::string() : e.state().from() + " ") +
             "-> " + e.state().to() + (e.state().final() ? " (final)" : "");
    case v1::Effect::kDeadline:
      return "deadline " + e.deadline().name() + " due " + e.deadline().due_on() +
             (e.deadline().recomputed() ? " (recomputed)" : "");
    case v1::Effect::kWarning:
      return "warning " + e.warning().name() + " due " + e.warning().due_on() + ", " +
             std::to_string(e.warning().working_days_before()) + " wd before" +
             (e.warning().late() ? " (late)" : "");
    case v1::Effect::kBreach:
      return "breach " + e.breach().name() + " due " + e.breach().due_on() +
             (e.breach().suppressed() ? " (suppressed)" : "") +
             (e.breach().late() ? " (late)" : "");
    case v1::Effect::kMet:
      return "met " + e.met().name() + " due " + e.met().due_on() + " on " + e.met().met_on() +
             (e.met().late() ? " (late)" : "");
    case v1::Effect::kNotification:
      return "notify " + KindName(e.notification().kind()) + " [" + Join(e.notification().roles()) +
             "]" + (e.notification().deadline().empty() ? "" : " " + e.notification().deadline());
    case v1::Effect::kRejected:
      return "rejected " + e.rejected().code() + ": " + e.rejected().reason();
    case v1::Effect::kCancelled:
      return "cancelled " + e.cancelled().name() + " due " + e.cancelled().due_on() + ": " +
             e.cancelled().reason();
    case v1::Effect::kAssessment:
      return "assessment " + e.assessment().name() + " = " +
             (e.assessment().value() ? "true" : "false");
    case v1::Effect::kCorrected:
      return "corrected " + Join(e.corrected().facts());
    case v1::Effect::kCaseStarted:
      return "started " + e.case_started().workflow() + " case " + e.case_started().case_id() +
             " with " + e.case_started().event().type();
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  return "empty effect";
}

inline std::vector<std::string> Describe(const std::vector<v1::Effect>& effects) {
  std::vector<std::string> out;
  for (const auto& e : effects) out.push_back(Describe(e));
  return out;
}

// A simulator's effects.
inline std::vector<std::string> Describe(
    const google::protobuf::RepeatedPtrField<v1::Effect>& effects) {
  return Describe(std::vector<v1::Effect>(effects.begin(), effects.end()));
}

inline std::string TimerKindName(v1::TimerKind kind) {
  switch (kind) {
    case v1::TIMER_KIND_WARNING:
      return "warning";
    case v1::TIMER_KIND_BREACH:
      return "breach";
    case v1::TIMER_KIND_ESCALATION:
      return "escalation";
    default:
      return "unspecified";
  }
}

// "#1 sin_notification warning[0] at 2026-12-31T00:00:00Z".
inline std::string Describe(const v1::Timer& t) {
  return "#" + std::to_string(t.id()) + " " + t.deadline() + " " + TimerKindName(t.kind()) + "[" +
         std::to_string(t.index()) + "] at " + Show(t.due_at());
}

inline std::vector<std::string> Describe(const std::vector<v1::Timer>& timers) {
  std::vector<std::string> out;
  for (const auto& t : timers) out.push_back(Describe(t));
  return out;
}

// The effects of kind `kind`, in order.
inline std::vector<v1::Effect> OfKind(const std::vector<v1::Effect>& effects,
                                      v1::Effect::KindCase kind) {
  std::vector<v1::Effect> out;
  for (const auto& e : effects) {
    if (e.kind_case() == kind) out.push_back(e);
  }
  return out;
}

// The latest instance of deadline `name` in `state`, or nullptr.
inline const v1::DeadlineInstance* Deadline(const v1::CaseState& state, std::string_view name) {
  const v1::DeadlineInstance* found = nullptr;
  for (const auto& d : state.deadlines()) {
    if (d.name() == name) found = &d;
  }
  return found;
}

// The value of assessment `name`, or nullopt when never recorded.
inline std::optional<bool> Assessment(const v1::CaseState& state, std::string_view name) {
  for (const auto& a : state.assessments()) {
    if (a.name() == name) return a.value();
  }
  return std::nullopt;
}

// Checks that `outcome.timers_set` and `timers_cancelled` are exactly the change between the
// pending timers of `before` and of the outcome's state, the fired timer excepted.
inline void ExpectTimersMirror(const v1::CaseState* before, const Outcome& outcome,
                               uint64_t fired = 0) {
  std::set<uint64_t> old_ids;
  if (before != nullptr) {
    for (const auto& t : PendingTimers(*before)) old_ids.insert(t.id());
  }
  std::set<uint64_t> new_ids;
  for (const auto& t : PendingTimers(outcome.state)) new_ids.insert(t.id());
  std::set<uint64_t> set_ids;
  for (const auto& t : outcome.timers_set) set_ids.insert(t.id());
  std::set<uint64_t> cancelled_ids;
  for (const auto& t : outcome.timers_cancelled) cancelled_ids.insert(t.id());
  std::set<uint64_t> want_set;
  std::set<uint64_t> want_cancelled;
  for (uint64_t id : new_ids) {
    if (old_ids.count(id) == 0) want_set.insert(id);
  }
  for (uint64_t id : old_ids) {
    if (new_ids.count(id) == 0 && id != fired) want_cancelled.insert(id);
  }
  EXPECT_EQ(set_ids, want_set);
  EXPECT_EQ(cancelled_ids, want_cancelled);
  EXPECT_EQ(set_ids.size(), outcome.timers_set.size()) << "a timer set twice";
  EXPECT_EQ(cancelled_ids.size(), outcome.timers_cancelled.size()) << "a timer cancelled twice";
  EXPECT_EQ(set_ids.count(fired), 0u);
  EXPECT_EQ(cancelled_ids.count(fired), 0u);
}

// Threads one case through Engine::Apply and Engine::Fire: a successful outcome becomes the
// case's state, a rejection leaves it as it was. Keeps a reference to `workflows`.
class CaseDriver {
 public:
  explicit CaseDriver(const WorkflowSet& workflows = ShippedWorkflows())
      : engine_(workflows, Calendar()) {}

  // Applies `event` at `now` (by default its occurred_at).
  Result<Outcome> Apply(const v1::Event& event, std::optional<calendar::Instant> now = {}) {
    const calendar::Instant at = now ? *now : ToInstant(event.occurred_at());
    auto outcome = engine_.Apply(state_ ? &*state_ : nullptr, event, at);
    if (outcome.ok()) {
      ExpectTimersMirror(state_ ? &*state_ : nullptr, *outcome);
      state_ = outcome->state;
    }
    return outcome;
  }

  // Applies `event` and fails the test if it is rejected; returns the effects.
  std::vector<v1::Effect> MustApply(const v1::Event& event,
                                    std::optional<calendar::Instant> now = {}) {
    auto outcome = Apply(event, now);
    EXPECT_TRUE(outcome.ok()) << event.event_id() << ": " << outcome.status().ToString();
    return outcome.ok() ? outcome->effects : std::vector<v1::Effect>{};
  }

  Result<Outcome> Fire(uint64_t timer_id, calendar::Instant now) {
    if (!state_) return NotFoundError("test: no case yet");
    auto outcome = engine_.Fire(*state_, timer_id, now);
    if (outcome.ok()) {
      ExpectTimersMirror(&*state_, *outcome, timer_id);
      state_ = outcome->state;
    }
    return outcome;
  }

  // The pending timer of `deadline` of `kind`, or 0.
  uint64_t TimerOf(std::string_view deadline, v1::TimerKind kind, uint32_t index = 0) const {
    if (!state_) return 0;
    for (const auto& t : PendingTimers(*state_)) {
      if (t.deadline() == deadline && t.kind() == kind && t.index() == index) return t.id();
    }
    return 0;
  }

  // Fires the pending timer of `deadline` of `kind` at `now` (default: its due instant).
  Result<Outcome> FireTimer(std::string_view deadline, v1::TimerKind kind,
                            std::optional<calendar::Instant> now = {}, uint32_t index = 0) {
    const uint64_t id = TimerOf(deadline, kind, index);
    if (id == 0) return NotFoundError("test: no such pending timer");
    calendar::Instant at{};
    for (const auto& t : PendingTimers(*state_)) {
      if (t.id() == id) at = ToInstant(t.due_at());
    }
    return Fire(id, now ? *now : at);
  }

  std::vector<std::string> Timers() const {
    return state_ ? Describe(PendingTimers(*state_)) : std::vector<std::string>{};
  }

  bool has_case() const { return state_.has_value(); }
  const v1::CaseState& state() const { return *state_; }
  void set_state(v1::CaseState state) { state_ = std::move(state); }
  const Engine& engine() const { return engine_; }

 private:
  Engine engine_;
  std::optional<v1::CaseState> state_;
};

}  // namespace tandem::engine::test
