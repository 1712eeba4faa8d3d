// End-to-end tests of `tandemctl simulate`: each test runs the real binary as a child process on
// an events file (the shipped examples in workflows/examples/, or a file the test writes in its
// own temporary directory) and checks the timeline it prints, its standard error and its exit
// status against the contract in daemon/tandemctl/simulate.h and shared/domain/events.md.
//
// Every expected date was counted by hand against workflows/calendars/england-and-wales.json and
// checked again with an independent count; the comment next to each gives the count.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
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
// The bound on one simulate run (the longest take well under a second).
constexpr std::chrono::milliseconds kLimit{120000};

fs::path Example(std::string_view name) {
  return fs::path(TANDEM_SOURCE_DIR) / "workflows" / "examples" / name;
}

const fs::path& ShippedWorkflow() {
  static const fs::path path = fs::path(TANDEM_SOURCE_DIR) / "workflows" / "serious_incident.yaml";
  return path;
}

std::string Slurp(const fs::path& path) {
  Result<std::string> text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << path;
  return text.ok() ? *text : std::string();
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// What one run of the binary produced.
struct RunResult {
  // False when a signal ended the process; `code` is then the signal number.
  bool exited = false;
  int code = -1;
  std::string out;
  std::string err;
  // Standard output parsed as JSON lines (runs with --json only).
  std::vector<Json> lines;
};

// Returns `key` of `j`, or null when `j` is not an object or lacks it.
Json Field(const Json& j, std::string_view key) {
  if (!j.is_object()) return Json();
  auto it = j.find(key);
  return it == j.end() ? Json() : *it;
}

// The timeline lines of `kind` (and, when given, of `case_id` and deadline `name`).
std::vector<Json> Select(const std::vector<Json>& lines, std::string_view kind,
                         std::string_view case_id = {}, std::string_view name = {}) {
  std::vector<Json> out;
  for (const auto& l : lines) {
    if (Field(l, "kind") != kind) continue;
    if (!case_id.empty() && Field(l, "case_id") != case_id) continue;
    if (!name.empty() && Field(l, "name") != name) continue;
    out.push_back(l);
  }
  return out;
}

// The lines an event (or timer) caused, by its event_id (or "timer:N").
std::vector<Json> CausedBy(const std::vector<Json>& lines, std::string_view cause) {
  std::vector<Json> out;
  for (const auto& l : lines) {
    if (Field(l, "cause") == cause) out.push_back(l);
  }
  return out;
}

// Returns the one line of `matches`; records a failure and returns null unless there is exactly
// one.
Json One(const std::vector<Json>& matches, std::string_view what) {
  EXPECT_EQ(matches.size(), 1u) << what;
  return matches.size() == 1 ? matches.front() : Json();
}

// The first (not recomputed) deadline line for `name` of `case_id`.
Json FirstDeadline(const std::vector<Json>& lines, std::string_view case_id,
                   std::string_view name) {
  std::vector<Json> first;
  for (const auto& d : Select(lines, "deadline", case_id, name)) {
    if (Field(d, "recomputed") != true) first.push_back(d);
  }
  return One(first, std::string(case_id) + " deadline " + std::string(name));
}

std::vector<std::string> SkippedDates(const Json& deadline) {
  std::vector<std::string> dates;
  const Json skipped = Field(Field(deadline, "explanation"), "skipped");
  if (!skipped.is_array()) return dates;
  for (const auto& s : skipped) {
    const Json date = Field(s, "date");
    dates.push_back(date.is_string() ? date.get<std::string>() : "?");
  }
  return dates;
}

std::string SkipReason(const Json& deadline, std::string_view date) {
  const Json skipped = Field(Field(deadline, "explanation"), "skipped");
  if (!skipped.is_array()) return {};
  for (const auto& s : skipped) {
    if (Field(s, "date") == date && Field(s, "reason").is_string()) {
      return Field(s, "reason").get<std::string>();
    }
  }
  return {};
}

bool IsDate(const Json& j) {
  static const std::regex kDate(R"(\d{4}-\d{2}-\d{2})");
  return j.is_string() && std::regex_match(j.get<std::string>(), kDate);
}

bool IsText(const Json& j) { return j.is_string() && !j.get<std::string>().empty(); }

// Checks the fields the contract gives a deadline line: `name`, `due` and `explanation`.
void ExpectExplainedDeadline(const Json& d) {
  EXPECT_TRUE(IsText(Field(d, "name"))) << d;
  EXPECT_TRUE(IsDate(Field(d, "due"))) << d;
  const Json x = Field(d, "explanation");
  ASSERT_TRUE(x.is_object()) << d;
  for (const char* key : {"rule", "anchor", "source", "confidence", "edition", "calendar"}) {
    EXPECT_TRUE(IsText(Field(x, key))) << key << " in " << d;
  }
  EXPECT_TRUE(IsDate(Field(x, "anchor_on"))) << d;
  EXPECT_TRUE(Field(x, "clamped").is_boolean()) << d;
  ASSERT_TRUE(Field(x, "skipped").is_array()) << d;
  for (const auto& s : Field(x, "skipped")) {
    EXPECT_TRUE(IsDate(Field(s, "date"))) << d;
    EXPECT_TRUE(IsText(Field(s, "reason"))) << d;
  }
  if (x.contains("variant")) {
    EXPECT_TRUE(IsText(Field(x, "variant"))) << d;
  }
}

// Checks what every timeline line carries: a known `kind`, a `case_id` and a UTC `at`, with the
// lines in time order; and the fields of deadline, met and rejected lines.
void ExpectWellFormedTimeline(const std::vector<Json>& lines) {
  static const std::set<std::string> kKinds = {
      "state",    "deadline",  "warning",    "breach",    "met",         "notification",
      "rejected", "cancelled", "assessment", "corrected", "case_started"};
  static const std::regex kUtc(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)");
  std::string previous;
  for (const auto& l : lines) {
    const Json kind = Field(l, "kind");
    ASSERT_TRUE(kind.is_string()) << l;
    EXPECT_EQ(kKinds.count(kind.get<std::string>()), 1u) << l;
    EXPECT_TRUE(Field(l, "case_id").is_string()) << l;
    const Json at = Field(l, "at");
    ASSERT_TRUE(at.is_string()) << l;
    const std::string at_text = at.get<std::string>();
    EXPECT_TRUE(std::regex_match(at_text, kUtc)) << l;
    // Fixed-width UTC instants sort as text.
    EXPECT_LE(previous, at_text) << "out of order: " << l;
    previous = at_text;

    if (kind == "deadline") ExpectExplainedDeadline(l);
    if (kind == "met") {
      EXPECT_TRUE(IsText(Field(l, "name"))) << l;
      EXPECT_TRUE(Field(l, "late").is_boolean()) << l;
    }
    if (kind == "rejected") {
      EXPECT_TRUE(Field(l, "event_id").is_string()) << l;
      EXPECT_TRUE(IsText(Field(l, "reason"))) << l;
      EXPECT_TRUE(IsText(Field(l, "code"))) << l;
    }
  }
}

class SimulateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "simulate_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `text` to `name` in the test's directory and returns its path.
  fs::path Write(std::string_view name, const std::string& text) {
    const fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // Runs `tandemctl simulate <args>` with `stdin_text` on its standard input.
  RunResult Simulate(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    const int n = ++runs_;
    const fs::path in = Write("run" + std::to_string(n) + ".stdin", stdin_text);
    const fs::path out = dir_ / ("run" + std::to_string(n) + ".stdout");
    const fs::path err = dir_ / ("run" + std::to_string(n) + ".stderr");

    std::vector<std::string> argv = {"simulate"};
    argv.insert(argv.end(), args.begin(), args.end());
    const test::ProcessRun process = test::RunToExit(kTandemctl, argv, in, out, err, kLimit);
    RunResult run;
    EXPECT_TRUE(process.exited) << kTandemctl << " did not run to its end";
    run.exited = process.exited;
    run.code = process.code;
    run.out = process.out;
    run.err = process.err;
    if (std::find(args.begin(), args.end(), "--json") != args.end()) {
      for (const auto& line : SplitLines(run.out)) {
        if (line.empty()) continue;
        Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
        if (!j.is_discarded()) run.lines.push_back(std::move(j));
      }
    }
    return run;
  }

  fs::path dir_;
  int runs_ = 0;
};

// The shipped example's first case became aware on Thu 24 Dec 2026 and its second on Tue
// 23 Mar 2027 (Easter 2027: Good Friday 26 March, Easter Monday 29 March).
TEST_F(SimulateTest, ShippedExampleGivesStatutoryDueDates) {
  const RunResult run =
      Simulate({"--events", Example("serious_incident.jsonl").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ASSERT_FALSE(run.lines.empty());
  ExpectWellFormedTimeline(run.lines);
  EXPECT_TRUE(Select(run.lines, "rejected").empty());

  // 24 Dec + 5 working days: 25 Dec (Christmas Day), 26-27 (weekend), 28 Dec (Boxing Day
  // substitute) skipped; 29, 30, 31 Dec are days 1-3; 1 Jan (New Year's Day), 2-3 Jan (weekend)
  // skipped; 4 Jan is day 4, Tue 5 Jan 2027 day 5.
  const Json sin = FirstDeadline(run.lines, "SI-2026-0147", "sin_notification");
  EXPECT_EQ(Field(sin, "due"), "2027-01-05");
  const Json x = Field(sin, "explanation");
  EXPECT_EQ(Field(x, "anchor"), "incident.reported.became_aware_on");
  EXPECT_EQ(Field(x, "anchor_on"), "2026-12-24");
  EXPECT_EQ(SkippedDates(sin),
            (std::vector<std::string>{"2026-12-25", "2026-12-26", "2026-12-27", "2026-12-28",
                                      "2027-01-01", "2027-01-02", "2027-01-03"}));
  EXPECT_NE(SkipReason(sin, "2026-12-25").find("Christmas Day"), std::string::npos);
  EXPECT_NE(SkipReason(sin, "2026-12-28").find("Boxing Day"), std::string::npos);
  EXPECT_NE(SkipReason(sin, "2027-01-01").find("New Year"), std::string::npos);
  for (const char* key : {"rule", "source", "confidence", "edition", "calendar"}) {
    EXPECT_TRUE(Field(x, key).is_string() && !Field(x, key).get<std::string>().empty()) << key;
  }
  EXPECT_EQ(Field(x, "clamped"), false);
  EXPECT_EQ(Field(x, "confidence"), "v");
  EXPECT_FALSE(x.contains("variant")) << "the shipped default is not a variant";
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0147", "partners_informed"), "due"),
            "2027-01-05");

  // Notified Mon 4 Jan 2027; + 15 working days (three weeks of weekdays) = Mon 25 Jan 2027.
  const Json rr = FirstDeadline(run.lines, "SI-2026-0147", "rapid_review");
  EXPECT_EQ(Field(rr, "due"), "2027-01-25");
  EXPECT_EQ(Field(Field(rr, "explanation"), "anchor"), "notification.submitted.submitted_on");
  EXPECT_EQ(Field(Field(rr, "explanation"), "anchor_on"), "2027-01-04");

  // Partners decided on 21 Jan 2027: + 6 calendar months = 21 Jul 2027, no clamping.
  const Json lcspr = FirstDeadline(run.lines, "SI-2026-0147", "lcspr_publication");
  EXPECT_EQ(Field(lcspr, "due"), "2027-07-21");
  EXPECT_EQ(Field(Field(lcspr, "explanation"), "anchor"), "rapid_review.submitted.decided_on");
  EXPECT_EQ(Field(Field(lcspr, "explanation"), "anchor_on"), "2027-01-21");
  EXPECT_EQ(Field(Field(lcspr, "explanation"), "clamped"), false);

  // Publication Wed 14 Jul 2027, not counted; 7 working days back: 13, 12, 9, 8, 7, 6, 5 Jul.
  const Json notice = FirstDeadline(run.lines, "SI-2026-0147", "publication_notice");
  EXPECT_EQ(Field(notice, "due"), "2027-07-05");
  EXPECT_EQ(Field(Field(notice, "explanation"), "anchor_on"), "2027-07-14");

  for (const char* name : {"sin_notification", "partners_informed", "rapid_review",
                           "publication_notice", "lcspr_publication"}) {
    const Json met = One(Select(run.lines, "met", "SI-2026-0147", name), name);
    EXPECT_EQ(Field(met, "late"), false) << name;
  }
  EXPECT_TRUE(Select(run.lines, "breach", "SI-2026-0147").empty());

  // 23 Mar 2027 + 5 working days: 24, 25 Mar are days 1-2; Good Friday, the weekend and Easter
  // Monday skipped; 30, 31 Mar, Thu 1 Apr 2027 are days 3-5.
  const Json sin2 = FirstDeadline(run.lines, "SI-2027-0009", "sin_notification");
  EXPECT_EQ(Field(sin2, "due"), "2027-04-01");
  EXPECT_EQ(SkippedDates(sin2),
            (std::vector<std::string>{"2027-03-26", "2027-03-27", "2027-03-28", "2027-03-29"}));
  EXPECT_NE(SkipReason(sin2, "2027-03-26").find("Good Friday"), std::string::npos);
  EXPECT_NE(SkipReason(sin2, "2027-03-29").find("Easter Monday"), std::string::npos);

  // The breach comes at the end of 1 April in London (BST): 23:00 UTC.
  const Json breach = One(Select(run.lines, "breach", "SI-2027-0009", "sin_notification"),
                          "SI-2027-0009 sin_notification breach");
  EXPECT_EQ(Field(breach, "at"), "2027-04-01T23:00:00Z");
  EXPECT_EQ(Field(breach, "due"), "2027-04-01");
  EXPECT_EQ(Field(breach, "suppressed"), false);
  const Json late = One(Select(run.lines, "met", "SI-2027-0009", "sin_notification"),
                        "SI-2027-0009 sin_notification met");
  EXPECT_EQ(Field(late, "late"), true);
  EXPECT_EQ(Field(late, "met_on"), "2027-04-06");
  EXPECT_LT(Field(breach, "at").get<std::string>(), Field(late, "at").get<std::string>());

  // 6 Apr 2027 + 15 working days = Tue 27 Apr 2027.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2027-0009", "rapid_review"), "due"), "2027-04-27");

  const auto last_state = [&](std::string_view case_id) {
    const auto states = Select(run.lines, "state", case_id);
    return states.empty() ? Json() : states.back();
  };
  EXPECT_EQ(Field(last_state("SI-2026-0147"), "to"), "published");
  EXPECT_EQ(Field(last_state("SI-2026-0147"), "final"), true);
  EXPECT_EQ(Field(last_state("SI-2027-0009"), "to"), "closed_no_lcspr");
  EXPECT_EQ(Field(last_state("SI-2027-0009"), "final"), true);
}

TEST_F(SimulateTest, HumanOutputGivesTheSameDueDates) {
  const std::string events = Example("serious_incident.jsonl").string();
  const RunResult json = Simulate({"--events", events, "--json"});
  const RunResult text = Simulate({"--events", events});
  ASSERT_TRUE(text.exited);
  EXPECT_EQ(text.code, 0);
  EXPECT_EQ(text.err, "");
  const std::vector<std::string> lines = SplitLines(text.out);
  const auto mentioned = [&](const std::string& case_id, const std::string& name,
                             const std::string& due) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(case_id) != std::string::npos && l.find(name) != std::string::npos &&
             l.find(due) != std::string::npos;
    });
  };
  const std::vector<Json> deadlines = Select(json.lines, "deadline");
  ASSERT_EQ(deadlines.size(), 8u);
  for (const auto& d : deadlines) {
    EXPECT_TRUE(mentioned(Field(d, "case_id").get<std::string>(),
                          Field(d, "name").get<std::string>(), Field(d, "due").get<std::string>()))
        << d;
  }
  EXPECT_TRUE(mentioned("SI-2026-0147", "sin_notification", "2027-01-05"));
  EXPECT_TRUE(mentioned("SI-2026-0147", "rapid_review", "2027-01-25"));
  EXPECT_TRUE(mentioned("SI-2026-0147", "lcspr_publication", "2027-07-21"));
  EXPECT_TRUE(mentioned("SI-2026-0147", "publication_notice", "2027-07-05"));
  EXPECT_TRUE(mentioned("SI-2027-0009", "sin_notification", "2027-04-01"));
  EXPECT_NE(text.out.find("2026-12-25 Christmas Day"), std::string::npos);
  EXPECT_NE(text.out.find("2027-03-26 Good Friday"), std::string::npos);
}

