#include "daemon/engine/workflow.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "tests/unit/engine/test_util.h"

namespace tandem::engine {
namespace {

using test::Event;
using test::LineOf;
using test::Replace;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The smallest workflow that uses every kind of reference the checker resolves. Each error test
// mutates one line of it.
constexpr std::string_view kMini = R"yaml(name: mini
version: 1
title: A minimal workflow
edition:
  name: T1
  effective_from: "2020-01-01"
  trigger_fact: opened_on
parameters:
  - name: mode
    values: [a, b]
    default: a
    confidence: u
events:
  - type: thing.opened
    starts_case: true
    facts:
      - {name: opened_on, type: date, required: true}
      - {name: kind, type: enum, values: [x, y]}
      - {name: label, type: string}
  - type: thing.done
    facts:
      - {name: done_on, type: date, required: true}
states:
  - name: open
    start_deadlines: [finish]
  - name: done
    final: true
transitions:
  - on: thing.opened
    to: open
  - on: thing.done
    from: [open]
    when: {fact: {name: kind, equals: x}}
    to: done
    notify:
      - roles: [business_unit]
        subject: "Case {case_id} is done"
deadlines:
  - name: finish
    title: Finish it
    from: {facts: [opened_on]}
    offset: {working_days: 3}
    warnings:
      - {working_days_before: 1, notify: [la_dsp]}
    met_by:
      - {event: thing.done, date_fact: done_on}
    on_breach:
      notify: [la_dsp]
    source: test rule
    confidence: v
assessments:
  - name: is_x
    when: {parameter: {name: mode, equals: a}}
)yaml";

constexpr std::string_view kOrigin = "workflows/mini.yaml";

Status Load(std::string_view yaml) { return Workflow::FromYaml(yaml, kOrigin).status(); }

// Asserts that `yaml` is refused with kInvalidArgument, that the message starts with
// "<origin>:<line>: field '<field>'" and that it names the problem.
void ExpectLoadError(std::string_view yaml, int line, std::string_view field,
                     std::string_view problem) {
  const Status s = Load(yaml);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), StartsWith(std::string(kOrigin) + ":" + std::to_string(line) +
                                      ": field '" + std::string(field) + "'"));
  EXPECT_THAT(s.message(), HasSubstr(std::string(problem)));
}

TEST(Workflow, MinimalWorkflowLoads) {
  auto wf = Workflow::FromYaml(kMini, kOrigin);
  ASSERT_TRUE(wf.ok()) << wf.status().ToString();
  EXPECT_EQ((*wf)->name(), "mini");
  EXPECT_EQ((*wf)->version(), 1u);
  EXPECT_EQ((*wf)->origin(), kOrigin);
  EXPECT_EQ((*wf)->edition_label(), "T1 (in force from 2020-01-01)");
  EXPECT_EQ(calendar::FormatCivilDay((*wf)->effective_from()), "2020-01-01");
  EXPECT_EQ((*wf)->leap_day_birthday(), calendar::LeapDayBirthday::kMarch1);
  EXPECT_EQ((*wf)->starting_events(), std::vector<std::string>{"thing.opened"});
  EXPECT_EQ((*wf)->Parameter("mode"), "a");
  EXPECT_EQ((*wf)->Parameter("nope"), "");
}

TEST(Workflow, ShippedSeriousIncidentLoadsWithItsEdition) {
  const Workflow* wf = test::ShippedWorkflows().Find("serious_incident", 1);
  ASSERT_NE(wf, nullptr);
  EXPECT_EQ(wf->origin(), "workflows/serious_incident.yaml");
  EXPECT_EQ(wf->edition_label(), test::kEdition);
  EXPECT_EQ(wf->leap_day_birthday(), calendar::LeapDayBirthday::kMarch1);
  EXPECT_EQ(wf->starting_events(), std::vector<std::string>{"incident.reported"});
  EXPECT_EQ(wf->Parameter("rapid_review_counts_from"), "notification_submitted");
  EXPECT_EQ(wf->TransitionsOn("rapid_review.submitted").size(), 3u);
  EXPECT_TRUE(wf->TransitionsOn("no.such.event").empty());
  ASSERT_NE(wf->FindDeadline("sin_notification"), nullptr);
  EXPECT_EQ(wf->FindDeadline("sin_notification")->confidence(), v1::CONFIDENCE_V);
  EXPECT_EQ(wf->FindDeadline("nope"), nullptr);
  ASSERT_NE(wf->FindState("published"), nullptr);
  EXPECT_TRUE(wf->FindState("published")->final());
}

