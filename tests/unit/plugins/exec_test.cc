// The exec plugin (plugins/exec), loaded through the daemon's own plugin host and driven with
// real shell scripts each test writes into its own directory: what the command receives, how its
// exit becomes an outcome, and that Deliver returns by the timeout and leaves no process behind
// whatever the command does.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {
namespace {


using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Json(const v1::OutboxRecord& record) {
  auto json = outbox::NotificationJson(record);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? *json : "";
}

// Returns the pids of the processes in process group `pgid` that are alive (zombies, waiting
// for whoever adopted them to reap them, count as gone).
std::vector<pid_t> LiveMembersOf(pid_t pgid) {
  std::vector<pid_t> live;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadFile(entry.path() / "stat");
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses, so parse after the
    // last ')'.
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    pid_t pgrp = 0;
    if (!(fields >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') live.push_back(std::stoi(name));
  }
  return live;
}

// Waits, at most `limit`, until no process of group `pgid` is alive. Returns those still alive.
std::vector<pid_t> WaitUntilGroupGone(pid_t pgid, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  std::vector<pid_t> live = LiveMembersOf(pgid);
  while (!live.empty() && Clock::now() < deadline) {
    ::poll(nullptr, 0, 10);
    live = LiveMembersOf(pgid);
  }
  return live;
}

// Whether this process has any child, exited or not: the plugin must reap every one.
bool HasChildren() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 || errno != ECHILD;
}

pid_t ReadPid(const std::filesystem::path& path) {
  const std::string text = ReadFile(path);
  return text.empty() ? 0 : static_cast<pid_t>(std::stoi(text));
}

class ExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A SIGPIPE that reached this process would kill it: the tests below rely on that default.
    struct sigaction action {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &action), 0);
    ASSERT_EQ(action.sa_handler, SIG_DFL);
    // A Deliver that blocks past its timeout is the failure several tests look for: SIGALRM's
    // default action ends the test binary instead of leaving it hanging.
    ::alarm(30);
  }
  void TearDown() override {
    ::alarm(0);
    EXPECT_FALSE(HasChildren()) << "a command was left unreaped";
  }

  // Writes an executable /bin/sh script `name` with `body`; returns its path.
  std::filesystem::path Script(const std::string& name, const std::string& body) {
    const auto path = dir_.path() / name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(0755));
    return path;
  }

  // An exec configuration running `argv`, plus `extra` ("" or ", \"key\": value, ...").
  static std::string Config(const std::vector<std::string>& argv, const std::string& extra = "") {
    nlohmann::json command = argv;
    return R"({"command":)" + command.dump() + extra + "}";
  }

  Result<std::unique_ptr<outbox::PluginSink>> Create(const std::string& config_json) {
    auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "exec"));
    if (!library.ok()) return library.status();
    return outbox::PluginSink::Create(*library, "ops-script", config_json, dir_.path(),
                                      log_.logger);
  }

  std::unique_ptr<outbox::PluginSink> Make(const std::string& config_json) {
    return MakeSink("exec", config_json, dir_.path(), log_.logger, "ops-script");
  }

  TempDir dir_;
  CapturedLog log_;
};

TEST_F(ExecTest, RunsTheCommandWithTheJsonOnStdinAndTheDeliveryInItsEnvironment) {
  const std::string out = dir_.path().string();
  const auto script = Script("notify", "cat > '" + out +
                                           "/stdin'\n"
                                           "env > '" +
                                           out +
                                           "/env'\n"
                                           "printf '%s\\n' \"$@\" > '" +
                                           out +
                                           "/args'\n"
                                           "echo to stdout; echo to stderr >&2\n");
  ASSERT_EQ(::setenv("TANDEM_TEST_INHERITED", "from the daemon", 1), 0);
  auto sink = Make(
      Config({script.string(), "--quiet", "two words"}, R"(, "env": {"EXTRA_SETTING": "x=1"})"));
  ::unsetenv("TANDEM_TEST_INHERITED");
  ASSERT_NE(sink, nullptr);
  v1::OutboxRecord record = MakeRecord(7, "SI-1:timer:3:1", "ops@example.org", "ops-script");
  record.set_attempts(2);

  ASSERT_TRUE(sink->Deliver(record).ok());

  EXPECT_EQ(ReadFile(dir_.path() / "stdin"), Json(record));
  const std::vector<std::string> env = ReadLines(dir_.path() / "env");
  for (const char* expected :
       {"TANDEM_NOTIFICATION_ID=SI-1:timer:3:1", "TANDEM_DELIVERY_ID=7", "TANDEM_ATTEMPT=3",
        "TANDEM_ADDRESS=ops@example.org", "TANDEM_CHANNEL=ops-script", "EXTRA_SETTING=x=1",
        "TANDEM_TEST_INHERITED=from the daemon"}) {
    EXPECT_THAT(env, ::testing::Contains(expected));
  }
  EXPECT_EQ(ReadLines(dir_.path() / "args"), (std::vector<std::string>{"--quiet", "two words"}));
  // The command's output went to /dev/null, not into the daemon's log.
  for (const std::string& line : log_.lines())
    EXPECT_THAT(line, ::testing::Not(HasSubstr("to std")));
}

