// NotificationJson is the one definition of what every plugin receives (plugins/README.md, "The
// notification JSON"): these tests pin its field names, their order, their types, and what is
// left out, so a plugin written against the README keeps working.

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/outbox/plugin.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/store.pb.h"
#include "tests/unit/outbox/outbox_test_util.h"

namespace tandem::outbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

google::protobuf::Timestamp Ts(const std::string& rfc3339) {
  google::protobuf::Timestamp ts;
  EXPECT_TRUE(google::protobuf::util::TimeUtil::FromString(rfc3339, &ts)) << rfc3339;
  return ts;
}

// A deadline warning of the serious incident workflow, delivery 42 on channel "hook".
v1::OutboxRecord Warning() {
  v1::OutboxRecord record;
  record.set_sequence(42);
  record.set_channel("hook");
  record.set_address("https://receiver.example.org/in");
  record.set_attempts(3);  // not part of the JSON: the same bytes on every attempt
  *record.mutable_next_attempt_at() = Ts("2027-01-07T00:00:00Z");
  *record.mutable_enqueued_at() = Ts("2027-01-06T00:00:00Z");
  v1::Effect& effect = *record.mutable_effect();
  *effect.mutable_at() = Ts("2027-01-06T00:00:00Z");
  effect.set_case_id("SI-1");
  effect.set_cause("timer:2");
  v1::Notification& n = *effect.mutable_notification();
  n.set_notification_id("SI-1:timer:2:1");
  n.set_kind(v1::NOTIFICATION_KIND_DEADLINE_WARNING);
  n.add_roles("dsl");
  n.add_roles("panel_liaison");
  n.set_subject("Panel notification due");
  n.set_body("Notify the Panel by 2027-01-06.");
  n.set_workflow("serious_incident");
  n.set_partnership("staffordshire");
  n.set_deadline("sin_notification");
  n.set_due_on("2027-01-06");
  return record;
}

nlohmann::ordered_json Parse(const std::string& text) {
  return nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::vector<std::string> Keys(const nlohmann::ordered_json& json) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  return keys;
}

TEST(NotificationJson, IsTheReadmesObjectOnOneLine) {
  auto json = NotificationJson(Warning());
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(*json,
            R"({"notification_id":"SI-1:timer:2:1","delivery_id":42,"channel":"hook",)"
            R"("address":"https://receiver.example.org/in","kind":"deadline_warning",)"
            R"("partnership":"staffordshire","workflow":"serious_incident","case_id":"SI-1",)"
            R"("roles":["dsl","panel_liaison"],"deadline":"sin_notification",)"
            R"("due_on":"2027-01-06","subject":"Panel notification due",)"
            R"("body":"Notify the Panel by 2027-01-06.","at":"2027-01-06T00:00:00Z",)"
            R"("cause":"timer:2"})");
}

TEST(NotificationJson, FieldsAreNamedTypedAndOrderedAsTheReadmesTable) {
  auto json = NotificationJson(Warning());
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const nlohmann::ordered_json object = Parse(*json);
  ASSERT_TRUE(object.is_object()) << *json;
  EXPECT_THAT(Keys(object), ElementsAre("notification_id", "delivery_id", "channel", "address",
                                        "kind", "partnership", "workflow", "case_id", "roles",
                                        "deadline", "due_on", "subject", "body", "at", "cause"));
  EXPECT_TRUE(object["delivery_id"].is_number_unsigned());
  EXPECT_EQ(object["delivery_id"].get<uint64_t>(), 42u);
  EXPECT_TRUE(object["roles"].is_array());
  for (const char* key :
       {"notification_id", "channel", "address", "kind", "partnership", "workflow", "case_id",
        "deadline", "due_on", "subject", "body", "at", "cause"}) {
    EXPECT_TRUE(object[key].is_string()) << key;
  }
}

