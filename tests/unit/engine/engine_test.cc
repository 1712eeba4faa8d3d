#include "daemon/engine/engine.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/engine/test_util.h"

namespace tandem::engine {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using test::At;
using test::CaseDriver;
using test::Describe;
using test::Event;
using test::Facts;
using test::Show;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kCase[] = "SI-1";

// The facts of the incident every serious_incident test starts from: the local authority
// became aware on Christmas Eve 2026, so the first count steps over Christmas and New Year.
Facts IncidentFacts() {
  return {{"became_aware_on", "2026-12-24"}, {"incident_on", "2026-12-22"},
          {"child_dob", "2012-05-03"},       {"outcome", "seriously_harmed"},
          {"abuse_or_neglect", "suspected"}, {"location", "in_area"}};
}

// Returns `base` with each of `changes` replacing (or adding) the fact of that name.
Facts With(Facts base, const Facts& changes) {
  for (const auto& [name, value] : changes) {
    bool replaced = false;
    for (auto& [n, v] : base) {
      if (n == name) {
        v = value;
        replaced = true;
      }
    }
    if (!replaced) base.emplace_back(name, value);
  }
  return base;
}

// Returns `base` without the fact `name`.
Facts Without(Facts base, std::string_view name) {
  std::erase_if(base, [&](const auto& f) { return f.first == name; });
  return base;
}

const v1::DeadlineDefinition& ShippedDeadline(std::string_view name) {
  const Workflow* wf = test::ShippedWorkflows().Find("serious_incident", 1);
  TANDEM_CHECK(wf != nullptr && wf->FindDeadline(name) != nullptr);
  return *wf->FindDeadline(name);
}

// Drives one serious_incident case, SI-1, through the shipped workflow.
class EngineTest : public ::testing::Test {
 protected:
  std::vector<v1::Effect> Open(const Facts& facts = IncidentFacts(),
                               std::string_view at = "2026-12-24T10:15:00Z") {
    return driver_.MustApply(Event("e1", kCase, "incident.reported", at, facts));
  }
  std::vector<v1::Effect> Inform(std::string_view on = "2026-12-29") {
    return driver_.MustApply(Event("e-inform", kCase, "partners.informed",
                                   std::string(on) + "T09:00:00Z", {{"informed_on", on}}));
  }
  std::vector<v1::Effect> Submit(std::string_view on = "2027-01-04",
                                 std::string_view at = "2027-01-04T16:40:00Z") {
    return driver_.MustApply(
        Event("e2", kCase, "notification.submitted", at, {{"submitted_on", on}}));
  }
  std::vector<v1::Effect> Review(std::string_view decision,
                                 std::string_view submitted_on = "2027-01-22",
                                 std::string_view decided_on = "2027-01-21") {
    Facts facts = {{"submitted_on", submitted_on}, {"decision", decision}};
    if (!decided_on.empty()) facts.emplace_back("decided_on", decided_on);
    return driver_.MustApply(Event("e3", kCase, "rapid_review.submitted",
                                   std::string(submitted_on) + "T12:00:00Z", facts));
  }
  std::vector<v1::Effect> Panel(std::string_view decision, std::string_view on = "2027-02-10") {
    return driver_.MustApply(Event("e4", kCase, "panel.review_decision",
                                   std::string(on) + "T15:00:00Z",
                                   {{"decided_on", on}, {"decision", decision}}));
  }
  std::vector<v1::Effect> Schedule(std::string_view event_id, std::string_view publication_on,
                                   std::string_view at = "2027-06-01T10:00:00Z") {
    return driver_.MustApply(Event(std::string(event_id), kCase, "lcspr.publication_scheduled", at,
                                   {{"publication_on", publication_on}}));
  }
  std::vector<v1::Effect> Defer(std::string_view event_id,
                                std::string_view at = "2027-06-10T10:00:00Z") {
    return driver_.MustApply(Event(std::string(event_id), kCase, "lcspr.publication_deferred", at,
                                   {{"reason", "criminal_proceedings"}}));
  }
  // Opens, notifies on time and starts an LCSPR decided on 2027-01-21.
  void ToLcspr() {
    Open();
    Submit();
    Review("lcspr");
  }
  Result<Outcome> Correct(const Facts& facts, std::string_view at = "2026-12-24T12:00:00Z",
                          std::string event_id = "e-fix") {
    return driver_.Apply(Event(std::move(event_id), kCase, "case.facts_corrected", at, facts));
  }
  const v1::DeadlineInstance& DeadlineOf(std::string_view name) {
    const v1::DeadlineInstance* d = test::Deadline(driver_.state(), name);
    TANDEM_CHECK(d != nullptr);
    return *d;
  }

  CaseDriver driver_;
};

// ---------------------------------------------------------------------------------------------
// Opening a case.

TEST_F(EngineTest, IncidentOpensCaseInScreeningWithTwoDeadlines) {
  auto outcome = driver_.Apply(
      Event("e1", kCase, "incident.reported", "2026-12-24T10:15:00Z", IncidentFacts()));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("state -> screening", "deadline sin_notification due 2027-01-05",
                          "deadline partners_informed due 2027-01-05",
                          "assessment meets_sin_criteria = true"));
  for (const auto& e : outcome->effects) {
    EXPECT_EQ(e.case_id(), kCase);
    EXPECT_EQ(e.cause(), "e1");
    EXPECT_EQ(Show(e.at()), "2026-12-24T10:15:00Z");
  }
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#1 sin_notification warning[0] at 2026-12-31T00:00:00Z",
                          "#2 sin_notification breach[0] at 2027-01-06T00:00:00Z",
                          "#3 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
  EXPECT_TRUE((outcome->timers_cancelled).empty());
  const v1::CaseState& s = outcome->state;
  EXPECT_EQ(s.case_id(), kCase);
  EXPECT_EQ(s.partnership(), "staffordshire");
  EXPECT_EQ(s.workflow(), "serious_incident");
  EXPECT_EQ(s.workflow_version(), 1u);
  EXPECT_EQ(s.edition(), test::kEdition);
  EXPECT_EQ(s.state(), "screening");
  EXPECT_EQ(s.state_entered_on(), "2026-12-24");
  EXPECT_FALSE(s.closed());
  EXPECT_EQ(Show(s.opened_at()), "2026-12-24T10:15:00Z");
  EXPECT_EQ(Show(s.updated_at()), "2026-12-24T10:15:00Z");
  EXPECT_EQ(s.events_applied(), 1u);
  EXPECT_EQ(s.next_timer_id(), 3u);
  ASSERT_EQ(s.facts_size(), 1);
  EXPECT_EQ(s.facts(0).event_type(), "incident.reported");
  EXPECT_EQ(s.facts(0).event_id(), "e1");
  EXPECT_EQ(s.facts(0).facts().fields().at("became_aware_on").string_value(), "2026-12-24");
  ASSERT_EQ(s.deadlines_size(), 2);
  const v1::DeadlineInstance& d = s.deadlines(0);
  EXPECT_EQ(d.name(), "sin_notification");
  EXPECT_EQ(d.status(), v1::DEADLINE_STATUS_OPEN);
  EXPECT_EQ(d.due_on(), "2027-01-05");
  EXPECT_EQ(Show(d.due_at()), "2027-01-06T00:00:00Z");
  EXPECT_EQ(d.started_in_state(), "screening");
  EXPECT_EQ(d.started_by(), "e1");
  EXPECT_EQ(d.timers_size(), 2);
  ASSERT_EQ(s.assessments_size(), 1);
  EXPECT_EQ(s.assessments(0).name(), "meets_sin_criteria");
  EXPECT_TRUE(s.assessments(0).value());
}

TEST_F(EngineTest, SinNotificationIsFiveWorkingDaysAfterAwarenessAndExplainsEverySkippedDay) {
  const auto effects = Open();
  ASSERT_GE(effects.size(), 2u);
  const v1::DeadlineSet& set = effects[1].deadline();
  EXPECT_EQ(set.name(), "sin_notification");
  EXPECT_EQ(set.due_on(), "2027-01-05");
  EXPECT_EQ(Show(set.due_at()), "2027-01-06T00:00:00Z");
  EXPECT_FALSE(set.recomputed());
  const v1::Explanation& x = set.explanation();
  EXPECT_EQ(x.rule(), "5 working days after incident.reported.became_aware_on");
  EXPECT_EQ(x.anchor(), "incident.reported.became_aware_on");
  EXPECT_EQ(x.anchor_on(), "2026-12-24");
  std::vector<std::string> skipped;
  for (const auto& s : SkippedDays(x)) {
    skipped.push_back(calendar::FormatCivilDay(s.day).append(" ").append(s.reason));
  }
  EXPECT_THAT(skipped,
              ElementsAre("2026-12-25 Christmas Day", "2026-12-26 Saturday", "2026-12-27 Sunday",
                          "2026-12-28 Boxing Day", "2027-01-01 New Year’s Day",
                          "2027-01-02 Saturday", "2027-01-03 Sunday"));
  EXPECT_FALSE(x.clamped());
  EXPECT_EQ(x.source(), ShippedDeadline("sin_notification").source());
  EXPECT_THAT(x.source(), StartsWith("CA 2004 s.16C(1) (duty); WT2023 ch.5"));
  EXPECT_EQ(x.confidence(), v1::CONFIDENCE_V);
  EXPECT_EQ(x.edition(), test::kEdition);
  EXPECT_EQ(x.variant(), "");
  EXPECT_EQ(x.calendar(), "workflows/calendars/england-and-wales.json");
  // The case keeps the same explanation as the effect announced.
  EXPECT_TRUE(MessageDifferencer::Equals(DeadlineOf("sin_notification").explanation(), x));
}

TEST_F(EngineTest, CaseOpenedAtTheEditionsFirstDayIsAccepted) {
  Open(With(IncidentFacts(), {{"became_aware_on", "2023-12-15"}, {"incident_on", "2023-12-14"}}),
       "2023-12-15T10:00:00Z");
  EXPECT_EQ(driver_.state().edition(), test::kEdition);
  EXPECT_EQ(DeadlineOf("sin_notification").due_on(), "2023-12-22");
}

