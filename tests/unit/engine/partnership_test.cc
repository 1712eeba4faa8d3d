// A partnership's own settings for a workflow (WorkflowSet::AddPartnership): timescales, the
// state a breach moves to, parameter values and role routing, visible in every explanation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "daemon/engine/engine.h"
#include "daemon/engine/workflow.h"
#include "tests/unit/engine/test_util.h"

namespace tandem::engine {
namespace {

using test::At;
using test::CaseDriver;
using test::Describe;
using test::Event;
using test::kStages;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Staffordshire gives jobs 5 working days, moves an overdue job to `paused` rather than
// `overdue`, and sends the lead partner's notices to the business unit.
constexpr std::string_view kStaffordshire = R"yaml(partnership: staffordshire
workflows:
  - workflow: stages
    source: Staffordshire job procedure 2026
    deadlines:
      - deadline: job_due
        offset: {working_days: 5}
        move_to: paused
    roles:
      - {role: la_lsp, to: [business_unit]}
)yaml";

std::unique_ptr<WorkflowSet> StagesWith(std::string_view partnership_yaml) {
  auto set = test::SetOf(kStages);
  const Status added = set->AddPartnership(partnership_yaml, "partnerships/staffordshire.yaml");
  EXPECT_TRUE(added.ok()) << added.ToString();
  return set;
}

v1::Event Opened(std::string partnership) {
  return Event("j1", "J-1", "job.opened", "2027-03-01T09:00:00Z", {{"opened_on", "2027-03-01"}},
               std::move(partnership));
}

TEST(Partnerships, ThePartnershipsCasesRunItsSettingsAndSayWhy) {
  const auto set = StagesWith(kStaffordshire);
  CaseDriver driver(*set);
  const auto effects = driver.MustApply(Opened("staffordshire"));
  ASSERT_EQ(effects.size(), 2u);
  // Mon 1 March 2027 + 5 working days: Mon 8 March.
  EXPECT_EQ(Describe(effects[1]), "deadline job_due due 2027-03-08");
  const v1::Explanation& x = effects[1].deadline().explanation();
  EXPECT_THAT(x.overrides(),
              ElementsAre("offset 5 working days after (partnership staffordshire, "
                          "partnerships/staffordshire.yaml:7; the workflow says 2 working days "
                          "after)",
                          "a breach moves the case to paused (partnership staffordshire, "
                          "partnerships/staffordshire.yaml:8; the workflow says overdue)",
                          "notifications to la_lsp go to business_unit (partnership "
                          "staffordshire, partnerships/staffordshire.yaml:10)"));
  EXPECT_EQ(x.rule(), "5 working days after job.opened.opened_on");

  // The breach moves the case to paused; the escalation goes to the business unit.
  auto breach = driver.Fire(1, At("2027-03-09T00:00:00Z"));
  ASSERT_TRUE(breach.ok()) << breach.status().ToString();
  EXPECT_THAT(Describe(breach->effects), testing::Contains("state open -> paused"));
}

TEST(Partnerships, OtherPartnershipsKeepTheWorkflowAsWritten) {
  const auto set = StagesWith(kStaffordshire);
  CaseDriver driver(*set);
  const auto effects = driver.MustApply(Opened("derbyshire"));
  ASSERT_EQ(effects.size(), 2u);
  EXPECT_EQ(Describe(effects[1]), "deadline job_due due 2027-03-03");
  EXPECT_TRUE(effects[1].deadline().explanation().overrides().empty());
}

TEST(Partnerships, RoleRoutingReachesEscalations) {
  const auto set =
      StagesWith(test::Replace(std::string(kStaffordshire), "        move_to: paused\n", ""));
  CaseDriver driver(*set);
  driver.MustApply(Opened("staffordshire"));
  ASSERT_TRUE(driver.Fire(1, At("2027-03-09T00:00:00Z")).ok());
  // Timer 2: the escalation 2 working days after the breach, to la_lsp in the workflow.
  auto escalation = driver.Fire(2, At("2027-03-11T00:00:00Z"));
  ASSERT_TRUE(escalation.ok()) << escalation.status().ToString();
  EXPECT_THAT(Describe(escalation->effects),
              ElementsAre("notify escalated [business_unit] job_due"));
}

TEST(Partnerships, AFileNamingWhatTheWorkflowLacksIsRefusedWithFileLineAndField) {
  struct Case {
    std::string from;
    std::string to;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"move_to: paused", "move_to: parked",
       "partnerships/x.yaml:8: field 'move_to': unknown state 'parked'"},
      {"{role: la_lsp, to: [business_unit]}", "{role: la_lsp, to: [scrutineer]}",
       "partnerships/x.yaml:10: field 'to': unknown role 'scrutineer'"},
      {"{role: la_lsp,", "{role: lead,",
       "partnerships/x.yaml:10: field 'role': unknown role 'lead'"},
      {"deadline: job_due", "deadline: job_done",
       "partnerships/x.yaml:6: field 'deadline': unknown deadline 'job_done'"},
      {"workflow: stages", "workflow: stagez",
       "partnerships/x.yaml:3: field 'workflow': unknown workflow 'stagez'"},
      {"partnership: staffordshire\n", "",
       "partnerships/x.yaml:1: field 'partnership': is required"},
      {"move_to: paused", "move_to: paused\n        colour: red",
       "partnerships/x.yaml:9: field 'colour': unknown field"},
  };
  for (const auto& c : cases) {
    auto set = test::SetOf(kStages);
    const Status st = set->AddPartnership(test::Replace(std::string(kStaffordshire), c.from, c.to),
                                          "partnerships/x.yaml");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(st.message(), HasSubstr(c.message));
  }
}