TEST_F(ExecTest, GivesTheCommandNoDescriptorButStdinStdoutAndStderr) {
  // A descriptor without close-on-exec, as a careless library of the daemon might leave open;
  // numbered high, so the shell's own descriptors never take its number.
  const int leaked = ::fcntl(STDERR_FILENO, F_DUPFD, 100);
  ASSERT_GE(leaked, 100);
  const std::string out = dir_.path().string();
  // Each check runs in a command substitution, so no redirection of the shell's own is in place
  // while /proc/$$/fd is looked at.
  const auto script = Script(
      "fds", "leaked=$(if [ -e /proc/$$/fd/" + std::to_string(leaked) +
                 " ]; then echo open; else echo closed; fi)\n"
                 "stdin=$(readlink /proc/$$/fd/0)\n"
                 "stdout=$(readlink /proc/$$/fd/1)\n"
                 "stderr=$(readlink /proc/$$/fd/2)\n"
                 "read -r _ _ _ _ pgid _ < /proc/$$/stat\n"
                 "printf '%s\\n' \"$leaked\" \"$stdin\" \"$stdout\" \"$stderr\" \"$pgid\" > '" +
                 out + "/fds'\n");
  auto sink = Make(Config({script.string()}));
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  ::close(leaked);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const std::vector<std::string> fds = ReadLines(dir_.path() / "fds");
  ASSERT_EQ(fds.size(), 5u);
  EXPECT_EQ(fds[0], "closed");
  EXPECT_THAT(fds[1], HasSubstr("pipe:"));
  EXPECT_EQ(fds[2], "/dev/null");
  EXPECT_EQ(fds[3], "/dev/null");
  // Its own process group: not the test's.
  EXPECT_NE(std::stoi(fds[4]), ::getpgrp());
}

TEST_F(ExecTest, ExitZeroIsDeliveredAndOtherStatusesAreRetried) {
  const auto script = Script("exit3", "cat > /dev/null\nexit 3\n");
  auto sink = Make(Config({script.string()}));
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr(script.string()));
  EXPECT_THAT(status.message(), HasSubstr("exited with status 3"));

  auto ok = Make(Config({Script("exit0", "cat > /dev/null\nexit 0\n").string()}));
  ASSERT_NE(ok, nullptr);
  EXPECT_TRUE(ok->Deliver(MakeRecord(2, "n-2", "")).ok());
}

TEST_F(ExecTest, AListedExitStatusIsPermanent) {
  const auto script = Script("exit3", "cat > /dev/null\nexit 3\n");
  auto sink = Make(Config({script.string()}, R"(, "permanent_exit_codes": [2, 3])"));
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("exited with status 3"));

  auto other =
      Make(Config({Script("exit4", "exit 4\n").string()}, R"(, "permanent_exit_codes": [2, 3])"));
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Deliver(MakeRecord(2, "n-2", "")).code(), StatusCode::kUnavailable);
}

TEST_F(ExecTest, ACommandKilledByASignalIsRetried) {
  auto sink = Make(Config({Script("killed", "kill -TERM $$\n").string()}));
  ASSERT_NE(sink, nullptr);
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("killed by signal " + std::to_string(SIGTERM)));
}