// ---------------------------------------------------------------------------------------------
// Every transition of serious_incident.

TEST_F(EngineTest, NotificationMeetsSinNotificationAndStartsRapidReview) {
  Open();
  auto outcome = driver_.Apply(Event("e2", kCase, "notification.submitted", "2027-01-04T16:40:00Z",
                                     {{"submitted_on", "2027-01-04"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("met sin_notification due 2027-01-05 on 2027-01-04",
                          "state screening -> notified", "deadline rapid_review due 2027-01-25"));
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#4 rapid_review warning[0] at 2027-01-18T00:00:00Z",
                          "#5 rapid_review breach[0] at 2027-01-26T00:00:00Z"));
  EXPECT_THAT(Describe(outcome->timers_cancelled),
              ElementsAre("#1 sin_notification warning[0] at 2026-12-31T00:00:00Z",
                          "#2 sin_notification breach[0] at 2027-01-06T00:00:00Z"));
  const v1::DeadlineInstance& sin = DeadlineOf("sin_notification");
  EXPECT_EQ(sin.status(), v1::DEADLINE_STATUS_MET);
  EXPECT_EQ(sin.met_on(), "2027-01-04");
  EXPECT_EQ(sin.met_by(), "e2");
  EXPECT_TRUE((sin.timers()).empty());
  const v1::Explanation& x = DeadlineOf("rapid_review").explanation();
  EXPECT_EQ(x.rule(), "15 working days after notification.submitted.submitted_on");
  EXPECT_EQ(x.anchor(), "notification.submitted.submitted_on");
  EXPECT_EQ(x.anchor_on(), "2027-01-04");
  EXPECT_EQ(x.variant(), "");
  EXPECT_EQ(DeadlineOf("rapid_review").started_in_state(), "notified");
  EXPECT_EQ(driver_.state().state_entered_on(), "2027-01-04");
  EXPECT_EQ(driver_.state().events_applied(), 2u);
}

TEST_F(EngineTest, NotificationNotRequiredClosesCaseAndCancelsOpenDeadlines) {
  Open();
  auto outcome =
      driver_.Apply(Event("e2", kCase, "notification.not_required", "2026-12-29T11:00:00Z",
                          {{"decided_on", "2026-12-29"}, {"rationale", "Over 18"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(
      Describe(outcome->effects),
      ElementsAre(
          "state screening -> closed_not_notified (final)",
          "cancelled sin_notification due 2027-01-05: case closed in state closed_not_notified",
          "cancelled partners_informed due 2027-01-05: case closed in state closed_not_notified"));
  EXPECT_TRUE((outcome->timers_set).empty());
  EXPECT_EQ(outcome->timers_cancelled.size(), 3u);
  EXPECT_TRUE(driver_.state().closed());
  EXPECT_EQ(driver_.state().state(), "closed_not_notified");
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_EQ(DeadlineOf("partners_informed").status(), v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_TRUE((PendingTimers(driver_.state())).empty());
}

TEST_F(EngineTest, PartnersInformedMeetsItsDeadlineWithoutChangingState) {
  Open();
  auto outcome = driver_.Apply(Event("e2", kCase, "partners.informed", "2026-12-29T09:00:00Z",
                                     {{"informed_on", "2026-12-29"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("met partners_informed due 2027-01-05 on 2026-12-29"));
  EXPECT_THAT(Describe(outcome->timers_cancelled),
              ElementsAre("#3 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
  EXPECT_EQ(driver_.state().state(), "screening");
  EXPECT_EQ(driver_.state().state_entered_on(), "2026-12-24");
}

TEST_F(EngineTest, PartnersInformedIsAcceptedInAnyOpenState) {
  Open();
  Submit();
  Review("lcspr");
  const auto effects = Inform("2027-01-25");
  EXPECT_THAT(Describe(effects),
              ElementsAre("met partners_informed due 2027-01-05 on 2027-01-25 (late)"));
  EXPECT_EQ(driver_.state().state(), "lcspr");
  EXPECT_EQ(DeadlineOf("partners_informed").status(), v1::DEADLINE_STATUS_MET_LATE);
  // A second report meets nothing but is still accepted.
  EXPECT_TRUE((Inform("2027-01-26")).empty());
}

TEST_F(EngineTest, RapidReviewDecidingLcsprStartsPublicationDeadline) {
  Open();
  Inform();
  Submit();
  auto outcome = driver_.Apply(
      Event("e3", kCase, "rapid_review.submitted", "2027-01-22T12:00:00Z",
            {{"submitted_on", "2027-01-22"}, {"decision", "lcspr"}, {"decided_on", "2027-01-21"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("met rapid_review due 2027-01-25 on 2027-01-22",
                          "state notified -> lcspr", "deadline lcspr_publication due 2027-07-21"));
  // British Summer Time: the warning day starts, and the due day ends, at 23:00 UTC.
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#6 lcspr_publication warning[0] at 2027-06-22T23:00:00Z",
                          "#7 lcspr_publication breach[0] at 2027-07-21T23:00:00Z"));
  const v1::Explanation& x = DeadlineOf("lcspr_publication").explanation();
  EXPECT_EQ(x.rule(), "6 calendar months after rapid_review.submitted.decided_on");
  EXPECT_EQ(x.anchor(), "rapid_review.submitted.decided_on");
  EXPECT_EQ(x.anchor_on(), "2027-01-21");
  EXPECT_TRUE(SkippedDays(x).empty());
  EXPECT_FALSE(x.clamped());
  EXPECT_EQ(x.confidence(), v1::CONFIDENCE_R);
}

TEST_F(EngineTest, RapidReviewDecidingNoLcsprClosesTheCase) {
  Open();
  Submit();
  const auto effects = Review("no_lcspr");
  EXPECT_THAT(Describe(effects),
              ElementsAre("met rapid_review due 2027-01-25 on 2027-01-22",
                          "state notified -> closed_no_lcspr (final)",
                          "cancelled partners_informed due 2027-01-05: case closed in state "
                          "closed_no_lcspr"));
  EXPECT_TRUE(driver_.state().closed());
  EXPECT_TRUE((PendingTimers(driver_.state())).empty());
}

TEST_F(EngineTest, RapidReviewRecommendingNationalReviewAwaitsThePanel) {
  Open();
  Inform();
  Submit();
  const auto effects = Review("national_review_recommended");
  EXPECT_THAT(Describe(effects), ElementsAre("met rapid_review due 2027-01-25 on 2027-01-22",
                                             "state notified -> awaiting_panel"));
  EXPECT_FALSE(driver_.state().closed());
  EXPECT_TRUE((PendingTimers(driver_.state())).empty());
}

TEST_F(EngineTest, PanelSendingTheCaseBackForLcsprCountsFromThePanelsDecision) {
  Open();
  Inform();
  Submit();
  Review("national_review_recommended");
  const auto effects = Panel("lcspr", "2027-02-10");
  EXPECT_THAT(Describe(effects), ElementsAre("state awaiting_panel -> lcspr",
                                             "deadline lcspr_publication due 2027-08-10"));
  const v1::Explanation& x = DeadlineOf("lcspr_publication").explanation();
  EXPECT_EQ(x.anchor(), "panel.review_decision.decided_on");
  EXPECT_EQ(x.anchor_on(), "2027-02-10");
  EXPECT_THAT(driver_.Timers(),
              ElementsAre("#6 lcspr_publication warning[0] at 2027-07-12T23:00:00Z",
                          "#7 lcspr_publication breach[0] at 2027-08-10T23:00:00Z"));
}

TEST_F(EngineTest, PanelLeadingANationalReviewClosesTheCase) {
  Open();
  Inform();
  Submit();
  Review("national_review_recommended");
  EXPECT_THAT(Describe(Panel("national_review")),
              ElementsAre("state awaiting_panel -> closed_national_review (final)"));
  EXPECT_TRUE(driver_.state().closed());
}

TEST_F(EngineTest, PanelDecidingNoFurtherReviewClosesTheCase) {
  Open();
  Inform();
  Submit();
  Review("national_review_recommended");
  EXPECT_THAT(Describe(Panel("no_further_review")),
              ElementsAre("state awaiting_panel -> closed_no_lcspr (final)"));
  EXPECT_TRUE(driver_.state().closed());
}

TEST_F(EngineTest, ReviewerAppointedIsRecordedWithoutEffect) {
  ToLcspr();
  const auto effects =
      driver_.MustApply(Event("e5", kCase, "lcspr.reviewer_appointed", "2027-02-15T09:00:00Z",
                              {{"appointed_on", "2027-02-15"}}));
  EXPECT_TRUE((effects).empty());
  EXPECT_EQ(driver_.state().state(), "lcspr");
  EXPECT_EQ(driver_.state().facts(driver_.state().facts_size() - 1).event_type(),
            "lcspr.reviewer_appointed");
}

TEST_F(EngineTest, PublicationNoticeIsSevenWorkingDaysBeforePublicationDayNotCounted) {
  ToLcspr();
  auto outcome = driver_.Apply(Event("e5", kCase, "lcspr.publication_scheduled",
                                     "2027-06-01T10:00:00Z", {{"publication_on", "2027-07-14"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  // Already in lcspr: no state change.
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("deadline publication_notice due 2027-07-05"));
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#8 publication_notice warning[0] at 2027-06-27T23:00:00Z",
                          "#9 publication_notice breach[0] at 2027-07-05T23:00:00Z"));
  const v1::DeadlineInstance& d = DeadlineOf("publication_notice");
  EXPECT_EQ(Show(d.due_at()), "2027-07-05T23:00:00Z");
  const v1::Explanation& x = d.explanation();
  EXPECT_EQ(
      x.rule(),
      "7 working days before lcspr.publication_scheduled.publication_on (that day not counted)");
  EXPECT_EQ(x.anchor(), "lcspr.publication_scheduled.publication_on");
  EXPECT_EQ(x.anchor_on(), "2027-07-14");
  std::vector<std::string> skipped;
  for (const auto& s : SkippedDays(x)) {
    skipped.push_back(calendar::FormatCivilDay(s.day).append(" ").append(s.reason));
  }
  // Skipped days are listed in date order, whichever way the count ran.
  EXPECT_THAT(skipped, ElementsAre("2027-07-10 Saturday", "2027-07-11 Sunday"));
}

TEST_F(EngineTest, RescheduledPublicationRestartsTheNotice) {
  ToLcspr();
  Schedule("e5", "2027-07-14");
  const auto effects = Schedule("e6", "2027-07-21", "2027-06-02T10:00:00Z");
  EXPECT_THAT(Describe(effects),
              ElementsAre("cancelled publication_notice due 2027-07-05: restarted by e6",
                          "deadline publication_notice due 2027-07-12"));
  ASSERT_EQ(driver_.state().deadlines_size(), 6);
  EXPECT_EQ(driver_.state().deadlines(4).status(), v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_EQ(driver_.state().deadlines(5).status(), v1::DEADLINE_STATUS_OPEN);
}

TEST_F(EngineTest, ReportSentMeetsPublicationNotice) {
  ToLcspr();
  Schedule("e5", "2027-07-14");
  const auto effects = driver_.MustApply(
      Event("e6", kCase, "lcspr.report_sent", "2027-07-02T10:00:00Z", {{"sent_on", "2027-07-02"}}));
  EXPECT_THAT(Describe(effects),
              ElementsAre("met publication_notice due 2027-07-05 on 2027-07-02"));
  EXPECT_EQ(driver_.state().state(), "lcspr");
}

TEST_F(EngineTest, ReportSentAfterTheNoticeDayIsLate) {
  ToLcspr();
  Schedule("e5", "2027-07-14");
  const auto effects = driver_.MustApply(
      Event("e6", kCase, "lcspr.report_sent", "2027-07-06T10:00:00Z", {{"sent_on", "2027-07-06"}}));
  EXPECT_THAT(Describe(effects),
              ElementsAre("met publication_notice due 2027-07-05 on 2027-07-06 (late)"));
  EXPECT_EQ(DeadlineOf("publication_notice").status(), v1::DEADLINE_STATUS_MET_LATE);
}

TEST_F(EngineTest, DeferralNotifiesBusinessUnitAndChair) {
  ToLcspr();
  auto outcome = driver_.Apply(Event("e5", kCase, "lcspr.publication_deferred",
                                     "2027-06-10T10:00:00Z", {{"reason", "inquest"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("state lcspr -> publication_deferred",
                          "notify transition [business_unit, partnership_chair]"));
  const v1::Notification& n = outcome->effects[1].notification();
  EXPECT_EQ(n.notification_id(), "SI-1:e5:1");
  EXPECT_EQ(n.kind(), v1::NOTIFICATION_KIND_TRANSITION);
  EXPECT_EQ(n.subject(),
            "Publication deferred for case SI-1: tell the Panel and the Secretary of State why");
  EXPECT_EQ(n.body(),
            "Partnership staffordshire, workflow serious_incident, case SI-1 is now in state "
            "publication_deferred.");
  EXPECT_EQ(n.workflow(), "serious_incident");
  EXPECT_EQ(n.partnership(), "staffordshire");
  EXPECT_EQ(n.deadline(), "");
  EXPECT_EQ(n.due_on(), "");
  // A second deferral stays put and notifies again.
  EXPECT_THAT(Describe(Defer("e6", "2027-06-20T10:00:00Z")),
              ElementsAre("notify transition [business_unit, partnership_chair]"));
}

TEST_F(EngineTest, SchedulingPublicationEndsADeferral) {
  ToLcspr();
  Defer("e5");
  const auto effects = Schedule("e6", "2027-07-14", "2027-06-15T10:00:00Z");
  EXPECT_THAT(Describe(effects), ElementsAre("state publication_deferred -> lcspr",
                                             "deadline publication_notice due 2027-07-05"));
  EXPECT_EQ(driver_.state().state_entered_on(), "2027-06-15");
}

TEST_F(EngineTest, ReportSentIsAcceptedWhileDeferred) {
  ToLcspr();
  Schedule("e5", "2027-07-14");
  Defer("e6", "2027-06-20T10:00:00Z");
  const auto effects = driver_.MustApply(
      Event("e7", kCase, "lcspr.report_sent", "2027-07-01T10:00:00Z", {{"sent_on", "2027-07-01"}}));
  EXPECT_THAT(Describe(effects),
              ElementsAre("met publication_notice due 2027-07-05 on 2027-07-01"));
  EXPECT_EQ(driver_.state().state(), "publication_deferred");
}

TEST_F(EngineTest, BreachOfPublicationWhileDeferredIsSuppressedAndNotifiesNoOne) {
  ToLcspr();
  Defer("e5");
  auto outcome = driver_.FireTimer("lcspr_publication", v1::TIMER_KIND_BREACH);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("breach lcspr_publication due 2027-07-21 (suppressed)"));
  EXPECT_EQ(DeadlineOf("lcspr_publication").status(), v1::DEADLINE_STATUS_BREACHED);
  EXPECT_EQ(driver_.state().state(), "publication_deferred");
}

TEST_F(EngineTest, BreachOfPublicationOutsideDeferralNotifiesEveryone) {
  ToLcspr();
  auto outcome = driver_.FireTimer("lcspr_publication", v1::TIMER_KIND_BREACH);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("breach lcspr_publication due 2027-07-21",
                          "notify breached [la_dsp, icb_dsp, police_dsp, partnership_chair, "
                          "business_unit] lcspr_publication"));
}

TEST_F(EngineTest, PublishedMeetsPublicationAndClosesTheCase) {
  ToLcspr();
  Inform();
  Schedule("e5", "2027-07-14");
  const auto effects =
      driver_.MustApply(Event("e6", kCase, "lcspr.published", "2027-07-14T09:00:00Z",
                              {{"published_on", "2027-07-14"}, {"in_full", true}}));
  EXPECT_THAT(
      Describe(effects),
      ElementsAre("met lcspr_publication due 2027-07-21 on 2027-07-14",
                  "state lcspr -> published (final)",
                  "cancelled publication_notice due 2027-07-05: case closed in state published"));
  EXPECT_TRUE(driver_.state().closed());
  EXPECT_TRUE((PendingTimers(driver_.state())).empty());
}

TEST_F(EngineTest, PublishedAfterASuppressedBreachIsMetLate) {
  ToLcspr();
  Inform();
  Defer("e5");
  ASSERT_TRUE(driver_.FireTimer("lcspr_publication", v1::TIMER_KIND_BREACH).ok());
  const auto effects = driver_.MustApply(Event(
      "e6", kCase, "lcspr.published", "2027-08-02T09:00:00Z", {{"published_on", "2027-08-02"}}));
  EXPECT_THAT(Describe(effects),
              ElementsAre("met lcspr_publication due 2027-07-21 on 2027-08-02 (late)",
                          "state publication_deferred -> published (final)"));
  EXPECT_EQ(DeadlineOf("lcspr_publication").status(), v1::DEADLINE_STATUS_MET_LATE);
}

TEST_F(EngineTest, EventFromTheWrongStateIsFailedPrecondition) {
  Open();
  auto outcome = driver_.Apply(Event("e2", kCase, "rapid_review.submitted", "2027-01-22T12:00:00Z",
                                     {{"submitted_on", "2027-01-22"}, {"decision", "lcspr"}}));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(outcome.status().message(),
            "event type 'rapid_review.submitted' is not accepted in state 'screening'");
  EXPECT_EQ(driver_.state().events_applied(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Deadline arithmetic.

TEST_F(EngineTest, MonthsClampToTheEndOfAShorterMonth) {
  Open(With(IncidentFacts(), {{"became_aware_on", "2026-08-03"}, {"incident_on", "2026-08-01"}}),
       "2026-08-03T10:00:00Z");
  Submit("2026-08-07", "2026-08-07T10:00:00Z");
  const auto effects = Review("lcspr", "2026-09-01", "2026-08-31");
  ASSERT_EQ(effects.size(), 3u);
  const v1::DeadlineSet& set = effects[2].deadline();
  EXPECT_EQ(set.due_on(), "2027-02-28");
  EXPECT_EQ(Show(set.due_at()), "2027-03-01T00:00:00Z");
  EXPECT_TRUE(set.explanation().clamped());
  EXPECT_EQ(set.explanation().rule(),
            "6 calendar months after rapid_review.submitted.decided_on, clamped to the end of the "
            "month");
  EXPECT_EQ(set.explanation().anchor_on(), "2026-08-31");
}

TEST_F(EngineTest, PublicationCountsFromSubmissionWhenNoDecisionDayIsGiven) {
  Open();
  Submit();
  const auto effects = Review("lcspr", "2027-01-22", "");
  ASSERT_EQ(effects.size(), 3u);
  EXPECT_EQ(Describe(effects[2]), "deadline lcspr_publication due 2027-07-22");
  EXPECT_EQ(effects[2].deadline().explanation().anchor(), "rapid_review.submitted.submitted_on");
  EXPECT_EQ(effects[2].deadline().explanation().anchor_on(), "2027-01-22");
}

TEST(Engine, ParameterVariantCountsRapidReviewFromAwareness) {
  const auto set = test::SetOf(test::Replace(test::ShippedText(), "default: notification_submitted",
                                             "default: became_aware"),
                               "workflows/serious_incident.yaml");
  CaseDriver driver(*set);
  driver.MustApply(
      Event("e1", kCase, "incident.reported", "2026-12-24T10:15:00Z", IncidentFacts()));
  const auto effects =
      driver.MustApply(Event("e2", kCase, "notification.submitted", "2027-01-04T16:40:00Z",
                             {{"submitted_on", "2027-01-04"}}));
  ASSERT_EQ(effects.size(), 3u);
  EXPECT_EQ(Describe(effects[2]), "deadline rapid_review due 2027-01-19");
  const v1::Explanation& x = effects[2].deadline().explanation();
  EXPECT_EQ(x.rule(), "15 working days after incident.reported.became_aware_on");
  EXPECT_EQ(x.anchor(), "incident.reported.became_aware_on");
  EXPECT_EQ(x.anchor_on(), "2026-12-24");
  EXPECT_EQ(x.variant(),
            "counted from awareness (parameter rapid_review_counts_from = became_aware)");
  EXPECT_THAT(driver.Timers(), ElementsAre("#3 partners_informed breach[0] at 2027-01-06T00:00:00Z",
                                           "#4 rapid_review warning[0] at 2027-01-12T00:00:00Z",
                                           "#5 rapid_review breach[0] at 2027-01-20T00:00:00Z"));
}

// ---------------------------------------------------------------------------------------------
// Timers.

TEST_F(EngineTest, WarningFiresAtTheStartOfTheLondonDayWithAStableNotificationId) {
  Open();
  auto outcome = driver_.Fire(1, At("2026-12-31T00:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("warning sin_notification due 2027-01-05, 2 wd before",
                          "notify warning [la_dsp, business_unit] sin_notification"));
  for (const auto& e : outcome->effects) {
    EXPECT_EQ(e.cause(), "timer:1");
    EXPECT_EQ(Show(e.at()), "2026-12-31T00:00:00Z");
  }
  const v1::Notification& n = outcome->effects[1].notification();
  EXPECT_EQ(n.notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ(n.kind(), v1::NOTIFICATION_KIND_DEADLINE_WARNING);
  EXPECT_EQ(n.deadline(), "sin_notification");
  EXPECT_EQ(n.due_on(), "2027-01-05");
  EXPECT_EQ(n.subject(),
            "Due 2027-01-05: Notify the Child Safeguarding Practice Review Panel of the serious "
            "incident (case SI-1)");
  EXPECT_EQ(n.body(),
            "Partnership staffordshire, workflow serious_incident, case SI-1: deadline "
            "sin_notification (Notify the Child Safeguarding Practice Review Panel of the serious "
            "incident) is due by the end of 2027-01-05. Rules: WT2023 (in force from 2023-12-15).");
  EXPECT_TRUE((outcome->timers_set).empty());
  EXPECT_TRUE((outcome->timers_cancelled).empty());
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_OPEN);
  EXPECT_THAT(driver_.Timers(),
              ElementsAre("#2 sin_notification breach[0] at 2027-01-06T00:00:00Z",
                          "#3 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
}

TEST_F(EngineTest, WarningFiredAfterItsTimeIsLate) {
  Open();
  auto outcome = driver_.Fire(1, At("2026-12-31T09:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(Describe(outcome->effects[0]),
            "warning sin_notification due 2027-01-05, 2 wd before (late)");
}

TEST_F(EngineTest, BreachAtDueAtMarksBreachedAndNotifiesBreachRoles) {
  Open();
  ASSERT_TRUE(driver_.Fire(1, At("2026-12-31T00:00:00Z")).ok());
  auto outcome = driver_.Fire(2, At("2027-01-06T00:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("breach sin_notification due 2027-01-05",
                          "notify breached [la_dsp, la_lsp, partnership_chair, business_unit] "
                          "sin_notification"));
  const v1::Notification& n = outcome->effects[1].notification();
  EXPECT_EQ(n.notification_id(), "SI-1:timer:2:1");
  EXPECT_EQ(n.kind(), v1::NOTIFICATION_KIND_DEADLINE_BREACHED);
  EXPECT_EQ(n.subject(),
            "Overdue since the end of 2027-01-05: Notify the Child Safeguarding Practice Review "
            "Panel of the serious incident (case SI-1)");
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_BREACHED);
  EXPECT_TRUE((outcome->timers_set).empty());
  EXPECT_TRUE((outcome->timers_cancelled).empty());
  EXPECT_EQ(Show(driver_.state().updated_at()), "2027-01-06T00:00:00Z");
  EXPECT_EQ(driver_.state().events_applied(), 1u);
}

TEST_F(EngineTest, BreachFiredAfterDueAtIsLate) {
  Open();
  auto outcome = driver_.Fire(2, At("2027-01-06T08:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(Describe(outcome->effects[0]), "breach sin_notification due 2027-01-05 (late)");
}

TEST_F(EngineTest, FiringAnUnknownOrFiredTimerIsNotFound) {
  Open();
  auto unknown = driver_.Fire(99, At("2027-01-06T00:00:00Z"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "case 'SI-1' has no pending timer 99");
  ASSERT_TRUE(driver_.Fire(1, At("2026-12-31T00:00:00Z")).ok());
  auto again = driver_.Fire(1, At("2026-12-31T00:00:00Z"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kNotFound);
}

TEST_F(EngineTest, FiringForAWorkflowVersionNotLoadedIsFailedPrecondition) {
  Open();
  v1::CaseState state = driver_.state();
  state.set_workflow_version(7);
  auto outcome = driver_.engine().Fire(state, 1, At("2026-12-31T00:00:00Z"));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(outcome.status().message(),
            "case 'SI-1' runs workflow 'serious_incident' version 7, which is not loaded");
}

TEST_F(EngineTest, WarningWhoseDayAndDeadlineHavePassedIsNotScheduled) {
  auto outcome = driver_.Apply(
      Event("e1", kCase, "incident.reported", "2026-12-24T10:15:00Z", IncidentFacts()),
      At("2027-01-10T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#1 sin_notification breach[0] at 2027-01-06T00:00:00Z",
                          "#2 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
  auto fired = driver_.Fire(1, At("2027-01-10T10:00:00Z"));
  ASSERT_TRUE(fired.ok()) << fired.status().ToString();
  EXPECT_EQ(Describe(fired->effects[0]), "breach sin_notification due 2027-01-05 (late)");
}

TEST_F(EngineTest, WarningWhoseDayHasPassedBeforeTheDeadlineStillFiresLate) {
  auto outcome = driver_.Apply(
      Event("e1", kCase, "incident.reported", "2026-12-24T10:15:00Z", IncidentFacts()),
      At("2027-01-04T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(Describe(outcome->timers_set[0]),
            "#1 sin_notification warning[0] at 2026-12-31T00:00:00Z");
  auto fired = driver_.Fire(1, At("2027-01-04T10:00:00Z"));
  ASSERT_TRUE(fired.ok()) << fired.status().ToString();
  EXPECT_EQ(Describe(fired->effects[0]),
            "warning sin_notification due 2027-01-05, 2 wd before (late)");
}

// ---------------------------------------------------------------------------------------------
// Late events.

TEST_F(EngineTest, NotificationAfterABreachIsMetLate) {
  Open();
  ASSERT_TRUE(driver_.Fire(2, At("2027-01-06T00:00:00Z")).ok());
  const auto effects = Submit("2027-01-07", "2027-01-07T10:00:00Z");
  ASSERT_FALSE(effects.empty());
  EXPECT_EQ(Describe(effects[0]), "met sin_notification due 2027-01-05 on 2027-01-07 (late)");
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_MET_LATE);
  EXPECT_EQ(DeadlineOf("sin_notification").met_on(), "2027-01-07");
}

TEST_F(EngineTest, BackDatedNotificationAfterABreachIsNotLate) {
  Open();
  ASSERT_TRUE(driver_.Fire(2, At("2027-01-06T00:00:00Z")).ok());
  const auto effects = Submit("2027-01-05", "2027-01-07T10:00:00Z");
  ASSERT_FALSE(effects.empty());
  EXPECT_EQ(Describe(effects[0]), "met sin_notification due 2027-01-05 on 2027-01-05");
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_MET);
}

// ---------------------------------------------------------------------------------------------
// Assessment: meets_sin_criteria.

class MeetsSinCriteriaTest : public ::testing::Test {
 protected:
  std::optional<bool> Assess(const Facts& facts) {
    CaseDriver driver;
    driver.MustApply(Event("e1", kCase, "incident.reported", "2026-12-24T10:15:00Z", facts));
    return driver.has_case() ? test::Assessment(driver.state(), "meets_sin_criteria")
                             : std::nullopt;
  }
};

TEST_F(MeetsSinCriteriaTest, SuspectedHarmToAChildInTheAreaMeetsThem) {
  EXPECT_EQ(Assess(IncidentFacts()), true);
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"abuse_or_neglect", "known"}, {"outcome", "died"}})),
            true);
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"location", "outside_england"}})), true);
}

TEST_F(MeetsSinCriteriaTest, AbuseNotSuspectedDoesNotMeetThem) {
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"abuse_or_neglect", "not_suspected"}})), false);
}

TEST_F(MeetsSinCriteriaTest, IncidentElsewhereInEnglandDoesNotMeetThem) {
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"location", "elsewhere_in_england"}})), false);
}

TEST_F(MeetsSinCriteriaTest, EighteenOnTheIncidentDayIsNoLongerAChild) {
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"child_dob", "2008-12-22"}})), false);
  EXPECT_EQ(Assess(With(IncidentFacts(), {{"child_dob", "2008-12-23"}})), true);
}

