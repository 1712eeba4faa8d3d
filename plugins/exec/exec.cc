// The exec plugin: runs one configured command per delivery, the notification JSON on its
// stdin, and reads the outcome from its exit status. The command runs in a process group of its
// own, with stdout and stderr on /dev/null, no descriptors but 0-2, default signal handling, and
// the daemon's environment plus TANDEM_* variables naming the delivery. Deliver never blocks past
// the configured timeout, whatever the command does: it may not read its stdin, may leave
// children holding the pipe, may ignore SIGTERM. At the end of every delivery the command's
// whole process group is killed with SIGKILL and the command reaped, so nothing it started
// outlives the delivery and no zombie is left behind.

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

using Clock = std::chrono::steady_clock;

std::string Errno(int err) { return std::strerror(err); }

// The variables every run gets, naming the delivery. The configuration's `env` may not set them.
constexpr std::string_view kNotificationIdVar = "TANDEM_NOTIFICATION_ID";
constexpr std::string_view kDeliveryIdVar = "TANDEM_DELIVERY_ID";
constexpr std::string_view kAttemptVar = "TANDEM_ATTEMPT";
constexpr std::string_view kAddressVar = "TANDEM_ADDRESS";
constexpr std::string_view kChannelVar = "TANDEM_CHANNEL";
constexpr std::string_view kDeliveryVars[] = {kNotificationIdVar, kDeliveryIdVar, kAttemptVar,
                                              kAddressVar, kChannelVar};

// How often Deliver looks at the command when pidfd_open is unavailable (a seccomp filter that
// predates it): the command's exit is noticed at most this late.
constexpr std::chrono::milliseconds kExitPollInterval{10};

// What an instance runs. Immutable after create.
struct Command {
  std::vector<std::string> argv;
  std::chrono::milliseconds timeout{10000};
  std::set<int> permanent_exit_codes;
  // "NAME=value": the daemon's environment at create, less the TANDEM_* variables of each
  // delivery and those `env` sets, then the configuration's `env`. The daemon never changes its
  // environment once running (plugin.h), so a copy taken at create is the environment at every
  // delivery, and taking it there keeps the outbox threads off `environ`.
  std::vector<std::string> environment;
};

// Blocks SIGPIPE in the calling thread for its scope. A write to a pipe whose reader has gone
// fails with EPIPE and raises SIGPIPE at the writing thread; blocked, the signal stays pending
// instead of killing the daemon (its default action), and the destructor takes it off again with
// sigtimedwait before restoring the mask. A SIGPIPE that was already pending when the scope
// began is someone else's and is left alone. Per thread, so deliveries on other threads and the
// rest of the daemon keep their own signal handling; nothing process-wide is touched (plugin.h:
// plugins install no signal handlers).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (raised_ && !was_pending_) {
      const timespec zero{};
      while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  // Records that a write in this scope failed with EPIPE, so a SIGPIPE is pending.
  void Raised() { raised_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Returns a pidfd for `pid` (close-on-exec), or -1. Through syscall(2): glibc 2.36's
// <sys/pidfd.h> declares pidfd_open without C linkage, so C++ cannot link against it.
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// A started command: the leader of its own process group. Reap() kills the group and waits for
// the leader; the destructor does so if nobody did, so every path out of Deliver reaps.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid), pidfd_(PidfdOpen(pid)) {}
  ~Child() {
    if (pid_ > 0) Reap();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The pidfd (readable once the command has exited), or -1 when pidfd_open is unavailable.
  int pidfd() const { return pidfd_.get(); }

  // Returns whether the command has exited, without reaping it (WNOWAIT): until it is reaped its
  // pid, and so its process group id, cannot be reused, which keeps the kill in Reap aimed at
  // this command's group.
  bool Exited() const {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid_;
  }

  // Kills whatever is left of the command's process group (children it left behind, or the
  // command itself after a timeout), then reaps the command and returns its wait status. SIGKILL
  // cannot be caught or ignored, so the wait is short.
  int Reap() {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    pidfd_.Close();
    return status;
  }

 private:
  pid_t pid_;
  Fd pidfd_;
};

// Waits until `fd` is ready for `events`, the command has exited, or `deadline` passes,
// whichever comes first; fd -1 waits for the other two only. Returns the revents of `fd` (0 when
// it is not ready).
short WaitFor(const Child& child, int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || child.Exited()) return 0;
    pollfd fds[2] = {{fd, events, 0}, {child.pidfd(), POLLIN, 0}};
    pollfd* first = fd >= 0 ? fds : fds + 1;
    const nfds_t count = static_cast<nfds_t>((fd >= 0 ? 1 : 0) + (child.pidfd() >= 0 ? 1 : 0));
    const auto wait = child.pidfd() >= 0 ? left : std::min(left, kExitPollInterval);
    // A failed poll (EINTR, or ENOMEM) is simply tried again: the deadline still bounds the loop.
    const int ready = ::poll(first, count, static_cast<int>(wait.count()));
    if (ready > 0 && fd >= 0 && fds[0].revents != 0) return fds[0].revents;
  }
}

