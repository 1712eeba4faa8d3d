#include "daemon/engine/simulator.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "daemon/engine/internal/facts.h"
#include "tests/unit/engine/test_util.h"

namespace tandem::engine {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using test::At;
using test::Describe;
using test::Event;
using test::Facts;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

Facts IncidentFacts(std::string_view became_aware_on = "2026-12-24",
                    std::string_view incident_on = "2026-12-22") {
  return {{"became_aware_on", became_aware_on}, {"incident_on", incident_on},
          {"child_dob", "2012-05-03"},          {"outcome", "seriously_harmed"},
          {"abuse_or_neglect", "suspected"},    {"location", "in_area"}};
}

v1::Event Incident(std::string case_id = "SI-1", std::string event_id = "e1") {
  return Event(std::move(event_id), std::move(case_id), "incident.reported", "2026-12-24T10:15:00Z",
               IncidentFacts());
}

v1::Event Informed(std::string event_id = "e-ok") {
  return Event(std::move(event_id), "SI-1", "partners.informed", "2026-12-29T10:00:00Z",
               {{"informed_on", "2026-12-29"}});
}

class SimulatorTest : public ::testing::Test {
 protected:
  SimulatorTest() : engine_(test::ShippedWorkflows(), test::Calendar()), sim_(engine_) {}

