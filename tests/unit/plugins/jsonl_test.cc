// The jsonl plugin (plugins/jsonl), loaded through the daemon's own plugin host: one line per
// delivery, equal to the notification JSON, appended and fsynced; whole lines only, even when a
// write fails half-way.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {
namespace {


using ::testing::HasSubstr;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Json(const v1::OutboxRecord& record) {
  auto json = outbox::NotificationJson(record);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? *json : "";
}

class JsonlTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<outbox::PluginSink>> Create(const std::string& config_json) {
    auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "jsonl"));
    if (!library.ok()) return library.status();
    return outbox::PluginSink::Create(*library, "archive", config_json, dir_.path(), log_.logger);
  }

  TempDir dir_;
  CapturedLog log_;
};

TEST_F(JsonlTest, AppendsOneLinePerDeliveryEqualToTheNotificationJson) {
  auto sink = MakeSink("jsonl", R"({"path":"out.jsonl"})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord first = MakeRecord(1, "n-1", "");
  v1::OutboxRecord second = MakeRecord(2, "n-2", "");
  second.mutable_effect()->mutable_notification()->set_subject("Fünf \"Tage\"\n\tnoch");
  ASSERT_TRUE(sink->Deliver(first).ok());
  ASSERT_TRUE(sink->Deliver(second).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "out.jsonl"), Json(first) + "\n" + Json(second) + "\n");
}

TEST_F(JsonlTest, ResolvesTheDefaultPathAgainstTheDataDirectory) {
  auto sink = MakeSink("jsonl", "{}", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  ASSERT_TRUE(sink->Deliver(record).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "notifications.jsonl"), Json(record) + "\n");
}

TEST_F(JsonlTest, UsesAnAbsolutePathAsItIs) {
  TempDir elsewhere;
  const auto path = elsewhere.path() / "abs.jsonl";
  auto sink = MakeSink("jsonl", R"({"path":")" + path.string() + R"("})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  ASSERT_TRUE(sink->Deliver(record).ok());
  EXPECT_EQ(ReadFile(path), Json(record) + "\n");
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "abs.jsonl"));
}

TEST_F(JsonlTest, CreatesNestedDirectoriesAndTheFileWithMode0640) {
  const mode_t umask_now = ::umask(022);
  ::umask(umask_now);
  auto sink = MakeSink("jsonl", R"({"path":"a/b/c/out.jsonl"})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  // At create, before any delivery: a configuration error shows at start-up.
  const auto path = dir_.path() / "a" / "b" / "c" / "out.jsonl";
  ASSERT_TRUE(std::filesystem::is_regular_file(path));
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640 & ~umask_now);
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  ASSERT_TRUE(sink->Deliver(record).ok());
  EXPECT_EQ(ReadFile(path), Json(record) + "\n");
}

TEST_F(JsonlTest, AppendsAcrossInstancesAndNeverTruncates) {
  const std::string config = R"({"path":"shared.jsonl"})";
  const v1::OutboxRecord r1 = MakeRecord(1, "n-1", "");
  const v1::OutboxRecord r2 = MakeRecord(2, "n-2", "");
  const v1::OutboxRecord r3 = MakeRecord(3, "n-3", "");
  const v1::OutboxRecord r4 = MakeRecord(4, "n-4", "");
  {
    auto sink = MakeSink("jsonl", config, dir_.path(), log_.logger);
    ASSERT_NE(sink, nullptr);
    ASSERT_TRUE(sink->Deliver(r1).ok());
  }
  // A restarted daemon appends; two live instances on one file interleave whole lines.
  auto a = MakeSink("jsonl", config, dir_.path(), log_.logger, "a");
  auto b = MakeSink("jsonl", config, dir_.path(), log_.logger, "b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->Deliver(r2).ok());
  ASSERT_TRUE(b->Deliver(r3).ok());
  ASSERT_TRUE(a->Deliver(r4).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "shared.jsonl"),
            Json(r1) + "\n" + Json(r2) + "\n" + Json(r3) + "\n" + Json(r4) + "\n");
}

