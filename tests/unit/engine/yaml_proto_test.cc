#include "daemon/engine/internal/yaml_proto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "proto/tandem/v1/workflow.pb.h"

namespace tandem::engine::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Values(const v1::StringList& list) {
  return {list.values().begin(), list.values().end()};
}

// Parses `yaml` into a FactDefinition and returns its type, or UNSPECIFIED on error.
v1::FactType TypeOf(std::string_view yaml) {
  v1::FactDefinition f;
  auto lines = ParseYamlInto(yaml, "t.yaml", &f);
  EXPECT_TRUE(lines.ok()) << yaml << ": " << lines.status().ToString();
  return f.type();
}

TEST(YamlProto, ListShorthandFillsAMessageWhoseOnlyFieldIsRepeated) {
  v1::Condition c;
  auto lines = ParseYamlInto("fact: {name: kind, in: [a, b]}\n", "t.yaml", &c);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_THAT(Values(c.fact().in()), ElementsAre("a", "b"));
}

TEST(YamlProto, LongFormOfAListMessageAlsoParses) {
  v1::Condition c;
  auto lines = ParseYamlInto("fact: {name: kind, in: {values: [a]}}\n", "t.yaml", &c);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_THAT(Values(c.fact().in()), ElementsAre("a"));
}

TEST(YamlProto, ConditionListShorthandHoldsNestedConditions) {
  v1::Condition c;
  auto lines = ParseYamlInto(
      "all:\n  - fact: {name: a, present: true}\n  - not: {fact: {name: b, equals: x}}\n", "t.yaml",
      &c);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  ASSERT_EQ(c.all().conditions_size(), 2);
  EXPECT_TRUE(c.all().conditions(0).fact().present());
  EXPECT_EQ(c.all().conditions(1).not_().fact().equals(), "x");
  EXPECT_EQ(lines->LineOf("all[1].not.fact.equals"), 3);
}

TEST(YamlProto, EnumWithoutPrefixInAnyCase) {
  EXPECT_EQ(TypeOf("type: date"), v1::FACT_TYPE_DATE);
  EXPECT_EQ(TypeOf("type: Date"), v1::FACT_TYPE_DATE);
  EXPECT_EQ(TypeOf("type: DATETIME"), v1::FACT_TYPE_DATETIME);
}

TEST(YamlProto, EnumWithItsPrefixInAnyCase) {
  EXPECT_EQ(TypeOf("type: FACT_TYPE_BOOL"), v1::FACT_TYPE_BOOL);
  EXPECT_EQ(TypeOf("type: fact_type_int"), v1::FACT_TYPE_INT);
}