// Returns NAME of "NAME=value".
std::string_view VarName(std::string_view entry) { return entry.substr(0, entry.find('=')); }

class ExecInstance final : public Instance {
 public:
  // `channel` is the instance's name: the channel every delivery of it is for.
  ExecInstance(std::string channel, Command command)
      : channel_(std::move(channel)), command_(std::move(command)) {
    for (std::string& arg : command_.argv) argv_.push_back(arg.data());
    argv_.push_back(nullptr);
  }

  // The address reaches the command only as TANDEM_ADDRESS; what it means is the command's
  // business, so any address is accepted.
  std::string CheckAddress(std::string_view) const override { return ""; }

  Outcome Deliver(const tandem_plugin_delivery& delivery) override {
    const Clock::time_point deadline = Clock::now() + command_.timeout;
    const std::string& path = command_.argv.front();

    // The vector owns the strings envp points into.
    std::vector<std::string> vars = {
        std::string(kNotificationIdVar) + "=" + delivery.notification_id,
        std::string(kDeliveryIdVar) + "=" + std::to_string(delivery.delivery_id),
        std::string(kAttemptVar) + "=" + std::to_string(delivery.attempt),
        std::string(kAddressVar) + "=" + delivery.address,
        std::string(kChannelVar) + "=" + channel_};
    std::vector<char*> envp;
    envp.reserve(command_.environment.size() + vars.size() + 1);
    for (const std::string& entry : command_.environment)
      envp.push_back(const_cast<char*>(entry.c_str()));
    for (std::string& entry : vars) envp.push_back(entry.data());
    envp.push_back(nullptr);

    // O_CLOEXEC on both ends: a command another instance starts at the same moment on another
    // thread must not inherit this command's stdin pipe, or this command would never see EOF.
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return Outcome::Retry("command " + path + ": cannot make its stdin pipe: " + Errno(errno));
    }
    Fd read_end(pipe_fds[0]);
    Fd write_end(pipe_fds[1]);
    if (::fcntl(write_end.get(), F_SETFL, O_NONBLOCK) != 0) {
      return Outcome::Retry("command " + path + ": cannot make its stdin pipe: " + Errno(errno));
    }
    pid_t pid = -1;
    if (const int err = Spawn(read_end.get(), envp.data(), &pid); err != 0) {
      return Outcome::Retry("command " + path + ": cannot start: " + Errno(err));
    }
    Child child(pid);
    read_end.Close();

