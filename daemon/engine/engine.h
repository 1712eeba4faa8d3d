#pragma once
// The workflow engine: (case state, event or timer, now) -> (new case state, effects). Pure: no
// I/O, no clock reads, no globals, no logging (DESIGN, "Engine is pure"). The daemon, the
// simulator and the tests all drive this one implementation.

#include <cstdint>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/workflow.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/event.pb.h"

namespace tandem::engine {

// What applying one event or firing one timer produced.
struct Outcome {
  // The case after the change.
  v1::CaseState state;
  // The timeline of the change, in the order it happened; empty when the caller passed a
  // timeline of its own, to which the effects were appended instead.
  std::vector<v1::Effect> effects;
  // Pending timers the change added, and those it removed without firing them (a timer that
  // fired is in neither). The daemon mirrors these in its timer index.
  std::vector<v1::Timer> timers_set;
  std::vector<v1::Timer> timers_cancelled;
};

// A change's pending-timer diff, as Outcome::timers_set and timers_cancelled say it, for a
// caller that changes its cases in place (Engine::ApplyInPlace): the due instant and id of each
// timer. The timers themselves are in the case (DeadlineInstance::timers).
struct TimerRef {
  calendar::Instant due;
  uint64_t id;
};
struct TimerDiff {
  std::vector<TimerRef> set;
  std::vector<TimerRef> cancelled;
};

// Limits of the envelope (shared/domain/events.md).
inline constexpr std::size_t kMaxIdBytes = 128;

// Runs workflows against cases. Immutable; keeps references to the workflow set and the
// calendar, which must outlive it. Safe to use from several threads at once.
//
// Every method takes an optional `into`: when given, the change's effects are appended to it
// (allocated on its arena, if it has one) instead of being returned in Outcome::effects. A
// caller that handles many changes at a time (the simulator, the daemon's loop turn) keeps
// their effects on one arena and frees them together; building and freeing each effect on the
// heap was the main cost of a change. Nothing is appended when the change is refused.
class Engine {
 public:
  Engine(const WorkflowSet& workflows, const calendar::WorkingDayCalendar& calendar)
      : workflows_(workflows), calendar_(calendar) {}

  // Applies `event` to `current` (nullptr when no case with the event's case_id exists) at the
  // instant `now`, returning the new state and its effects. Copies the case.
  // Errors are rejections; the case is then unchanged:
  //   kInvalidArgument   a malformed envelope; an unknown event type; an unknown, ill-typed or
  //                      missing required fact (the message names the fact, never its value);
  //                      a partnership that is not the case's
  //   kNotFound          no such case and the event type does not start one
  //   kAlreadyExists     a starting event for a case that exists
  //   kFailedPrecondition the event is not accepted in the case's state, the case is closed, or
  //                      no edition of the workflow was in force on the trigger date
  //   kOutOfRange        a deadline it would set lies beyond the calendar's data
  // Does not keep references to its arguments.
  Result<Outcome> Apply(const v1::CaseState* current, const v1::Event& event, calendar::Instant now,
                        v1::Timeline* into = nullptr) const;

  // As Apply, but takes the case out of `*current` instead of copying it, and only when the
  // event is accepted: every check and every computation that can fail runs before the first
  // change, so on an error `*current` is exactly as it was. A caller done with its copy of the
  // case saves a deep copy per event. REQUIRES: current != nullptr.
  Result<Outcome> ApplyTaking(v1::CaseState* current, const v1::Event& event, calendar::Instant now,
                              v1::Timeline* into = nullptr) const;

  // As Apply and ApplyTaking, and the case's record of the event's facts takes them from
  // `event` instead of copying them, only when the event is accepted: a refused event is left
  // as it was (its id and type still name it in a rejection).
  Result<Outcome> Apply(const v1::CaseState* current, v1::Event&& event, calendar::Instant now,
                        v1::Timeline* into = nullptr) const;
  Result<Outcome> ApplyTaking(v1::CaseState* current, v1::Event&& event, calendar::Instant now,
                              v1::Timeline* into = nullptr) const;

  // Fires the pending timer `timer_id` of `current` at `now` (at or after the timer's due
  // instant; a timer fired after it is marked late). Copies the case.
  // Returns kNotFound if the case has no such pending timer, kFailedPrecondition if the case's
  // workflow version is not loaded, kOutOfRange if a breach moves the case into a state whose
  // deadline lies beyond the calendar's data.
  Result<Outcome> Fire(const v1::CaseState& current, uint64_t timer_id, calendar::Instant now,
                       v1::Timeline* into = nullptr) const;

