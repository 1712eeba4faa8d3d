// End-to-end tests of the daemon: each test starts the real `tandemd` binary on a fresh data
// directory and a free port (it binds tcp://127.0.0.1:* and names the port in its "ready" log
// line), talks to it with the real `tandemctl` (publish, case show, deadlines), and stops it
// with SIGTERM. Time is moved with the `clock_offset_seconds` setting, so a deadline days away
// falls due seconds after start; every wait is a bounded poll.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "tests/integration/tandemd_fixture.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::Daemon;
using test::DeadlineStatus;
using test::EpochOf;
using test::Incident;
using test::Lines;
using test::OffsetTo;
using test::Submitted;
using test::TandemdTest;
using test::Timeline;
using test::WaitFor;
using test::CtlRun;
using test::kWait;
using test::Slurp;

TEST_F(TandemdTest, PublishesAndReadsBackACase) {
  Daemon d(dir_, "tandemd");
  d.Start(Args(OffsetTo("2026-12-24T12:00:00Z")));
  const std::string ep = d.WaitReady();

  CtlRun pub = Publish(ep, {Incident("e1", "SI-1"), Submitted("e2", "SI-1")});
  EXPECT_EQ(pub.code, 0) << pub.out << pub.err;
  EXPECT_EQ(Lines(pub.out), (std::vector<std::string>{"e1 ACCEPTED", "e2 ACCEPTED"}));

  const Json view = Show(ep, "SI-1");
  ASSERT_TRUE(view.is_object());
  EXPECT_EQ(view["state"]["case_id"], "SI-1");
  EXPECT_EQ(view["state"]["state"], "notified");
  ASSERT_EQ(view["events"].size(), 2u);
  EXPECT_EQ(view["events"][0]["event_id"], "e1");
  EXPECT_EQ(view["events"][1]["event_id"], "e2");
  // 24 Dec 2026 + 5 working days (Christmas, the weekend, Boxing Day substitute and New Year's
  // Day skipped): Tue 5 Jan 2027.
  const auto sin = Timeline(view, "deadline", "sin_notification");
  ASSERT_EQ(sin.size(), 1u);
  EXPECT_EQ(sin[0]["due"], "2027-01-05");
  EXPECT_EQ(sin[0]["explanation"]["anchor_on"], "2026-12-24");
  EXPECT_EQ(Timeline(view, "met", "sin_notification").size(), 1u);
  EXPECT_EQ(DeadlineStatus(view, "rapid_review"), "DEADLINE_STATUS_OPEN");

  // The text form names the state, the deadlines with their explanation, and the events.
  CtlRun text = Ctl({"case", "show", "SI-1", "--endpoint", ep});
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("state notified"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("rule: 15 working days after"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Christmas Day"), std::string::npos) << text.out;

  // The open deadlines are listed, earliest due first; nothing is overdue yet.
  CtlRun list = Ctl({"deadlines", "--json", "--endpoint", ep});
  EXPECT_EQ(list.code, 0) << list.err;
  const auto rows = Lines(list.out);
  ASSERT_EQ(rows.size(), 2u) << list.out;
  const Json first = Json::parse(rows[0]);
  EXPECT_EQ(first["case_id"], "SI-1");
  EXPECT_EQ(first["name"], "partners_informed");
  EXPECT_EQ(first["status"], "open");
  EXPECT_EQ(first["due"], "2027-01-05");
  EXPECT_EQ(first["explanation"]["anchor_on"], "2026-12-24");
  const Json second = Json::parse(rows[1]);
  EXPECT_EQ(second["name"], "rapid_review");
  EXPECT_EQ(second["due"], "2027-01-25");
  // Within 5 working days of Thu 24 Dec 2026: to Tue 5 Jan 2027, so rapid_review is out.
  CtlRun soon = Ctl({"deadlines", "--within", "5", "--json", "--endpoint", ep});
  EXPECT_EQ(soon.code, 0) << soon.err;
  ASSERT_EQ(Lines(soon.out).size(), 1u) << soon.out;
  EXPECT_EQ(Json::parse(Lines(soon.out)[0])["name"], "partners_informed");
  CtlRun overdue = Ctl({"deadlines", "--overdue", "--json", "--endpoint", ep});
  EXPECT_EQ(overdue.code, 0);
  EXPECT_TRUE(Lines(overdue.out).empty()) << overdue.out;

  CtlRun missing = Ctl({"case", "show", "SI-404", "--endpoint", ep});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("not_found"), std::string::npos) << missing.err;

  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << d.Log();
}

// A death report that opens a serious-incident case: the daemon applies the new case's starting
// event in the same commit, and the two cases name each other. A publisher may not set the link.
TEST_F(TandemdTest, AWorkflowOpeningACaseOfAnotherOpensItInTheSameCommit) {
  Daemon d(dir_, "tandemd");
  d.Start(Args(OffsetTo("2026-10-20T12:00:00Z")));
  const std::string ep = d.WaitReady();
  Json death = {{"event_id", "d1"},
                {"case_id", "DN-1"},
                {"partnership", "staffordshire"},
                {"type", "death.reported"},
                {"occurred_at", "2026-10-20T10:00:00Z"},
                {"facts",
                 {{"became_aware_on", "2026-10-20"},
                  {"date_of_death", "2026-10-18"},
                  {"dob", "2012-04-01"},
                  {"looked_after", true},
                  {"care_leaver", false},
                  {"abuse_or_neglect", "suspected"},
                  {"location", "in_area"}}}};
  Json forged = {{"event_id", "x1"},
                 {"case_id", "SI-X"},
                 {"partnership", "staffordshire"},
                 {"type", "incident.reported"},
                 {"occurred_at", "2026-10-20T10:00:00Z"},
                 {"opened_by_case", "DN-1"},
                 {"facts",
                  {{"became_aware_on", "2026-10-20"},
                   {"outcome", "died"},
                   {"abuse_or_neglect", "suspected"},
                   {"location", "in_area"}}}};
  CtlRun pub = Publish(ep, {death.dump(), forged.dump()});
  const auto acks = Lines(pub.out);
  ASSERT_EQ(acks.size(), 2u) << pub.out << pub.err;
  EXPECT_EQ(acks[0], "d1 ACCEPTED");
  EXPECT_NE(acks[1].find("x1 REJECTED invalid_argument: opened_by_case is set by tandem only"),
            std::string::npos)
      << acks[1];

  const Json parent = Show(ep, "DN-1");
  ASSERT_TRUE(parent.is_object());
  ASSERT_EQ(parent["state"]["linked_cases"].size(), 1u) << parent["state"];
  EXPECT_EQ(parent["state"]["linked_cases"][0]["case_id"], "DN-1-sin");
  EXPECT_EQ(Timeline(parent, "case_started").size(), 1u);
  const Json child = Show(ep, "DN-1-sin");
  ASSERT_TRUE(child.is_object());
  EXPECT_EQ(child["state"]["workflow"], "serious_incident");
  EXPECT_EQ(child["state"]["state"], "screening");
  EXPECT_EQ(child["state"]["linked_cases"][0]["case_id"], "DN-1");
  ASSERT_EQ(child["events"].size(), 1u);
  EXPECT_EQ(child["events"][0]["event_id"], "d1-sin");
  // Aware Tue 20 Oct 2026 + 5 working days: Tue 27 Oct.
  const auto sin = Timeline(child, "deadline", "sin_notification");
  ASSERT_EQ(sin.size(), 1u);
  EXPECT_EQ(sin[0]["due"], "2026-10-27");
  EXPECT_EQ(Ctl({"case", "show", "SI-X", "--endpoint", ep}).code, 2);
  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << d.Log();
}

TEST_F(TandemdTest, SameEventTwiceIsDuplicateAndStoredOnce) {
  Daemon d(dir_, "tandemd");
  d.Start(Args(OffsetTo("2026-12-24T12:00:00Z")));
  const std::string ep = d.WaitReady();
  // Twice in one request burst (one turn), then again in a later one.
  CtlRun pub = Publish(ep, {Incident("e1", "SI-1"), Incident("e1", "SI-1")});
  EXPECT_EQ(pub.code, 0) << pub.out << pub.err;
  EXPECT_EQ(Lines(pub.out),
            (std::vector<std::string>{"e1 ACCEPTED", "e1 DUPLICATE (first ACCEPTED)"}));
  CtlRun again = Publish(ep, {Incident("e1", "SI-1")});
  EXPECT_EQ(again.code, 0);
  EXPECT_EQ(Lines(again.out), (std::vector<std::string>{"e1 DUPLICATE (first ACCEPTED)"}));
  const Json view = Show(ep, "SI-1");
  ASSERT_TRUE(view.is_object());
  ASSERT_EQ(view["events"].size(), 1u);
  // The log keeps the event as it was published, facts and all, though the case took them.
  EXPECT_EQ(view["events"][0]["facts"]["became_aware_on"], "2026-12-24") << view["events"][0];
  EXPECT_EQ(view["events"][0]["facts"]["outcome"], "seriously_harmed") << view["events"][0];
  EXPECT_EQ(view["state"]["facts"][0]["facts"]["became_aware_on"], "2026-12-24") << view["state"];
  EXPECT_EQ(Timeline(view, "deadline", "sin_notification").size(), 1u);
}

TEST_F(TandemdTest, BadInputsAreRejectedWithReasonsAndServiceGoesOn) {
  Daemon d(dir_, "tandemd");
  d.Start(Args(OffsetTo("2026-12-24T12:00:00Z")));
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("e1", "SI-1")}).code, 0);

  Json unknown_type = Json::parse(Incident("bad-type", "SI-2"));
  unknown_type["type"] = "incident.imagined";
  Json ill_typed = Json::parse(Incident("bad-fact", "SI-3"));
  ill_typed["facts"]["became_aware_on"] = "yesterday";
  Json missing = Json::parse(Incident("no-fact", "SI-4"));
  missing["facts"].erase("outcome");

  CtlRun pub = Publish(ep, {"{\"event_id\": \"broken\", ", unknown_type.dump(), ill_typed.dump(),
                            missing.dump(), Submitted("no-case", "SI-404"),
                            Incident("second-start", "SI-1"), Submitted("good", "SI-1")});
  EXPECT_EQ(pub.code, 2) << pub.out << pub.err;
  const auto lines = Lines(pub.out);
  ASSERT_EQ(lines.size(), 7u) << pub.out;
  EXPECT_NE(lines[0].find(":1 REJECTED invalid_argument: not a valid event"), std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("bad-type REJECTED ", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find("incident.imagined"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2].rfind("bad-fact REJECTED invalid_argument: ", 0), 0u) << lines[2];
  EXPECT_NE(lines[2].find("became_aware_on"), std::string::npos) << lines[2];
  // Never the value.
  EXPECT_EQ(lines[2].find("yesterday"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3].rfind("no-fact REJECTED invalid_argument: ", 0), 0u) << lines[3];
  EXPECT_NE(lines[3].find("outcome"), std::string::npos) << lines[3];
  EXPECT_EQ(lines[4].rfind("no-case REJECTED not_found: ", 0), 0u) << lines[4];
  EXPECT_EQ(lines[5].rfind("second-start REJECTED already_exists: ", 0), 0u) << lines[5];
  EXPECT_EQ(lines[6], "good ACCEPTED");

  // A rejected event_id keeps its answer.
  CtlRun retry = Publish(ep, {ill_typed.dump()});
  EXPECT_EQ(retry.code, 0) << retry.out;
  ASSERT_EQ(Lines(retry.out).size(), 1u);
  EXPECT_EQ(Lines(retry.out)[0].rfind("bad-fact DUPLICATE (first REJECTED) invalid_argument: ", 0),
            0u)
      << retry.out;

  const Json view = Show(ep, "SI-1");
  ASSERT_TRUE(view.is_object());
  EXPECT_EQ(view["events"].size(), 2u);
  EXPECT_TRUE(Show(ep, "SI-3").is_null());
  // The log names ids and codes, never a fact value.
  EXPECT_EQ(d.Log().find("yesterday"), std::string::npos);
}