TEST_F(ExecTest, KillsTheWholeProcessGroupAtTheTimeout) {
  // The command ignores SIGTERM, starts a child, and waits for it: only SIGKILL to the group
  // ends both.
  const std::string out = dir_.path().string();
  const auto script = Script("hang",
                             "trap '' TERM\n"
                             "echo $$ > '" +
                                 out + "/pid.tmp'; mv '" + out + "/pid.tmp' '" + out +
                                 "/pid'\n"
                                 "sleep 60 &\n"
                                 "echo $! > '" +
                                 out + "/child.tmp'; mv '" + out + "/child.tmp' '" + out +
                                 "/child'\n"
                                 "wait\n");
  auto sink = Make(Config({script.string()}, R"(, "timeout_ms": 300)"));
  ASSERT_NE(sink, nullptr);
  const auto start = Clock::now();
  const Status status = sink->Deliver(MakeRecord(1, "n-1", ""));
  const auto took = Clock::now() - start;
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("timed out after 300 ms"));
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::seconds(2));
  const pid_t pgid = ReadPid(dir_.path() / "pid");
  ASSERT_GT(pgid, 0) << "the command never started";
  ASSERT_GT(ReadPid(dir_.path() / "child"), 0) << "the command never started its child";
  // The command itself was reaped at once (a reaped pid is gone: ESRCH), and nothing of its
  // group is left alive. Its child, adopted by init when the command died, may stay a zombie
  // until init reaps it; it is dead either way.
  EXPECT_EQ(::kill(pgid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(WaitUntilGroupGone(pgid, std::chrono::seconds(2)).empty())
      << "a process of the command's group is still alive";
}

TEST_F(ExecTest, ACommandThatNeverReadsALargeJsonTimesOut) {
  // 1 MB is far more than a pipe holds: writing it all would block forever.
  v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  record.mutable_effect()->mutable_notification()->set_body(std::string(1 << 20, 'b'));
  const auto script = Script("deaf", "exec sleep 60\n");
  auto sink = Make(Config({script.string()}, R"(, "timeout_ms": 300)"));
  ASSERT_NE(sink, nullptr);
  const auto start = Clock::now();
  const Status status = sink->Deliver(record);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("timed out"));
}

TEST_F(ExecTest, ACommandThatExitsWithoutReadingIsJudgedByItsExitStatus) {
  v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  record.mutable_effect()->mutable_notification()->set_body(std::string(1 << 20, 'b'));
  auto sink = Make(Config({Script("quick", "exit 0\n").string()}, R"(, "timeout_ms": 5000)"));
  ASSERT_NE(sink, nullptr);
  const auto start = Clock::now();
  EXPECT_TRUE(sink->Deliver(record).ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));
}

TEST_F(ExecTest, ACommandThatClosesItsStdinRaisesNoSigpipeInTheDaemon) {
  // The command closes its stdin while alive, so the plugin's next write fails with EPIPE and
  // raises SIGPIPE at this thread; had the plugin let it through, this process would be dead.
  // The command then lingers briefly so the close, not its exit, is what the writer meets.
  v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  record.mutable_effect()->mutable_notification()->set_body(std::string(1 << 20, 'b'));
  auto sink = Make(Config({Script("closer", "exec 0<&-\nsleep 0.2\nexit 0\n").string()},
                          R"(, "timeout_ms": 5000)"));
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->Deliver(record).ok());
  // Nothing pending, and the thread's signal mask is as it was.
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  sigset_t mask;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(sigismember(&mask, SIGPIPE), 0);
}

TEST_F(ExecTest, AChildHoldingThePipeOpenDoesNotHoldTheDelivery) {
  // The command leaves a child behind that keeps stdin open and never reads it, then exits 0 at
  // once: the delivery ends with the command, and the child goes with its process group.
  v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  record.mutable_effect()->mutable_notification()->set_body(std::string(1 << 20, 'b'));
  const std::string out = dir_.path().string();
  const auto script = Script("forker", "sleep 60 &\necho $$ > '" + out + "/pid.tmp'; mv '" + out +
                                           "/pid.tmp' '" + out + "/pid'\nexit 0\n");
  auto sink = Make(Config({script.string()}, R"(, "timeout_ms": 10000)"));
  ASSERT_NE(sink, nullptr);
  const auto start = Clock::now();
  EXPECT_TRUE(sink->Deliver(record).ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  const pid_t pgid = ReadPid(dir_.path() / "pid");
  ASSERT_GT(pgid, 0);
  EXPECT_TRUE(WaitUntilGroupGone(pgid, std::chrono::seconds(2)).empty())
      << "a process of the command's group is still alive";
}

// Refuses pidfd_open with ENOSYS in the calling process, as a container's seccomp filter that
// predates the call does. Returns whether the filter is in place. Irreversible: for a forked
// child only.
bool RefusePidfdOpen() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0 &&
         ::syscall(SYS_pidfd_open, ::getpid(), 0) < 0 && errno == ENOSYS;
}