    bool timed_out = false;
    if (const std::string why = WriteStdin(child, write_end.get(), delivery, deadline, &timed_out);
        !why.empty()) {
      child.Reap();
      return Outcome::Retry("command " + path + ": " + why);
    }
    // EOF on the command's stdin.
    write_end.Close();
    if (!timed_out) {
      WaitFor(child, -1, 0, deadline);
      timed_out = !child.Exited();
    }
    const int status = child.Reap();
    if (timed_out) {
      return Outcome::Retry("command " + path + ": timed out after " +
                            std::to_string(command_.timeout.count()) +
                            " ms; its process group was killed");
    }
    if (WIFEXITED(status)) {
      const int code = WEXITSTATUS(status);
      if (code == 0) return Outcome::Delivered();
      const std::string what = "command " + path + ": exited with status " + std::to_string(code);
      if (command_.permanent_exit_codes.contains(code)) {
        return Outcome::Permanent(what + " (one of its permanent_exit_codes)");
      }
      return Outcome::Retry(what);
    }
    if (WIFSIGNALED(status)) {
      // sigabbrev_np, unlike strsignal, is safe to call from several threads.
      const char* abbrev = ::sigabbrev_np(WTERMSIG(status));
      return Outcome::Retry("command " + path + ": killed by signal " +
                            std::to_string(WTERMSIG(status)) +
                            (abbrev != nullptr ? std::string(" (SIG") + abbrev + ")" : ""));
    }
    return Outcome::Retry("command " + path + ": ended with wait status " + std::to_string(status));
  }

 private:
  // Starts the command with `stdin_fd` as its stdin. Returns 0 and sets *pid, or an errno.
  int Spawn(int stdin_fd, char* const* envp, pid_t* pid) const {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    if (const int err = ::posix_spawn_file_actions_init(&actions); err != 0) return err;
    if (const int err = ::posix_spawnattr_init(&attr); err != 0) {
      ::posix_spawn_file_actions_destroy(&actions);
      return err;
    }
    // stdout and stderr go to /dev/null: what the command prints could carry personal data, and
    // the daemon's logs never do (README.md). Then every descriptor but 0-2 is closed, including
    // any a library of the daemon opened without O_CLOEXEC.
    int err = ::posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    if (err == 0) {
      err = ::posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    if (err == 0) err = ::posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    if (err == 0) err = ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    // Its own process group (pgid = its pid), so a timeout can kill everything it started; an
    // empty signal mask and default dispositions, whatever the daemon's threads block or ignore.
    sigset_t empty;
    sigset_t defaults;
    sigemptyset(&empty);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    if (err == 0) {
      err = ::posix_spawnattr_setflags(
          &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (err == 0) err = ::posix_spawnattr_setpgroup(&attr, 0);
    if (err == 0) err = ::posix_spawnattr_setsigmask(&attr, &empty);
    if (err == 0) err = ::posix_spawnattr_setsigdefault(&attr, &defaults);
    if (err == 0) {
      err = ::posix_spawn(pid, argv_.front(), &actions, &attr, argv_.data(), envp);
    }
    ::posix_spawnattr_destroy(&attr);
    ::posix_spawn_file_actions_destroy(&actions);
    return err;
  }

  // Writes the JSON to the command's stdin without ever blocking: the pipe is non-blocking and
  // each write waits (poll) for room only until `deadline`. Stops early, without error, when
  // the command exits or closes its stdin (EPIPE): its exit status then says what happened.
  // Sets *timed_out when the deadline passed first. Returns "" or why writing failed.
  static std::string WriteStdin(const Child& child, int fd, const tandem_plugin_delivery& delivery,
                                Clock::time_point deadline, bool* timed_out) {
    SigpipeBlock sigpipe;
    std::string_view left(delivery.json, delivery.json_size);
    while (!left.empty()) {
      const ssize_t n = ::write(fd, left.data(), left.size());
      if (n >= 0) {
        left.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (errno == EPIPE) {
        sigpipe.Raised();
        return "";
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return "cannot write to its stdin: " + Errno(errno);
      if (WaitFor(child, fd, POLLOUT, deadline) == 0) {
        // Not writable: the command exited, or the deadline passed.
        *timed_out = !child.Exited();
        return "";
      }
    }
    return "";
  }

  const std::string channel_;
  Command command_;
  std::vector<char*> argv_;  // points into command_.argv
};

// Returns "" if `path` is an absolute path to an executable regular file, else why not.
std::string CheckExecutable(const std::string& path) {
  if (path.empty() || path.front() != '/') return "'" + path + "' is not an absolute path";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "'" + path + "': " + Errno(errno);
  if (!S_ISREG(st.st_mode)) return "'" + path + "' is not a regular file";
  if (::access(path.c_str(), X_OK) != 0) return "'" + path + "' is not executable: " + Errno(errno);
  return "";
}

std::unique_ptr<Instance> MakeExec(std::string_view name, Config& config,
                                   const tandem_plugin_host& /*host*/, std::string* error) {
  std::set<int> permanent_exit_codes;
  for (const int64_t code : config.Ints("permanent_exit_codes", 1, 255)) {
    permanent_exit_codes.insert(static_cast<int>(code));
  }
  Command command;
  command.argv = config.Strings("command");
  command.timeout = config.Millis("timeout_ms", command.timeout);
  command.permanent_exit_codes = std::move(permanent_exit_codes);
  const std::vector<std::pair<std::string, std::string>> env = config.StringMap("env");
  if (command.argv.empty()) config.Fail("command", "required: a non-empty list of strings (argv)");
  for (const std::string& arg : command.argv) {
    if (arg.find('\0') != std::string::npos) config.Fail("command", "an argument contains NUL");
  }
  std::set<std::string, std::less<>> overridden(std::begin(kDeliveryVars), std::end(kDeliveryVars));
  for (const auto& [var, value] : env) {
    if (var.empty() || var.find_first_of(std::string_view("=\0", 2)) != std::string::npos ||
        value.find('\0') != std::string::npos) {
      config.Fail("env." + var,
                  "a variable's name may not be empty or contain '=' or NUL, "
                  "nor its value NUL");
    } else if (overridden.contains(var)) {
      config.Fail("env." + var, "set by the plugin for every delivery");
    }
  }
  if (std::string why = config.Finish(); !why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  if (std::string why = CheckExecutable(command.argv.front()); !why.empty()) {
    *error = "config key 'command': " + why;
    return nullptr;
  }
  for (const auto& [var, value] : env) overridden.insert(var);
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (!overridden.contains(VarName(*entry))) command.environment.emplace_back(*entry);
  }
  for (const auto& [var, value] : env) command.environment.push_back(var + "=" + value);
  return std::make_unique<ExecInstance>(std::string(name), std::move(command));
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("exec", "1.0.0", &tandem::plugins::MakeExec)