// The second case of the shipped example on its own: aware Tue 23 Mar 2027, notification due
// Thu 1 Apr 2027, whose end in London is 23:00 UTC.
constexpr char kEasterIncident[] =
    R"({"eventId":"u-1","caseId":"SI-2027-0009","partnership":"staffordshire","type":"incident.reported","occurredAt":"2027-03-23T14:00:00Z","actor":"la","facts":{"became_aware_on":"2027-03-23","child_dob":"2009-11-30","outcome":"died","abuse_or_neglect":"known","location":"outside_england"}})"
    "\n";

TEST_F(SimulateTest, UntilStopsTimersAtTheEndOfThatLondonDay) {
  const std::string events = Write("easter.jsonl", kEasterIncident).string();

  const RunResult before = Simulate({"--events", events, "--until", "2027-03-31", "--json"});
  ASSERT_TRUE(before.exited);
  EXPECT_EQ(before.code, 0);
  ExpectWellFormedTimeline(before.lines);
  EXPECT_TRUE(Select(before.lines, "breach").empty());
  // The reminder 2 working days before the due day (counted back: 31, 30 March) fires at the
  // start of Tue 30 March in London (BST).
  const Json warning = One(Select(before.lines, "warning", "SI-2027-0009", "sin_notification"),
                           "warning before --until");
  EXPECT_EQ(Field(warning, "at"), "2027-03-29T23:00:00Z");
  for (const auto& l : before.lines)
    EXPECT_LE(Field(l, "at"), std::string("2027-03-31T23:00:00Z")) << l;

  const RunResult on_the_day = Simulate({"--events", events, "--until", "2027-04-01", "--json"});
  ASSERT_TRUE(on_the_day.exited);
  EXPECT_EQ(on_the_day.code, 0);
  const Json breach = One(Select(on_the_day.lines, "breach", "SI-2027-0009", "sin_notification"),
                          "breach with --until on the due day");
  EXPECT_EQ(Field(breach, "at"), "2027-04-01T23:00:00Z");

  const RunResult all = Simulate({"--events", events, "--json"});
  ASSERT_TRUE(all.exited);
  EXPECT_EQ(all.code, 0);
  EXPECT_EQ(Select(all.lines, "breach", "SI-2027-0009", "sin_notification").size(), 1u);
  EXPECT_EQ(Select(all.lines, "breach", "SI-2027-0009", "partners_informed").size(), 1u);
}

