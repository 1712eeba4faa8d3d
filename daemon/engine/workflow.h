#pragma once
// A statutory workflow loaded from its YAML file and checked: every state, event type, fact,
// deadline, role and template placeholder it names exists. A WorkflowSet is what the engine
// runs: every loaded workflow (and edition), found by starting event type or by name.

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "proto/tandem/v1/event.pb.h"
#include "proto/tandem/v1/partnership.pb.h"
#include "proto/tandem/v1/workflow.pb.h"

namespace tandem::engine {

namespace internal {
class LineMap;

// Hashes names for lookups by std::string_view (heterogeneous, with std::equal_to<>). The engine
// looks definitions up by name several times per change: comparing names down a tree cost
// more than hashing the one looked for. Names are short and the tables small, so eight bytes at
// a time with a multiply to mix them does (std::hash's byte-at-a-time tail cost as much again).
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view name) const noexcept {
    constexpr uint64_t kMul = 0x9e3779b97f4a7c15;
    uint64_t h = name.size() * kMul;
    std::size_t i = 0;
    for (; i + 8 <= name.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, name.data() + i, 8);
      h = (h ^ w) * kMul;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, name.data() + i, name.size() - i);
    h = (h ^ tail) * kMul;
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
};
template <typename V>
using ByName = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
}  // namespace internal

// Event types every workflow accepts (shared/domain/events.md, "Every workflow").
inline constexpr std::string_view kFactsCorrected = "case.facts_corrected";
inline constexpr std::string_view kWithdrawn = "case.withdrawn";
// The final state a withdrawn case enters; no workflow may declare a state of this name.
inline constexpr std::string_view kWithdrawnState = "withdrawn";

// The placeholders notification templates may use, e.g. "Due {due_on}: {title}".
inline constexpr std::array<std::string_view, 9> kTemplatePlaceholders = {
    "case_id",  "partnership", "workflow", "state",  "event_type",
    "deadline", "due_on",      "title",    "edition"};

// The roles notifications may go to (shared/domain/events.md, "Roles").
bool IsKnownRole(std::string_view role);

// One loaded workflow. Immutable after construction; safe to share between threads.
class Workflow {
 public:
  // Parses `yaml` (the text of the file named `origin`) and checks it.
  // Returns kInvalidArgument whose message starts "<origin>:<line>: field '<name>'" for any
  // schema error or unresolved reference. Does not keep references to its arguments.
  static Result<std::shared_ptr<const Workflow>> FromYaml(std::string_view yaml,
                                                          std::string_view origin);

  // Returns `base` as partnership `partnership` runs it: with the changes of `overrides` (read
  // from the file `origin`, whose fields' lines are in `lines`, under the field path `path`,
  // e.g. "workflows[0]"). Returns kInvalidArgument, naming the file, the line and the field, for
  // an unknown deadline, state (move_to), parameter, parameter value or role, or an offset
  // without an amount. Does not keep references to its arguments.
  static Result<std::shared_ptr<const Workflow>> WithOverrides(
      const Workflow& base, std::string_view partnership, const v1::WorkflowOverride& overrides,
      std::string_view origin, const internal::LineMap& lines, std::string_view path);

  // The partnership whose overrides this is, or empty for the workflow as written.
  const std::string& partnership() const { return partnership_; }
  // The overrides that shape deadline `name`, each with where it is written; empty for none.
  std::vector<std::string> OverridesOf(std::string_view deadline) const;

  const v1::WorkflowDefinition& definition() const { return def_; }
  const std::string& name() const { return def_.name(); }
  uint32_t version() const { return def_.version(); }
  const std::string& origin() const { return origin_; }
  calendar::CivilDay effective_from() const { return effective_from_; }
  // "WT2023 (in force from 2023-12-15)".
  const std::string& edition_label() const { return edition_label_; }
  calendar::LeapDayBirthday leap_day_birthday() const { return leap_; }

  // The event type's definition, including the two built-in types; nullptr if unknown here.
  const v1::EventTypeDefinition* FindEvent(std::string_view type) const;
  const v1::StateDefinition* FindState(std::string_view name) const;
  const v1::DeadlineDefinition* FindDeadline(std::string_view name) const;
  // Transitions on `event_type`, in file order.
  const std::vector<const v1::TransitionDefinition*>& TransitionsOn(
      std::string_view event_type) const;
  // The starting event types.
  const std::vector<std::string>& starting_events() const { return starting_events_; }
  // The parameter's value: the workflow's default.
  std::string_view Parameter(std::string_view name) const;
  // A case one of this workflow's transitions opens, with where the file says so: "file:line:
  // field 'transitions[3].start_cases[0]'", and the same for each of its facts' names.
  struct StartCaseRef {
    const v1::StartCaseDefinition* definition = nullptr;
    std::string where;
    std::vector<std::string> fact_where;
  };
  const std::vector<StartCaseRef>& start_cases() const { return start_cases_; }

