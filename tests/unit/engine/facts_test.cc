#include "daemon/engine/internal/facts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/unit/engine/test_util.h"

namespace tandem::engine::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::FactDefinition Fact(std::string name, v1::FactType type, std::vector<std::string> values = {}) {
  v1::FactDefinition f;
  f.set_name(std::move(name));
  f.set_type(type);
  for (auto& v : values) f.add_values(std::move(v));
  return f;
}

google::protobuf::Value V(const test::FactValue& v) { return v.value; }

const v1::WorkflowDefinition& Shipped() {
  return test::ShippedWorkflows().Find("serious_incident", 1)->definition();
}

TEST(Facts, SplitFactNameSeparatesTheEventType) {
  const FactName q = SplitFactName("notification.submitted.submitted_on");
  EXPECT_EQ(q.event_type, "notification.submitted");
  EXPECT_EQ(q.fact, "submitted_on");
  const FactName plain = SplitFactName("submitted_on");
  EXPECT_EQ(plain.event_type, "");
  EXPECT_EQ(plain.fact, "submitted_on");
}

TEST(Facts, ResolvePlainNameFindsEveryEventTypeDeclaringIt) {
  const auto found = ResolveFactName(Shipped(), "submitted_on");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].first, "notification.submitted");
  EXPECT_EQ(found[1].first, "rapid_review.submitted");
}

TEST(Facts, ResolveQualifiedNameFindsOneEventType) {
  const auto found = ResolveFactName(Shipped(), "rapid_review.submitted.submitted_on");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].first, "rapid_review.submitted");
  EXPECT_EQ(found[0].second->type(), v1::FACT_TYPE_DATE);
  EXPECT_TRUE(ResolveFactName(Shipped(), "lcspr.published.submitted_on").empty());
  EXPECT_TRUE(ResolveFactName(Shipped(), "nonsense").empty());
}

TEST(Facts, DateMustBeARealDateAsText) {
  const auto f = Fact("d", v1::FACT_TYPE_DATE);
  EXPECT_TRUE(CheckFactValue(f, V("2024-02-29")).ok());
  for (const auto& bad : {V("2026-02-30"), V("2023-02-29"), V("2026-1-05"), V(20270104), V(true)}) {
    const Status s = CheckFactValue(f, bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), "fact 'd' must be a date, YYYY-MM-DD");
  }
}

TEST(Facts, DatetimeMustBeAnRfc3339Instant) {
  const auto f = Fact("t", v1::FACT_TYPE_DATETIME);
  EXPECT_TRUE(CheckFactValue(f, V("2026-12-24T10:00:00Z")).ok());
  EXPECT_EQ(CheckFactValue(f, V("2026-12-24")).message(), "fact 't' must be an RFC 3339 instant");
}

TEST(Facts, BoolMustBeAJsonBool) {
  const auto f = Fact("b", v1::FACT_TYPE_BOOL);
  EXPECT_TRUE(CheckFactValue(f, V(false)).ok());
  EXPECT_EQ(CheckFactValue(f, V("true")).message(), "fact 'b' must be true or false");
  EXPECT_EQ(CheckFactValue(f, V(1)).message(), "fact 'b' must be true or false");
}

TEST(Facts, EnumMustBeOneOfItsValuesAndTheReasonListsThemNotTheValue) {
  const auto f = Fact("outcome", v1::FACT_TYPE_ENUM, {"died", "seriously_harmed"});
  EXPECT_TRUE(CheckFactValue(f, V("died")).ok());
  const Status s = CheckFactValue(f, V("Died"));
  EXPECT_EQ(s.message(), "fact 'outcome' must be one of died, seriously_harmed");
  EXPECT_THAT(s.message(), Not(HasSubstr("Died")));
}

TEST(Facts, StringIsLimitedTo2000BytesUnlessDeclaredOtherwise) {
  auto f = Fact("s", v1::FACT_TYPE_STRING);
  EXPECT_TRUE(CheckFactValue(f, V(std::string(2000, 'x'))).ok());
  EXPECT_EQ(CheckFactValue(f, V(std::string(2001, 'x'))).message(),
            "fact 's' is longer than 2000 bytes");
  f.set_max_length(3);
  EXPECT_TRUE(CheckFactValue(f, V("abc")).ok());
  EXPECT_EQ(CheckFactValue(f, V("abcd")).message(), "fact 's' is longer than 3 bytes");
  EXPECT_EQ(CheckFactValue(f, V(3)).message(), "fact 's' must be a string");
}