// --until bounds the timers even when the file goes on past that day: the shipped example's
// second case breaches on 1 April 2027, after the --until day.
TEST_F(SimulateTest, UntilFiresNoTimerPastThatDayWhenLaterEventsFollow) {
  const RunResult run = Simulate(
      {"--events", Example("serious_incident.jsonl").string(), "--until", "2027-03-31", "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_TRUE(Select(run.lines, "breach").empty()) << run.out;
  for (const auto& kind : {"warning", "breach"}) {
    for (const auto& l : Select(run.lines, kind)) {
      EXPECT_LE(Field(l, "at"), std::string("2027-03-31T23:00:00Z"))
          << "timer fired after --until: " << l;
    }
  }
}

struct ExpectedRejection {
  const char* event_id;
  const char* code;
  // Words the reason must contain: the fact, type, state or case it is about.
  std::vector<std::string> words;
};

// serious_incident_bad_input.jsonl: one case (aware Tue 15 Apr 2025) with a bad event of each
// kind between good ones, and a malformed line 5.
const std::vector<ExpectedRejection>& BadInputRejections() {
  static const std::vector<ExpectedRejection> rejections = {
      {"bi-02", "already_exists", {"SI-2025-0311", "already exists"}},
      {"bi-03", "invalid_argument", {"informed_on"}},
      {"bi-06", "invalid_argument", {"unknown event type", "notification.sent"}},
      {"bi-07", "failed_precondition", {"rapid_review.submitted", "screening"}},
      {"bi-08", "invalid_argument", {"unknown fact", "submitted_by"}},
      {"bi-09", "invalid_argument", {"missing", "submitted_on"}},
      {"bi-11", "not_found", {"SI-2025-0399"}},
  };
  return rejections;
}

void ExpectBadInputRejections(const std::vector<Json>& lines) {
  for (const auto& r : BadInputRejections()) {
    const std::vector<Json> caused = CausedBy(lines, r.event_id);
    // One rejected line and nothing else: the event changed nothing.
    ASSERT_EQ(caused.size(), 1u) << r.event_id;
    const Json& rejected = caused.front();
    EXPECT_EQ(Field(rejected, "kind"), "rejected") << r.event_id;
    EXPECT_EQ(Field(rejected, "event_id"), r.event_id);
    EXPECT_EQ(Field(rejected, "code"), r.code) << r.event_id;
    const Json reason = Field(rejected, "reason");
    ASSERT_TRUE(reason.is_string()) << rejected;
    for (const auto& word : r.words) {
      EXPECT_NE(reason.get<std::string>().find(word), std::string::npos)
          << r.event_id << ": '" << word << "' not in: " << reason;
    }
  }

  // The good events still apply, as if the bad ones had never been sent.
  const Json informed = One(CausedBy(lines, "bi-04"), "bi-04");
  EXPECT_EQ(Field(informed, "kind"), "met");
  EXPECT_EQ(Field(informed, "name"), "partners_informed");
  EXPECT_EQ(Field(informed, "met_on"), "2025-04-16");

  // Aware Tue 15 Apr 2025 + 5 working days: 16, 17 Apr; Good Friday 18, the weekend, Easter
  // Monday 21 skipped; 22, 23, Thu 24 Apr 2025.
  EXPECT_EQ(Field(FirstDeadline(lines, "SI-2025-0311", "sin_notification"), "due"), "2025-04-24");
  const std::vector<Json> notified = CausedBy(lines, "bi-10");
  ASSERT_EQ(Select(notified, "met").size(), 1u);
  EXPECT_EQ(Field(Select(notified, "met").front(), "name"), "sin_notification");
  EXPECT_EQ(Field(Select(notified, "met").front(), "late"), false);
  ASSERT_EQ(Select(notified, "state").size(), 1u);
  EXPECT_EQ(Field(Select(notified, "state").front(), "from"), "screening");
  EXPECT_EQ(Field(Select(notified, "state").front(), "to"), "notified");
  // Notified Wed 23 Apr 2025 + 15 working days, Early May bank holiday (5 May) skipped: Thu
  // 15 May 2025.
  ASSERT_EQ(Select(notified, "deadline").size(), 1u);
  EXPECT_EQ(Field(Select(notified, "deadline").front(), "name"), "rapid_review");
  EXPECT_EQ(Field(Select(notified, "deadline").front(), "due"), "2025-05-15");
  EXPECT_EQ(SkipReason(Select(notified, "deadline").front(), "2025-05-05"),
            "Early May bank holiday");

  const std::vector<Json> reviewed = CausedBy(lines, "bi-12");
  ASSERT_EQ(Select(reviewed, "met").size(), 1u);
  EXPECT_EQ(Field(Select(reviewed, "met").front(), "name"), "rapid_review");
  EXPECT_EQ(Field(Select(reviewed, "met").front(), "late"), false);
  ASSERT_EQ(Select(reviewed, "state").size(), 1u);
  EXPECT_EQ(Field(Select(reviewed, "state").front(), "to"), "closed_no_lcspr");

  // The repeated starting event restarted nothing: the case's deadlines are the two of its
  // incident.reported and the rapid review of its notification.
  EXPECT_EQ(Select(lines, "deadline", "SI-2025-0311").size(), 3u);
  EXPECT_TRUE(Select(lines, "breach", "SI-2025-0311").empty());
  // No case was opened for the event that does not start one.
  for (const auto& l : lines) {
    if (Field(l, "case_id") == "SI-2025-0399") {
      EXPECT_EQ(Field(l, "kind"), "rejected") << l;
    }
  }
}

TEST_F(SimulateTest, BadInputRejectsEachBadEventAndAppliesTheRest) {
  const fs::path events = Example("serious_incident_bad_input.jsonl");
  const RunResult run = Simulate({"--events", events.string(), "--json"});
  ASSERT_TRUE(run.exited);
  // 2 only because line 5 is not an event; the engine's rejections alone would give 0.
  EXPECT_EQ(run.code, 2);
  ExpectWellFormedTimeline(run.lines);
  EXPECT_EQ(Select(run.lines, "rejected").size(), BadInputRejections().size() + 1);
  ExpectBadInputRejections(run.lines);

  std::vector<Json> malformed;
  for (const auto& r : Select(run.lines, "rejected")) {
    if (r.contains("line")) malformed.push_back(r);
  }
  const Json line5 = One(malformed, "the malformed line's rejection");
  EXPECT_EQ(Field(line5, "line"), 5);
  EXPECT_EQ(Field(line5, "code"), "invalid_argument");
  ASSERT_TRUE(Field(line5, "reason").is_string());
  EXPECT_NE(Field(line5, "reason").get<std::string>().find("line 5"), std::string::npos);
  // Standard error names the file and the line.
  EXPECT_NE(run.err.find("serious_incident_bad_input.jsonl"), std::string::npos) << run.err;
  EXPECT_TRUE(std::regex_search(run.err, std::regex(R"(jsonl: ?5:)"))) << run.err;
}

// --partnerships: a partnership's own settings apply to its cases and are named in the
// explanation (here the unresolved start of the rapid review, counted from awareness).
TEST_F(SimulateTest, PartnershipSettingsApplyToItsCasesAndAreExplained) {
  const std::string events = Example("serious_incident.jsonl").string();
  const RunResult plain = Simulate({"--events", events, "--json"});
  Write("partnerships/staffordshire.yaml", R"yaml(partnership: staffordshire
workflows:
  - workflow: serious_incident
    source: Staffordshire rapid review procedure
    parameters:
      - {name: rapid_review_counts_from, value: became_aware}
)yaml");
  const RunResult own =
      Simulate({"--events", events, "--json", "--partnerships", (dir_ / "partnerships").string()});
  ASSERT_TRUE(own.exited);
  EXPECT_EQ(own.code, 0) << own.err;
  const Json before = FirstDeadline(plain.lines, "SI-2026-0147", "rapid_review");
  const Json after = FirstDeadline(own.lines, "SI-2026-0147", "rapid_review");
  EXPECT_NE(Field(before, "due"), Field(after, "due"));
  EXPECT_EQ(Field(Field(after, "explanation"), "anchor"), "incident.reported.became_aware_on");
  const Json overrides = Field(Field(after, "explanation"), "overrides");
  ASSERT_TRUE(overrides.is_array()) << after;
  ASSERT_EQ(overrides.size(), 1u) << after;
  EXPECT_NE(overrides[0].get<std::string>().find(
                "parameter rapid_review_counts_from = became_aware (partnership staffordshire"),
            std::string::npos)
      << overrides;
  EXPECT_FALSE(Field(before, "explanation").contains("overrides"));

  // A file naming a parameter the workflow lacks stops the run, naming the file and line.
  Write("partnerships/staffordshire.yaml", R"yaml(partnership: staffordshire
workflows:
  - workflow: serious_incident
    parameters:
      - {name: rapid_review_starts, value: became_aware}
)yaml");
  const RunResult bad =
      Simulate({"--events", events, "--json", "--partnerships", (dir_ / "partnerships").string()});
  ASSERT_TRUE(bad.exited);
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("staffordshire.yaml:5: field 'name': unknown parameter "
                         "'rapid_review_starts'"),
            std::string::npos)
      << bad.err;
}

// Text from the input reaches the JSON lines (an unknown event type is quoted in the reason;
// case and event ids are echoed): quotes, backslashes, control characters and non-ASCII text
// must come out escaped and parse back to the same strings.
TEST_F(SimulateTest, JsonLinesEscapeTextFromTheInput) {
  // C"1\ é as a case id, a type with a tab and a control character, written as JSON escapes.
  const fs::path events =
      Write("odd.jsonl", R"({"eventId": "e\"1", "caseId": "C\"1\\ \u00e9", "partnership": "p", )"
                         R"("type": "odd\ttype\u0001", "occurredAt": "2026-03-02T10:00:00Z"})"
                         "\n");
  const RunResult run = Simulate({"--events", events.string(), "--json"});
  ASSERT_TRUE(run.exited);
  ASSERT_EQ(run.lines.size(), 1u) << run.out;
  const Json& l = run.lines.front();
  EXPECT_EQ(Field(l, "kind"), "rejected");
  EXPECT_EQ(Field(l, "case_id"), "C\"1\\ \xc3\xa9");
  EXPECT_EQ(Field(l, "event_id"), "e\"1");
  EXPECT_EQ(Field(l, "event_type"), "odd\ttype\x01");
  EXPECT_NE(Field(l, "reason").get<std::string>().find("'odd\ttype\x01'"), std::string::npos);
  // Escaped as JSON writers commonly do: \" \\ \t \u0001, UTF-8 kept as it is.
  EXPECT_NE(run.out.find(R"("case_id":"C\"1\\ )"
                         "\xc3\xa9\""),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find(R"("event_type":"odd\ttype\u0001")"), std::string::npos) << run.out;
}

