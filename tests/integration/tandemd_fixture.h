#pragma once
// What the tests that drive the real tandemd binary share: a tandemd child that must start and
// stop in time, a fixture with a fresh data directory, tandemctl runs, and the shipped
// serious_incident workflow's events as JSON lines. Time is moved with the clock_offset_seconds
// setting, so a deadline days away falls due seconds after start; every wait is a bounded poll.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/integration/child_process.h"
#include "tests/integration/tandemd_process.h"

namespace tandem::test {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kTandemd[] = TANDEM_BINARY_DIR "/daemon/tandemd/tandemd";
constexpr char kTandemctl[] = TANDEM_BINARY_DIR "/daemon/tandemctl/tandemctl";

// The bound on every wait for the daemon; generous for a loaded 2-core machine.
constexpr milliseconds kWait{10000};

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Polls `done` every 50 ms until it returns true or `limit` passes; returns its last answer.
inline bool WaitFor(const std::function<bool()>& done, milliseconds limit = kWait) {
  const auto until = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return true;
}

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (UTC).
inline int64_t EpochOf(const std::string& utc) {
  std::tm tm = {};
  std::istringstream in(utc);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
  return static_cast<int64_t>(::timegm(&tm));
}

inline int64_t RealNow() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The clock offset that makes the daemon's "now" `target` (approximately: from this instant).
inline int64_t OffsetTo(const std::string& target) { return EpochOf(target) - RealNow(); }

using CtlRun = test::ProcessRun;
using test::Slurp;

// One tandemd process (test::TandemdProcess, shared with the crash test), failing the test
// when it does not start, become ready or stop in time. Killed if the test did not stop it.
class Daemon {
 public:
  Daemon(fs::path dir, std::string name) : process_(kTandemd, std::move(dir), std::move(name)) {}

  // Starts tandemd with `args` (plus --ingest tcp://127.0.0.1:* unless given).
  void Start(std::vector<std::string> args) {
    if (std::find(args.begin(), args.end(), "--ingest") == args.end()) {
      args.push_back("--ingest");
      args.push_back("tcp://127.0.0.1:*");
    }
    EXPECT_TRUE(process_.Start(args)) << "cannot start " << kTandemd;
  }

  // Waits for the "ready" line and returns the endpoint it names; fails the test otherwise.
  std::string WaitReady() {
    const std::optional<std::string> endpoint = process_.WaitReady(kWait, milliseconds(50));
    EXPECT_TRUE(endpoint.has_value()) << "tandemd did not become ready:\n" << process_.Log();
    endpoint_ = endpoint.value_or("tcp://127.0.0.1:1");
    return endpoint_;
  }

  // Sends `signal`; for SIGTERM and SIGINT waits for the exit and returns the wait status.
  std::optional<int> Signal(int signal) {
    EXPECT_GT(process_.pid(), 0);
    if (process_.pid() <= 0) return std::nullopt;
    const bool waits = signal == SIGTERM || signal == SIGINT;
    auto status = process_.Signal(signal, waits ? kWait : milliseconds(0));
    return waits ? status : std::nullopt;
  }

  // Waits for the process to exit on its own; returns its wait status.
  std::optional<int> WaitExited() { return process_.WaitExit(kWait); }

  std::string Log() const { return process_.Log(); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  test::TandemdProcess process_;
  std::string endpoint_;
};

// An incident.reported event of the shipped serious_incident workflow, as a JSON line.
inline std::string Incident(const std::string& event_id, const std::string& case_id,
                     const std::string& aware_on = "2026-12-24") {
  Json e = {{"event_id", event_id},
            {"case_id", case_id},
            {"partnership", "staffordshire"},
            {"type", "incident.reported"},
            {"occurred_at", aware_on + "T10:15:00Z"},
            {"source", "lcs"},
            {"actor", "la"},
            {"facts",
             {{"became_aware_on", aware_on},
              {"outcome", "seriously_harmed"},
              {"abuse_or_neglect", "suspected"},
              {"location", "in_area"}}}};
  return e.dump();
}

inline std::string Submitted(const std::string& event_id, const std::string& case_id,
                      const std::string& on = "2027-01-04") {
  Json e = {{"event_id", event_id},
            {"case_id", case_id},
            {"partnership", "staffordshire"},
            {"type", "notification.submitted"},
            {"occurred_at", on + "T16:40:00Z"},
            {"actor", "la"},
            {"facts", {{"submitted_on", on}}}};
  return e.dump();
}

class TandemdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "tandemd_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
    data_ = dir_ / "data";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path Write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // A config file setting the clock offset; returns the tandemd arguments that use it.
  std::vector<std::string> Args(std::optional<int64_t> offset = std::nullopt) {
    std::vector<std::string> args = {"--data", data_.string()};
    if (offset.has_value()) {
      const fs::path config = Write("config" + std::to_string(++configs_) + ".yaml",
                                    "clock_offset_seconds: " + std::to_string(*offset) + "\n");
      args.push_back("--config");
      args.push_back(config.string());
    }
    return args;
  }

  CtlRun Ctl(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    const int n = ++runs_;
    const fs::path in = Write("ctl" + std::to_string(n) + ".stdin", stdin_text);
    const fs::path out = dir_ / ("ctl" + std::to_string(n) + ".stdout");
    const fs::path err = dir_ / ("ctl" + std::to_string(n) + ".stderr");
    CtlRun run = test::RunToExit(kTandemctl, args, in, out, err, milliseconds(30000));
    EXPECT_TRUE(run.exited) << "tandemctl did not exit by itself (hung, or a signal)";
    return run;
  }

  // Publishes the JSON lines through `tandemctl publish -` and returns the run.
  CtlRun Publish(const std::string& endpoint, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    return Ctl({"publish", "-", "--endpoint", endpoint, "--timeout", "10"}, text);
  }

  // `tandemctl case show --json`; null when it failed.
  Json Show(const std::string& endpoint, const std::string& case_id) {
    CtlRun run = Ctl({"case", "show", case_id, "--json", "--endpoint", endpoint});
    if (run.code != 0) return Json();
    Json j = Json::parse(run.out, nullptr, /*allow_exceptions=*/false);
    return j.is_discarded() ? Json() : j;
  }

  fs::path dir_;
  fs::path data_;
  int runs_ = 0;
  int configs_ = 0;
};

// The timeline entries of `kind` (and deadline `name`, when given) of a case view.
inline std::vector<Json> Timeline(const Json& view, std::string_view kind, std::string_view name = {}) {
  std::vector<Json> out;
  if (!view.is_object() || !view.contains("timeline")) return out;
  for (const auto& e : view["timeline"]) {
    if (e.value("kind", "") != kind) continue;
    if (!name.empty() && e.value("name", "") != name) continue;
    out.push_back(e);
  }
  return out;
}

inline std::string DeadlineStatus(const Json& view, std::string_view name) {
  if (!view.is_object()) return "";
  for (const auto& d : view["state"].value("deadlines", Json::array())) {
    if (d.value("name", "") == name) return d.value("status", "");
  }
  return "";
}

}  // namespace tandem::test
