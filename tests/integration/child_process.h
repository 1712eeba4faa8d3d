#pragma once
// Running the real binaries from tests and benchmarks: spawn one with its standard streams
// on files, wait for it with a bound, read what it wrote. No gtest here, so the benchmarks can
// use it too. Every wait is bounded.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace tandem::test {

// Returns the whole text of `path`, or "" if it cannot be read.
inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Starts `path args...` with standard input from `in` and standard output and error written to
// `out` and `err` (created or truncated). Returns its pid, or -1 if it could not be started.
inline pid_t Spawn(const std::string& path, const std::vector<std::string>& args,
                   const std::filesystem::path& in, const std::filesystem::path& out,
                   const std::filesystem::path& err) {
  std::vector<std::string> text = {path};
  text.insert(text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : text) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Sends `signal` to `pid` (none when 0), then waits up to `limit` for it to exit. Returns its
// wait status, or nullopt if it is still running.
inline std::optional<int> SignalAndWait(pid_t pid, int signal, std::chrono::milliseconds limit) {
  if (signal != 0) ::kill(pid, signal);
  const auto until = std::chrono::steady_clock::now() + limit;
  while (true) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// How a run to completion ended and what it wrote.
struct ProcessRun {
  // False when it did not exit by itself (a signal, a hang past the limit, or no start).
  bool exited = false;
  // The exit status, or the signal that ended it; -1 when neither.
  int code = -1;
  std::string out;
  std::string err;
};

// Runs `path args...` as Spawn does and waits for it, at most `limit`: past that it is killed
// and the run counts as not exited.
inline ProcessRun RunToExit(const std::string& path, const std::vector<std::string>& args,
                            const std::filesystem::path& in, const std::filesystem::path& out,
                            const std::filesystem::path& err, std::chrono::milliseconds limit) {
  ProcessRun run;
  const pid_t pid = Spawn(path, args, in, out, err);
  if (pid <= 0) return run;
  std::optional<int> status = SignalAndWait(pid, 0, limit);
  if (!status.has_value()) {
    SignalAndWait(pid, SIGKILL, std::chrono::seconds(10));
    return run;
  }
  run.exited = WIFEXITED(*status);
  run.code = run.exited ? WEXITSTATUS(*status) : (WIFSIGNALED(*status) ? WTERMSIG(*status) : -1);
  run.out = Slurp(out);
  run.err = Slurp(err);
  return run;
}

}  // namespace tandem::test