TEST_F(SimulateTest, BadInputWithoutTheMalformedLineExitsZero) {
  std::vector<std::string> lines = SplitLines(Slurp(Example("serious_incident_bad_input.jsonl")));
  ASSERT_EQ(lines.size(), 12u);
  ASSERT_TRUE(Json::accept(lines[3]));
  ASSERT_FALSE(Json::accept(lines[4]));
  lines.erase(lines.begin() + 4);
  const fs::path events = Write("bad_events_only.jsonl", JoinLines(lines));

  const RunResult run = Simulate({"--events", events.string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);
  EXPECT_EQ(Select(run.lines, "rejected").size(), BadInputRejections().size());
  for (const auto& r : Select(run.lines, "rejected")) EXPECT_FALSE(r.contains("line")) << r;
  ExpectBadInputRejections(run.lines);
}

// A malformed line is reported on one line of standard error in the `file:line: problem` form
// that editors and grep understand (CONVENTIONS C4, C14).
TEST_F(SimulateTest, NamesAMalformedLineAsFileColonLineOnOneStderrLine) {
  const fs::path events = Example("serious_incident_bad_input.jsonl");
  const RunResult run = Simulate({"--events", events.string()});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 2);
  std::vector<std::string> err_lines;
  for (const auto& l : SplitLines(run.err)) {
    if (!l.empty()) err_lines.push_back(l);
  }
  ASSERT_EQ(err_lines.size(), 1u) << run.err;
  EXPECT_EQ(err_lines[0].rfind(events.string() + ":5: ", 0), 0u) << err_lines[0];
}