TEST(Facts, IntMustBeAnExactWholeNumber) {
  const auto f = Fact("n", v1::FACT_TYPE_INT);
  EXPECT_TRUE(CheckFactValue(f, V(-3)).ok());
  EXPECT_TRUE(CheckFactValue(f, V(9007199254740992.0)).ok());
  for (const auto& bad : {V(2.5), V(9007199254740994.0), V("3")}) {
    EXPECT_EQ(CheckFactValue(f, bad).message(), "fact 'n' must be a whole number");
  }
}

TEST(Facts, CheckFactsNamesTheFirstOffenderInNameOrder) {
  v1::EventTypeDefinition e;
  e.set_type("x.happened");
  *e.add_facts() = Fact("b_date", v1::FACT_TYPE_DATE);
  *e.add_facts() = Fact("a_flag", v1::FACT_TYPE_BOOL);
  e.mutable_facts(0)->set_required(true);
  google::protobuf::Struct facts;
  (*facts.mutable_fields())["b_date"] = V("nope");
  (*facts.mutable_fields())["a_flag"] = V("nope");
  EXPECT_EQ(CheckFacts(e, facts).message(), "fact 'a_flag' must be true or false");
  (*facts.mutable_fields())["a_extra"] = V(1);
  EXPECT_EQ(CheckFacts(e, facts).message(), "unknown fact 'a_extra' for event type 'x.happened'");
  facts.mutable_fields()->clear();
  EXPECT_EQ(CheckFacts(e, facts).message(),
            "missing required fact 'b_date' for event type 'x.happened'");
  (*facts.mutable_fields())["b_date"] = V("2026-01-05");
  EXPECT_TRUE(CheckFacts(e, facts).ok());
}

TEST(Facts, ValueTextIsHowConditionsCompare) {
  EXPECT_EQ(ValueText(V("died")), "died");
  EXPECT_EQ(ValueText(V(true)), "true");
  EXPECT_EQ(ValueText(V(false)), "false");
  EXPECT_EQ(ValueText(V(3)), "3");
  EXPECT_EQ(ValueText(V(-12.0)), "-12");
  EXPECT_EQ(ValueText(google::protobuf::Value()), "");
}

TEST(Facts, ValueTextFitsChecksConditionValuesAgainstTheFactType) {
  EXPECT_TRUE(ValueTextFits(Fact("e", v1::FACT_TYPE_ENUM, {"a"}), "a"));
  EXPECT_FALSE(ValueTextFits(Fact("e", v1::FACT_TYPE_ENUM, {"a"}), "b"));
  EXPECT_TRUE(ValueTextFits(Fact("b", v1::FACT_TYPE_BOOL), "false"));
  EXPECT_FALSE(ValueTextFits(Fact("b", v1::FACT_TYPE_BOOL), "yes"));
  EXPECT_TRUE(ValueTextFits(Fact("n", v1::FACT_TYPE_INT), "-4"));
  EXPECT_FALSE(ValueTextFits(Fact("n", v1::FACT_TYPE_INT), "4.5"));
  EXPECT_TRUE(ValueTextFits(Fact("d", v1::FACT_TYPE_DATE), "2026-01-05"));
  EXPECT_FALSE(ValueTextFits(Fact("d", v1::FACT_TYPE_DATE), "2026-02-30"));
  EXPECT_TRUE(ValueTextFits(Fact("s", v1::FACT_TYPE_STRING), "anything"));
}

TEST(Facts, FactTypeNamesAreLowerCase) {
  EXPECT_EQ(FactTypeName(v1::FACT_TYPE_DATE), "date");
  EXPECT_EQ(FactTypeName(v1::FACT_TYPE_INT), "int");
  EXPECT_EQ(FactTypeName(v1::FACT_TYPE_UNSPECIFIED), "unspecified");
}

}  // namespace
}  // namespace tandem::engine::internal