TEST_F(ExecTest, WorksWithoutPidfdOpen) {
  // Without pidfd_open the plugin looks at the command every few milliseconds instead of
  // sleeping until it exits; outcomes, the timeout and reaping stay the same. The filter is
  // installed in a forked child, which delivers and reports in its exit status.
  v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  record.mutable_effect()->mutable_notification()->set_body(std::string(1 << 20, 'b'));
  auto reads = Make(Config({Script("reads", "cat > /dev/null\nexit 0\n").string()}));
  auto deaf = Make(Config({Script("deaf", "exec sleep 60\n").string()}, R"(, "timeout_ms": 300)"));
  auto failing = Make(Config({Script("failing", "exit 3\n").string()}));
  auto forker = Make(Config({Script("forker", "sleep 60 &\nexit 0\n").string()}));
  ASSERT_TRUE(reads && deaf && failing && forker);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << std::strerror(errno);
  if (pid == 0) {
    if (!RefusePidfdOpen()) ::_exit(10);
    if (!reads->Deliver(record).ok()) ::_exit(11);
    const auto start = Clock::now();
    const Status timed_out = deaf->Deliver(record);
    if (timed_out.code() != StatusCode::kUnavailable ||
        timed_out.message().find("timed out") == std::string::npos ||
        Clock::now() - start > std::chrono::seconds(2)) {
      ::_exit(12);
    }
    if (failing->Deliver(record).code() != StatusCode::kUnavailable) ::_exit(13);
    if (!forker->Deliver(record).ok()) ::_exit(14);
    ::_exit(HasChildren() ? 15 : 0);
  }
  int wait_status = 0;
  ASSERT_EQ(::waitpid(pid, &wait_status, 0), pid);
  ASSERT_TRUE(WIFEXITED(wait_status)) << "wait status " << wait_status;
  EXPECT_EQ(WEXITSTATUS(wait_status), 0)
      << "10: no seccomp filter; 11: reading command; 12: timeout; 13: exit 3; 14: a child "
         "holding stdin; 15: a command left unreaped";
}

TEST_F(ExecTest, RefusesACommandThatIsNotAnAbsolutePathToAnExecutable) {
  const auto plain = dir_.path() / "plain";
  std::ofstream(plain) << "#!/bin/sh\n";
  std::filesystem::permissions(plain, static_cast<std::filesystem::perms>(0644));
  const struct {
    std::string config;
    std::string expected;
  } cases[] = {
      {Config({"bin/true"}), "'bin/true' is not an absolute path"},
      {Config({(dir_.path() / "missing").string()}), std::strerror(ENOENT)},
      {Config({plain.string()}), "is not executable"},
      {Config({dir_.path().string()}), "is not a regular file"},
      {Config({}), "config key 'command': required"},
      {"{}", "config key 'command': required"},
      {R"({"command": "/bin/true"})", "config key 'command'"},
  };
  for (const auto& c : cases) {
    auto sink = Create(c.config);
    ASSERT_FALSE(sink.ok()) << c.config;
    EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument) << c.config;
    EXPECT_THAT(sink.status().message(), HasSubstr(c.expected)) << c.config;
  }
}

TEST_F(ExecTest, RefusesBadSettings) {
  const auto script = Script("ok", "exit 0\n").string();
  const struct {
    std::string extra;
    std::string expected;
  } cases[] = {
      {R"(, "permanent_exit_codes": [0])", "config key 'permanent_exit_codes'"},
      {R"(, "permanent_exit_codes": [256])", "config key 'permanent_exit_codes'"},
      {R"(, "permanent_exit_codes": ["3"])", "config key 'permanent_exit_codes'"},
      {R"(, "permanent_exit_codes": 3)", "config key 'permanent_exit_codes'"},
      {R"(, "timeout_ms": 0)", "config key 'timeout_ms'"},
      {R"(, "env": {"TANDEM_ATTEMPT": "9"})", "config key 'env.TANDEM_ATTEMPT'"},
      {R"(, "env": {"A=B": "9"})", "config key 'env.A=B'"},
      {R"(, "env": {"A": 9})", "config key 'env.A'"},
      {R"(, "timeout": 5)", "unknown config key 'timeout'"},
  };
  for (const auto& c : cases) {
    auto sink = Create(Config({script}, c.extra));
    ASSERT_FALSE(sink.ok()) << c.extra;
    EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument) << c.extra;
    EXPECT_THAT(sink.status().message(), HasSubstr(c.expected)) << c.extra;
  }
}

TEST_F(ExecTest, AcceptsAnyAddressAndPassesItOnlyInTheEnvironment) {
  const std::string out = dir_.path().string();
  const auto script = Script("addr", "printf '%s' \"$TANDEM_ADDRESS\" > '" + out +
                                         "/address'\n"
                                         "printf '%s' \"$#\" > '" +
                                         out + "/argc'\n");
  auto sink = Make(Config({script.string()}));
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("").ok());
  EXPECT_TRUE(sink->CheckAddress("anything at all; even $(this)").ok());
  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1", "la_dsp; rm -rf /")).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "address"), "la_dsp; rm -rf /");
  EXPECT_EQ(ReadFile(dir_.path() / "argc"), "0");
}

}  // namespace
}  // namespace tandem::plugin_test