TEST_F(SimulateTest, AppliesEventsInOccurredAtOrder) {
  const std::string text = Slurp(Example("serious_incident.jsonl"));
  std::vector<std::string> lines = SplitLines(text);
  ASSERT_EQ(lines.size(), 11u);
  std::reverse(lines.begin(), lines.end());
  const fs::path reversed = Write("reversed.jsonl", JoinLines(lines));

  const RunResult in_order =
      Simulate({"--events", Example("serious_incident.jsonl").string(), "--json"});
  const RunResult out_of_order = Simulate({"--events", reversed.string(), "--json"});
  ASSERT_TRUE(out_of_order.exited);
  EXPECT_EQ(out_of_order.code, 0);
  EXPECT_EQ(out_of_order.err, "");
  ExpectWellFormedTimeline(out_of_order.lines);
  // The file began with the last event (a publication), which would be refused if applied first.
  EXPECT_TRUE(Select(out_of_order.lines, "rejected").empty());
  EXPECT_EQ(Field(FirstDeadline(out_of_order.lines, "SI-2026-0147", "rapid_review"), "due"),
            "2027-01-25");
  EXPECT_EQ(out_of_order.out, in_order.out);
}

TEST_F(SimulateTest, ReadsStdinWithEitherFieldNameStyle) {
  // The first event spells the envelope in snake_case, the second in lowerCamelCase.
  const std::string events =
      R"({"event_id":"sd-1","case_id":"SI-2024-0990","partnership":"norfolk","type":"incident.reported","occurred_at":"2024-12-20T09:00:00Z","actor":"la","facts":{"became_aware_on":"2024-12-20","incident_on":"2024-12-19","child_dob":"2016-02-29","outcome":"seriously_harmed","abuse_or_neglect":"known","location":"in_area"}})"
      "\n"
      R"({"eventId":"sd-2","caseId":"SI-2024-0990","partnership":"norfolk","type":"notification.submitted","occurredAt":"2024-12-20T16:30:00Z","actor":"la","facts":{"submitted_on":"2024-12-20"}})"
      "\n";
  const RunResult run = Simulate({"--events", "-", "--json"}, events);
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);
  EXPECT_TRUE(Select(run.lines, "rejected").empty());
  // Fri 20 Dec 2024 + 5 working days: 23, 24 Dec; 25, 26 Dec and the weekends skipped; 27, 30,
  // Tue 31 Dec 2024.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2024-0990", "sin_notification"), "due"),
            "2024-12-31");
  const Json met = One(Select(run.lines, "met", "SI-2024-0990", "sin_notification"), "met");
  EXPECT_EQ(Field(met, "late"), false);
  EXPECT_EQ(Field(met, "met_on"), "2024-12-20");
  // Fri 20 Dec 2024 + 15 working days = Wed 15 Jan 2025 (domain notes 3.1, worked example).
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2024-0990", "rapid_review"), "due"), "2025-01-15");
}

