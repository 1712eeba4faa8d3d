// Scenario tests: each folder of tests/scenarios/ holding an `events.jsonl` is one test. The real
// `tandemctl simulate --json` runs on the events with the shipped workflows and calendar, and the
// timeline it prints is compared with the folder's `expected.jsonl` (tests/scenarios/README.md):
//
//   - every expected object must match one timeline line, in order (a subsequence): each of its
//     fields equals the line's field of that name (objects compared field by field the same way,
//     so a pattern names only the fields it pins; arrays and scalars compared whole);
//   - `{"absent": PATTERN}` holds when no line of the whole timeline matches PATTERN;
//   - every `rejected` line of the timeline must be matched by an expected line, so no scenario
//     passes while one of its events is silently refused;
//   - the run exits 0 with nothing on standard error.
//
// Lines of expected.jsonl starting with '#' are comments (the hand count of each date); blank
// lines are ignored.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/file.h"
#include "daemon/base/status.h"
#include "tests/integration/child_process.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kTandemctl[] = TANDEM_BINARY_DIR "/daemon/tandemctl/tandemctl";

fs::path ScenariosDir() { return fs::path(TANDEM_SOURCE_DIR) / "tests" / "scenarios"; }

// The scenario folders (those holding an events.jsonl), in name order.
std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(ScenariosDir(), ec)) {
    if (entry.is_directory() && fs::exists(entry.path() / "events.jsonl")) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// One line of expected.jsonl.
struct Expectation {
  int line = 0;  // in expected.jsonl, for messages
  bool absent = false;
  Json pattern;
};

// Returns whether `actual` has every field of `pattern` with an equal value; nested objects are
// compared the same way, everything else (arrays, strings, numbers, booleans) must be equal.
bool Matches(const Json& pattern, const Json& actual) {
  if (!pattern.is_object()) return pattern == actual;
  if (!actual.is_object()) return false;
  for (const auto& [key, value] : pattern.items()) {
    const auto it = actual.find(key);
    if (it == actual.end() || !Matches(value, *it)) return false;
  }
  return true;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool IsBlankOrComment(const std::string& line) {
  const auto first = std::find_if_not(line.begin(), line.end(),
                                      [](unsigned char c) { return std::isspace(c) != 0; });
  return first == line.end() || *first == '#';
}

// Parses expected.jsonl; records a failure for every line that is not a pattern.
std::vector<Expectation> ReadExpectations(const fs::path& path) {
  std::vector<Expectation> out;
  Result<std::string> text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << path << ": " << (text.ok() ? "" : text.status().ToString());
  if (!text.ok()) return out;
  int n = 0;
  for (const auto& line : SplitLines(*text)) {
    ++n;
    if (IsBlankOrComment(line)) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || j.empty()) {
      ADD_FAILURE() << path.string() << ":" << n << ": not a JSON object: " << line;
      continue;
    }
    Expectation e;
    e.line = n;
    if (j.contains("absent")) {
      if (j.size() != 1 || !j["absent"].is_object() || j["absent"].empty()) {
        ADD_FAILURE() << path.string() << ":" << n
                      << ": an absent marker is {\"absent\": {fields...}} alone";
        continue;
      }
      e.absent = true;
      e.pattern = j["absent"];
    } else {
      e.pattern = std::move(j);
    }
    out.push_back(std::move(e));
  }
  return out;
}

using RunResult = test::ProcessRun;

// Runs `tandemctl simulate --events <events> --json`, its output captured in files of `dir`.
RunResult Simulate(const fs::path& events, const fs::path& dir) {
  const RunResult process =
      test::RunToExit(kTandemctl, {"simulate", "--events", events.string(), "--json"}, "/dev/null",
                      dir / "stdout", dir / "stderr", std::chrono::seconds(120));
  EXPECT_TRUE(process.exited) << kTandemctl << " did not run to its end";
  return process;
}

// The timeline lines from `from` on, for a failure message.
std::string Dump(const std::vector<Json>& lines, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < lines.size(); ++i) {
    out += "  [" + std::to_string(i) + "] " + lines[i].dump() + "\n";
  }
  return out.empty() ? "  (none)\n" : out;
}

class ScenarioTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "scenario_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_P(ScenarioTest, TimelineMatchesExpected) {
  const fs::path folder = ScenariosDir() / GetParam();
  const fs::path expected_path = folder / "expected.jsonl";
  const std::vector<Expectation> expected = ReadExpectations(expected_path);
  const bool pins_something =
      std::any_of(expected.begin(), expected.end(), [](const Expectation& e) { return !e.absent; });
  ASSERT_TRUE(pins_something) << expected_path << " expects no line";

  const RunResult run = Simulate(folder / "events.jsonl", dir_);
  ASSERT_TRUE(run.exited) << "tandemctl did not exit; stderr: " << run.err;
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  std::vector<Json> lines;
  for (const auto& line : SplitLines(run.out)) {
    if (line.empty()) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    lines.push_back(std::move(j));
  }

  // Positive patterns in order, each taking the earliest line after the previous match (the
  // earliest choice never loses a subsequence match a later one would find).
  std::vector<bool> matched(lines.size(), false);
  std::size_t cursor = 0;
  for (const Expectation& e : expected) {
    if (e.absent) continue;
    std::size_t i = cursor;
    while (i < lines.size() && !Matches(e.pattern, lines[i])) ++i;
    if (i == lines.size()) {
      ADD_FAILURE() << expected_path.string() << ":" << e.line << ": no line matches "
                    << e.pattern.dump() << " after line [" << cursor << "]; lines from there:\n"
                    << Dump(lines, cursor);
      continue;  // later patterns are still looked for from the same place
    }
    matched[i] = true;
    cursor = i + 1;
  }
  for (const Expectation& e : expected) {
    if (!e.absent) continue;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_FALSE(Matches(e.pattern, lines[i]))
          << expected_path.string() << ":" << e.line << ": line [" << i
          << "] must be absent: " << lines[i].dump();
    }
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].value("kind", "") == "rejected") {
      EXPECT_TRUE(matched[i]) << "unexpected rejection (pin it in " << expected_path.string()
                              << " if it is meant): " << lines[i].dump();
    }
  }
}

std::string ScenarioName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(ScenarioNames()),
                         ScenarioName);

// The folder scan itself: an empty list would make the suite pass vacuously.
TEST(ScenarioFolders, AtLeastThirtyScenariosAreFound) {
  EXPECT_GE(ScenarioNames().size(), 30u) << ScenariosDir();
}

}  // namespace
}  // namespace tandem