TEST_F(MeetsSinCriteriaTest, UnbornChildWithoutDateOfBirthMeetsThem) {
  EXPECT_EQ(Assess(With(Without(IncidentFacts(), "child_dob"), {{"unborn", true}})), true);
  EXPECT_EQ(Assess(Without(IncidentFacts(), "child_dob")), false);
  EXPECT_EQ(Assess(With(Without(IncidentFacts(), "child_dob"), {{"unborn", false}})), false);
}

TEST_F(MeetsSinCriteriaTest, WithoutIncidentDayTheAgeIsTakenOnTheDayOfAwareness) {
  const Facts no_day = Without(IncidentFacts(), "incident_on");
  EXPECT_EQ(Assess(With(no_day, {{"child_dob", "2008-12-24"}})), false);
  EXPECT_EQ(Assess(With(no_day, {{"child_dob", "2008-12-25"}})), true);
}

// ---------------------------------------------------------------------------------------------
// Guards (an inline workflow whose assessments are the conditions under test).

constexpr std::string_view kGuards = R"yaml(name: guards
version: 1
edition: {name: G1, effective_from: "2020-01-01"}
leap_day_birthday: march_1
parameters:
  - {name: mode, values: [strict, lenient], default: strict}
events:
  - type: person.seen
    starts_case: true
    facts:
      - {name: seen_on, type: date, required: true}
      - {name: dob, type: date}
      - {name: kind, type: enum, values: [x, y, z]}
      - {name: flag, type: bool}
      - {name: count, type: int}
  - type: person.checked
    facts:
      - {name: result, type: enum, values: [ok, bad]}