TEST(Workflow, EveryWorkflowHasTheBuiltInEventsAndWithdrawnState) {
  auto wf = Workflow::FromYaml(kMini, kOrigin);
  ASSERT_TRUE(wf.ok()) << wf.status().ToString();
  const v1::EventTypeDefinition* corrected = (*wf)->FindEvent("case.facts_corrected");
  ASSERT_NE(corrected, nullptr);
  EXPECT_TRUE(corrected->facts().empty());
  const v1::EventTypeDefinition* withdrawn = (*wf)->FindEvent("case.withdrawn");
  ASSERT_NE(withdrawn, nullptr);
  ASSERT_EQ(withdrawn->facts_size(), 1);
  EXPECT_EQ(withdrawn->facts(0).name(), "reason");
  EXPECT_EQ(withdrawn->facts(0).type(), v1::FACT_TYPE_STRING);
  EXPECT_TRUE(withdrawn->facts(0).required());
  const v1::StateDefinition* state = (*wf)->FindState("withdrawn");
  ASSERT_NE(state, nullptr);
  EXPECT_TRUE(state->final());
  EXPECT_EQ((*wf)->FindEvent("other.type"), nullptr);
}

TEST(Workflow, LeapDayRuleFebruary28IsRead) {
  auto wf =
      Workflow::FromYaml(Replace(std::string(kMini), "title: A minimal workflow\n",
                                 "title: A minimal workflow\nleap_day_birthday: february_28\n"),
                         kOrigin);
  ASSERT_TRUE(wf.ok()) << wf.status().ToString();
  EXPECT_EQ((*wf)->leap_day_birthday(), calendar::LeapDayBirthday::kFebruary28);
}

// ---------------------------------------------------------------------------------------------
// Schema errors (from the YAML reader).

TEST(Workflow, YamlSyntaxErrorNamesFileAndLine) {
  const std::string yaml = Replace(std::string(kMini), "    to: done\n", "    to: [done\n");
  const Status s = Load(yaml);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // A syntax error has no field to name: the prefix is the file and line only.
  EXPECT_THAT(s.message(), StartsWith(std::string(kOrigin) + ":"));
  EXPECT_THAT(s.message(), HasSubstr("YAML syntax"));
}

TEST(Workflow, UnknownFieldNamesTheLineOfItsKey) {
  const std::string yaml = Replace(std::string(kMini), "    title: Finish it\n",
                                   "    title: Finish it\n    frobnicate: 3\n");
  ExpectLoadError(yaml, LineOf(yaml, "frobnicate"), "frobnicate", "unknown field");
}

TEST(Workflow, UnknownTopLevelFieldListsTheKnownOnes) {
  const std::string yaml = "name: x\nversoin: 1\n";
  ExpectLoadError(yaml, 2, "versoin", "expected one of: name, version");
}

TEST(Workflow, WrongScalarTypeIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "version: 1\n", "version: one\n");
  ExpectLoadError(yaml, 2, "version", "expected a whole number");
}

TEST(Workflow, BoolFieldMustBeTrueOrFalse) {
  const std::string yaml = Replace(std::string(kMini), "    final: true\n", "    final: yes\n");
  ExpectLoadError(yaml, LineOf(yaml, "final: yes"), "final", "expected true or false");
}

TEST(Workflow, BadEnumValueListsTheAllowedOnes) {
  const std::string yaml =
      Replace(std::string(kMini), "    confidence: v\n", "    confidence: certain\n");
  ExpectLoadError(yaml, LineOf(yaml, "certain"), "confidence", "expected one of v, v1, r, u");
}

TEST(Workflow, TwoMembersOfOneOneofAreRefused) {
  const std::string yaml = Replace(std::string(kMini), "offset: {working_days: 3}",
                                   "offset: {working_days: 3, months: 1}");
  ExpectLoadError(yaml, LineOf(yaml, "months: 1"), "months",
                  "only one of 'working_days' and 'months' may be given");
}

TEST(Workflow, TwoTestsInOneConditionAreRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "when: {fact: {name: kind, equals: x}}",
              "when: {fact: {name: kind, equals: x}, parameter: {name: mode, equals: a}}");
  ExpectLoadError(yaml, LineOf(yaml, "parameter: {name: mode, equals: a}}"), "parameter",
                  "only one of 'fact' and 'parameter' may be given");
}

