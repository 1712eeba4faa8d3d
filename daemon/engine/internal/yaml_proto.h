#pragma once
// YAML text into a protobuf message, driven by the message's descriptor: every key must be a
// field, every value must have the field's type. Records the line of every field it sets so
// later checks (unknown state, unknown fact, ...) can name file, line and field.

#include <google/protobuf/message.h>

#include <map>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace tandem::engine::internal {

// Where each field came from: "transitions[3].to" -> 57 (1-based line numbers).
// Immutable after parsing; safe to share.
class LineMap {
 public:
  void Record(std::string path, int line) { lines_.emplace(std::move(path), line); }
  // Returns the line of `path`, or of its nearest recorded parent ("a[2].b" -> "a[2]" -> "a"),
  // or 1 when nothing is recorded.
  int LineOf(std::string_view path) const;
  // Returns "<origin>:<line>: field '<leaf>'" for `path`, the prefix of every load error.
  std::string Where(std::string_view origin, std::string_view path) const;

 private:
  std::map<std::string, int, std::less<>> lines_;
};

// Parses `yaml` into `message` (cleared first) and returns where each field came from.
// Keys are field names; enum values are their names in any case, with or without the enum's
// prefix (`type: date` for FACT_TYPE_DATE); UNSPECIFIED values are refused. A sequence given for
// a message field whose only field is repeated fills that field (`all: [..]` for ConditionList).
// Returns kInvalidArgument naming `origin`, the line and the field for YAML syntax errors,
// unknown fields, duplicate keys, type mismatches, two members of one oneof, and empty values.
// Does not keep references to its arguments.
Result<LineMap> ParseYamlInto(std::string_view yaml, std::string_view origin,
                              google::protobuf::Message* message);

}  // namespace tandem::engine::internal