states:
  - name: seen
  - name: checked
  - name: flagged
transitions:
  - on: person.seen
    to: seen
  - on: person.checked
    from: [seen]
    when: {fact: {name: result, equals: bad}}
    to: flagged
  - on: person.checked
    from: [seen]
    when:
      all:
        - fact: {name: result, present: true}
        - fact: {name: person.seen.kind, in: [x, y]}
    to: checked
assessments:
  - {name: kind_is_x, when: {fact: {name: kind, equals: x}}}
  - {name: kind_in_xy, when: {fact: {name: kind, in: [x, y]}}}
  - {name: flag_true, when: {fact: {name: flag, equals: "true"}}}
  - {name: count_is_3, when: {fact: {name: count, equals: "3"}}}
  - {name: has_dob, when: {fact: {name: dob, present: true}}}
  - {name: no_dob, when: {fact: {name: dob, present: false}}}
  - {name: under_18, when: {age: {dob: dob, on: [seen_on], below: 18}}}
  - {name: x_and_flag, when: {all: [{fact: {name: kind, equals: x}}, {fact: {name: flag, equals: "true"}}]}}
  - {name: x_or_flag, when: {any: [{fact: {name: kind, equals: x}}, {fact: {name: flag, equals: "true"}}]}}
  - {name: not_x, when: {not: {fact: {name: kind, equals: x}}}}
  - {name: strict, when: {parameter: {name: mode, equals: strict}}}
)yaml";