TEST(YamlProto, EnumUnspecifiedIsRefusedWithOrWithoutPrefix) {
  for (const char* yaml : {"type: unspecified", "type: FACT_TYPE_UNSPECIFIED"}) {
    v1::FactDefinition f;
    auto lines = ParseYamlInto(yaml, "t.yaml", &f);
    ASSERT_FALSE(lines.ok()) << yaml;
    EXPECT_EQ(lines.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(lines.status().message(),
              "t.yaml:1: field 'type': expected one of date, datetime, bool, enum, string, int");
  }
}

TEST(YamlProto, EnumNumberIsRefused) {
  v1::FactDefinition f;
  auto lines = ParseYamlInto("type: 1", "t.yaml", &f);
  ASSERT_FALSE(lines.ok());
  EXPECT_THAT(lines.status().message(), StartsWith("t.yaml:1: field 'type': expected one of"));
}

TEST(YamlProto, Uint32AcceptsItsWholeRange) {
  v1::Offset o;
  ASSERT_TRUE(ParseYamlInto("working_days: 0", "t.yaml", &o).ok());
  EXPECT_TRUE(o.has_working_days());
  EXPECT_EQ(o.working_days(), 0u);
  ASSERT_TRUE(ParseYamlInto("working_days: 4294967295", "t.yaml", &o).ok());
  EXPECT_EQ(o.working_days(), 4294967295u);
}

TEST(YamlProto, Uint32OutOfRangeIsRefused) {
  for (const char* yaml : {"working_days: 4294967296", "working_days: -1"}) {
    v1::Offset o;
    auto lines = ParseYamlInto(yaml, "t.yaml", &o);
    ASSERT_FALSE(lines.ok()) << yaml;
    EXPECT_EQ(lines.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(lines.status().message(),
              "t.yaml:1: field 'working_days': expected a whole number from 0 to 4294967295");
  }
}

TEST(YamlProto, FractionOrTextForAnIntegerIsRefused) {
  for (const char* yaml : {"working_days: 1.5", "working_days: five", "working_days: 5x"}) {
    v1::Offset o;
    auto lines = ParseYamlInto(yaml, "t.yaml", &o);
    ASSERT_FALSE(lines.ok()) << yaml;
    EXPECT_EQ(lines.status().message(), "t.yaml:1: field 'working_days': expected a whole number");
  }
}

TEST(YamlProto, FoldedScalarLosesItsTrailingNewline) {
  v1::DeadlineDefinition d;
  ASSERT_TRUE(ParseYamlInto("source: >\n  first line\n  second line\n", "t.yaml", &d).ok());
  EXPECT_EQ(d.source(), "first line second line");
}

TEST(YamlProto, MessageIsClearedFirst) {
  v1::DeadlineDefinition d;
  d.set_title("left over");
  ASSERT_TRUE(ParseYamlInto("name: x", "t.yaml", &d).ok());
  EXPECT_EQ(d.name(), "x");
  EXPECT_EQ(d.title(), "");
}

TEST(YamlProto, DocumentThatIsNotAMappingIsRefused) {
  v1::DeadlineDefinition d;
  auto lines = ParseYamlInto("- a\n- b\n", "t.yaml", &d);
  ASSERT_FALSE(lines.ok());
  EXPECT_EQ(lines.status().message(),
            "t.yaml:1: field '': expected a mapping of DeadlineDefinition fields");
}

TEST(YamlProto, UnknownFieldInANestedMessageNamesItsLine) {
  v1::DeadlineDefinition d;
  auto lines = ParseYamlInto("name: x\noffset:\n  working_days: 3\n  weeks: 2\n", "t.yaml", &d);
  ASSERT_FALSE(lines.ok());
  EXPECT_THAT(lines.status().message(),
              StartsWith("t.yaml:4: field 'weeks': unknown field; expected one of: working_days, "
                         "calendar_days, months, direction"));
}

TEST(YamlProto, SyntaxErrorNamesTheLine) {
  v1::DeadlineDefinition d;
  auto lines = ParseYamlInto("name: x\ntitle: [unclosed\n", "t.yaml", &d);
  ASSERT_FALSE(lines.ok());
  EXPECT_EQ(lines.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(lines.status().message(), StartsWith("t.yaml:"));
  EXPECT_THAT(lines.status().message(), HasSubstr("YAML syntax"));
}

TEST(YamlProto, RecordsTheLineOfEveryFieldAndListItem) {
  v1::DeadlineDefinition d;
  auto lines = ParseYamlInto(
      "name: x\n"
      "warnings:\n"
      "  - working_days_before: 2\n"
      "  - working_days_before: 1\n"
      "    notify: [la_dsp]\n",
      "t.yaml", &d);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  EXPECT_EQ(lines->LineOf("name"), 1);
  EXPECT_EQ(lines->LineOf("warnings"), 2);
  EXPECT_EQ(lines->LineOf("warnings[0]"), 3);
  EXPECT_EQ(lines->LineOf("warnings[1].notify"), 5);
  EXPECT_EQ(lines->LineOf("warnings[1].notify[0]"), 5);
}

TEST(LineMap, LineOfFallsBackToTheNearestRecordedParent) {
  LineMap lines;
  lines.Record("deadlines", 10);
  lines.Record("deadlines[2]", 20);
  lines.Record("deadlines[2].offset", 23);
  EXPECT_EQ(lines.LineOf("deadlines[2].offset"), 23);
  EXPECT_EQ(lines.LineOf("deadlines[2].offset.months"), 23);
  EXPECT_EQ(lines.LineOf("deadlines[2].source"), 20);
  EXPECT_EQ(lines.LineOf("deadlines[3].source"), 10);
  EXPECT_EQ(lines.LineOf("states[0].name"), 1);
  EXPECT_EQ(lines.LineOf(""), 1);
}

TEST(LineMap, WhereNamesOriginLineAndLeafFieldWithoutIndex) {
  LineMap lines;
  lines.Record("transitions[3]", 57);
  lines.Record("transitions[3].from[1]", 59);
  EXPECT_EQ(lines.Where("w.yaml", "transitions[3].to"), "w.yaml:57: field 'to'");
  EXPECT_EQ(lines.Where("w.yaml", "transitions[3].from[1]"), "w.yaml:59: field 'from'");
  EXPECT_EQ(lines.Where("w.yaml", "events"), "w.yaml:1: field 'events'");
}

}  // namespace
}  // namespace tandem::engine::internal
