// The log plugin (plugins/log), loaded through the daemon's own plugin host: one info line per
// delivery with the identifiers, never the subject or the body.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The captured lines without their trailing newlines.
std::vector<std::string> Lines(const CapturedLog& log) {
  std::vector<std::string> lines = log.lines();
  for (std::string& line : lines) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  }
  return lines;
}

TEST(LogPlugin, LogsOneInfoLineWithTheIdsAndNeitherSubjectNorBody) {
  CapturedLog log;
  auto sink = MakeSink("log", "{}", ::testing::TempDir(), log.logger, "ops-log");
  ASSERT_NE(sink, nullptr);
  v1::OutboxRecord record = MakeRecord(42, "SI-1:timer:3:1", "", "ops-log");
  record.set_attempts(2);
  const v1::Notification& n = record.effect().notification();

  ASSERT_TRUE(sink->Deliver(record).ok());

  const std::vector<std::string> lines = Lines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "info ops-log: notification SI-1:timer:3:1 delivery_id=42 attempt=3 channel=ops-log "
            "case_id=case-7 cause=timer:3 kind=deadline_warning roles=la_dsp,partnership_chair");
  EXPECT_THAT(lines[0], Not(HasSubstr(n.subject())));
  EXPECT_THAT(lines[0], Not(HasSubstr(n.body())));
  // Not even a fragment of them: the body's due date, the subject's wording.
  EXPECT_THAT(lines[0], Not(HasSubstr("2026-12-04")));
  EXPECT_THAT(lines[0], Not(HasSubstr("working days")));
}

TEST(LogPlugin, LogsOneLinePerDelivery) {
  CapturedLog log;
  auto sink = MakeSink("log", "{}", ::testing::TempDir(), log.logger);
  ASSERT_NE(sink, nullptr);
  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1", "")).ok());
  ASSERT_TRUE(sink->Deliver(MakeRecord(2, "n-2", "")).ok());
  const std::vector<std::string> lines = Lines(log);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("notification n-1 delivery_id=1 attempt=1 "));
  EXPECT_THAT(lines[1], HasSubstr("notification n-2 delivery_id=2 attempt=1 "));
}

TEST(LogPlugin, WritesControlCharactersEscapedSoALineStaysOneLine) {
  CapturedLog log;
  auto sink = MakeSink("log", "{}", ::testing::TempDir(), log.logger);
  ASSERT_NE(sink, nullptr);
  v1::OutboxRecord record = MakeRecord(3, "n-3", "");
  record.mutable_effect()->set_case_id("case\n7");
  ASSERT_TRUE(sink->Deliver(record).ok());
  const std::vector<std::string> lines = Lines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" case_id=case\\x0a7 "));
  EXPECT_EQ(lines[0].find('\n'), std::string::npos);
}

TEST(LogPlugin, AcceptsAnyAddress) {
  CapturedLog log;
  auto sink = MakeSink("log", "{}", ::testing::TempDir(), log.logger);
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("").ok());
  EXPECT_TRUE(sink->CheckAddress("https://example.org/hook").ok());
  ASSERT_TRUE(sink->Deliver(MakeRecord(4, "n-4", "somewhere")).ok());
}

TEST(LogPlugin, RefusesAnyConfigKey) {
  CapturedLog log;
  auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "log"));
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  auto sink = outbox::PluginSink::Create(*library, "ops-log", R"({"level":"debug"})",
                                         ::testing::TempDir(), log.logger);
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(sink.status().message(), HasSubstr("unknown config key 'level'"));
}

}  // namespace
}  // namespace tandem::plugin_test