class GuardsTest : public ::testing::Test {
 protected:
  // Opens a case with `facts` and returns every assessment's value.
  std::map<std::string, bool> Assess(const Facts& facts, std::string_view yaml = kGuards) {
    const auto set = test::SetOf(yaml);
    CaseDriver driver(*set);
    driver.MustApply(Event("g1", "G-1", "person.seen", "2026-06-15T10:00:00Z", facts));
    std::map<std::string, bool> out;
    if (!driver.has_case()) return out;
    for (const auto& a : driver.state().assessments()) out[a.name()] = a.value();
    return out;
  }
  bool Under18(std::string_view dob, std::string_view seen_on, std::string_view leap = "march_1") {
    const std::string yaml = test::Replace(std::string(kGuards), "leap_day_birthday: march_1",
                                           "leap_day_birthday: " + std::string(leap));
    return Assess({{"seen_on", seen_on}, {"dob", dob}}, yaml)["under_18"];
  }
};

TEST_F(GuardsTest, FactEqualityComparesTheValueAsText) {
  auto a = Assess({{"seen_on", "2026-06-15"}, {"kind", "x"}, {"flag", true}, {"count", 3}});
  EXPECT_TRUE(a["kind_is_x"]);
  EXPECT_TRUE(a["flag_true"]);
  EXPECT_TRUE(a["count_is_3"]);
  a = Assess({{"seen_on", "2026-06-15"}, {"kind", "y"}, {"flag", false}, {"count", 4}});
  EXPECT_FALSE(a["kind_is_x"]);
  EXPECT_FALSE(a["flag_true"]);
  EXPECT_FALSE(a["count_is_3"]);
}

TEST_F(GuardsTest, EqualityOnAnAbsentFactIsFalse) {
  auto a = Assess({{"seen_on", "2026-06-15"}});
  EXPECT_FALSE(a["kind_is_x"]);
  EXPECT_FALSE(a["kind_in_xy"]);
  EXPECT_FALSE(a["flag_true"]);
}

TEST_F(GuardsTest, SetMembership) {
  EXPECT_TRUE(Assess({{"seen_on", "2026-06-15"}, {"kind", "x"}})["kind_in_xy"]);
  EXPECT_TRUE(Assess({{"seen_on", "2026-06-15"}, {"kind", "y"}})["kind_in_xy"]);
  EXPECT_FALSE(Assess({{"seen_on", "2026-06-15"}, {"kind", "z"}})["kind_in_xy"]);
}

TEST_F(GuardsTest, Presence) {
  auto a = Assess({{"seen_on", "2026-06-15"}, {"dob", "2010-01-01"}});
  EXPECT_TRUE(a["has_dob"]);
  EXPECT_FALSE(a["no_dob"]);
  a = Assess({{"seen_on", "2026-06-15"}});
  EXPECT_FALSE(a["has_dob"]);
  EXPECT_TRUE(a["no_dob"]);
}

TEST_F(GuardsTest, AgeIsReachedAtTheStartOfTheBirthday) {
  EXPECT_TRUE(Under18("2008-06-15", "2026-06-14"));
  EXPECT_FALSE(Under18("2008-06-15", "2026-06-15"));
  EXPECT_FALSE(Under18("2008-06-15", "2026-06-16"));
}

TEST_F(GuardsTest, AgeWithoutDateOfBirthIsFalse) {
  EXPECT_FALSE(Assess({{"seen_on", "2026-06-15"}})["under_18"]);
}

TEST_F(GuardsTest, LeapDayBirthdayUnderMarch1) {
  EXPECT_TRUE(Under18("2008-02-29", "2026-02-28", "march_1"));
  EXPECT_FALSE(Under18("2008-02-29", "2026-03-01", "march_1"));
}

TEST_F(GuardsTest, LeapDayBirthdayUnderFebruary28) {
  EXPECT_TRUE(Under18("2008-02-29", "2026-02-27", "february_28"));
  EXPECT_FALSE(Under18("2008-02-29", "2026-02-28", "february_28"));
}

TEST_F(GuardsTest, AllAnyAndNot) {
  auto a = Assess({{"seen_on", "2026-06-15"}, {"kind", "x"}, {"flag", true}});
  EXPECT_TRUE(a["x_and_flag"]);
  EXPECT_TRUE(a["x_or_flag"]);
  EXPECT_FALSE(a["not_x"]);
  a = Assess({{"seen_on", "2026-06-15"}, {"kind", "x"}, {"flag", false}});
  EXPECT_FALSE(a["x_and_flag"]);
  EXPECT_TRUE(a["x_or_flag"]);
  a = Assess({{"seen_on", "2026-06-15"}, {"kind", "y"}, {"flag", false}});
  EXPECT_FALSE(a["x_and_flag"]);
  EXPECT_FALSE(a["x_or_flag"]);
  EXPECT_TRUE(a["not_x"]);
}

TEST_F(GuardsTest, ParameterConditionReadsTheWorkflowDefault) {
  EXPECT_TRUE(Assess({{"seen_on", "2026-06-15"}})["strict"]);
  const std::string lenient =
      test::Replace(std::string(kGuards), "default: strict", "default: lenient");
  EXPECT_FALSE(Assess({{"seen_on", "2026-06-15"}}, lenient)["strict"]);
}

TEST(Engine, DeadlineWhoseAnchorNoEventGaveRejectsTheEvent) {
  const std::string yaml =
      test::Replace(std::string(kGuards), "  - on: person.seen\n    to: seen\n",
                    "  - on: person.seen\n    to: seen\n    start_deadlines: [review]\n") +
      "deadlines:\n"
      "  - name: review\n"
      "    title: Review\n"
      "    from: {facts: [dob]}\n"
      "    offset: {working_days: 1}\n"
      "    source: test\n"
      "    confidence: v\n";
  const auto set = test::SetOf(yaml);
  CaseDriver with_dob(*set);
  with_dob.MustApply(Event("g1", "G-1", "person.seen", "2026-06-15T10:00:00Z",
                           {{"seen_on", "2026-06-15"}, {"dob", "2020-06-01"}}));
  ASSERT_TRUE(with_dob.has_case());
  EXPECT_EQ(test::Deadline(with_dob.state(), "review")->explanation().anchor(), "person.seen.dob");
  EXPECT_EQ(test::Deadline(with_dob.state(), "review")->due_on(), "2020-06-02");
  CaseDriver without(*set);
  auto outcome = without.Apply(
      Event("g1", "G-2", "person.seen", "2026-06-15T10:00:00Z", {{"seen_on", "2026-06-15"}}));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(outcome.status().message(),
            "deadline 'review' counts from dob, which no event of the case has given");
  EXPECT_FALSE(without.has_case());
}

TEST_F(GuardsTest, FirstTransitionWhoseConditionHoldsIsTaken) {
  const auto set = test::SetOf(kGuards);
  CaseDriver driver(*set);
  driver.MustApply(Event("g1", "G-1", "person.seen", "2026-06-15T10:00:00Z",
                         {{"seen_on", "2026-06-15"}, {"kind", "x"}}));
  const auto effects = driver.MustApply(
      Event("g2", "G-1", "person.checked", "2026-06-16T10:00:00Z", {{"result", "bad"}}));
  EXPECT_THAT(Describe(effects), ElementsAre("state seen -> flagged"));
}