TEST_F(TandemdTest, DeadlineFiresWhileRunning) {
  // sin_notification and partners_informed of an incident known on 24 Dec 2026 are due at the
  // end of Tue 5 Jan 2027 (London), 2027-01-06T00:00:00Z. Start 5 s before that.
  const std::string due = "2027-01-06T00:00:00Z";
  Daemon d(dir_, "tandemd");
  d.Start(Args(OffsetTo(due) - 5));
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("e1", "SI-1")}).code, 0);

  const Json before = Show(ep, "SI-1");
  ASSERT_TRUE(before.is_object());
  // The event was committed at the daemon's "now": when that was before the due instant, the
  // breach had not fired yet (the 2-days-before warning had: it was overdue).
  const std::string accepted_at = Timeline(before, "state").at(0)["at"];
  if (EpochOf(accepted_at) < EpochOf(due)) {
    EXPECT_TRUE(Timeline(before, "breach").empty()) << before.dump();
  }
  EXPECT_EQ(Timeline(before, "warning", "sin_notification").size(), 1u);

  Json after;
  ASSERT_TRUE(WaitFor([&] {
    after = Show(ep, "SI-1");
    return DeadlineStatus(after, "sin_notification") == "DEADLINE_STATUS_BREACHED" &&
           DeadlineStatus(after, "partners_informed") == "DEADLINE_STATUS_BREACHED";
  })) << after.dump();
  const auto breaches = Timeline(after, "breach", "sin_notification");
  ASSERT_EQ(breaches.size(), 1u);
  // Never before its time.
  EXPECT_GE(EpochOf(breaches[0]["at"]), EpochOf(due));
  CtlRun overdue = Ctl({"deadlines", "--overdue", "--json", "--endpoint", ep});
  EXPECT_EQ(Lines(overdue.out).size(), 2u) << overdue.out;
  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(TandemdTest, OverdueTimersFireOnceAndLateAfterRestart) {
  {
    Daemon d(dir_, "first");
    d.Start(Args(OffsetTo("2026-12-24T12:00:00Z")));
    const std::string ep = d.WaitReady();
    ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A"), Incident("b1", "SI-B", "2026-12-29")}).code, 0);
    auto status = d.Signal(SIGTERM);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << d.Log();
  }
  // Down over Christmas: back on 1 Feb 2027, past both cases' warnings and breaches.
  const int64_t offset = OffsetTo("2027-02-01T09:00:00Z");
  std::vector<Json> fired;
  std::size_t notifications = 0;
  {
    Daemon d(dir_, "second");
    d.Start(Args(offset));
    const std::string ep = d.WaitReady();
    Json a, b;
    ASSERT_TRUE(WaitFor([&] {
      a = Show(ep, "SI-A");
      b = Show(ep, "SI-B");
      return DeadlineStatus(a, "partners_informed") == "DEADLINE_STATUS_BREACHED" &&
             DeadlineStatus(b, "partners_informed") == "DEADLINE_STATUS_BREACHED";
    })) << a.dump()
        << b.dump();
    for (const Json* view : {&a, &b}) {
      for (const char* name : {"sin_notification", "partners_informed"}) {
        EXPECT_EQ(Timeline(*view, "breach", name).size(), 1u) << name;
        for (const auto& e : Timeline(*view, "breach", name)) EXPECT_EQ(e["late"], true);
      }
      const auto warnings = Timeline(*view, "warning", "sin_notification");
      ASSERT_EQ(warnings.size(), 1u);
      EXPECT_EQ(warnings[0]["late"], true);
    }
    // In due order: in each case's timeline (commit order) the warning (due 2 working days
    // before) comes before the breaches, and the deadlines' breach effects follow their timers.
    for (const Json* view : {&a, &b}) {
      std::vector<std::string> kinds;
      for (const auto& e : (*view)["timeline"]) {
        const std::string kind = e.value("kind", "");
        if (kind == "warning" || kind == "breach") kinds.push_back(kind);
      }
      ASSERT_EQ(kinds.size(), 3u) << view->dump();
      EXPECT_EQ(kinds, (std::vector<std::string>{"warning", "breach", "breach"}));
    }
    for (const Json* view : {&a, &b}) {
      for (const auto& e : Timeline(*view, "notification")) {
        if (e.value("cause", "").rfind("timer:", 0) == 0) ++notifications;
      }
    }
    fired = Timeline(a, "breach");
    // Every notification reaches the JSON-lines file once.
    const fs::path jsonl = data_ / "notifications.jsonl";
    ASSERT_GT(notifications, 0u);
    EXPECT_TRUE(WaitFor([&] { return Lines(Slurp(jsonl)).size() >= notifications; }))
        << Slurp(jsonl);
    auto status = d.Signal(SIGTERM);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << d.Log();
  }
  const fs::path jsonl = data_ / "notifications.jsonl";
  std::map<std::string, int> ids;
  for (const auto& line : Lines(Slurp(jsonl))) {
    const Json j = Json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ++ids[j.value("notification_id", "")];
  }
  for (const auto& [id, count] : ids) EXPECT_EQ(count, 1) << id;
  const std::size_t delivered = Lines(Slurp(jsonl)).size();

  // A third start at the same instant fires nothing again and delivers nothing again.
  Daemon d(dir_, "third");
  d.Start(Args(offset));
  const std::string ep = d.WaitReady();
  const Json a = Show(ep, "SI-A");
  EXPECT_EQ(Timeline(a, "breach").size(), fired.size());
  EXPECT_EQ(Lines(Slurp(jsonl)).size(), delivered);
  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_EQ(Lines(Slurp(jsonl)).size(), delivered);
}