TEST(Workflow, DuplicateKeyIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    title: Finish it\n",
                                   "    title: Finish it\n    title: Again\n");
  ExpectLoadError(yaml, LineOf(yaml, "title: Again"), "title", "given twice");
}

TEST(Workflow, KeyWithoutValueIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    title: Finish it\n", "    title:\n");
  ExpectLoadError(yaml, LineOf(yaml, "    title:\n"), "title", "has no value");
}

TEST(Workflow, ScalarWhereAListIsExpectedIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    from: [open]\n", "    from: open\n");
  ExpectLoadError(yaml, LineOf(yaml, "from: open"), "from", "expected a list");
}

// ---------------------------------------------------------------------------------------------
// Reference errors (from the checker).

TEST(Workflow, UnknownStateInToIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    to: done\n", "    to: finished\n");
  ExpectLoadError(yaml, LineOf(yaml, "to: finished"), "to", "unknown state 'finished'");
}

TEST(Workflow, UnknownStateInFromIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "    from: [open]\n", "    from: [opened]\n");
  ExpectLoadError(yaml, LineOf(yaml, "from: [opened]"), "from", "unknown state 'opened'");
}

TEST(Workflow, UnknownStateInBreachMoveToIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "      notify: [la_dsp]\n    source",
                                   "      notify: [la_dsp]\n      move_to: limbo\n    source");
  ExpectLoadError(yaml, LineOf(yaml, "move_to: limbo"), "move_to", "unknown state 'limbo'");
}

TEST(Workflow, UnknownDeadlineInStartDeadlinesIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "start_deadlines: [finish]", "start_deadlines: [finnish]");
  ExpectLoadError(yaml, LineOf(yaml, "finnish"), "start_deadlines", "unknown deadline 'finnish'");
}

TEST(Workflow, UnknownDeadlineInTransitionIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    to: done\n",
                                   "    to: done\n    cancel_deadlines: [other]\n");
  ExpectLoadError(yaml, LineOf(yaml, "cancel_deadlines"), "cancel_deadlines",
                  "unknown deadline 'other'");
}

TEST(Workflow, UnknownEventInOnIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "  - on: thing.done\n", "  - on: thing.gone\n");
  ExpectLoadError(yaml, LineOf(yaml, "thing.gone"), "on", "unknown event type 'thing.gone'");
}

TEST(Workflow, UnknownEventInMetByIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "{event: thing.done, date_fact: done_on}", "{event: thing.gone}");
  ExpectLoadError(yaml, LineOf(yaml, "thing.gone"), "event", "unknown event type 'thing.gone'");
}

TEST(Workflow, MetByDateFactMustBeADateOfThatEvent) {
  const std::string yaml = Replace(std::string(kMini), "date_fact: done_on}", "date_fact: kind}");
  ExpectLoadError(yaml, LineOf(yaml, "date_fact: kind"), "date_fact",
                  "'thing.done' has no date fact 'kind'");
}

TEST(Workflow, UnknownFactInConditionIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "{name: kind, equals: x}", "{name: sort, equals: x}");
  ExpectLoadError(yaml, LineOf(yaml, "name: sort"), "name", "unknown fact 'sort'");
}

TEST(Workflow, UnknownQualifiedFactInConditionIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "{name: kind, equals: x}", "{name: thing.done.kind, equals: x}");
  ExpectLoadError(yaml, LineOf(yaml, "thing.done.kind"), "name", "unknown fact 'thing.done.kind'");
}

TEST(Workflow, NonDateFactAsAnchorIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "from: {facts: [opened_on]}", "from: {facts: [kind]}");
  ExpectLoadError(yaml, LineOf(yaml, "facts: [kind]"), "facts",
                  "fact 'thing.opened.kind' is not a date");
}

TEST(Workflow, NonDateFactInAgeConditionIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "{parameter: {name: mode, equals: a}}",
                                   "{age: {dob: label, on: [opened_on], below: 18}}");
  ExpectLoadError(yaml, LineOf(yaml, "dob: label"), "dob",
                  "fact 'thing.opened.label' is not a date");
}

TEST(Workflow, EnumConditionValueMustBeAValueOfTheFact) {
  const std::string yaml =
      Replace(std::string(kMini), "{name: kind, equals: x}", "{name: kind, equals: w}");
  ExpectLoadError(yaml, LineOf(yaml, "equals: w"), "fact",
                  "'w' is not a possible value of fact 'kind'");
}

