// A workflow opening a case of another (StartCaseDefinition): loading and cross-checking the
// definition, the case_started effect and the links, and the simulator applying the new case's
// starting event at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon/engine/engine.h"
#include "daemon/engine/simulator.h"
#include "daemon/engine/workflow.h"
#include "tests/unit/engine/test_util.h"

namespace tandem::engine {
namespace {

using test::At;
using test::Describe;
using test::Event;
using test::Facts;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A death report that opens a review case when abuse is suspected and the person was a child.
constexpr std::string_view kDeaths = R"yaml(name: deaths
version: 1
edition: {name: D1, effective_from: "2020-01-01"}
events:
  - type: death.logged
    starts_case: true
    facts:
      - {name: aware_on, type: date, required: true}
      - {name: dob, type: date, required: true}
      - {name: died_on, type: date, required: true}
      - {name: abuse, type: bool, required: true}
      - {name: place, type: string}
states:
  - name: logged
transitions:
  - on: death.logged
    to: logged
    start_cases:
      - workflow: reviews
        event: review.opened
        case_id_suffix: "-rev"
        when:
          all:
            - fact: {name: abuse, equals: "true"}
            - age: {dob: dob, on: [died_on], below: 18}
        facts:
          - {name: opened_on, from: aware_on}
          - {name: place, from: place}
          - {name: urgent, text: "true"}
          - {name: kind, text: death}
        source: test rule
        confidence: v1
)yaml";

constexpr std::string_view kReviews = R"yaml(name: reviews
version: 1
edition: {name: R1, effective_from: "2020-01-01"}
events:
  - type: review.opened
    starts_case: true
    facts:
      - {name: opened_on, type: date, required: true}
      - {name: place, type: string}
      - {name: urgent, type: bool}
      - {name: kind, type: enum, values: [death, harm]}
  - type: review.noted
states:
  - name: open
transitions:
  - on: review.opened
    to: open
  - on: review.noted
)yaml";

std::unique_ptr<WorkflowSet> SetOf(const std::vector<std::string>& yamls) {
  auto set = std::make_unique<WorkflowSet>();
  int n = 0;
  for (const auto& yaml : yamls) {
    auto wf = Workflow::FromYaml(yaml, "w" + std::to_string(++n) + ".yaml");
    EXPECT_TRUE(wf.ok()) << wf.status().ToString();
    if (!wf.ok()) return set;
    EXPECT_TRUE(set->Add(std::move(wf).value()).ok());
  }
  return set;
}

Facts DeathFacts(bool abuse, std::string_view dob = "2010-06-01") {
  return {{"aware_on", "2026-03-03"},
          {"dob", dob},
          {"died_on", "2026-03-01"},
          {"abuse", abuse},
          {"place", "home"}};
}

v1::Event Death(bool abuse, std::string_view dob = "2010-06-01") {
  return Event("d1", "D-1", "death.logged", "2026-03-03T10:00:00Z", DeathFacts(abuse, dob));
}

TEST(StartCases, TheSetChecksTheOtherWorkflow) {
  EXPECT_TRUE(SetOf({std::string(kDeaths), std::string(kReviews)})->CheckStartCases().ok());

  const auto missing = SetOf({std::string(kDeaths)});
  const Status no_workflow = missing->CheckStartCases();
  EXPECT_EQ(no_workflow.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(no_workflow.message(), HasSubstr("w1.yaml:"));
  EXPECT_THAT(no_workflow.message(), HasSubstr(":19: field 'start_cases'"));
  EXPECT_THAT(no_workflow.message(), HasSubstr("workflow 'reviews', which is not loaded"));

  const auto not_starting =
      SetOf({test::Replace(std::string(kDeaths), "event: review.opened", "event: review.noted"),
             std::string(kReviews)});
  EXPECT_THAT(not_starting->CheckStartCases().message(),
              HasSubstr("'review.noted' is not an event that starts a case of workflow 'reviews'"));

  const auto unknown_fact = SetOf({test::Replace(std::string(kDeaths), "{name: place, from: place}",
                                                 "{name: venue, from: place}"),
                                   std::string(kReviews)});
  const Status fact = unknown_fact->CheckStartCases();
  EXPECT_THAT(fact.message(), HasSubstr(":28: field 'name'"));
  EXPECT_THAT(fact.message(), HasSubstr("'review.opened' has no fact 'venue'"));

  const auto bad_text = SetOf(
      {test::Replace(std::string(kDeaths), "text: death", "text: murder"), std::string(kReviews)});
  EXPECT_THAT(bad_text->CheckStartCases().message(),
              HasSubstr("'murder' is not a value of fact 'kind' (enum)"));
}

TEST(StartCases, TheFileIsCheckedOnItsOwn) {
  struct Case {
    std::string from;
    std::string to;
    std::string field;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"workflow: reviews", "workflow: deaths", ":19: field 'workflow'",
       "may not open cases of its own"},
      {"        case_id_suffix: \"-rev\"\n", "", ":19: field 'case_id_suffix'", "is required"},
      {"        source: test rule\n", "", ":19: field 'source'", "is required"},
      {"{name: place, from: place}", "{name: place, from: venue}", ":28: field 'from'",
       "unknown fact 'venue'"},
      {"{name: place, from: place}", "{name: place}", ":28: field 'facts'", "needs 'from'"},
      {"{name: kind, text: death}", "{name: urgent, text: death}", ":30: field 'name'",
       "'urgent' given twice"},
  };
  for (const auto& c : cases) {
    const std::string yaml = test::Replace(std::string(kDeaths), c.from, c.to);
    auto wf = Workflow::FromYaml(yaml, "deaths.yaml");
    ASSERT_FALSE(wf.ok()) << c.field;
    EXPECT_THAT(wf.status().message(), HasSubstr(c.field)) << wf.status().ToString();
    EXPECT_THAT(wf.status().message(), HasSubstr(c.message)) << wf.status().ToString();
    EXPECT_THAT(wf.status().message(), HasSubstr("deaths.yaml:")) << wf.status().ToString();
  }
}

