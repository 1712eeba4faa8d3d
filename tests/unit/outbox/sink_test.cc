#include "daemon/outbox/sink.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/store/store.h"
#include "proto/tandem/v1/case.pb.h"
#include "tests/unit/outbox/outbox_test_util.h"

namespace tandem::outbox {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

google::protobuf::Struct ParseObject(const std::string& line) {
  google::protobuf::Struct object;
  const auto parsed = google::protobuf::util::JsonStringToMessage(line, &object);
  EXPECT_TRUE(parsed.ok()) << parsed.ToString() << " in: " << line;
  return object;
}

class SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = store::test::MustOpen(dir_.path() / "db");
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(test::AcceptIncident(*store_, "e1", "SI-1"));
    ASSERT_TRUE(test::FireAllTimers(*store_));
    auto records = store_->Outbox(100);
    ASSERT_TRUE(records.ok());
    records_ = *records;
    ASSERT_EQ(records_.size(), 3u);
  }

  store::test::ScopedDir dir_;
  std::unique_ptr<store::Store> store_;
  std::vector<v1::OutboxRecord> records_;
};

TEST_F(SinkTest, JsonLinesSinkWritesOneJsonObjectPerLineAndAppendsAfterReopening) {
  const auto path = dir_.path() / "out" / "nested" / "notifications.jsonl";
  {
    auto sink = MakeJsonLinesSink(path);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    EXPECT_EQ((*sink)->name(), "jsonl");
    EXPECT_TRUE((*sink)->Deliver(records_[0]).ok());
    EXPECT_TRUE((*sink)->Deliver(records_[1]).ok());
  }
  {
    // A new sink (a restarted daemon) appends; it never truncates what was delivered.
    auto sink = MakeJsonLinesSink(path);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    EXPECT_TRUE((*sink)->Deliver(records_[2]).ok());
  }
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const v1::OutboxRecord& record = records_[i];
    const google::protobuf::Struct object = ParseObject(lines[i]);
    const auto& fields = object.fields();
    ASSERT_TRUE(fields.contains("outbox_sequence") && fields.contains("case_id") &&
                fields.contains("cause") && fields.contains("at") &&
                fields.contains("notification"))
        << lines[i];
    EXPECT_EQ(fields.at("outbox_sequence").number_value(), static_cast<double>(record.sequence()));
    EXPECT_EQ(fields.at("case_id").string_value(), "SI-1");
    EXPECT_EQ(fields.at("cause").string_value(), record.effect().cause());
    const auto& notification = fields.at("notification").struct_value().fields();
    ASSERT_TRUE(notification.contains("notification_id")) << lines[i];
    EXPECT_EQ(notification.at("notification_id").string_value(),
              record.effect().notification().notification_id());
    EXPECT_EQ(notification.at("kind").string_value(),
              v1::NotificationKind_Name(record.effect().notification().kind()));
    // The object is the protobuf JSON mapping: it reads back into the same Notification.
    std::string notification_json;
    ASSERT_TRUE(google::protobuf::util::MessageToJsonString(
                    fields.at("notification").struct_value(), &notification_json)
                    .ok());
    v1::Notification back;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(notification_json, &back).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(back, record.effect().notification()))
        << back.DebugString();
  }
  EXPECT_EQ(ParseObject(lines[0])
                .fields()
                .at("notification")
                .struct_value()
                .fields()
                .at("notification_id")
                .string_value(),
            "SI-1:timer:1:1");
}

TEST_F(SinkTest, JsonLinesSinkEscapesEveryStringItWrites) {
  v1::OutboxRecord record = records_[0];
  record.mutable_effect()->set_case_id("odd \"case\"\n\\id");
  record.mutable_effect()->mutable_notification()->set_subject("Fünf Arbeitstage \t\"due\"");
  const auto path = dir_.path() / "escaped.jsonl";
  auto sink = MakeJsonLinesSink(path);
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->Deliver(record).ok());
  const std::vector<std::string> lines = ReadLines(path);
  ASSERT_EQ(lines.size(), 1u);
  const google::protobuf::Struct object = ParseObject(lines[0]);
  EXPECT_EQ(object.fields().at("case_id").string_value(), "odd \"case\"\n\\id");
  EXPECT_EQ(object.fields().at("notification").struct_value().fields().at("subject").string_value(),
            "Fünf Arbeitstage \t\"due\"");
}

TEST_F(SinkTest, JsonLinesSinkRefusesAPathUnderARegularFile) {
  const auto file = dir_.path() / "a_file";
  std::ofstream(file) << "not a directory\n";
  const auto path = file / "notifications.jsonl";
  auto sink = MakeJsonLinesSink(path);
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInternal);
  EXPECT_THAT(sink.status().message(), HasSubstr(path.string()));
}

TEST_F(SinkTest, JsonLinesSinkRefusesADirectory) {
  const auto path = dir_.path() / "a_directory";
  std::filesystem::create_directories(path);
  auto sink = MakeJsonLinesSink(path);
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInternal);
  EXPECT_THAT(sink.status().message(), HasSubstr(path.string()));
}

TEST_F(SinkTest, JsonLinesSinkReportsAFailedWriteAsUnavailable) {
  // /dev/full opens for appending, and every write to it fails with ENOSPC: a full disk.
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto sink = MakeJsonLinesSink("/dev/full");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  const Status delivered = (*sink)->Deliver(records_[0]);
  EXPECT_EQ(delivered.code(), StatusCode::kUnavailable);
  EXPECT_THAT(delivered.message(), HasSubstr("/dev/full"));
}

TEST_F(SinkTest, LogSinkLogsIdsKindRolesAndSubjectButNeverTheBody) {
  auto out = std::make_shared<std::ostringstream>();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(*out));
  logger->set_pattern("%l %v");
  auto sink = MakeLogSink(logger);
  EXPECT_EQ(sink->name(), "log");
  const v1::OutboxRecord& record = records_[0];
  const v1::Notification& n = record.effect().notification();
  ASSERT_FALSE(n.body().empty());
  ASSERT_FALSE(n.roles().empty());
  ASSERT_THAT(n.subject(), Not(HasSubstr(n.body())));
  ASSERT_TRUE(sink->Deliver(record).ok());
  logger->flush();
  const std::string text = out->str();
  EXPECT_THAT(text, HasSubstr("info notification " + n.notification_id()));
  EXPECT_THAT(text, HasSubstr("outbox_sequence=" + std::to_string(record.sequence())));
  EXPECT_THAT(text, HasSubstr("case_id=SI-1"));
  EXPECT_THAT(text, HasSubstr("cause=" + record.effect().cause()));
  EXPECT_THAT(text, HasSubstr("kind=" + v1::NotificationKind_Name(n.kind())));
  for (const std::string& role : n.roles()) EXPECT_THAT(text, HasSubstr(role));
  EXPECT_THAT(text, HasSubstr(n.subject()));
  EXPECT_THAT(text, Not(HasSubstr(n.body())));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

}  // namespace
}  // namespace tandem::outbox