TEST(Workflow, EnumConditionListValuesMustBeValuesOfTheFact) {
  const std::string yaml =
      Replace(std::string(kMini), "{name: kind, equals: x}", "{name: kind, in: [x, q]}");
  ExpectLoadError(yaml, LineOf(yaml, "in: [x, q]"), "fact",
                  "'q' is not a possible value of fact 'kind'");
}

TEST(Workflow, ConditionOnFactNeedsATest) {
  const std::string yaml = Replace(std::string(kMini), "{name: kind, equals: x}", "{name: kind}");
  ExpectLoadError(yaml, LineOf(yaml, "{name: kind}"), "fact", "needs equals, in or present");
}

TEST(Workflow, UnknownParameterInConditionIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "{parameter: {name: mode, equals: a}}",
                                   "{parameter: {name: style, equals: a}}");
  ExpectLoadError(yaml, LineOf(yaml, "name: style"), "name", "unknown parameter 'style'");
}

TEST(Workflow, ParameterConditionValueMustBeAValueOfTheParameter) {
  const std::string yaml = Replace(std::string(kMini), "{parameter: {name: mode, equals: a}}",
                                   "{parameter: {name: mode, equals: c}}");
  ExpectLoadError(yaml, LineOf(yaml, "equals: c"), "equals",
                  "'c' is not a value of parameter 'mode'");
}

TEST(Workflow, UnknownRoleIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "      - roles: [business_unit]\n",
                                   "      - roles: [social_worker]\n");
  ExpectLoadError(yaml, LineOf(yaml, "social_worker"), "roles", "unknown role 'social_worker'");
}

TEST(Workflow, UnknownRoleInWarningIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "{working_days_before: 1, notify: [la_dsp]}",
                                   "{working_days_before: 1, notify: [la_dsp, ofsted]}");
  ExpectLoadError(yaml, LineOf(yaml, "ofsted"), "notify", "unknown role 'ofsted'");
}

TEST(Workflow, UnknownTemplatePlaceholderIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "\"Case {case_id} is done\"",
                                   "\"Case {case_id} of {child_name} is done\"");
  ExpectLoadError(yaml, LineOf(yaml, "child_name"), "subject", "unknown placeholder {child_name}");
}

TEST(Workflow, UnclosedTemplatePlaceholderIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "\"Case {case_id} is done\"", "\"Case {case_id is done\"");
  ExpectLoadError(yaml, LineOf(yaml, "{case_id is"), "subject", "unclosed '{'");
}

TEST(Workflow, DeadlineWithoutSourceIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    source: test rule\n", "");
  // No line holds the missing key: the error points at the deadline.
  ExpectLoadError(yaml, LineOf(yaml, "  - name: finish"), "source",
                  "is required: every rule names its source");
}

TEST(Workflow, DeadlineWithoutConfidenceIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    confidence: v\n", "");
  ExpectLoadError(yaml, LineOf(yaml, "  - name: finish"), "confidence",
                  "is required (v, v1, r or u)");
}

TEST(Workflow, DeadlineWithoutOffsetAmountIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "offset: {working_days: 3}", "offset: {direction: before}");
  ExpectLoadError(yaml, LineOf(yaml, "offset:"), "offset",
                  "needs working_days, calendar_days or months");
}

TEST(Workflow, WarningOfZeroDaysIsRefused) {
  const std::string yaml =
      Replace(std::string(kMini), "{working_days_before: 1,", "{working_days_before: 0,");
  ExpectLoadError(yaml, LineOf(yaml, "working_days_before: 0"), "working_days_before",
                  "must be 1 or more");
}

TEST(Workflow, StartingEventWithoutTransitionIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "  - on: thing.opened\n    to: open\n", "");
  ExpectLoadError(yaml, LineOf(yaml, "starts_case: true"), "starts_case",
                  "no transition on 'thing.opened' opens the case");
}

TEST(Workflow, StartingTransitionMustNameTheFirstState) {
  const std::string yaml =
      Replace(std::string(kMini), "  - on: thing.opened\n    to: open\n", "  - on: thing.opened\n");
  ExpectLoadError(yaml, LineOf(yaml, "  - on: thing.opened"), "to",
                  "a starting event must name the first state");
}

TEST(Workflow, WorkflowWithoutStartingEventIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "    starts_case: true\n", "");
  ExpectLoadError(yaml, LineOf(yaml, "events:"), "events", "no event type has starts_case: true");
}

TEST(Workflow, StateNamedWithdrawnIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "  - name: done\n", "  - name: withdrawn\n");
  ExpectLoadError(yaml, LineOf(yaml, "name: withdrawn"), "name",
                  "'withdrawn' is the built-in state of a withdrawn case");
}

TEST(Workflow, BuiltInEventTypeMayNotBeDeclared) {
  const std::string yaml =
      Replace(std::string(kMini), "  - type: thing.done\n", "  - type: case.withdrawn\n");
  ExpectLoadError(yaml, LineOf(yaml, "type: case.withdrawn"), "type",
                  "is built in to every workflow");
}

TEST(Workflow, ParameterDefaultMustBeOneOfItsValues) {
  const std::string yaml = Replace(std::string(kMini), "    default: a\n", "    default: c\n");
  ExpectLoadError(yaml, LineOf(yaml, "default: c"), "default",
                  "must be one of the parameter's values");
}

TEST(Workflow, StateGivenTwiceIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "  - name: done\n", "  - name: open\n");
  ExpectLoadError(yaml, LineOf(yaml, "  - name: open\n    final"), "name", "'open' given twice");
}

TEST(Workflow, EnumFactNeedsValuesAndOnlyEnumsHaveThem) {
  const std::string no_values = Replace(
      std::string(kMini), "{name: kind, type: enum, values: [x, y]}", "{name: kind, type: enum}");
  ExpectLoadError(no_values, LineOf(no_values, "{name: kind, type: enum}"), "values",
                  "are required for an enum fact and only for one");
  const std::string stray_values = Replace(std::string(kMini), "{name: label, type: string}",
                                           "{name: label, type: string, values: [p]}");
  ExpectLoadError(stray_values, LineOf(stray_values, "values: [p]"), "values",
                  "are required for an enum fact and only for one");
}

TEST(Workflow, FactNameMayNotContainADot) {
  const std::string yaml =
      Replace(std::string(kMini), "{name: label, type: string}", "{name: the.label, type: string}");
  ExpectLoadError(yaml, LineOf(yaml, "the.label"), "name", "may not contain '.'");
}

TEST(Workflow, EditionNeedsAnEffectiveDate) {
  const std::string yaml = Replace(std::string(kMini), "effective_from: \"2020-01-01\"",
                                   "effective_from: \"2020-13-01\"");
  ExpectLoadError(yaml, LineOf(yaml, "effective_from"), "effective_from",
                  "is required, as YYYY-MM-DD");
}

TEST(Workflow, VersionZeroIsRefused) {
  const std::string yaml = Replace(std::string(kMini), "version: 1\n", "version: 0\n");
  ExpectLoadError(yaml, 2, "version", "is required and must be 1 or more");
}

// ---------------------------------------------------------------------------------------------
// WorkflowSet.

std::shared_ptr<const Workflow> MustLoad(std::string_view yaml, std::string_view origin = kOrigin) {
  auto wf = Workflow::FromYaml(yaml, origin);
  EXPECT_TRUE(wf.ok()) << wf.status().ToString();
  return wf.ok() ? *wf : nullptr;
}

// The same workflow as edition 2, in force from 2024-01-01.
std::string SecondEdition() {
  return Replace(Replace(std::string(kMini), "version: 1\n", "version: 2\n"),
                 "  name: T1\n  effective_from: \"2020-01-01\"",
                 "  name: T2\n  effective_from: \"2024-01-01\"");
}

TEST(WorkflowSet, SameNameAndVersionTwiceIsAlreadyExists) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini, "a.yaml")).ok());
  const Status s = set.Add(MustLoad(kMini, "b.yaml"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "b.yaml: workflow 'mini' version 1 is already loaded from a.yaml");
}

TEST(WorkflowSet, EventTypeOfAnotherWorkflowIsAlreadyExists) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini, "a.yaml")).ok());
  const std::string other = Replace(std::string(kMini), "name: mini\n", "name: other\n");
  const Status s = set.Add(MustLoad(other, "b.yaml"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "b.yaml: event type 'thing.opened' already belongs to workflow 'mini'");
  EXPECT_EQ(set.workflows().size(), 1u);
}