  // Returns whether an event of `event_type` can change what the assessments decide: whether
  // it declares a fact that one of their conditions reads. Facts an event does not declare are
  // refused, so another event's facts leave every assessment as it was.
  bool AssessmentsRead(std::string_view event_type) const {
    return assessment_inputs_.find(event_type) != assessment_inputs_.end();
  }

 private:
  Workflow() = default;
  Status Check(const internal::LineMap& lines);
  void Index();
  void IndexAssessmentInputs(const v1::Condition& condition);

  v1::WorkflowDefinition def_;
  std::string origin_;
  calendar::CivilDay effective_from_{};
  std::string edition_label_;
  calendar::LeapDayBirthday leap_ = calendar::LeapDayBirthday::kMarch1;
  // Looked up on every change, never iterated.
  internal::ByName<const v1::EventTypeDefinition*> events_;
  internal::ByName<const v1::StateDefinition*> states_;
  internal::ByName<const v1::DeadlineDefinition*> deadlines_;
  internal::ByName<std::vector<const v1::TransitionDefinition*>> transitions_;
  std::map<std::string, std::string, std::less<>> parameters_;
  std::vector<std::string> starting_events_;
  std::string partnership_;
  // Overrides that shape every deadline (parameters, role routes), and those of one deadline.
  std::vector<std::string> overrides_all_;
  std::map<std::string, std::vector<std::string>, std::less<>> overrides_of_;
  std::set<std::string, std::less<>> assessment_inputs_;
  std::vector<StartCaseRef> start_cases_;
  v1::EventTypeDefinition facts_corrected_;
  v1::EventTypeDefinition withdrawn_;
  v1::StateDefinition withdrawn_state_;
};

// Every workflow the engine knows. Immutable once built; safe to share between threads.
class WorkflowSet {
 public:
  // Adds `workflow`. Several editions of one workflow may be added (same name, different
  // version and effective_from); their starting events must be the same.
  // Returns kAlreadyExists if the same name and version is already present, or if another
  // workflow already starts cases on one of its starting events or uses one of its event types.
  Status Add(std::shared_ptr<const Workflow> workflow);

  // Returns the workflow (edition) that governs a new case started by `event`: the edition in
  // force on the event's trigger date (its edition's trigger fact, else the London day it
  // occurred). Returns kNotFound if no workflow starts cases on the event's type, and
  // kFailedPrecondition if no edition was yet in force on the trigger date.
  Result<const Workflow*> ForNewCase(const v1::Event& event) const;

  // Checks the cases each workflow's transitions open against the workflows in the set: the
  // workflow is loaded, the event starts its cases, and each mapped fact is one that event
  // declares (a fixed value must fit its type). Call once every workflow is added.
  // Returns kInvalidArgument naming the file, line and field of the first problem.
  Status CheckStartCases() const;

  // Reads a partnership's file (PartnershipOverrides as YAML, the text of the file `origin`)
  // and adds its version of each workflow it names, for every loaded version of that workflow.
  // Call after adding the workflows. Returns kInvalidArgument naming the file, the line and the
  // field for a YAML or schema error, an unknown workflow, deadline, state, parameter, value or
  // role; kAlreadyExists if the partnership already has a version of one of them.
  Status AddPartnership(std::string_view yaml, std::string_view origin);

  // Adds a partnership's version of a workflow already added (Workflow::WithOverrides): cases
  // of that partnership run it instead. Returns kAlreadyExists if one is already added for the
  // same partnership, name and version; kNotFound if the base workflow is not in the set.
  Status AddOverride(std::shared_ptr<const Workflow> workflow);

  // Returns the workflow a case started with, or nullptr.
  const Workflow* Find(std::string_view name, uint32_t version) const;
  // As Find, preferring the partnership's version when it has one.
  const Workflow* Find(std::string_view name, uint32_t version, std::string_view partnership) const;

  // Returns whether any workflow declares `event_type` (built-in types included).
  bool KnowsEventType(std::string_view event_type) const;

  const std::vector<std::shared_ptr<const Workflow>>& workflows() const { return all_; }

 private:
  std::vector<std::shared_ptr<const Workflow>> all_;
  // Starting event type -> editions, sorted by effective_from.
  std::map<std::string, std::vector<const Workflow*>, std::less<>> by_start_;
  // Partnership versions: (partnership, name, version) -> workflow.
  std::map<std::tuple<std::string, std::string, uint32_t>, std::shared_ptr<const Workflow>,
           std::less<>>
      overrides_;
  // Event type -> workflow name (types belong to one workflow). Looked up on every event, never
  // iterated.
  internal::ByName<std::string> owner_;
};

}  // namespace tandem::engine
