#pragma once
// A real `tandemd` child process for the crash test and the ingest benchmark: started with
// posix_spawn, its standard error in a file, ready when it logs "ready endpoint=...", stopped
// with SIGTERM or killed with SIGKILL. No gtest here, so the benchmark can use it too.
// Every wait is bounded.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace tandem::test {

// Owns one tandemd child at a time. Not thread-safe: use from one thread. Kills (SIGKILL) a
// child still running when destroyed.
class TandemdProcess {
 public:
  // `binary` is the tandemd to run; `log_dir` receives one stderr file per start, named
  // `<name>.<n>.stderr`.
  TandemdProcess(std::string binary, std::filesystem::path log_dir, std::string name)
      : binary_(std::move(binary)), log_dir_(std::move(log_dir)), name_(std::move(name)) {}
  ~TandemdProcess() {
    if (pid_ > 0) Kill();
  }
  TandemdProcess(const TandemdProcess&) = delete;
  TandemdProcess& operator=(const TandemdProcess&) = delete;

  // Starts tandemd with `args`. Returns false if it could not be spawned.
  // REQUIRES: no child is running.
  bool Start(const std::vector<std::string>& args) {
    ++starts_;
    log_ = log_dir_ / (name_ + "." + std::to_string(starts_) + ".stderr");
    std::vector<std::string> text = {binary_};
    text.insert(text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : text) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, binary_.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    pid_ = rc == 0 ? pid : -1;
    return pid_ > 0;
  }

  // Polls the log every `poll` until the "ready endpoint=" line appears (returns the endpoint),
  // the child exits, or `limit` passes (both: nullopt).
  std::optional<std::string> WaitReady(
      std::chrono::milliseconds limit,
      std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
    static const std::regex kReady(R"(\bready endpoint=(\S+))");
    const auto until = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      const std::string log = Log();
      std::smatch m;
      if (std::regex_search(log, m, kReady)) return m[1].str();
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        last_status_ = status;
        break;
      }
      if (std::chrono::steady_clock::now() >= until) break;
      std::this_thread::sleep_for(poll);
    }
    return std::nullopt;
  }

  // SIGKILLs the child and reaps it. Returns its wait status.
  std::optional<int> Kill() { return SignalAndWait(SIGKILL, std::chrono::seconds(10)); }

  // SIGTERMs the child and waits up to `limit` for it to exit. Returns its wait status, or
  // nullopt if it did not exit (it is then still running).
  std::optional<int> Terminate(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return SignalAndWait(SIGTERM, limit);
  }

  // Waits up to `limit` for the child to exit on its own.
  std::optional<int> WaitExit(std::chrono::milliseconds limit) { return SignalAndWait(0, limit); }

  std::string Log() const {
    std::ifstream in(log_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  pid_t pid() const { return pid_; }
  std::optional<int> last_status() const { return last_status_; }

 private:
  std::optional<int> SignalAndWait(int signal, std::chrono::milliseconds limit) {
    if (pid_ <= 0) return last_status_;
    if (signal != 0) ::kill(pid_, signal);
    const auto until = std::chrono::steady_clock::now() + limit;
    while (true) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        last_status_ = status;
        return status;
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  std::string binary_;
  std::filesystem::path log_dir_;
  std::string name_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::optional<int> last_status_;
};

}  // namespace tandem::test
