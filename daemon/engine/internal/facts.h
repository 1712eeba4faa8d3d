#pragma once
// Facts: checking an event's facts against its type's declaration, resolving fact names
// (plain or qualified "event.type.fact"), and reading values as text or dates. Shared by the
// workflow checker and the engine.

#include <google/protobuf/struct.pb.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "proto/tandem/v1/workflow.pb.h"

namespace tandem::engine::internal {

// A fact name split into its event type (empty when plain) and the fact itself:
// "notification.submitted.submitted_on" -> {"notification.submitted", "submitted_on"}.
// Views into the name given to SplitFactName, which must outlive them (no copies: the engine
// splits a name on every fact lookup).
struct FactName {
  std::string_view event_type;
  std::string_view fact;
};
FactName SplitFactName(std::string_view name);

// Returns the declaration of fact `name` in `event`, or nullptr.
const v1::FactDefinition* FindFactDefinition(const v1::EventTypeDefinition& event,
                                             std::string_view name);

// Returns every (event type, declaration) that `name` can mean in `workflow`: one for a
// qualified name, every event type declaring it for a plain one. Empty if none.
std::vector<std::pair<std::string, const v1::FactDefinition*>> ResolveFactName(
    const v1::WorkflowDefinition& workflow, std::string_view name);

// "date", "enum", ...
std::string_view FactTypeName(v1::FactType type);

// Returns whether `text` is a possible value of the fact written as text (conditions compare
// facts with text: "true", "died", "3", "2026-01-05").
bool ValueTextFits(const v1::FactDefinition& fact, std::string_view text);

// Returns OK if `value` has `fact`'s type; else kInvalidArgument naming the fact and the type
// wanted, never the value.
Status CheckFactValue(const v1::FactDefinition& fact, const google::protobuf::Value& value);

// Returns OK if `facts` holds exactly what `event` declares: no unknown fact, every required
// one, each of its type. Else kInvalidArgument naming the first offending fact (in name order,
// so the reason is the same every time).
Status CheckFacts(const v1::EventTypeDefinition& event, const google::protobuf::Struct& facts);

// Returns the value as the text conditions compare with.
std::string ValueText(const google::protobuf::Value& value);

// Returns whether ValueText(value) == text, without copying a string value (conditions are
// evaluated on every event).
bool ValueTextIs(const google::protobuf::Value& value, std::string_view text);

}  // namespace tandem::engine::internal