TEST_F(TandemdTest, SecondDaemonOnTheSameDataDirectoryExitsNonZero) {
  Daemon first(dir_, "first");
  first.Start(Args());
  const std::string ep = first.WaitReady();
  Daemon second(dir_, "second");
  second.Start(Args());
  auto status = second.WaitExited();
  ASSERT_TRUE(status.has_value()) << "the second daemon kept running";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_NE(second.Log().find("is in use by another tandemd"), std::string::npos) << second.Log();
  // The first one still serves.
  CtlRun pub = Publish(ep, {Incident("e1", "SI-1")});
  EXPECT_EQ(pub.code, 0) << pub.err;
}

// partnerships_dir: a partnership's own settings apply to its cases in the daemon too, and a
// file naming an unknown role stops start-up naming the file, line and field.
TEST_F(TandemdTest, PartnershipSettingsFromTheConfiguredDirectoryApply) {
  Write("partnerships/staffordshire.yaml", R"yaml(partnership: staffordshire
workflows:
  - workflow: serious_incident
    parameters:
      - {name: rapid_review_counts_from, value: became_aware}
)yaml");
  const fs::path config = Write(
      "p.yaml", "partnerships_dir: " + (dir_ / "partnerships").string() +
                    "\nclock_offset_seconds: " + std::to_string(OffsetTo("2026-12-24T12:00:00Z")) +
                    "\n");
  Daemon d(dir_, "tandemd");
  d.Start({"--data", (dir_ / "pdata").string(), "--config", config.string()});
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("e1", "SI-1"), Submitted("e2", "SI-1")}).code, 0);
  const Json view = Show(ep, "SI-1");
  const auto rr = Timeline(view, "deadline", "rapid_review");
  ASSERT_EQ(rr.size(), 1u) << view;
  EXPECT_EQ(rr[0]["explanation"]["anchor"], "incident.reported.became_aware_on");
  ASSERT_TRUE(rr[0]["explanation"].contains("overrides")) << rr[0];
  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());

  Write("partnerships/staffordshire.yaml",
        "partnership: staffordshire\nworkflows:\n  - workflow: serious_incident\n"
        "    roles:\n      - {role: chief, to: [business_unit]}\n");
  Daemon bad(dir_, "tandemd");
  bad.Start({"--data", (dir_ / "pdata").string(), "--config", config.string()});
  auto exited = bad.WaitExited();
  ASSERT_TRUE(exited.has_value());
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 1);
  EXPECT_NE(bad.Log().find("staffordshire.yaml:5: field 'role': unknown role 'chief'"),
            std::string::npos)
      << bad.Log();
}