TEST_F(SimulateTest, RapidReviewCountsFromAwarenessWhenConfigured) {
  std::string yaml = Slurp(ShippedWorkflow());
  const std::string from = "default: notification_submitted";
  const auto at = yaml.find(from);
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, from.size(), "default: became_aware");
  Write("workflows/serious_incident.yaml", yaml);

  const RunResult run = Simulate({"--events", Example("serious_incident.jsonl").string(),
                                  "--workflows", (dir_ / "workflows").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);

  // Aware Thu 24 Dec 2026 + 15 working days: 29, 30, 31 Dec, then 4-8, 11-15 Jan are days 1-13,
  // 18 and Tue 19 Jan 2027 days 14-15 (rather than 25 Jan from the notification).
  const Json rr = FirstDeadline(run.lines, "SI-2026-0147", "rapid_review");
  EXPECT_EQ(Field(rr, "due"), "2027-01-19");
  const Json x = Field(rr, "explanation");
  EXPECT_EQ(Field(x, "anchor"), "incident.reported.became_aware_on");
  EXPECT_EQ(Field(x, "anchor_on"), "2026-12-24");
  ASSERT_TRUE(Field(x, "variant").is_string()) << rr;
  EXPECT_NE(Field(x, "variant").get<std::string>().find("rapid_review_counts_from"),
            std::string::npos);
  // The rapid review went in on 22 Jan: now breached and late.
  EXPECT_EQ(
      Field(One(Select(run.lines, "breach", "SI-2026-0147", "rapid_review"), "breach"), "due"),
      "2027-01-19");
  EXPECT_EQ(Field(One(Select(run.lines, "met", "SI-2026-0147", "rapid_review"), "met"), "late"),
            true);

  // Aware Tue 23 Mar 2027 + 15 working days, Easter skipped: Thu 15 Apr 2027.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2027-0009", "rapid_review"), "due"), "2027-04-15");
  // The other deadlines do not move.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0147", "sin_notification"), "due"),
            "2027-01-05");
  EXPECT_FALSE(Field(FirstDeadline(run.lines, "SI-2026-0147", "sin_notification"), "explanation")
                   .contains("variant"));
}