TEST(StartCases, ATransitionWhoseConditionHoldsOpensTheCaseAndLinksIt) {
  const auto set = SetOf({std::string(kDeaths), std::string(kReviews)});
  const Engine engine(*set, test::Calendar());
  auto outcome = engine.Apply(nullptr, Death(true), At("2026-03-03T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("state -> logged", "started reviews case D-1-rev with review.opened"));
  const v1::CaseStarted& started = outcome->effects[1].case_started();
  const v1::Event& e = started.event();
  EXPECT_EQ(e.event_id(), "d1-rev");
  EXPECT_EQ(e.case_id(), "D-1-rev");
  EXPECT_EQ(e.partnership(), test::kPartnership);
  EXPECT_EQ(e.type(), "review.opened");
  EXPECT_EQ(test::Show(e.occurred_at()), "2026-03-03T10:00:00Z");
  EXPECT_EQ(e.source(), "tandem:deaths");
  EXPECT_EQ(e.actor(), "la");
  EXPECT_EQ(e.opened_by_case(), "D-1");
  const auto& facts = e.facts().fields();
  ASSERT_EQ(facts.size(), 4u);
  EXPECT_EQ(facts.at("opened_on").string_value(), "2026-03-03");
  EXPECT_EQ(facts.at("place").string_value(), "home");
  EXPECT_TRUE(facts.at("urgent").bool_value());  // typed as the other workflow declares it
  EXPECT_EQ(facts.at("kind").string_value(), "death");
  ASSERT_EQ(outcome->state.linked_cases_size(), 1);
  EXPECT_EQ(outcome->state.linked_cases(0).case_id(), "D-1-rev");
  EXPECT_EQ(outcome->state.linked_cases(0).workflow(), "reviews");
  EXPECT_EQ(outcome->state.linked_cases(0).relation(), v1::LinkedCase::RELATION_OPENED);

  // The new case's starting event opens it, linked back.
  auto child = engine.Apply(nullptr, e, At("2026-03-03T10:00:00Z"));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ASSERT_EQ(child->state.linked_cases_size(), 1);
  EXPECT_EQ(child->state.linked_cases(0).case_id(), "D-1");
  EXPECT_EQ(child->state.linked_cases(0).relation(), v1::LinkedCase::RELATION_OPENED_BY);
}

TEST(StartCases, NoCaseIsOpenedWhenTheConditionDoesNotHold) {
  const auto set = SetOf({std::string(kDeaths), std::string(kReviews)});
  const Engine engine(*set, test::Calendar());
  // No abuse suspected; then abuse suspected but an adult on the day of death.
  for (const auto& event : {Death(false), Death(true, "2000-01-01")}) {
    auto outcome = engine.Apply(nullptr, event, At("2026-03-03T10:00:00Z"));
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    EXPECT_THAT(Describe(outcome->effects), ElementsAre("state -> logged"));
    EXPECT_EQ(outcome->state.linked_cases_size(), 0);
  }
}

TEST(StartCases, OpenedByCaseIsOnlyForTheEventThatOpensACase) {
  const auto set = SetOf({std::string(kDeaths), std::string(kReviews)});
  const Engine engine(*set, test::Calendar());
  v1::Event opened =
      Event("r1", "R-1", "review.opened", "2026-03-03T10:00:00Z", {{"opened_on", "2026-03-03"}});
  auto review = engine.Apply(nullptr, opened, At("2026-03-03T10:00:00Z"));
  ASSERT_TRUE(review.ok()) << review.status().ToString();
  v1::Event noted = Event("r2", "R-1", "review.noted", "2026-03-04T10:00:00Z");
  noted.set_opened_by_case("D-9");
  auto refused = engine.Apply(&review->state, noted, At("2026-03-04T10:00:00Z"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "opened_by_case is set only on the event that opens a case");
}

TEST(StartCases, TheSimulatorOpensTheCaseAtOnce) {
  const auto set = SetOf({std::string(kDeaths), std::string(kReviews)});
  const Engine engine(*set, test::Calendar());
  Simulator sim(engine);
  EXPECT_THAT(Describe(sim.Publish(Death(true))),
              ElementsAre("state -> logged", "started reviews case D-1-rev with review.opened",
                          "state -> open"));
  ASSERT_EQ(sim.cases().count("D-1-rev"), 1u);
  EXPECT_EQ(sim.cases().at("D-1-rev").linked_cases(0).case_id(), "D-1");
  // Publishers may not claim that another case opened theirs.
  v1::Event forged =
      Event("x1", "R-9", "review.opened", "2026-03-05T10:00:00Z", {{"opened_on", "2026-03-05"}});
  forged.set_opened_by_case("D-1");
  const auto refused = sim.Publish(forged);
  ASSERT_EQ(refused.size(), 1);
  EXPECT_EQ(Describe(refused[0]),
            "rejected invalid_argument: opened_by_case is set by tandem only");
  EXPECT_EQ(sim.cases().count("R-9"), 0u);
}

TEST(StartCases, TheSimulatorRefusesTheSameCaseOpenedTwice) {
  const auto set = SetOf({std::string(kDeaths), std::string(kReviews)});
  const Engine engine(*set, test::Calendar());
  Simulator sim(engine);
  sim.Publish(Event("r0", "D-2-rev", "review.opened", "2026-03-01T10:00:00Z",
                    {{"opened_on", "2026-03-01"}}));
  const auto effects =
      sim.Publish(Event("d2", "D-2", "death.logged", "2026-03-03T10:00:00Z", DeathFacts(true)));
  ASSERT_EQ(effects.size(), 3);
  EXPECT_EQ(Describe(effects[1]), "started reviews case D-2-rev with review.opened");
  EXPECT_THAT(Describe(effects[2]), HasSubstr("rejected already_exists"));
  EXPECT_EQ(effects[2].rejected().event_id(), "d2-rev");
}

TEST(StartCases, ACycleOfWorkflowsOpeningOneAnotherIsCut) {
  // reviews opens a deaths case, which opens a reviews case, which...
  std::string reviews =
      test::Replace(std::string(kReviews), "  - on: review.opened\n    to: open\n",
                    R"yaml(  - on: review.opened
    to: open
    start_cases:
      - workflow: deaths
        event: death.logged
        case_id_suffix: "-d"
        facts:
          - {name: aware_on, from: opened_on}
          - {name: dob, text: "2015-01-01"}
          - {name: died_on, from: opened_on}
          - {name: abuse, text: "true"}
        source: test rule
        confidence: v1
)yaml");
  const auto set = SetOf({std::string(kDeaths), reviews});
  ASSERT_TRUE(set->CheckStartCases().ok()) << set->CheckStartCases().ToString();
  const Engine engine(*set, test::Calendar());
  Simulator sim(engine);
  const auto effects = sim.Publish(Death(true));
  std::vector<std::string> opened;
  for (const auto& e : effects) {
    if (e.has_case_started()) opened.push_back(e.case_started().case_id());
  }
  EXPECT_THAT(opened, ElementsAre("D-1-rev", "D-1-rev-d", "D-1-rev-d-rev", "D-1-rev-d-rev-d",
                                  "D-1-rev-d-rev-d-rev"));
  ASSERT_FALSE(effects.empty());
  EXPECT_THAT(Describe(effects[effects.size() - 1]),
              HasSubstr("rejected failed_precondition: more than 4 cases in a row"));
  EXPECT_EQ(sim.cases().size(), 5u);
}

}  // namespace
}  // namespace tandem::engine
