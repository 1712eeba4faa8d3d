#pragma once
// A real `tandemd` child process for the crash test and the ingest benchmark: started with
// posix_spawn, its standard error in a file, ready when it logs "ready endpoint=...", stopped
// with SIGTERM or killed with SIGKILL. No gtest here, so the benchmark can use it too.
// Every wait is bounded.

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/child_process.h"

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
    pid_ = Spawn(binary_, args, "/dev/null", "/dev/null", log_);
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
  std::optional<int> Kill() { return Signal(SIGKILL, std::chrono::seconds(10)); }

  // SIGTERMs the child and waits up to `limit` for it to exit. Returns its wait status, or
  // nullopt if it did not exit (it is then still running).
  std::optional<int> Terminate(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return Signal(SIGTERM, limit);
  }

  // Waits up to `limit` for the child to exit on its own.
  std::optional<int> WaitExit(std::chrono::milliseconds limit) { return Signal(0, limit); }

  // Sends `signal` (none when 0) and waits up to `limit` for the child to exit. Returns its wait
  // status, or nullopt while it runs (a zero `limit` does not wait).
  std::optional<int> Signal(int signal, std::chrono::milliseconds limit) {
    if (pid_ <= 0) return last_status_;
    std::optional<int> status = SignalAndWait(pid_, signal, limit);
    if (status.has_value()) {
      pid_ = -1;
      last_status_ = status;
    }
    return status;
  }

  std::string Log() const { return Slurp(log_); }
  pid_t pid() const { return pid_; }
  std::optional<int> last_status() const { return last_status_; }

 private:
  std::string binary_;
  std::filesystem::path log_dir_;
  std::string name_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int starts_ = 0;
  std::optional<int> last_status_;
};

}  // namespace tandem::test
