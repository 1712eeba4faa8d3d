#include "daemon/engine/internal/facts.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tandem::engine::internal {
namespace {

constexpr std::size_t kDefaultMaxLength = 2000;
// Integers travel as JSON numbers (doubles); beyond 2^53 they are no longer exact.
constexpr double kMaxExactInteger = 9007199254740992.0;

bool IsWholeNumber(double v) {
  return std::isfinite(v) && std::floor(v) == v && std::fabs(v) <= kMaxExactInteger;
}

}  // namespace

FactName SplitFactName(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return {std::string_view(), name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

const v1::FactDefinition* FindFactDefinition(const v1::EventTypeDefinition& event,
                                             std::string_view name) {
  for (const auto& f : event.facts()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

std::vector<std::pair<std::string, const v1::FactDefinition*>> ResolveFactName(
    const v1::WorkflowDefinition& workflow, std::string_view name) {
  const FactName split = SplitFactName(name);
  std::vector<std::pair<std::string, const v1::FactDefinition*>> out;
  for (const auto& e : workflow.events()) {
    if (!split.event_type.empty() && e.type() != split.event_type) continue;
    if (const auto* f = FindFactDefinition(e, split.fact)) out.emplace_back(e.type(), f);
  }
  return out;
}

std::string_view FactTypeName(v1::FactType type) {
  switch (type) {
    case v1::FACT_TYPE_DATE:
      return "date";
    case v1::FACT_TYPE_DATETIME:
      return "datetime";
    case v1::FACT_TYPE_BOOL:
      return "bool";
    case v1::FACT_TYPE_ENUM:
      return "enum";
    case v1::FACT_TYPE_STRING:
      return "string";
    case v1::FACT_TYPE_INT:
      return "int";
    default:
      return "unspecified";
  }
}

bool ValueTextFits(const v1::FactDefinition& fact, std::string_view text) {
  switch (fact.type()) {
    case v1::FACT_TYPE_ENUM:
      return std::find(fact.values().begin(), fact.values().end(), text) != fact.values().end();
    case v1::FACT_TYPE_BOOL:
      return text == "true" || text == "false";
    case v1::FACT_TYPE_INT: {
      long long v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      return ec == std::errc() && end == text.data() + text.size();
    }
    case v1::FACT_TYPE_DATE:
      return calendar::ParseCivilDay(text).ok();
    default:
      return true;
  }
}

Status CheckFactValue(const v1::FactDefinition& fact, const google::protobuf::Value& value) {
  const std::string& name = fact.name();
  switch (fact.type()) {
    case v1::FACT_TYPE_DATE:
      if (value.kind_case() != google::protobuf::Value::kStringValue ||
          !calendar::ParseCivilDay(value.string_value()).ok()) {
        return InvalidArgumentError("fact '" + name + "' must be a date, YYYY-MM-DD");
      }
      return OkStatus();
    case v1::FACT_TYPE_DATETIME: {
      google::protobuf::Timestamp ts;
      if (value.kind_case() != google::protobuf::Value::kStringValue ||
          !google::protobuf::util::TimeUtil::FromString(value.string_value(), &ts)) {
        return InvalidArgumentError("fact '" + name + "' must be an RFC 3339 instant");
      }
      return OkStatus();
    }
    case v1::FACT_TYPE_BOOL:
      if (value.kind_case() != google::protobuf::Value::kBoolValue) {
        return InvalidArgumentError("fact '" + name + "' must be true or false");
      }
      return OkStatus();
    case v1::FACT_TYPE_ENUM: {
      if (value.kind_case() == google::protobuf::Value::kStringValue &&
          ValueTextFits(fact, value.string_value())) {
        return OkStatus();
      }
      std::string allowed;
      for (const auto& v : fact.values()) allowed += (allowed.empty() ? "" : ", ") + v;
      return InvalidArgumentError("fact '" + name + "' must be one of " + allowed);
    }
    case v1::FACT_TYPE_STRING: {
      const std::size_t max = fact.max_length() == 0 ? kDefaultMaxLength : fact.max_length();
      if (value.kind_case() != google::protobuf::Value::kStringValue) {
        return InvalidArgumentError("fact '" + name + "' must be a string");
      }
      if (value.string_value().size() > max) {
        return InvalidArgumentError("fact '" + name + "' is longer than " + std::to_string(max) +
                                    " bytes");
      }
      return OkStatus();
    }
    case v1::FACT_TYPE_INT:
      if (value.kind_case() != google::protobuf::Value::kNumberValue ||
          !IsWholeNumber(value.number_value())) {
        return InvalidArgumentError("fact '" + name + "' must be a whole number");
      }
      return OkStatus();
    default:
      break;
  }
  // The workflow checker refuses facts without a type.
  return InternalError("fact '" + name + "' has no declared type");
}

namespace {

Status CheckFact(const v1::EventTypeDefinition& event, const std::string& name,
                 const google::protobuf::Value& value) {
  const v1::FactDefinition* def = FindFactDefinition(event, name);
  if (def == nullptr) {
    return InvalidArgumentError("unknown fact '" + name + "' for event type '" + event.type() +
                                "'");
  }
  return CheckFactValue(*def, value);
}

}  // namespace

Status CheckFacts(const v1::EventTypeDefinition& event, const google::protobuf::Struct& facts) {
  // Most events are good: check them in the map's order first, and sort only to report.
  bool all_good = true;
  for (const auto& [name, value] : facts.fields()) {
    if (!CheckFact(event, name, value).ok()) {
      all_good = false;
      break;
    }
  }
  // Checked in name order so that the reason is the same every time (the map is unordered).
  std::vector<const google::protobuf::MapPair<std::string, google::protobuf::Value>*> fields;
  if (!all_good) {
    fields.reserve(facts.fields_size());
    for (const auto& field : facts.fields()) fields.push_back(&field);
    std::sort(fields.begin(), fields.end(),
              [](const auto* a, const auto* b) { return a->first < b->first; });
    for (const auto* field : fields) {
      TANDEM_RETURN_IF_ERROR(CheckFact(event, field->first, field->second));
    }
  }
  for (const auto& f : event.facts()) {
    if (f.required() && facts.fields().count(f.name()) == 0) {
      return InvalidArgumentError("missing required fact '" + f.name() + "' for event type '" +
                                  event.type() + "'");
    }
  }
  return OkStatus();
}

std::string ValueText(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStringValue:
      return value.string_value();
    case google::protobuf::Value::kBoolValue:
      return value.bool_value() ? "true" : "false";
    case google::protobuf::Value::kNumberValue: {
      const double v = value.number_value();
      if (IsWholeNumber(v)) return std::to_string(static_cast<long long>(v));
      return std::to_string(v);
    }
    default:
      return "";
  }
}

bool ValueTextIs(const google::protobuf::Value& value, std::string_view text) {
  if (value.kind_case() == google::protobuf::Value::kStringValue) {
    return value.string_value() == text;
  }
  return ValueText(value) == text;
}

}  // namespace tandem::engine::internal