TEST(WorkflowSet, NewCaseGetsTheEditionInForceOnItsTriggerFact) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(SecondEdition(), "b.yaml")).ok());
  ASSERT_TRUE(set.Add(MustLoad(kMini, "a.yaml")).ok());
  auto old_case = set.ForNewCase(
      Event("e1", "c1", "thing.opened", "2024-06-01T10:00:00Z", {{"opened_on", "2023-12-31"}}));
  ASSERT_TRUE(old_case.ok()) << old_case.status().ToString();
  EXPECT_EQ((*old_case)->version(), 1u);
  auto new_case = set.ForNewCase(
      Event("e2", "c2", "thing.opened", "2023-06-01T10:00:00Z", {{"opened_on", "2024-01-01"}}));
  ASSERT_TRUE(new_case.ok()) << new_case.status().ToString();
  EXPECT_EQ((*new_case)->version(), 2u);
}

TEST(WorkflowSet, WithoutTriggerFactTheLondonDayOfOccurredAtDecides) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini)).ok());
  ASSERT_TRUE(set.Add(MustLoad(SecondEdition(), "b.yaml")).ok());
  // 2023-12-31T23:30:00Z is still 31 December in London (GMT).
  auto before = set.ForNewCase(Event("e1", "c1", "thing.opened", "2023-12-31T23:30:00Z"));
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ((*before)->version(), 1u);
  auto after = set.ForNewCase(Event("e2", "c2", "thing.opened", "2024-01-01T00:00:00Z"));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((*after)->version(), 2u);
}

TEST(WorkflowSet, NoEditionInForceIsFailedPrecondition) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini)).ok());
  auto found = set.ForNewCase(
      Event("e1", "c1", "thing.opened", "2024-06-01T10:00:00Z", {{"opened_on", "2019-12-31"}}));
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(found.status().message(),
            "no edition of workflow 'mini' was in force on the date in fact 'opened_on'; the "
            "earliest loaded is T1 (in force from 2020-01-01)");
  // The trigger date is a fact value: the reason does not repeat it.
  EXPECT_THAT(found.status().message(), ::testing::Not(HasSubstr("2019-12-31")));
}

TEST(WorkflowSet, NoEditionInForceOnTheDayItOccurredNamesThatDay) {
  WorkflowSet set;
  const std::string no_trigger = Replace(std::string(kMini), "  trigger_fact: opened_on\n", "");
  ASSERT_TRUE(set.Add(MustLoad(no_trigger)).ok());
  auto found = set.ForNewCase(Event("e1", "c1", "thing.opened", "2019-12-31T23:30:00Z"));
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(found.status().message(),
            "no edition of workflow 'mini' was in force on 2019-12-31 (occurred_at); the earliest "
            "loaded is T1 (in force from 2020-01-01)");
}

TEST(WorkflowSet, TriggerFactThatIsNotADateIsInvalidArgument) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini)).ok());
  auto found = set.ForNewCase(
      Event("e1", "c1", "thing.opened", "2024-06-01T10:00:00Z", {{"opened_on", 20240601}}));
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(found.status().message(), "fact 'opened_on' must be a date, YYYY-MM-DD");
}

TEST(WorkflowSet, NonStartingEventTypeIsNotFound) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini)).ok());
  auto found = set.ForNewCase(Event("e1", "c1", "thing.done", "2024-06-01T10:00:00Z"));
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(found.status().message(), "event type 'thing.done' does not start a case");
}

TEST(WorkflowSet, KnowsDeclaredAndBuiltInEventTypes) {
  WorkflowSet set;
  ASSERT_TRUE(set.Add(MustLoad(kMini)).ok());
  EXPECT_TRUE(set.KnowsEventType("thing.opened"));
  EXPECT_TRUE(set.KnowsEventType("thing.done"));
  EXPECT_TRUE(set.KnowsEventType("case.facts_corrected"));
  EXPECT_TRUE(set.KnowsEventType("case.withdrawn"));
  EXPECT_FALSE(set.KnowsEventType("thing.lost"));
  EXPECT_NE(set.Find("mini", 1), nullptr);
  EXPECT_EQ(set.Find("mini", 2), nullptr);
}

TEST(Workflow, KnownRolesAreTheNineOfTheContract) {
  for (const char* role : {"la_dsp", "icb_dsp", "police_dsp", "la_lsp", "icb_lsp", "police_lsp",
                           "partnership_chair", "business_unit", "owner_agency"}) {
    EXPECT_TRUE(IsKnownRole(role)) << role;
  }
  EXPECT_FALSE(IsKnownRole("ofsted"));
  EXPECT_FALSE(IsKnownRole(""));
}

}  // namespace
}  // namespace tandem::engine
