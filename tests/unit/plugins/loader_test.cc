// The daemon's plugin loader (daemon/outbox/plugin.h) against the misbehaving plugins of
// tests/plugins and the shipped ones: what it refuses and how it says so, and how a loaded
// plugin's answers reach the outbox.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {
namespace {


using ::testing::HasSubstr;

std::filesystem::path TestPlugin(const std::string& name) {
  return outbox::PluginPath(TestPluginDir(), name);
}

// Loads a test plugin that must load, and creates an instance of it.
std::unique_ptr<outbox::PluginSink> MakeTestSink(const std::string& plugin,
                                                 const std::string& config_json,
                                                 const std::filesystem::path& data_dir,
                                                 const CapturedLog& log) {
  auto library = outbox::PluginLibrary::Load(TestPlugin(plugin));
  EXPECT_TRUE(library.ok()) << library.status().ToString();
  if (!library.ok()) return nullptr;
  auto sink = outbox::PluginSink::Create(*library, plugin, config_json, data_dir, log.logger);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  if (!sink.ok()) return nullptr;
  return std::move(sink).value();
}

TEST(PluginLoader, RefusesAnotherAbiVersionNamingBothVersionsAndThePath) {
  // The table's layout differs after abi_version (tests/plugins/wrong_abi.cc): a loader that
  // read its name before checking the version would crash here.
  const auto path = TestPlugin("wrong_abi");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  auto library = outbox::PluginLibrary::Load(path);
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(library.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(library.status().message(),
              HasSubstr("version " + std::to_string(TANDEM_PLUGIN_ABI_VERSION + 1)));
  EXPECT_THAT(library.status().message(),
              HasSubstr("version " + std::to_string(TANDEM_PLUGIN_ABI_VERSION)));
}

TEST(PluginLoader, RefusesALibraryWithoutTheEntrySymbol) {
  const auto path = TestPlugin("no_entry");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  auto library = outbox::PluginLibrary::Load(path);
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(library.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(library.status().message(), HasSubstr(TANDEM_PLUGIN_ENTRY_SYMBOL));
}

TEST(PluginLoader, RefusesATableWithANullMember) {
  const auto path = TestPlugin("null_member");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  auto library = outbox::PluginLibrary::Load(path);
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(library.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(library.status().message(), HasSubstr("NULL"));
}

TEST(PluginLoader, RefusesANameThatIsNotLowercaseLettersDigitsAndUnderscores) {
  const auto path = TestPlugin("bad_name");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  auto library = outbox::PluginLibrary::Load(path);
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(library.status().message(), HasSubstr(path.string()));
  EXPECT_THAT(library.status().message(), HasSubstr("'Bad-Name'"));
}

TEST(PluginLoader, ReportsAMissingFileAsNotFound) {
  const auto path = TestPlugin("does_not_exist");
  ASSERT_FALSE(std::filesystem::exists(path));
  auto library = outbox::PluginLibrary::Load(path);
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(library.status().message(), HasSubstr(path.string()));
}

TEST(PluginLoader, LoadsEveryShippedPluginWithItsNameAndVersion) {
  for (const std::string name : {"log", "jsonl", "exec", "zmq_pub"}) {
    const auto path = outbox::PluginPath(ShippedPluginDir(), name);
    auto library = outbox::PluginLibrary::Load(path);
    ASSERT_TRUE(library.ok()) << library.status().ToString();
    EXPECT_EQ((*library)->name(), name);
    EXPECT_EQ((*library)->version(), "1.0.0") << name;
    EXPECT_EQ((*library)->path(), path);
    EXPECT_EQ((*library)->api().abi_version, TANDEM_PLUGIN_ABI_VERSION) << name;
  }
}

TEST(PluginLoader, APermanentFailureIsFailedPreconditionWithThePluginsMessage) {
  CapturedLog log;
  auto sink = MakeTestSink("permanent", "{}", ::testing::TempDir(), log);
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "test: refused for good");
}

TEST(PluginLoader, AFlakyPluginIsRetriedThenDelivers) {
  TempDir dir;
  CapturedLog log;
  auto sink =
      MakeTestSink("flaky", R"({"fail_times":2,"path":"attempts/flaky.jsonl"})", dir.path(), log);
  ASSERT_NE(sink, nullptr);
  v1::OutboxRecord record = MakeRecord(5, "n-1", "");
  std::vector<StatusCode> codes;
  for (uint32_t attempts = 0; attempts < 3; ++attempts) {
    record.set_attempts(attempts);
    codes.push_back(sink->Deliver(record).code());
  }
  EXPECT_EQ(codes, (std::vector<StatusCode>{StatusCode::kUnavailable, StatusCode::kUnavailable,
                                            StatusCode::kOk}));
  // Counted per notification: another one fails its own first attempts.
  EXPECT_EQ(sink->Deliver(MakeRecord(6, "n-2", "")).code(), StatusCode::kUnavailable);

  std::ifstream in(dir.path() / "attempts" / "flaky.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u);
  const nlohmann::json expected = nlohmann::json::parse(R"([
    {"notification_id":"n-1","delivery_id":5,"attempt":1,"result":"retry"},
    {"notification_id":"n-1","delivery_id":5,"attempt":2,"result":"retry"},
    {"notification_id":"n-1","delivery_id":5,"attempt":3,"result":"delivered"},
    {"notification_id":"n-2","delivery_id":6,"attempt":1,"result":"retry"}])");
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i], expected[i]) << i;
}

TEST(PluginLoaderDeathTest, ACrashingPluginIsCreatedAndAbortsTheProcessWhenDelivering) {
  CapturedLog log;
  auto sink = MakeTestSink("crash", "{}", ::testing::TempDir(), log);
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("").ok());
  // Deliver never returns here, so there is no status to look at.
  EXPECT_DEATH(sink->Deliver(MakeRecord(1, "n-1", "")).IgnoreError(), "");
}

}  // namespace
}  // namespace tandem::plugin_test