TEST_F(GuardsTest, ConditionReadsFactsRecordedByEarlierEvents) {
  const auto set = test::SetOf(kGuards);
  CaseDriver x_case(*set);
  x_case.MustApply(Event("g1", "G-1", "person.seen", "2026-06-15T10:00:00Z",
                         {{"seen_on", "2026-06-15"}, {"kind", "x"}}));
  EXPECT_THAT(Describe(x_case.MustApply(Event("g2", "G-1", "person.checked", "2026-06-16T10:00:00Z",
                                              {{"result", "ok"}}))),
              ElementsAre("state seen -> checked"));
  CaseDriver z_case(*set);
  z_case.MustApply(Event("g1", "G-2", "person.seen", "2026-06-15T10:00:00Z",
                         {{"seen_on", "2026-06-15"}, {"kind", "z"}}));
  auto refused = z_case.Apply(
      Event("g2", "G-2", "person.checked", "2026-06-16T10:00:00Z", {{"result", "ok"}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "event type 'person.checked' is not accepted in state 'seen': no transition's "
            "conditions hold for its facts");
}

// Assessments are re-evaluated only after events that declare a fact they read (an
// optimisation): one that reads a later event's fact must still change on that event, and
// must not be re-recorded on events that cannot change it.
TEST_F(GuardsTest, AssessmentReadingALaterEventsFactChangesOnThatEvent) {
  const std::string yaml =
      test::Replace(std::string(kGuards), "  - {name: strict,",
                    "  - {name: result_bad, when: {fact: {name: result, equals: bad}}}\n"
                    "  - {name: strict,");
  const auto set = test::SetOf(yaml);
  const Workflow& wf = *set->workflows().front();
  EXPECT_TRUE(wf.AssessmentsRead("person.seen"));
  EXPECT_TRUE(wf.AssessmentsRead("person.checked"));
  EXPECT_FALSE(wf.AssessmentsRead("case.withdrawn"));
  CaseDriver driver(*set);
  driver.MustApply(Event("g1", "G-1", "person.seen", "2026-06-15T10:00:00Z",
                         {{"seen_on", "2026-06-15"}, {"kind", "x"}}));
  EXPECT_EQ(test::Assessment(driver.state(), "result_bad"), false);
  EXPECT_THAT(Describe(driver.MustApply(Event("g2", "G-1", "person.checked", "2026-06-16T10:00:00Z",
                                              {{"result", "bad"}}))),
              ElementsAre("state seen -> flagged", "assessment result_bad = true"));
  EXPECT_EQ(test::Assessment(driver.state(), "result_bad"), true);
}

TEST(AssessmentInputs, ShippedSeriousIncidentReadsOnlyTheReportsFacts) {
  const Workflow* wf = test::ShippedWorkflows().Find("serious_incident", 1);
  ASSERT_NE(wf, nullptr);
  EXPECT_TRUE(wf->AssessmentsRead("incident.reported"));
  EXPECT_FALSE(wf->AssessmentsRead("notification.submitted"));
  EXPECT_FALSE(wf->AssessmentsRead("partners.informed"));
}

// ---------------------------------------------------------------------------------------------
// State-entered anchors, state scope, breach move_to, escalations, final-state notices
// (the inline workflow test::kStages).

using test::kStages;

class StagesTest : public ::testing::Test {
 protected:
  StagesTest() : set_(test::SetOf(kStages)), driver_(*set_) {}

  std::vector<v1::Effect> Apply(std::string id, std::string type, std::string_view at,
                                const Facts& facts = {}) {
    return driver_.MustApply(Event(std::move(id), "J-1", std::move(type), at, facts));
  }
  // Opens J-1 on Monday 2027-03-01: job_due is due Wednesday 2027-03-03 (timer #1 its breach,
  // #2 its escalation).
  void Open(std::string_view on = "2027-03-01") {
    Apply("j1", "job.opened", std::string(on) + "T09:00:00Z", {{"opened_on", on}});
  }

  std::unique_ptr<WorkflowSet> set_;
  CaseDriver driver_;
};

TEST_F(StagesTest, StateEnteredAnchorCountsFromTheDayOfEntry) {
  Open();
  EXPECT_THAT(driver_.Timers(), ElementsAre("#1 job_due breach[0] at 2027-03-04T00:00:00Z",
                                            "#2 job_due escalation[0] at 2027-03-06T00:00:00Z"));
  const auto effects = Apply("j2", "job.reviewed", "2027-03-02T10:00:00Z");
  EXPECT_THAT(Describe(effects),
              ElementsAre("state open -> review", "notify state_entered [business_unit]",
                          "deadline review_done due 2027-03-05"));
  EXPECT_EQ(effects[1].notification().subject(), "Case J-1 is now review");
  const v1::Explanation& x = effects[2].deadline().explanation();
  EXPECT_EQ(x.anchor(), "state_entered");
  EXPECT_EQ(x.anchor_on(), "2027-03-02");
  EXPECT_EQ(x.rule(), "3 working days after the day the case entered state review");
  EXPECT_EQ(x.confidence(), v1::CONFIDENCE_V1);
  EXPECT_EQ(test::Deadline(driver_.state(), "review_done")->started_in_state(), "review");
}

TEST_F(StagesTest, LeavingTheStateCancelsStateScopedDeadlines) {
  Open();
  Apply("j2", "job.reviewed", "2027-03-02T10:00:00Z");
  auto outcome = driver_.Apply(Event("j3", "J-1", "job.reviewed", "2027-03-03T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("cancelled review_done due 2027-03-05: left state review",
                          "state review -> open"));
  EXPECT_THAT(Describe(outcome->timers_cancelled),
              ElementsAre("#3 review_done breach[0] at 2027-03-06T00:00:00Z"));
  EXPECT_EQ(test::Deadline(driver_.state(), "review_done")->status(),
            v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_EQ(test::Deadline(driver_.state(), "job_due")->status(), v1::DEADLINE_STATUS_OPEN);
}

TEST_F(StagesTest, CancelledBreachedDeadlineIsClosedAndNoLongerMet) {
  Open();
  Apply("j2", "job.reviewed", "2027-03-02T10:00:00Z");
  ASSERT_TRUE(driver_.FireTimer("review_done", v1::TIMER_KIND_BREACH).ok());
  ASSERT_EQ(test::Deadline(driver_.state(), "review_done")->status(), v1::DEADLINE_STATUS_BREACHED);
  EXPECT_THAT(Describe(Apply("j3", "job.reviewed", "2027-03-08T10:00:00Z")),
              ElementsAre("cancelled review_done due 2027-03-05: left state review",
                          "state review -> open"));
  EXPECT_EQ(test::Deadline(driver_.state(), "review_done")->status(),
            v1::DEADLINE_STATUS_CANCELLED);
  // The event that would have met it meets only the deadline still open.
  EXPECT_THAT(Describe(Apply("j4", "job.finished", "2027-03-09T10:00:00Z")),
              ElementsAre("met job_due due 2027-03-03 on 2027-03-09 (late)",
                          "state open -> done (final)", "notify state_entered [la_dsp]"));
}

TEST_F(StagesTest, BreachMoveToEntersStateOnTheDayTheDeadlinePassedEvenWhenFiredLate) {
  Open();
  auto outcome = driver_.Fire(1, At("2027-03-08T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(
      Describe(outcome->effects),
      ElementsAre("breach job_due due 2027-03-03 (late)", "notify breached [la_dsp] job_due",
                  "state open -> overdue", "deadline chase due 2027-03-14"));
  EXPECT_EQ(driver_.state().state(), "overdue");
  // The deadline ended at midnight starting 4 March: the case has been overdue since then.
  EXPECT_EQ(driver_.state().state_entered_on(), "2027-03-04");
  const v1::DeadlineInstance* chase = test::Deadline(driver_.state(), "chase");
  ASSERT_NE(chase, nullptr);
  EXPECT_EQ(chase->explanation().anchor_on(), "2027-03-04");
  EXPECT_EQ(chase->explanation().rule(),
            "10 calendar days after the day the case entered state overdue");
  EXPECT_EQ(chase->started_by(), "timer:1");
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#3 chase breach[0] at 2027-03-15T00:00:00Z"));
  EXPECT_TRUE((outcome->timers_cancelled).empty());
}

TEST_F(StagesTest, EscalationNotifiesWhileTheDeadlineIsBreached) {
  Open();
  ASSERT_TRUE(driver_.Fire(1, At("2027-03-04T00:00:00Z")).ok());
  auto outcome = driver_.Fire(2, At("2027-03-06T00:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects), ElementsAre("notify escalated [la_lsp] job_due"));
  const v1::Notification& n = outcome->effects[0].notification();
  EXPECT_EQ(n.notification_id(), "J-1:timer:2:1");
  EXPECT_EQ(n.kind(), v1::NOTIFICATION_KIND_DEADLINE_ESCALATED);
  EXPECT_EQ(n.subject(), "Still overdue since 2027-03-03: Finish the job (case J-1)");
}

TEST_F(StagesTest, EscalationOfADeadlineNotBreachedNotifiesNoOne) {
  Open();
  auto outcome = driver_.Fire(2, At("2027-03-06T00:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE((outcome->effects).empty());
  EXPECT_EQ(test::Deadline(driver_.state(), "job_due")->status(), v1::DEADLINE_STATUS_OPEN);
  EXPECT_THAT(driver_.Timers(), ElementsAre("#1 job_due breach[0] at 2027-03-04T00:00:00Z"));
}

TEST_F(StagesTest, SuppressedBreachDoesNotMoveTheCaseNorEscalate) {
  Open();
  Apply("j2", "job.paused", "2027-03-02T10:00:00Z");
  auto breach = driver_.Fire(1, At("2027-03-04T00:00:00Z"));
  ASSERT_TRUE(breach.ok()) << breach.status().ToString();
  EXPECT_THAT(Describe(breach->effects), ElementsAre("breach job_due due 2027-03-03 (suppressed)"));
  EXPECT_EQ(driver_.state().state(), "paused");
  auto escalation = driver_.Fire(2, At("2027-03-06T00:00:00Z"));
  ASSERT_TRUE(escalation.ok()) << escalation.status().ToString();
  EXPECT_TRUE((escalation->effects).empty());
}

TEST_F(StagesTest, MetDeadlineHasNoTimersLeftToFire) {
  Open();
  Apply("j2", "job.finished", "2027-03-02T10:00:00Z");
  auto outcome = driver_.Fire(2, At("2027-03-06T00:00:00Z"));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(outcome.status().message(), "case 'J-1' has no pending timer 2");
}

// ApplyTaking and FireTaking take the case only when they succeed: every check and every
// computation that can fail runs before the first change.

TEST_F(StagesTest, FireTakingLeavesTheCaseUntouchedWhenTheBreachCannotMoveIt) {
  // Due Wednesday 2028-12-27; the breach would move the case to overdue on the 28th, whose chase
  // deadline (10 calendar days later) lies past the calendar's data.
  Open("2028-12-21");
  const v1::CaseState before = driver_.state();
  v1::CaseState taken = before;
  auto outcome = driver_.engine().FireTaking(&taken, 1, At("2028-12-28T00:00:00Z"));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(MessageDifferencer::Equals(taken, before));
}

TEST_F(StagesTest, FireTakingTakesTheCaseWhenItSucceeds) {
  Open();
  v1::CaseState taken = driver_.state();
  auto outcome = driver_.engine().FireTaking(&taken, 1, At("2027-03-04T00:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->state.state(), "overdue");
  EXPECT_EQ(test::Deadline(outcome->state, "job_due")->status(), v1::DEADLINE_STATUS_BREACHED);
}

// Apply and ApplyTaking on an rvalue event take its facts into the case, only when accepted.
TEST_F(EngineTest, TakingAnEventsFactsLeavesARefusedEventWhole) {
  Open();
  v1::CaseState taken = driver_.state();
  const Engine& engine = driver_.engine();
  v1::Event refused = Event("rr", kCase, "rapid_review.submitted", "2026-12-28T10:00:00Z",
                            {{"submitted_on", "2026-12-28"}, {"decision", "lcspr"}});
  auto no = engine.ApplyTaking(&taken, std::move(refused), At("2026-12-28T10:00:00Z"));
  ASSERT_FALSE(no.ok());
  // Documented: a refused event is left as it was, so a moved-from one is still whole.
  EXPECT_EQ(refused.facts().fields().size(), 2u);  // NOLINT(bugprone-use-after-move)
  // Submitted late on its own date fact: the met effect read the facts before they were taken.
  v1::Event submitted = Event("ns", kCase, "notification.submitted", "2027-01-07T10:00:00Z",
                              {{"submitted_on", "2027-01-06"}});
  auto yes = engine.ApplyTaking(&taken, std::move(submitted), At("2027-01-07T10:00:00Z"));
  ASSERT_TRUE(yes.ok()) << yes.status().ToString();
  EXPECT_TRUE(submitted.facts().fields().empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_THAT(Describe(yes->effects),
              testing::Contains("met sin_notification due 2027-01-05 on 2027-01-06 (late)"));
  const v1::FactRecord& last = yes->state.facts(yes->state.facts_size() - 1);
  EXPECT_EQ(last.event_type(), "notification.submitted");
  EXPECT_EQ(last.facts().fields().at("submitted_on").string_value(), "2027-01-06");
}

TEST_F(EngineTest, ApplyTakingLeavesTheCaseUntouchedOnEveryKindOfRejection) {
  Open();
  const v1::CaseState before = driver_.state();
  const Engine& engine = driver_.engine();
  // Refused by a check: not accepted in state screening.
  v1::CaseState taken = before;
  auto early =
      engine.ApplyTaking(&taken,
                         Event("rr", kCase, "rapid_review.submitted", "2026-12-28T10:00:00Z",
                               {{"submitted_on", "2026-12-28"}, {"decision", "lcspr"}}),
                         At("2026-12-28T10:00:00Z"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(MessageDifferencer::Equals(taken, before));
  // Refused by a deadline computation: the corrected awareness puts sin_notification past the
  // calendar's data, found only by recomputing the open deadlines.
  auto late = engine.ApplyTaking(&taken,
                                 Event("fc", kCase, "case.facts_corrected", "2026-12-28T10:00:00Z",
                                       {{"became_aware_on", "2028-12-29"}}),
                                 At("2026-12-28T10:00:00Z"));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(MessageDifferencer::Equals(taken, before));
  // Accepted: the outcome carries the case on.
  auto accepted =
      engine.ApplyTaking(&taken,
                         Event("ns", kCase, "notification.submitted", "2026-12-29T10:00:00Z",
                               {{"submitted_on", "2026-12-29"}}),
                         At("2026-12-29T10:00:00Z"));
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->state.state(), "notified");
  EXPECT_EQ(accepted->state.events_applied(), before.events_applied() + 1);
}

// Every placeholder a template may use, each once, with text around and between them.
TEST(Templates, EveryPlaceholderIsReplacedAndOtherTextKept) {
  std::string subject = "<";
  for (const std::string_view p : kTemplatePlaceholders) subject.append("{").append(p).append("}|");
  subject += ">";
  const std::string yaml = test::Replace(
      std::string(kStages), "subject: \"Case {case_id} finished\"", "subject: \"" + subject + "\"");
  const auto set = test::SetOf(yaml);
  CaseDriver driver(*set);
  driver.MustApply(
      Event("j1", "J-1", "job.opened", "2027-03-01T09:00:00Z", {{"opened_on", "2027-03-01"}}));
  const auto effects = driver.MustApply(Event("j2", "J-1", "job.finished", "2027-03-02T10:00:00Z"));
  ASSERT_EQ(effects.size(), 3u);
  // No deadline is in view of a state's notification: {deadline}, {due_on} and {title} are empty.
  EXPECT_EQ(effects[2].notification().subject(),
            "<J-1|staffordshire|stages|done|job.finished||||S1 (in force from 2020-01-01)|>");
}

TEST_F(StagesTest, EnteringAFinalStateSendsItsNotifications) {
  Open();
  auto outcome = driver_.Apply(Event("j2", "J-1", "job.finished", "2027-03-02T10:00:00Z"));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("met job_due due 2027-03-03 on 2027-03-02", "state open -> done (final)",
                          "notify state_entered [la_dsp]"));
  const v1::Notification& n = outcome->effects[2].notification();
  EXPECT_EQ(n.subject(), "Case J-1 finished");
  EXPECT_EQ(n.notification_id(), "J-1:j2:1");
  EXPECT_EQ(n.kind(), v1::NOTIFICATION_KIND_STATE_ENTERED);
  EXPECT_EQ(outcome->timers_cancelled.size(), 2u);
}

TEST_F(StagesTest, WithoutADateFactAnEventMeetsOnTheLondonDayItOccurred) {
  Open("2027-07-01");
  EXPECT_EQ(test::Deadline(driver_.state(), "job_due")->due_on(), "2027-07-05");
  // 22:59:59 UTC is still 5 July in London (BST).
  EXPECT_EQ(Describe(Apply("j2", "job.finished", "2027-07-05T22:59:59Z")[0]),
            "met job_due due 2027-07-05 on 2027-07-05");
}

TEST_F(StagesTest, EventAtLondonMidnightMeetsOnTheNextDayLate) {
  Open("2027-07-01");
  // 23:00 UTC in summer is midnight in London: 6 July.
  EXPECT_EQ(Describe(Apply("j2", "job.finished", "2027-07-05T23:00:00Z")[0]),
            "met job_due due 2027-07-05 on 2027-07-06 (late)");
}

TEST(Engine, DeadlineOutsideTheCalendarDataIsOutOfRange) {
  const auto set = test::SetOf(
      test::Replace(test::Replace(std::string(kStages), "offset: {working_days: 2}",
                                  "offset: {calendar_days: 400}"),
                    "    escalations:\n      - {working_days_after: 2, notify: [la_lsp]}\n", ""));
  CaseDriver driver(*set);
  auto outcome = driver.Apply(
      Event("j1", "J-1", "job.opened", "2028-06-01T09:00:00Z", {{"opened_on", "2028-06-01"}}));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(outcome.status().message(),
            "deadline 'job_due' (400 calendar days after job.opened.opened_on) falls outside the "
            "bank-holiday data, which covers 2018-01-01 to 2028-12-31 "
            "(workflows/calendars/england-and-wales.json)");
}

// ---------------------------------------------------------------------------------------------
// case.facts_corrected.

TEST_F(EngineTest, CorrectingAwarenessMovesSinNotification) {
  Open();
  auto outcome = Correct({{"became_aware_on", "2026-12-21"}});
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("corrected incident.reported.became_aware_on",
                          "deadline sin_notification due 2026-12-30 (recomputed)",
                          "deadline partners_informed due 2026-12-30 (recomputed)"));
  EXPECT_THAT(Describe(outcome->timers_cancelled),
              ElementsAre("#1 sin_notification warning[0] at 2026-12-31T00:00:00Z",
                          "#2 sin_notification breach[0] at 2027-01-06T00:00:00Z",
                          "#3 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#4 sin_notification warning[0] at 2026-12-24T00:00:00Z",
                          "#5 sin_notification breach[0] at 2026-12-31T00:00:00Z",
                          "#6 partners_informed breach[0] at 2026-12-31T00:00:00Z"));
  const v1::DeadlineInstance& sin = DeadlineOf("sin_notification");
  EXPECT_EQ(sin.due_on(), "2026-12-30");
  EXPECT_EQ(Show(sin.due_at()), "2026-12-31T00:00:00Z");
  EXPECT_EQ(sin.explanation().anchor_on(), "2026-12-21");
  EXPECT_EQ(sin.status(), v1::DEADLINE_STATUS_OPEN);
  EXPECT_EQ(driver_.state().facts(0).facts().fields().at("became_aware_on").string_value(),
            "2026-12-21");
  EXPECT_EQ(driver_.state().events_applied(), 2u);
  // The correction is not itself a record of facts.
  ASSERT_EQ(driver_.state().facts_size(), 1);
  EXPECT_EQ(driver_.state().facts(0).event_id(), "e1");
}

TEST_F(EngineTest, CorrectedEffectNamesQualifiedFactsNeverValues) {
  Open();
  auto outcome = Correct({{"child_dob", "2011-02-03"}, {"became_aware_on", "2026-12-21"}});
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_FALSE(outcome->effects.empty());
  const v1::Effect& corrected = outcome->effects[0];
  EXPECT_THAT(corrected.corrected().facts(),
              ElementsAre("incident.reported.became_aware_on", "incident.reported.child_dob"));
  const std::string text = corrected.DebugString();
  EXPECT_THAT(text, Not(HasSubstr("2011-02-03")));
  EXPECT_THAT(text, Not(HasSubstr("2026-12-21")));
}

TEST_F(EngineTest, CorrectionCanChangeTheAssessment) {
  Open();
  auto outcome = Correct({{"child_dob", "2008-12-22"}});
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects), ElementsAre("corrected incident.reported.child_dob",
                                                      "assessment meets_sin_criteria = false"));
  EXPECT_EQ(test::Assessment(driver_.state(), "meets_sin_criteria"), false);
  EXPECT_TRUE((outcome->timers_set).empty());
  EXPECT_TRUE((outcome->timers_cancelled).empty());
}

TEST_F(EngineTest, CorrectionReopensABreachedDeadlineWhoseNewDayIsAhead) {
  Open();
  ASSERT_TRUE(driver_.Fire(1, At("2026-12-31T00:00:00Z")).ok());
  ASSERT_TRUE(driver_.Fire(2, At("2027-01-06T00:00:00Z")).ok());
  ASSERT_TRUE(driver_.Fire(3, At("2027-01-06T00:00:00Z")).ok());
  auto outcome = Correct({{"became_aware_on", "2026-12-31"}}, "2027-01-06T10:00:00Z");
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("corrected incident.reported.became_aware_on",
                          "deadline sin_notification due 2027-01-08 (recomputed)",
                          "deadline partners_informed due 2027-01-08 (recomputed)"));
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_OPEN);
  EXPECT_EQ(DeadlineOf("partners_informed").status(), v1::DEADLINE_STATUS_OPEN);
  // The warning's day has begun but the deadline is ahead: it is set, and will fire late.
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#4 sin_notification warning[0] at 2027-01-06T00:00:00Z",
                          "#5 sin_notification breach[0] at 2027-01-09T00:00:00Z",
                          "#6 partners_informed breach[0] at 2027-01-09T00:00:00Z"));
  EXPECT_TRUE((outcome->timers_cancelled).empty());
}

TEST_F(EngineTest, CorrectionToAnEarlierDayKeepsABreachedDeadlineBreached) {
  Open();
  ASSERT_TRUE(driver_.Fire(1, At("2026-12-31T00:00:00Z")).ok());
  ASSERT_TRUE(driver_.Fire(2, At("2027-01-06T00:00:00Z")).ok());
  auto outcome = Correct({{"became_aware_on", "2026-12-23"}}, "2027-01-06T10:00:00Z");
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_GE(outcome->effects.size(), 2u);
  EXPECT_EQ(Describe(outcome->effects[1]), "deadline sin_notification due 2027-01-04 (recomputed)");
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_BREACHED);
  EXPECT_TRUE((DeadlineOf("sin_notification").timers()).empty());
}

TEST_F(EngineTest, CorrectionByQualifiedNameMovesTheDeadlineCountedFromIt) {
  Open();
  Submit();
  auto outcome =
      Correct({{"notification.submitted.submitted_on", "2027-01-05"}}, "2027-01-06T10:00:00Z");
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("corrected notification.submitted.submitted_on",
                          "deadline rapid_review due 2027-01-26 (recomputed)"));
  EXPECT_THAT(Describe(outcome->timers_set),
              ElementsAre("#6 rapid_review warning[0] at 2027-01-19T00:00:00Z",
                          "#7 rapid_review breach[0] at 2027-01-27T00:00:00Z"));
}

TEST_F(EngineTest, PlainNameRecordedUnderTwoEventTypesIsAmbiguous) {
  Open();
  Submit();
  Review("national_review_recommended");
  auto outcome = Correct({{"submitted_on", "2027-01-05"}}, "2027-01-25T10:00:00Z");
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      outcome.status().message(),
      "fact 'submitted_on' is recorded for notification.submitted and rapid_review.submitted; "
      "name it as <event type>.submitted_on");
}

TEST_F(EngineTest, CorrectionOfAnUnknownFactIsInvalidArgument) {
  Open();
  auto outcome = Correct({{"colour", "red"}});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.status().message(), "unknown fact 'colour' for workflow 'serious_incident'");
}