  // As Fire, but takes the case out of `*current`, only on success (as ApplyTaking).
  // REQUIRES: current != nullptr.
  Result<Outcome> FireTaking(v1::CaseState* current, uint64_t timer_id, calendar::Instant now,
                             v1::Timeline* into = nullptr) const;

  // As ApplyTaking, for a caller that keeps its cases where they live (the simulator's map, the
  // daemon's batches, on their own arenas): the change is made to `*current` itself, or to
  // `*fresh` when `current` is null (a new case), the case's record of the event's facts takes
  // them from `*take` when it is not null (it must be `event` itself), and `*diff` is set to the
  // change's timer diff. Moving a case out and back, and copying the timers an Outcome lists,
  // cost more than such a caller needs. Errors as Apply; on an error nothing changes.
  // REQUIRES: into != nullptr; diff != nullptr; `*fresh` is empty when used.
  Status ApplyInPlace(v1::CaseState* current, v1::CaseState* fresh, const v1::Event& event,
                      v1::Event* take, calendar::Instant now, v1::Timeline* into,
                      TimerDiff* diff) const;
  // As FireTaking, in place as ApplyInPlace. REQUIRES: current, into and diff are not null.
  Status FireInPlace(v1::CaseState* current, uint64_t timer_id, calendar::Instant now,
                     v1::Timeline* into, TimerDiff* diff) const;

  const WorkflowSet& workflows() const { return workflows_; }
  const calendar::WorkingDayCalendar& calendar() const { return calendar_; }

 private:
  // Where a change is made: to `*state` (the case itself, an empty case for a new one, or
  // outcome->state), with its timer diff in `*outcome` or, when that is null, in `*diff`.
  struct Target {
    v1::CaseState* state;
    Outcome* outcome;
    TimerDiff* diff;
  };

  // Apply and ApplyTaking: `current` is null for a new case, and taken only on success, as are
  // the facts of `take` (null, or `event` itself).
  Result<Outcome> ApplyTo(v1::CaseState* current, const v1::Event& event, v1::Event* take,
                          calendar::Instant now, v1::Timeline* into) const;
  // Every change: the checks and computations that can fail, then the change to `target`.
  Status ApplyChange(v1::CaseState* current, const v1::Event& event, v1::Event* take,
                     calendar::Instant now, v1::Timeline* into, const Target& target) const;
  Status FireChange(v1::CaseState* current, uint64_t timer_id, calendar::Instant now,
                    v1::Timeline* into, const Target& target) const;

  const WorkflowSet& workflows_;
  const calendar::WorkingDayCalendar& calendar_;
};

// The cases a change opened (case_started effects): the starting events that a driver (the
// simulator, the daemon's writer) applies next, in order, from the effects of `timeline` at
// `first_effect` and after. `depth` is how many such openings led to the change; past
// kMaxOpenedDepth (workflows opening one another in a cycle) each event comes back with the
// refusal to record instead of applying it.
inline constexpr int kMaxOpenedDepth = 4;
struct OpenedCase {
  v1::Event event;
  Status refused;  // OK: apply `event`
};
std::vector<OpenedCase> CasesOpened(const v1::Timeline& timeline, int first_effect, int depth);

// Returns the `rejected` effect recording that `event` was refused with `status` at `now`.
v1::Effect RejectionEffect(const v1::Event& event, const Status& status, calendar::Instant now);

// Returns the days `explanation` says its count stepped over, in date order, each with its
// reason: the bank holiday's title, else "Saturday" or "Sunday". The reasons view
// `explanation`, which must outlive them.
std::vector<calendar::SkippedDay> SkippedDays(const v1::Explanation& explanation);

// Returns every pending timer of `state`.
std::vector<v1::Timer> PendingTimers(const v1::CaseState& state);

// Returns the kind's name as notifications' JSON spells it ("deadline_warning", ...; "" for
// UNSPECIFIED): tandemctl's timeline and the plugins' notification JSON.
std::string_view NotificationKindName(v1::NotificationKind kind);

// Conversions between protobuf timestamps and calendar instants (whole seconds).
calendar::Instant ToInstant(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp ToTimestamp(calendar::Instant instant);

}  // namespace tandem::engine