TEST_F(JsonlTest, WritesWithoutFsyncWhenConfiguredSo) {
  auto sink = MakeSink("jsonl", R"({"path":"fast.jsonl","fsync":false})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  ASSERT_TRUE(sink->Deliver(record).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "fast.jsonl"), Json(record) + "\n");
}

TEST_F(JsonlTest, RefusesAPathUnderARegularFileNamingIt) {
  std::ofstream(dir_.path() / "a_file") << "not a directory\n";
  auto sink = Create(R"({"path":"a_file/out.jsonl"})");
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(sink.status().message(), HasSubstr((dir_.path() / "a_file" / "out.jsonl").string()));
  EXPECT_THAT(sink.status().message(), HasSubstr(std::strerror(ENOTDIR)));
}

TEST_F(JsonlTest, RefusesADirectoryAsThePath) {
  std::filesystem::create_directories(dir_.path() / "a_directory");
  auto sink = Create(R"({"path":"a_directory"})");
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(sink.status().message(), HasSubstr((dir_.path() / "a_directory").string()));
  EXPECT_THAT(sink.status().message(), HasSubstr(std::strerror(EISDIR)));
}

TEST_F(JsonlTest, RefusesUnknownAndMistypedKeys) {
  auto unknown = Create(R"({"file":"x.jsonl"})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown config key 'file'"));
  auto mistyped = Create(R"({"fsync":"yes"})");
  ASSERT_FALSE(mistyped.ok());
  EXPECT_THAT(mistyped.status().message(), HasSubstr("config key 'fsync'"));
  auto empty = Create(R"({"path":""})");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("config key 'path'"));
  // Nothing was created for a refused configuration.
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "notifications.jsonl"));
}

TEST_F(JsonlTest, TakesNoAddress) {
  auto sink = MakeSink("jsonl", "{}", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("").ok());
  const Status status = sink->CheckAddress("ops@example.org");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("no address"));
}

TEST_F(JsonlTest, ReportsAFullDiskAsUnavailableNamingThePath) {
  // Every write to /dev/full fails with ENOSPC, as on a full disk.
  ASSERT_TRUE(std::filesystem::exists("/dev/full"));
  auto sink = MakeSink("jsonl", R"({"path":"/dev/full"})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("/dev/full"));
  EXPECT_THAT(status.message(), HasSubstr(std::strerror(ENOSPC)));
}

// A file size limit a little above the file's current length makes the next write land partly
// (a short write), and the one after it fail with EFBIG: a line torn half-way, as a disk filling
// up mid-line would leave it. The limit is set in a forked child, so it does not outlive the
// check; the child delivers through the same open file and reports what it saw in its exit
// status, and the parent then reads the file.
TEST_F(JsonlTest, CutsOffALineWhoseWriteFailedHalfWay) {
  auto sink = MakeSink("jsonl", R"({"path":"torn.jsonl"})", dir_.path(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const auto path = dir_.path() / "torn.jsonl";
  const v1::OutboxRecord r1 = MakeRecord(1, "n-1", "");
  const v1::OutboxRecord r2 = MakeRecord(2, "n-2", "");
  const v1::OutboxRecord r3 = MakeRecord(3, "n-3", "");
  ASSERT_TRUE(sink->Deliver(r1).ok());
  const std::string before = ReadFile(path);
  ASSERT_EQ(before, Json(r1) + "\n");

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    // Past the limit a write raises SIGXFSZ (default: dump core); ignored, it fails with EFBIG.
    ::signal(SIGXFSZ, SIG_IGN);
    const rlim_t limit = before.size() + 10;
    const rlimit rl{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(2);
    const Status status = sink->Deliver(r2);
    const bool as_expected = status.code() == StatusCode::kUnavailable &&
                             status.message().find(path.string()) != std::string::npos &&
                             status.message().find(std::strerror(EFBIG)) != std::string::npos;
    ::_exit(as_expected ? 0 : 1);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(pid, &wait_status, 0), pid);
  ASSERT_TRUE(WIFEXITED(wait_status)) << "wait status " << wait_status;
  EXPECT_EQ(WEXITSTATUS(wait_status), 0)
      << "1: the delivery was not reported unavailable with the path and EFBIG; 2: setrlimit";
  // Nothing of the torn line is left, so the next line starts on a line of its own.
  EXPECT_EQ(ReadFile(path), before);
  ASSERT_TRUE(sink->Deliver(r3).ok());
  EXPECT_EQ(ReadFile(path), Json(r1) + "\n" + Json(r3) + "\n");
}

}  // namespace
}  // namespace tandem::plugin_test