TEST(NotificationJson, NamesEachKindInLowerCaseWithoutItsPrefix) {
  const std::vector<std::pair<v1::NotificationKind, std::string>> kinds = {
      {v1::NOTIFICATION_KIND_DEADLINE_WARNING, "deadline_warning"},
      {v1::NOTIFICATION_KIND_DEADLINE_BREACHED, "deadline_breached"},
      {v1::NOTIFICATION_KIND_DEADLINE_ESCALATED, "deadline_escalated"},
      {v1::NOTIFICATION_KIND_STATE_ENTERED, "state_entered"},
      {v1::NOTIFICATION_KIND_TRANSITION, "transition"},
  };
  for (const auto& [kind, name] : kinds) {
    v1::OutboxRecord record = Warning();
    record.mutable_effect()->mutable_notification()->set_kind(kind);
    auto json = NotificationJson(record);
    ASSERT_TRUE(json.ok()) << json.status().ToString();
    EXPECT_EQ(Parse(*json)["kind"], name);
  }
}

TEST(NotificationJson, LeavesOutDeadlineAndDueOnForNonDeadlineKinds) {
  for (const v1::NotificationKind kind :
       {v1::NOTIFICATION_KIND_STATE_ENTERED, v1::NOTIFICATION_KIND_TRANSITION}) {
    v1::OutboxRecord record = Warning();
    v1::Notification& n = *record.mutable_effect()->mutable_notification();
    n.set_kind(kind);
    n.clear_deadline();
    n.clear_due_on();
    auto json = NotificationJson(record);
    ASSERT_TRUE(json.ok()) << json.status().ToString();
    const nlohmann::ordered_json object = Parse(*json);
    EXPECT_FALSE(object.contains("deadline")) << *json;
    EXPECT_FALSE(object.contains("due_on")) << *json;
    EXPECT_THAT(Keys(object), ElementsAre("notification_id", "delivery_id", "channel", "address",
                                          "kind", "partnership", "workflow", "case_id", "roles",
                                          "subject", "body", "at", "cause"));
  }
}

TEST(NotificationJson, KeepsEmptyAddressAndRolesAsEmptyValues) {
  v1::OutboxRecord record = Warning();
  record.clear_address();
  record.mutable_effect()->mutable_notification()->clear_roles();
  auto json = NotificationJson(record);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_THAT(*json, HasSubstr(R"("address":"")"));
  EXPECT_THAT(*json, HasSubstr(R"("roles":[])"));
}

TEST(NotificationJson, EscapesQuotesBackslashesNewlinesAndControlCharacters) {
  v1::OutboxRecord record = Warning();
  v1::Notification& n = *record.mutable_effect()->mutable_notification();
  n.set_subject("The \"Panel\" notice\\draft");
  n.set_body("Line one\nLine two\r\n\tindented\x01");
  auto json = NotificationJson(record);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  // One line: the newlines travel escaped.
  EXPECT_THAT(*json, Not(HasSubstr("\n")));
  EXPECT_THAT(*json, Not(HasSubstr("\r")));
  EXPECT_THAT(*json, HasSubstr(R"("subject":"The \"Panel\" notice\\draft")"));
  EXPECT_THAT(*json, HasSubstr(R"("body":"Line one\nLine two\r\n\tindented\u0001")"));
  const nlohmann::ordered_json object = Parse(*json);
  EXPECT_EQ(object["subject"], n.subject());
  EXPECT_EQ(object["body"], n.body());
}

TEST(NotificationJson, CarriesNonAsciiTextAsUtf8) {
  v1::OutboxRecord record = Warning();
  v1::Notification& n = *record.mutable_effect()->mutable_notification();
  n.set_subject("Zo\xc3\xab \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9");  // "Zoë — résumé"
  n.set_body(
      "\xf0\x9f\x93\x85 due \xc2\xa3"
      "5");  // calendar emoji, pound sign
  record.mutable_effect()->set_case_id("SI-\xc3\x85");
  auto json = NotificationJson(record);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const nlohmann::ordered_json object = Parse(*json);
  ASSERT_TRUE(object.is_object()) << *json;
  EXPECT_EQ(object["subject"], n.subject());
  EXPECT_EQ(object["body"], n.body());
  EXPECT_EQ(object["case_id"], "SI-\xc3\x85");
}

TEST(NotificationJson, RefusesTextThatIsNotUtf8NamingTheDelivery) {
  v1::OutboxRecord record = Warning();
  record.mutable_effect()->mutable_notification()->set_body("bad \xff byte");
  auto json = NotificationJson(record);
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().code(), StatusCode::kInternal);
  EXPECT_THAT(json.status().message(), HasSubstr("42"));
  EXPECT_THAT(json.status().message(), Not(HasSubstr("bad")));  // no fact text in the error
}