TEST_F(EngineTest, CorrectionOfAFactNotYetRecordedIsFailedPrecondition) {
  Open();
  for (const char* name : {"decision", "rapid_review.submitted.submitted_on"}) {
    auto outcome = Correct({{name, "2027-01-05"}});
    ASSERT_FALSE(outcome.ok()) << name;
    EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(
        outcome.status().message(),
        "fact '" + std::string(name) + "' belongs to an event type this case has not recorded");
  }
}

TEST_F(EngineTest, IllTypedCorrectionIsInvalidArgumentWithoutTheValue) {
  Open();
  auto outcome = Correct({{"became_aware_on", 20261221}});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.status().message(), "fact 'became_aware_on' must be a date, YYYY-MM-DD");
}

TEST_F(EngineTest, EmptyCorrectionIsInvalidArgument) {
  Open();
  auto outcome = Correct({});
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.status().message(), "case.facts_corrected carries no fact");
}

TEST_F(EngineTest, ClosedCaseStillTakesCorrections) {
  Open();
  driver_.MustApply(Event("e2", kCase, "notification.not_required", "2026-12-29T11:00:00Z",
                          {{"decided_on", "2026-12-29"}, {"rationale", "Over 18"}}));
  auto outcome = Correct({{"decided_on", "2026-12-30"}}, "2027-01-04T10:00:00Z");
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(Describe(outcome->effects),
              ElementsAre("corrected notification.not_required.decided_on"));
  EXPECT_TRUE(driver_.state().closed());
  EXPECT_TRUE((PendingTimers(driver_.state())).empty());
}