  Engine engine_;
  Simulator sim_;
};

TEST_F(SimulatorTest, PublishOpensTheCaseAtTheEventsInstant) {
  const auto effects = sim_.Publish(Incident());
  EXPECT_THAT(Describe(effects),
              ElementsAre("state -> screening", "deadline sin_notification due 2027-01-05",
                          "deadline partners_informed due 2027-01-05",
                          "assessment meets_sin_criteria = true"));
  EXPECT_EQ(test::Show(sim_.clock()), "2026-12-24T10:15:00Z");
  ASSERT_EQ(sim_.cases().count("SI-1"), 1u);
  EXPECT_EQ(sim_.cases().at("SI-1").state(), "screening");
  EXPECT_EQ(sim_.pending_timers(), 3u);
}

TEST_F(SimulatorTest, TimersFireInDueOrderBeforeALaterEvent) {
  sim_.Publish(Incident());
  const auto effects =
      sim_.Publish(Event("e2", "SI-1", "notification.submitted", "2027-01-07T10:00:00Z",
                         {{"submitted_on", "2027-01-07"}}));
  EXPECT_THAT(
      Describe(effects),
      ElementsAre(
          "warning sin_notification due 2027-01-05, 2 wd before",
          "notify warning [la_dsp, business_unit] sin_notification",
          "breach sin_notification due 2027-01-05",
          "notify breached [la_dsp, la_lsp, partnership_chair, business_unit] sin_notification",
          "breach partners_informed due 2027-01-05",
          "notify breached [la_dsp, icb_dsp, police_dsp, business_unit] partners_informed",
          "met sin_notification due 2027-01-05 on 2027-01-07 (late)", "state screening -> notified",
          "deadline rapid_review due 2027-01-28"));
  std::vector<std::string> causes;
  std::vector<std::string> ats;
  for (const auto& e : effects) {
    causes.push_back(e.cause());
    ats.push_back(test::Show(e.at()));
  }
  EXPECT_THAT(causes, ElementsAre("timer:1", "timer:1", "timer:2", "timer:2", "timer:3", "timer:3",
                                  "e2", "e2", "e2"));
  // Each timer fires at its due instant, not late; the event applies at its own instant.
  EXPECT_THAT(ats,
              ElementsAre("2026-12-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-06T00:00:00Z",
                          "2027-01-06T00:00:00Z", "2027-01-06T00:00:00Z", "2027-01-06T00:00:00Z",
                          "2027-01-07T10:00:00Z", "2027-01-07T10:00:00Z", "2027-01-07T10:00:00Z"));
  EXPECT_EQ(sim_.pending_timers(), 2u);
}

TEST_F(SimulatorTest, AdvanceToFiresOnlyTimersDueByThenAndMovesTheClock) {
  sim_.Publish(Incident());
  const auto effects = sim_.AdvanceTo(At("2027-01-05T12:00:00Z"));
  EXPECT_THAT(Describe(effects),
              ElementsAre("warning sin_notification due 2027-01-05, 2 wd before",
                          "notify warning [la_dsp, business_unit] sin_notification"));
  EXPECT_EQ(test::Show(sim_.clock()), "2027-01-05T12:00:00Z");
  EXPECT_EQ(sim_.pending_timers(), 2u);
  // A timer due exactly at `until` fires.
  EXPECT_EQ(sim_.AdvanceTo(At("2027-01-06T00:00:00Z")).size(), 4u);
  EXPECT_EQ(sim_.pending_timers(), 0u);
}

TEST_F(SimulatorTest, AdvanceToAnEarlierInstantLeavesTheClock) {
  sim_.Publish(Incident());
  EXPECT_TRUE((sim_.AdvanceTo(At("2026-01-01T00:00:00Z"))).empty());
  EXPECT_EQ(test::Show(sim_.clock()), "2026-12-24T10:15:00Z");
}

TEST_F(SimulatorTest, TimersDueAtOneInstantFireInCaseThenTimerOrder) {
  sim_.Publish(Incident("SI-B", "b1"));
  sim_.Publish(Incident("SI-A", "a1"));
  std::vector<std::string> order;
  for (const auto& e : sim_.AdvanceTo(At("2027-01-06T00:00:00Z"))) {
    if (e.has_breach()) order.push_back(e.case_id() + " " + e.cause() + " " + e.breach().name());
  }
  EXPECT_THAT(order,
              ElementsAre("SI-A timer:2 sin_notification", "SI-A timer:3 partners_informed",
                          "SI-B timer:2 sin_notification", "SI-B timer:3 partners_informed"));
}

TEST_F(SimulatorTest, RunOutStopsAtTheLimitAndSaysSo) {
  sim_.Publish(Incident());
  bool exhausted = false;
  const auto first = sim_.RunOut(1, &exhausted);
  EXPECT_TRUE(exhausted);
  EXPECT_THAT(Describe(first),
              ElementsAre("warning sin_notification due 2027-01-05, 2 wd before",
                          "notify warning [la_dsp, business_unit] sin_notification"));
  EXPECT_EQ(test::Show(sim_.clock()), "2026-12-31T00:00:00Z");
  const auto rest = sim_.RunOut(100, &exhausted);
  EXPECT_FALSE(exhausted);
  EXPECT_EQ(rest.size(), 4u);
  EXPECT_EQ(sim_.pending_timers(), 0u);
  EXPECT_EQ(test::Show(sim_.clock()), "2027-01-06T00:00:00Z");
}

TEST_F(SimulatorTest, RunOutWithNothingPendingIsNotExhausted) {
  bool exhausted = true;
  EXPECT_TRUE((sim_.RunOut(5, &exhausted)).empty());
  EXPECT_FALSE(exhausted);
}

TEST_F(SimulatorTest, RejectedEventBecomesARejectedEffectAndChangesNothing) {
  sim_.Publish(Incident());
  const v1::CaseState before = sim_.cases().at("SI-1");
  const auto effects =
      sim_.Publish(Event("e2", "SI-1", "rapid_review.submitted", "2026-12-29T10:00:00Z",
                         {{"submitted_on", "2026-12-29"}, {"decision", "lcspr"}}));
  ASSERT_EQ(effects.size(), 1u);
  const v1::Effect& e = effects[0];
  EXPECT_EQ(e.case_id(), "SI-1");
  EXPECT_EQ(e.cause(), "e2");
  EXPECT_EQ(test::Show(e.at()), "2026-12-29T10:00:00Z");
  EXPECT_EQ(e.rejected().event_id(), "e2");
  EXPECT_EQ(e.rejected().event_type(), "rapid_review.submitted");
  EXPECT_EQ(e.rejected().code(), "failed_precondition");
  EXPECT_EQ(e.rejected().reason(),
            "event type 'rapid_review.submitted' is not accepted in state 'screening'");
  EXPECT_TRUE(MessageDifferencer::Equals(sim_.cases().at("SI-1"), before));
  EXPECT_EQ(sim_.pending_timers(), 3u);
}

TEST(Simulator, TimerWhoseFiringFailsBecomesARejectedEffectAndLeavesTheCase) {
  const auto set = test::SetOf(test::kStages);
  Engine engine(*set, test::Calendar());
  Simulator sim(engine);
  // Due Wednesday 2028-12-27; the breach moves the case to overdue on the 28th, whose chase
  // deadline (10 calendar days later) lies past the calendar's data.
  sim.Publish(
      Event("j1", "J-1", "job.opened", "2028-12-21T09:00:00Z", {{"opened_on", "2028-12-21"}}));
  ASSERT_EQ(sim.cases().count("J-1"), 1u);
  const v1::CaseState before = sim.cases().at("J-1");
  const auto effects = sim.AdvanceTo(At("2028-12-28T00:00:00Z"));
  ASSERT_EQ(effects.size(), 1u) << ::testing::PrintToString(Describe(effects));
  const v1::Effect& e = effects[0];
  EXPECT_EQ(e.case_id(), "J-1");
  EXPECT_EQ(e.cause(), "timer:1");
  EXPECT_EQ(test::Show(e.at()), "2028-12-28T00:00:00Z");
  EXPECT_EQ(e.rejected().event_type(), "timer");
  EXPECT_EQ(e.rejected().code(), "out_of_range");
  EXPECT_EQ(e.rejected().reason(),
            "deadline 'chase' (10 calendar days after the day the case entered state overdue) "
            "falls outside the bank-holiday data, which covers 2018-01-01 to 2028-12-31 "
            "(workflows/calendars/england-and-wales.json)");
  EXPECT_EQ(sim.failed_timers(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(sim.cases().at("J-1"), before));
  // The failed timer is dropped; the escalation is still pending.
  EXPECT_EQ(sim.pending_timers(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Bad input: each event is refused with the right code and a reason that names the problem but
// no fact value; the case is unchanged and the next event still applies.

struct BadInput {
  std::string name;
  v1::Event event;
  std::string code;
  std::string reason;  // the exact reason
};

v1::Event Mutated(v1::Event e, const std::function<void(v1::Event*)>& change) {
  change(&e);
  return e;
}

std::vector<BadInput> BadInputs() {
  const std::string long_id(kMaxIdBytes + 1, 'x');
  return {
      {"EmptyEventId", Mutated(Informed(), [](v1::Event* e) { e->clear_event_id(); }),
       "invalid_argument", "event_id is required"},
      {"OversizedEventId", Mutated(Informed(), [&](v1::Event* e) { e->set_event_id(long_id); }),
       "invalid_argument", "event_id is longer than 128 bytes"},
      {"EmptyCaseId", Mutated(Informed(), [](v1::Event* e) { e->clear_case_id(); }),
       "invalid_argument", "case_id is required"},
      {"OversizedCaseId", Mutated(Informed(), [&](v1::Event* e) { e->set_case_id(long_id); }),
       "invalid_argument", "case_id is longer than 128 bytes"},
      {"MissingPartnership", Mutated(Informed(), [](v1::Event* e) { e->clear_partnership(); }),
       "invalid_argument", "partnership is required"},
      {"MissingType", Mutated(Informed(), [](v1::Event* e) { e->clear_type(); }),
       "invalid_argument", "type is required"},
      {"MissingOccurredAt", Mutated(Informed(), [](v1::Event* e) { e->clear_occurred_at(); }),
       "invalid_argument", "occurred_at is required"},
      {"UnknownEventType", Mutated(Informed(), [](v1::Event* e) { e->set_type("partners.told"); }),
       "invalid_argument", "unknown event type 'partners.told'"},
      {"UnknownFact",
       Event("e2", "SI-1", "partners.informed", "2026-12-29T10:00:00Z",
             {{"informed_on", "2026-12-29"}, {"informed_by", "Mrs Smith"}}),
       "invalid_argument", "unknown fact 'informed_by' for event type 'partners.informed'"},
      {"NumberForADate",
       Event("e2", "SI-1", "partners.informed", "2026-12-29T10:00:00Z",
             {{"informed_on", 20261229}}),
       "invalid_argument", "fact 'informed_on' must be a date, YYYY-MM-DD"},
      {"ImpossibleDate",
       Event("e2", "SI-1", "partners.informed", "2026-12-29T10:00:00Z",
             {{"informed_on", "2026-02-30"}}),
       "invalid_argument", "fact 'informed_on' must be a date, YYYY-MM-DD"},
      {"StringForABool",
       Event("e2", "SI-2", "incident.reported", "2026-12-24T10:15:00Z",
             test::Facts{{"became_aware_on", "2026-12-24"},
                         {"unborn", "yes"},
                         {"outcome", "died"},
                         {"abuse_or_neglect", "suspected"},
                         {"location", "in_area"}}),
       "invalid_argument", "fact 'unborn' must be true or false"},
      {"EnumValueNotAllowed",
       Event("e2", "SI-2", "incident.reported", "2026-12-24T10:15:00Z",
             test::Facts{{"became_aware_on", "2026-12-24"},
                         {"outcome", "recovered"},
                         {"abuse_or_neglect", "suspected"},
                         {"location", "in_area"}}),
       "invalid_argument", "fact 'outcome' must be one of died, seriously_harmed"},
      {"TriggerFactNotADate",
       Event("e2", "SI-2", "incident.reported", "2026-12-24T10:15:00Z",
             test::Facts{{"became_aware_on", 20261224},
                         {"outcome", "died"},
                         {"abuse_or_neglect", "suspected"},
                         {"location", "in_area"}}),
       "invalid_argument", "fact 'became_aware_on' must be a date, YYYY-MM-DD"},
      {"MissingRequiredFact", Event("e2", "SI-1", "partners.informed", "2026-12-29T10:00:00Z"),
       "invalid_argument",
       "missing required fact 'informed_on' for event type 'partners.informed'"},
      {"NoSuchCase",
       Event("e2", "SI-9", "partners.informed", "2026-12-29T10:00:00Z",
             {{"informed_on", "2026-12-29"}}),
       "not_found", "case 'SI-9' does not exist and 'partners.informed' does not start a case"},
      {"SecondStartingEvent", Incident("SI-1", "e2"), "already_exists",
       "case 'SI-1' already exists; 'incident.reported' only starts a case"},
      {"NotAcceptedInState",
       Event("e2", "SI-1", "lcspr.published", "2026-12-29T10:00:00Z",
             {{"published_on", "2026-12-29"}}),
       "failed_precondition", "event type 'lcspr.published' is not accepted in state 'screening'"},
      {"WrongPartnership",
       Event("e2", "SI-1", "partners.informed", "2026-12-29T10:00:00Z",
             {{"informed_on", "2026-12-29"}}, "derbyshire"),
       "invalid_argument", "case 'SI-1' belongs to partnership 'staffordshire', not 'derbyshire'"},
      {"AwarenessBeforeTheEdition",
       Event("e2", "SI-3", "incident.reported", "2026-12-24T10:15:00Z",
             IncidentFacts("2023-12-14", "2023-12-10")),
       "failed_precondition",
       "no edition of workflow 'serious_incident' was in force on the date in fact "
       "'became_aware_on'; the earliest loaded is WT2023 (in force from 2023-12-15)"},
      {"DeadlineBeyondTheCalendar",
       Event("e2", "SI-4", "incident.reported", "2026-12-29T10:00:00Z",
             IncidentFacts("2028-12-29", "2028-12-27")),
       "out_of_range",
       "deadline 'sin_notification' (5 working days after incident.reported.became_aware_on) falls "
       "outside the bank-holiday data, which covers 2018-01-01 to 2028-12-31 "
       "(workflows/calendars/england-and-wales.json)"},
  };
}

// Names the case in test output instead of dumping its bytes.
void PrintTo(const BadInput& bad, std::ostream* os) { *os << bad.name; }

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, IsRejectedWithoutChangingTheCase) {
  const BadInput& bad = GetParam();
  Engine engine(test::ShippedWorkflows(), test::Calendar());
  Simulator sim(engine);
  sim.Publish(Incident());
  ASSERT_EQ(sim.cases().count("SI-1"), 1u);
  const v1::CaseState before = sim.cases().at("SI-1");
  const std::size_t timers_before = sim.pending_timers();

  const auto effects = sim.Publish(bad.event);
  ASSERT_EQ(effects.size(), 1u) << ::testing::PrintToString(Describe(effects));
  ASSERT_TRUE(effects[0].has_rejected()) << Describe(effects[0]);
  const v1::Rejection& r = effects[0].rejected();
  EXPECT_EQ(r.code(), bad.code);
  EXPECT_EQ(r.reason(), bad.reason);
  for (const auto& [name, value] : bad.event.facts().fields()) {
    if (value.kind_case() == google::protobuf::Value::kBoolValue) continue;
    EXPECT_THAT(r.reason(), Not(HasSubstr(internal::ValueText(value))))
        << "the reason repeats fact '" << name << "'";
  }
  EXPECT_EQ(sim.cases().size(), 1u) << "a rejected event opened a case";
  EXPECT_TRUE(MessageDifferencer::Equals(sim.cases().at("SI-1"), before));
  EXPECT_EQ(sim.pending_timers(), timers_before);

  const auto next = sim.Publish(Informed("e-next"));
  EXPECT_THAT(Describe(next), ElementsAre("met partners_informed due 2027-01-05 on 2026-12-29"));
}

INSTANTIATE_TEST_SUITE_P(Engine, BadInputTest, ::testing::ValuesIn(BadInputs()),
                         [](const ::testing::TestParamInfo<BadInput>& info) {
                           return info.param.name;
                         });

TEST_F(SimulatorTest, IdsOfExactly128BytesAreAccepted) {
  const std::string id(kMaxIdBytes, 'c');
  const auto effects = sim_.Publish(Incident(id, std::string(kMaxIdBytes, 'e')));
  ASSERT_FALSE(effects.empty());
  EXPECT_FALSE(effects[0].has_rejected()) << Describe(effects[0]);
  EXPECT_EQ(sim_.cases().count(id), 1u);
}

}  // namespace
}  // namespace tandem::engine