TEST_F(TandemdTest, BadConfigKeyIsRefusedWithFileLineAndField) {
  const fs::path config = Write("bad.yaml", "data_dir: x\ningest:\n  endpont: tcp://x\n");
  Daemon d(dir_, "tandemd");
  d.Start({"--config", config.string()});
  auto status = d.WaitExited();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  EXPECT_NE(d.Log().find("bad.yaml:3: field 'endpont'"), std::string::npos) << d.Log();
}

TEST_F(TandemdTest, SighupReloadsWorkflowsAndRunningCasesKeepTheirVersion) {
  const fs::path workflows = dir_ / "workflows";
  fs::create_directories(workflows);
  const std::string v1 = Slurp(fs::path(TANDEM_SOURCE_DIR) / "workflows" / "serious_incident.yaml");
  ASSERT_NE(v1.find("\nversion: 1\n"), std::string::npos);
  Write("workflows/serious_incident.yaml", v1);
  std::vector<std::string> args = Args(OffsetTo("2026-12-24T12:00:00Z"));
  args.insert(args.end(), {"--workflows", workflows.string()});
  Daemon d(dir_, "tandemd");
  d.Start(args);
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);

  std::string v2 = v1;
  v2.replace(v2.find("\nversion: 1\n"), 12, "\nversion: 2\n");
  Write("workflows/serious_incident.yaml", v2);
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return d.Log().find("workflows reloaded") != std::string::npos; }))
      << d.Log();
  ASSERT_EQ(Publish(ep, {Incident("b1", "SI-B"), Submitted("a2", "SI-A")}).code, 0);
  EXPECT_EQ(Show(ep, "SI-A")["state"]["workflow_version"], 1);
  EXPECT_EQ(Show(ep, "SI-A")["state"]["state"], "notified");
  EXPECT_EQ(Show(ep, "SI-B")["state"]["workflow_version"], 2);

  // A broken file is refused on reload; the loaded workflows keep serving.
  Write("workflows/serious_incident.yaml", v2 + "\nnot_a_field: 1\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return d.Log().find("workflow reload failed") != std::string::npos; }))
      << d.Log();
  EXPECT_NE(d.Log().find("not_a_field"), std::string::npos);
  CtlRun pub = Publish(ep, {Incident("c1", "SI-C"), Submitted("b2", "SI-B")});
  EXPECT_EQ(pub.code, 0) << pub.out;
  EXPECT_EQ(Show(ep, "SI-C")["state"]["workflow_version"], 2);
  auto status = d.Signal(SIGTERM);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(TandemdTest, PublishWithoutDaemonTimesOut) {
  // A port nobody listens on: bind one, learn it, and stop.
  Daemon d(dir_, "tandemd");
  d.Start(Args());
  const std::string ep = d.WaitReady();
  ASSERT_TRUE(d.Signal(SIGTERM).has_value());
  CtlRun pub = Ctl({"publish", "-", "--endpoint", ep, "--timeout", "1"}, Incident("e1", "SI-1"));
  EXPECT_EQ(pub.code, 3) << pub.out << pub.err;
  EXPECT_NE(pub.err.find("no answer"), std::string::npos) << pub.err;
}

}  // namespace
}  // namespace tandem