TEST(NotificationJson, WritesAtInRfc3339Utc) {
  v1::OutboxRecord record = Warning();
  *record.mutable_effect()->mutable_at() = Ts("2027-03-01T09:30:15Z");
  auto json = NotificationJson(record);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(Parse(*json)["at"], "2027-03-01T09:30:15Z");

  // An instant given with an offset is written in UTC, and fractions of a second are kept.
  *record.mutable_effect()->mutable_at() = Ts("2027-03-01T10:30:15.250+01:00");
  json = NotificationJson(record);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  EXPECT_EQ(Parse(*json)["at"], "2027-03-01T09:30:15.250Z");
}

TEST(NotificationJson, IsTheSameOnEveryAttempt) {
  v1::OutboxRecord record = Warning();
  auto first = NotificationJson(record);
  record.set_attempts(7);
  record.set_last_error("hook: unavailable: HTTP 503");
  *record.mutable_next_attempt_at() = Ts("2027-02-01T00:00:00Z");
  auto later = NotificationJson(record);
  ASSERT_TRUE(first.ok() && later.ok());
  EXPECT_EQ(*first, *later);
}

// The JSON of a record the store wrote from a real engine notification.
TEST(NotificationJson, CarriesTheStoredNotificationOfTheShippedWorkflow) {
  store::test::ScopedDir dir;
  auto store = store::test::MustOpen(dir.path() / "db");
  ASSERT_NE(store, nullptr);
  store->SetNotificationRouter(test::RouteTo({"hook"}));
  ASSERT_TRUE(test::AcceptIncident(*store, "e1", "SI-1"));
  ASSERT_TRUE(test::FireAllTimers(*store));
  auto records = store->Outbox(10);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_FALSE(records->empty());
  for (const v1::OutboxRecord& record : *records) {
    auto json = NotificationJson(record);
    ASSERT_TRUE(json.ok()) << json.status().ToString();
    const nlohmann::ordered_json object = Parse(*json);
    const v1::Notification& n = record.effect().notification();
    EXPECT_EQ(object["notification_id"], n.notification_id());
    EXPECT_EQ(object["delivery_id"], record.sequence());
    EXPECT_EQ(object["channel"], "hook");
    EXPECT_EQ(object["address"], "addr-hook");
    EXPECT_EQ(object["partnership"], "staffordshire");
    EXPECT_EQ(object["workflow"], n.workflow());
    EXPECT_EQ(object["case_id"], "SI-1");
    EXPECT_EQ(object["roles"].size(), static_cast<std::size_t>(n.roles_size()));
    EXPECT_EQ(object["subject"], n.subject());
    EXPECT_EQ(object["body"], n.body());
    EXPECT_EQ(object["cause"], record.effect().cause());
    EXPECT_EQ(object["at"], google::protobuf::util::TimeUtil::ToString(record.effect().at()));
    if (!n.deadline().empty()) {
      EXPECT_EQ(object["deadline"], n.deadline());
      EXPECT_EQ(object["due_on"], n.due_on());
    }
  }
}

}  // namespace
}  // namespace tandem::outbox