// ---------------------------------------------------------------------------------------------
// case.withdrawn.

TEST_F(EngineTest, WithdrawalRequiresAReason) {
  Open();
  auto outcome = driver_.Apply(Event("e2", kCase, "case.withdrawn", "2026-12-29T10:00:00Z"));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(outcome.status().message(),
            "missing required fact 'reason' for event type 'case.withdrawn'");
}

TEST_F(EngineTest, WithdrawalClosesTheCaseAndCancelsEveryOpenDeadline) {
  Open();
  ASSERT_TRUE(driver_.Fire(2, At("2027-01-06T00:00:00Z")).ok());
  auto outcome = driver_.Apply(Event("e2", kCase, "case.withdrawn", "2027-01-06T10:00:00Z",
                                     {{"reason", "Opened in error"}}));
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_THAT(
      Describe(outcome->effects),
      ElementsAre("state screening -> withdrawn (final)",
                  "cancelled sin_notification due 2027-01-05: case closed in state withdrawn",
                  "cancelled partners_informed due 2027-01-05: case closed in state withdrawn"));
  EXPECT_EQ(outcome->effects[0].state().workflow(), "serious_incident");
  const v1::CaseState& s = driver_.state();
  EXPECT_TRUE(s.closed());
  EXPECT_EQ(s.state(), "withdrawn");
  EXPECT_EQ(s.state_entered_on(), "2027-01-06");
  // Breached or not, a cancelled deadline is closed.
  EXPECT_EQ(DeadlineOf("sin_notification").status(), v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_EQ(DeadlineOf("partners_informed").status(), v1::DEADLINE_STATUS_CANCELLED);
  EXPECT_TRUE((PendingTimers(s)).empty());
  EXPECT_THAT(Describe(outcome->timers_cancelled),
              ElementsAre("#1 sin_notification warning[0] at 2026-12-31T00:00:00Z",
                          "#3 partners_informed breach[0] at 2027-01-06T00:00:00Z"));
}

TEST_F(EngineTest, EveryEventAfterWithdrawalIsRejected) {
  Open();
  driver_.MustApply(
      Event("e2", kCase, "case.withdrawn", "2026-12-29T10:00:00Z", {{"reason", "Duplicate"}}));
  for (const auto& event :
       {Event("e3", kCase, "notification.submitted", "2027-01-04T10:00:00Z",
              {{"submitted_on", "2027-01-04"}}),
        Event("e4", kCase, "case.withdrawn", "2027-01-04T10:00:00Z", {{"reason", "Again"}})}) {
    auto outcome = driver_.Apply(event);
    ASSERT_FALSE(outcome.ok()) << event.event_id();
    EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(outcome.status().message(), "case 'SI-1' is closed (state 'withdrawn')");
  }
}

// ---------------------------------------------------------------------------------------------
// Engine::Apply preconditions (bad input through the simulator is in simulator_test.cc).

TEST_F(EngineTest, EventForNoCaseThatDoesNotStartOneIsNotFound) {
  auto outcome = driver_.Apply(Event("e1", kCase, "notification.submitted", "2027-01-04T10:00:00Z",
                                     {{"submitted_on", "2027-01-04"}}));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(outcome.status().message(),
            "case 'SI-1' does not exist and 'notification.submitted' does not start a case");
}

TEST_F(EngineTest, SecondStartingEventIsAlreadyExists) {
  Open();
  auto outcome = driver_.Apply(
      Event("e2", kCase, "incident.reported", "2026-12-25T10:00:00Z", IncidentFacts()));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(outcome.status().message(),
            "case 'SI-1' already exists; 'incident.reported' only starts a case");
}

TEST_F(EngineTest, CaseOfAWorkflowVersionNotLoadedIsFailedPrecondition) {
  Open();
  v1::CaseState state = driver_.state();
  state.set_workflow_version(2);
  auto outcome =
      driver_.engine().Apply(&state,
                             Event("e2", kCase, "partners.informed", "2026-12-29T09:00:00Z",
                                   {{"informed_on", "2026-12-29"}}),
                             At("2026-12-29T09:00:00Z"));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), StatusCode::kFailedPrecondition);
}

TEST(Engine, RejectionEffectRecordsCodeAndReason) {
  const v1::Event event = Event("e9", kCase, "partners.informed", "2026-12-29T09:00:00Z");
  const v1::Effect e =
      RejectionEffect(event, InvalidArgumentError("missing required fact 'informed_on'"),
                      At("2026-12-29T09:00:05Z"));
  EXPECT_EQ(Show(e.at()), "2026-12-29T09:00:05Z");
  EXPECT_EQ(e.case_id(), kCase);
  EXPECT_EQ(e.cause(), "e9");
  EXPECT_EQ(e.rejected().event_id(), "e9");
  EXPECT_EQ(e.rejected().event_type(), "partners.informed");
  EXPECT_EQ(e.rejected().code(), "invalid_argument");
  EXPECT_EQ(e.rejected().reason(), "missing required fact 'informed_on'");
}

TEST(Engine, TimestampsConvertInWholeSeconds) {
  const calendar::Instant at = At("2027-07-05T23:00:00Z");
  EXPECT_EQ(ToInstant(ToTimestamp(at)), at);
  EXPECT_EQ(ToTimestamp(at).seconds(), 1814828400);
}

}  // namespace
}  // namespace tandem::engine