TEST_F(SimulateTest, BrokenWorkflowExitsOneNamingFileLineAndField) {
  std::vector<std::string> lines = SplitLines(Slurp(ShippedWorkflow()));
  const auto it = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("offset: {working_days: 5}") != std::string::npos;
  });
  ASSERT_NE(it, lines.end());
  const std::size_t line_number = static_cast<std::size_t>(it - lines.begin()) + 1;
  it->replace(it->find("5}"), 2, "-5}");
  Write("workflows/serious_incident.yaml", JoinLines(lines));

  const RunResult run = Simulate({"--events", Example("serious_incident.jsonl").string(),
                                  "--workflows", (dir_ / "workflows").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("serious_incident.yaml:" + std::to_string(line_number) + ": field"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("working_days"), std::string::npos) << run.err;
}

TEST_F(SimulateTest, MissingEventsFileExitsOne) {
  const fs::path missing = dir_ / "no_such_events.jsonl";
  const RunResult run = Simulate({"--events", missing.string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_NE(run.err.find("no_such_events.jsonl"), std::string::npos) << run.err;
}

TEST_F(SimulateTest, BadUntilExitsOne) {
  for (const char* until : {"2027-02-30", "tomorrow", "2027-2-3", "01/04/2027"}) {
    const RunResult run = Simulate(
        {"--events", Example("serious_incident.jsonl").string(), "--until", until, "--json"});
    ASSERT_TRUE(run.exited) << until;
    EXPECT_EQ(run.code, 1) << until;
    EXPECT_EQ(run.out, "") << until;
    EXPECT_NE(run.err.find("--until"), std::string::npos) << until << ": " << run.err;
  }
}

// simulate.h: exit status 1 "when ... an option is bad".
TEST_F(SimulateTest, BadOptionExitsOne) {
  const RunResult unknown = Simulate(
      {"--events", Example("serious_incident.jsonl").string(), "--json", "--no-such-option"});
  ASSERT_TRUE(unknown.exited);
  EXPECT_EQ(unknown.code, 1) << unknown.err;
  EXPECT_EQ(unknown.out, "");

  const RunResult no_events = Simulate({"--json"});
  ASSERT_TRUE(no_events.exited);
  EXPECT_EQ(no_events.code, 1) << no_events.err;
  EXPECT_EQ(no_events.out, "");
}

TEST_F(SimulateTest, CalendarEndingBeforeTheDeadlineRejectsTheEvent) {
  // The shipped data for 2025 and 2026 only: it ends on 31 Dec 2026.
  const Json shipped = Json::parse(
      Slurp(fs::path(TANDEM_SOURCE_DIR) / "workflows" / "calendars" / "england-and-wales.json"));
  Json events = Json::array();
  for (const auto& e : shipped["england-and-wales"]["events"]) {
    const std::string date = e["date"].get<std::string>();
    if (date.rfind("2025-", 0) == 0 || date.rfind("2026-", 0) == 0) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 16u);
  const Json short_calendar = {
      {"england-and-wales", {{"division", "england-and-wales"}, {"events", events}}}};
  const fs::path calendar = Write("short-calendar.json", short_calendar.dump(1));

  const std::string text =
      // Inside the data: aware Mon 1 Jun 2026, due Mon 8 Jun 2026.
      R"({"eventId":"cal-1","caseId":"SI-2026-0301","partnership":"norfolk","type":"incident.reported","occurredAt":"2026-06-01T10:00:00Z","facts":{"became_aware_on":"2026-06-01","outcome":"died","abuse_or_neglect":"known","location":"in_area"}})"
      "\n"
      // Past it: 24 Dec 2026 + 5 working days needs 1 Jan 2027 onwards.
      R"({"eventId":"cal-2","caseId":"SI-2026-0147","partnership":"staffordshire","type":"incident.reported","occurredAt":"2026-12-24T10:15:00Z","facts":{"became_aware_on":"2026-12-24","outcome":"seriously_harmed","abuse_or_neglect":"suspected","location":"in_area"}})"
      "\n"
      R"({"eventId":"cal-3","caseId":"SI-2026-0147","partnership":"staffordshire","type":"partners.informed","occurredAt":"2026-12-29T09:00:00Z","facts":{"informed_on":"2026-12-29"}})"
      "\n";
  const fs::path events_file = Write("calendar_events.jsonl", text);

  const RunResult run =
      Simulate({"--events", events_file.string(), "--calendar", calendar.string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  ExpectWellFormedTimeline(run.lines);

  const Json inside = FirstDeadline(run.lines, "SI-2026-0301", "sin_notification");
  EXPECT_EQ(Field(inside, "due"), "2026-06-08");
  ASSERT_TRUE(Field(Field(inside, "explanation"), "calendar").is_string());
  EXPECT_NE(Field(Field(inside, "explanation"), "calendar")
                .get<std::string>()
                .find("short-calendar.json"),
            std::string::npos);

  const Json rejected = One(CausedBy(run.lines, "cal-2"), "cal-2");
  EXPECT_EQ(Field(rejected, "kind"), "rejected");
  EXPECT_EQ(Field(rejected, "code"), "out_of_range");
  ASSERT_TRUE(Field(rejected, "reason").is_string());
  const std::string reason = Field(rejected, "reason").get<std::string>();
  EXPECT_NE(reason.find("sin_notification"), std::string::npos) << reason;
  // The date the data ends (the anchor day is a fact value, which messages do not quote).
  EXPECT_NE(reason.find("2026-12-31"), std::string::npos) << reason;
  // No case was opened.
  EXPECT_EQ(Field(One(CausedBy(run.lines, "cal-3"), "cal-3"), "code"), "not_found");
}

// serious_incident_correction.jsonl: recorded as aware Thu 23 Dec 2027, corrected the same day
// to Tue 21 Dec 2027; notified; then withdrawn.
TEST_F(SimulateTest, FactsCorrectionRecomputesOpenDeadlines) {
  const RunResult run =
      Simulate({"--events", Example("serious_incident_correction.jsonl").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);
  EXPECT_TRUE(Select(run.lines, "rejected").empty());

  // 23 Dec 2027 + 5 working days: 24 Dec; the weekend, 27 and 28 Dec substitutes skipped; 29,
  // 30, 31 Dec; New Year's weekend and the 3 Jan substitute skipped; Tue 4 Jan 2028.
  const Json first = FirstDeadline(run.lines, "SI-2027-0415", "sin_notification");
  EXPECT_EQ(Field(first, "due"), "2028-01-04");
  EXPECT_EQ(SkippedDates(first),
            (std::vector<std::string>{"2027-12-25", "2027-12-26", "2027-12-27", "2027-12-28",
                                      "2028-01-01", "2028-01-02", "2028-01-03"}));

  const std::vector<Json> caused = CausedBy(run.lines, "co-2");
  const Json corrected = One(Select(caused, "corrected"), "corrected");
  EXPECT_EQ(Field(corrected, "facts"), Json::array({"incident.reported.became_aware_on"}));
  // 21 Dec 2027 + 5 working days: 22, 23, 24 Dec, the weekend and both substitutes skipped, 29,
  // Thu 30 Dec 2027.
  for (const char* name : {"sin_notification", "partners_informed"}) {
    const Json moved = One(Select(caused, "deadline", "SI-2027-0415", name), name);
    EXPECT_EQ(Field(moved, "due"), "2027-12-30") << name;
    EXPECT_EQ(Field(moved, "recomputed"), true) << name;
    EXPECT_EQ(Field(Field(moved, "explanation"), "anchor_on"), "2027-12-21") << name;
    EXPECT_EQ(SkippedDates(moved),
              (std::vector<std::string>{"2027-12-25", "2027-12-26", "2027-12-27", "2027-12-28"}))
        << name;
  }
  // The reminder and the outcome follow the corrected day.
  for (const auto& w : Select(run.lines, "warning", "SI-2027-0415", "sin_notification")) {
    EXPECT_EQ(Field(w, "due"), "2027-12-30") << w;
  }
  const Json met = One(Select(run.lines, "met", "SI-2027-0415", "sin_notification"), "met");
  EXPECT_EQ(Field(met, "due"), "2027-12-30");
  EXPECT_EQ(Field(met, "late"), false);
  EXPECT_TRUE(Select(run.lines, "breach", "SI-2027-0415").empty());
}

TEST_F(SimulateTest, WithdrawalCancelsOpenDeadlines) {
  const RunResult run =
      Simulate({"--events", Example("serious_incident_correction.jsonl").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);

  // Notified Wed 29 Dec 2027 + 15 working days, 3 Jan 2028 substitute skipped: Thu 20 Jan 2028.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2027-0415", "rapid_review"), "due"), "2028-01-20");

  const std::vector<Json> caused = CausedBy(run.lines, "co-5");
  const Json state = One(Select(caused, "state"), "withdrawn state");
  EXPECT_EQ(Field(state, "to"), "withdrawn");
  EXPECT_EQ(Field(state, "final"), true);
  const Json cancelled = One(Select(caused, "cancelled"), "cancelled");
  EXPECT_EQ(Field(cancelled, "name"), "rapid_review");
  EXPECT_EQ(Field(cancelled, "due"), "2028-01-20");
  // Nothing happens to the case after it is withdrawn: no reminder, no breach.
  const std::string withdrawn_at = Field(state, "at").get<std::string>();
  for (const auto& l : run.lines) {
    if (Field(l, "case_id") == "SI-2027-0415") {
      EXPECT_LE(Field(l, "at"), withdrawn_at) << l;
    }
  }
  EXPECT_TRUE(Select(run.lines, "breach").empty());
}

// serious_incident_deferred.jsonl: an LCSPR decided on Wed 17 Apr 2024 whose publication is
// deferred for criminal proceedings on 20 Sep 2024, then scheduled for Wed 12 Mar 2025.
TEST_F(SimulateTest, DeferredPublicationSuppressesTheBreach) {
  const RunResult run =
      Simulate({"--events", Example("serious_incident_deferred.jsonl").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);
  EXPECT_TRUE(Select(run.lines, "rejected").empty());

  // Aware Mon 25 Mar 2024 + 5 working days over Easter 2024: Wed 3 Apr 2024.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2024-0058", "sin_notification"), "due"),
            "2024-04-03");
  // Notified Thu 28 Mar 2024 + 15 working days over Easter 2024: Mon 22 Apr 2024.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2024-0058", "rapid_review"), "due"), "2024-04-22");
  // 17 Apr 2024 + 6 months = 17 Oct 2024.
  const Json lcspr = FirstDeadline(run.lines, "SI-2024-0058", "lcspr_publication");
  EXPECT_EQ(Field(lcspr, "due"), "2024-10-17");
  EXPECT_EQ(Field(Field(lcspr, "explanation"), "anchor_on"), "2024-04-17");

  const std::vector<Json> deferral = CausedBy(run.lines, "df-6");
  EXPECT_EQ(Field(One(Select(deferral, "state"), "deferral state"), "to"), "publication_deferred");
  const Json told = One(Select(deferral, "notification"), "deferral notification");
  EXPECT_EQ(Field(told, "roles"), Json::array({"business_unit", "partnership_chair"}));

  // The breach at the end of 17 Oct 2024 (BST) is recorded as suppressed and tells no one.
  const Json breach = One(Select(run.lines, "breach", "SI-2024-0058", "lcspr_publication"),
                          "lcspr_publication breach");
  EXPECT_EQ(Field(breach, "at"), "2024-10-17T23:00:00Z");
  EXPECT_EQ(Field(breach, "suppressed"), true);
  for (const auto& n : Select(run.lines, "notification")) {
    EXPECT_NE(Field(n, "notification_kind"), "deadline_breached") << n;
  }

  // Rescheduled: publication Wed 12 Mar 2025, not counted, 7 working days back: Mon 3 Mar 2025.
  const std::vector<Json> scheduled = CausedBy(run.lines, "df-7");
  EXPECT_EQ(Field(One(Select(scheduled, "state"), "rescheduled state"), "to"), "lcspr");
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2024-0058", "publication_notice"), "due"),
            "2025-03-03");
  EXPECT_EQ(Field(One(Select(run.lines, "met", "SI-2024-0058", "publication_notice"), "notice met"),
                  "late"),
            false);
  const Json published =
      One(Select(run.lines, "met", "SI-2024-0058", "lcspr_publication"), "lcspr_publication met");
  EXPECT_EQ(Field(published, "met_on"), "2025-03-12");
  EXPECT_EQ(Field(published, "late"), true);
  const auto states = Select(run.lines, "state", "SI-2024-0058");
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(Field(states.back(), "to"), "published");
  EXPECT_EQ(Field(states.back(), "final"), true);
}

// serious_incident_national_review.jsonl: two cases whose rapid reviews recommend a national
// review. The Panel sends the first back for a local review on Tue 31 Mar 2026 and keeps the
// second.
TEST_F(SimulateTest, PanelSendingBackALocalReviewCountsFromItsDecision) {
  const RunResult run =
      Simulate({"--events", Example("serious_incident_national_review.jsonl").string(), "--json"});
  ASSERT_TRUE(run.exited);
  EXPECT_EQ(run.code, 0);
  EXPECT_EQ(run.err, "");
  ExpectWellFormedTimeline(run.lines);
  EXPECT_TRUE(Select(run.lines, "rejected").empty());
  EXPECT_TRUE(Select(run.lines, "breach").empty());

  // Aware Mon 23 Feb 2026 + 5 = Mon 2 Mar 2026; notified Fri 27 Feb + 15 = Fri 20 Mar 2026.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0087", "sin_notification"), "due"),
            "2026-03-02");
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0087", "rapid_review"), "due"), "2026-03-20");

  const std::vector<Json> recommended = CausedBy(run.lines, "nr-1-4");
  EXPECT_EQ(Field(One(Select(recommended, "state"), "awaiting"), "to"), "awaiting_panel");
  EXPECT_TRUE(Select(recommended, "deadline").empty());

  // 31 Mar 2026 + 6 months: 31 Sep does not exist, clamped to Wed 30 Sep 2026 (from the
  // partners' own decision on 18 Mar it would have been 18 Sep).
  const std::vector<Json> sent_back = CausedBy(run.lines, "nr-1-5");
  EXPECT_EQ(Field(One(Select(sent_back, "state"), "lcspr"), "to"), "lcspr");
  const Json lcspr =
      One(Select(sent_back, "deadline", "SI-2026-0087", "lcspr_publication"), "lcspr_publication");
  EXPECT_EQ(Field(lcspr, "due"), "2026-09-30");
  const Json x = Field(lcspr, "explanation");
  EXPECT_EQ(Field(x, "anchor"), "panel.review_decision.decided_on");
  EXPECT_EQ(Field(x, "anchor_on"), "2026-03-31");
  EXPECT_EQ(Field(x, "clamped"), true);

  // Publication Wed 2 Sep 2026, not counted; back over the Summer bank holiday (31 Aug) and two
  // weekends: Fri 21 Aug 2026.
  const Json notice = FirstDeadline(run.lines, "SI-2026-0087", "publication_notice");
  EXPECT_EQ(Field(notice, "due"), "2026-08-21");
  EXPECT_EQ(SkipReason(notice, "2026-08-31"), "Summer bank holiday");
  EXPECT_EQ(Field(One(Select(run.lines, "met", "SI-2026-0087", "lcspr_publication"), "published"),
                  "late"),
            false);

  // Aware Mon 18 May 2026 + 5 over the Spring bank holiday (25 May) = Tue 26 May 2026;
  // notified Thu 21 May + 15 = Fri 12 Jun 2026.
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0132", "sin_notification"), "due"),
            "2026-05-26");
  EXPECT_EQ(Field(FirstDeadline(run.lines, "SI-2026-0132", "rapid_review"), "due"), "2026-06-12");
  const auto states = Select(run.lines, "state", "SI-2026-0132");
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(Field(states.back(), "to"), "closed_national_review");
  EXPECT_EQ(Field(states.back(), "final"), true);
  EXPECT_TRUE(Select(run.lines, "deadline", "SI-2026-0132", "lcspr_publication").empty());
}

// A breach that moves the case on (as local escalation procedures do) into a stage whose
// deadline lies past the calendar's data: the run reports it and ends with a status, keeping the
// timeline so far, rather than aborting.
TEST_F(SimulateTest, DeadlinePastTheCalendarAfterABreachDoesNotAbort) {
  Write("workflows/stage_escalation.yaml", R"(name: stage_escalation
version: 1
title: A difference between agencies that moves up a stage when a stage's time runs out
edition:
  name: LOCAL2024
  title: local escalation procedure
  effective_from: "2024-01-01"
  source: partnership escalation procedure
  trigger_fact: raised_on
events:
  - type: stage.raised
    starts_case: true
    facts:
      - {name: raised_on, type: date, required: true}
states:
  - name: stage_1
    start_deadlines: [stage_1_resolved]
  - name: stage_2
    start_deadlines: [stage_2_resolved]
transitions:
  - on: stage.raised
    to: stage_1
deadlines:
  - name: stage_1_resolved
    title: Resolve at stage 1
    from: {state_entered: true}
    offset: {working_days: 10}
    scope: state
    on_breach: {move_to: stage_2}
    source: local procedure
    confidence: u
  - name: stage_2_resolved
    title: Resolve at stage 2
    from: {state_entered: true}
    offset: {working_days: 10}
    scope: state
    source: local procedure
    confidence: u
)");
  // Raised Tue 5 Dec 2028: stage 1 is due Tue 19 Dec 2028; stage 2 would need days of 2029,
  // past the shipped data (which ends 31 Dec 2028).
  const fs::path events = Write(
      "stage.jsonl",
      R"({"eventId":"se-1","caseId":"ESC-2028-0042","partnership":"norfolk","type":"stage.raised","occurredAt":"2028-12-05T10:00:00Z","facts":{"raised_on":"2028-12-05"}})"
      "\n");
  const RunResult run = Simulate(
      {"--events", events.string(), "--workflows", (dir_ / "workflows").string(), "--json"});
  ASSERT_TRUE(run.exited) << "killed by signal " << run.code << "; stderr: " << run.err;
  EXPECT_EQ(Field(FirstDeadline(run.lines, "ESC-2028-0042", "stage_1_resolved"), "due"),
            "2028-12-19");
  EXPECT_NE((run.out + run.err).find("2028-12-31"), std::string::npos)
      << "the problem names the end of the data";
}

}  // namespace
}  // namespace tandem