TEST(Partnerships, AnUnknownParameterIsRefused) {
  auto set = test::SetOf(test::kStages);
  const Status unknown = set->AddPartnership(R"yaml(partnership: p
workflows:
  - workflow: stages
    parameters:
      - {name: mode, value: strict}
)yaml",
                                             "p.yaml");
  EXPECT_THAT(unknown.message(), HasSubstr("p.yaml:5: field 'name': unknown parameter 'mode'"));
}

// A deadline whose urgent variant is shorter: a partnership sets its own urgent timescale.
constexpr std::string_view kUrgent = R"yaml(name: urgent
version: 1
edition: {name: U1, effective_from: "2020-01-01"}
events:
  - type: ask.raised
    starts_case: true
    facts:
      - {name: raised_on, type: date, required: true}
      - {name: urgent, type: bool}
states:
  - name: open
transitions:
  - on: ask.raised
    to: open
    start_deadlines: [answer]
deadlines:
  - name: answer
    from: {facts: [raised_on]}
    offset: {working_days: 5}
    variants:
      - when: {fact: {name: urgent, equals: "true"}}
        offset: {working_days: 2}
        note: urgent
    source: test
    confidence: u
)yaml";

TEST(Partnerships, APartnershipSetsItsOwnTimescaleForAVariant) {
  auto set = test::SetOf(kUrgent);
  ASSERT_TRUE(set->AddPartnership(R"yaml(partnership: p
workflows:
  - workflow: urgent
    deadlines:
      - deadline: answer
        variant_offsets:
          - {variant: 0, offset: {working_days: 1}}
)yaml",
                                  "p.yaml")
                  .ok());
  CaseDriver driver(*set);
  // Mon 1 March 2027, urgent: 1 working day for partnership p (2 in the workflow).
  const auto effects =
      driver.MustApply(Event("a1", "A-1", "ask.raised", "2027-03-01T09:00:00Z",
                             {{"raised_on", "2027-03-01"}, {"urgent", true}}, "p"));
  ASSERT_EQ(effects.size(), 2u);
  EXPECT_EQ(Describe(effects[1]), "deadline answer due 2027-03-02");
  EXPECT_THAT(effects[1].deadline().explanation().overrides(),
              ElementsAre("variant 0 (urgent) offset 1 working days after (partnership p, "
                          "p.yaml:7; the workflow says 2 working days after)"));
  const Status bad = test::SetOf(kUrgent)->AddPartnership(R"yaml(partnership: p
workflows:
  - workflow: urgent
    deadlines:
      - deadline: answer
        variant_offsets:
          - {variant: 1, offset: {working_days: 1}}
)yaml",
                                                          "p.yaml");
  EXPECT_THAT(
      bad.message(),
      HasSubstr("p.yaml:7: field 'variant': deadline 'answer' has no variant 1 (it has 1)"));
}

TEST(Partnerships, TheSameWorkflowTwiceForOnePartnershipIsRefused) {
  auto set = test::SetOf(kStages);
  ASSERT_TRUE(set->AddPartnership(kStaffordshire, "a.yaml").ok());
  const Status again = set->AddPartnership(kStaffordshire, "b.yaml");
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace tandem::engine
