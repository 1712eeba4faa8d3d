// Notifications end to end: the real tandemd loads real plugins (the shipped ones from the build
// tree's plugins/, the misbehaving ones of tests/plugins), routes each notification to the
// channels of its roles, and delivers to receivers the test runs on loopback: an HTTP server
// (tests/unit/plugins/http_receiver.h) behind the webhook plugin, and the JSON-lines file.
// Operators' view through the real tandemctl (outbox, outbox retry).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/tandemd_fixture.h"
#include "tests/unit/plugins/http_receiver.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using plugin_test::HttpReceiver;
using std::chrono::milliseconds;
using test::Daemon;
using test::Incident;
using test::Lines;
using test::OffsetTo;
using test::Slurp;
using test::TandemdTest;
using test::Timeline;
using test::WaitFor;

// A Standard Webhooks secret (whsec_ + base64 of 24 bytes).
constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// The daemon's clock for these tests: 1 Feb 2027, when an incident the local authority became
// aware of on 24 Dec 2026 is past both its 5-working-day deadlines. Published then, it breaches
// both at once: two notifications, the sin_notification breach's to la_dsp, la_lsp,
// partnership_chair and business_unit, the partners_informed breach's to la_dsp, icb_dsp,
// police_dsp and business_unit (the warning, already past when set, is not sent). Published
// before and caught up at start-up, the warning fires too, late: three.
constexpr char kNow[] = "2027-02-01T09:00:00Z";

class NotifyTest : public TandemdTest {
 protected:
  // Writes a configuration: the clock at `now`, retries after 1 s, `extra` and
  // `channels_and_routes` (YAML); returns tandemd's arguments.
  std::vector<std::string> Config(const std::string& channels_and_routes,
                                  const std::string& extra = "", const char* now = kNow) {
    const fs::path config = Write(
        "notify" + std::to_string(++configs_) + ".yaml",
        "clock_offset_seconds: " + std::to_string(OffsetTo(now)) + "\n" +
            "outbox:\n  initial_backoff_seconds: 1\n  max_backoff_seconds: 1\n  max_attempts: 5\n" +
            extra + channels_and_routes);
    return {"--data", data_.string(), "--config", config.string()};
  }

  // Channels and routes sending every notification to one webhook channel, "partners", at
  // `url`; `settings` are more of its config keys (", timeout_ms: 5000").
  static std::string WebhookOnly(const std::string& url, const std::string& settings = "") {
    return "channels:\n"
           "  - {name: partners, plugin: webhook, config: {secret: \"" +
           std::string(kSecret) + "\"" + settings +
           "}}\n"
           "routes:\n"
           "  - channels: [{channel: partners, address: \"" +
           url + "\"}]\n";
  }

  // A plugins directory holding the shipped plugins and the named test plugins (symlinks), for
  // a configuration's plugins_dir.
  fs::path PluginsDir(const std::vector<std::string>& test_plugins) {
    const fs::path dir = dir_ / "plugins";
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(fs::path(TANDEM_BINARY_DIR) / "plugins")) {
      if (entry.path().extension() == ".so") {
        fs::create_symlink(entry.path(), dir / entry.path().filename());
      }
    }
    for (const std::string& name : test_plugins) {
      const fs::path so =
          fs::path(TANDEM_BINARY_DIR) / "tests" / "plugins" / ("tandem-" + name + ".so");
      EXPECT_TRUE(fs::exists(so)) << so;
      fs::create_symlink(so, dir / so.filename());
    }
    return dir;
  }

  // The notification ids of a case, from its timeline (tandemctl case show).
  std::vector<std::string> NotificationIds(const std::string& endpoint,
                                           const std::string& case_id) {
    std::vector<std::string> ids;
    for (const Json& e : Timeline(Show(endpoint, case_id), "notification")) {
      ids.push_back(e.value("notification_id", ""));
    }
    return ids;
  }

  // `tandemctl outbox --json` as objects; `parked` only the parked ones.
  std::vector<Json> Outbox(const std::string& endpoint, bool parked = false) {
    std::vector<std::string> args = {"outbox", "--json", "--endpoint", endpoint};
    if (parked) args.push_back("--parked");
    test::CtlRun run = Ctl(args);
    EXPECT_EQ(run.code, 0) << run.err;
    std::vector<Json> out;
    for (const std::string& line : Lines(run.out)) out.push_back(Json::parse(line));
    return out;
  }

  static std::vector<std::string> WebhookIds(const HttpReceiver& receiver) {
    std::vector<std::string> ids;
    for (const auto& request : receiver.requests()) ids.push_back(request.Header("webhook-id"));
    return ids;
  }

  static void StopCleanly(Daemon& d) {
    auto status = d.Signal(SIGTERM);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << d.Log();
  }

  int configs_ = 0;
};

// Every notification goes to the webhook channel; the first request gets a 500 and is retried
// with the same notification id, the rest are delivered at once, each signed.
TEST_F(NotifyTest, WebhookIsRetriedAfterA500WithTheSameNotificationId) {
  HttpReceiver receiver;
  receiver.RespondWith({500});
  Daemon d(dir_, "tandemd");
  d.Start(Config(WebhookOnly(receiver.url("/hooks/tandem"), ", timeout_ms: 5000")));
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);
  std::vector<std::string> ids;
  ASSERT_TRUE(WaitFor([&] {
    ids = NotificationIds(ep, "SI-A");
    return ids.size() == 2;
  }));
  // Two notifications, three requests: the first one twice.
  ASSERT_TRUE(receiver.WaitForRequests(3, std::chrono::seconds(15))) << d.Log();
  ASSERT_TRUE(WaitFor([&] { return Outbox(ep).empty(); })) << d.Log();
  const std::vector<std::string> seen = WebhookIds(receiver);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()),
            std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(std::count(seen.begin(), seen.end(), seen[0]), 2) << "the 500 was retried";
  for (const auto& request : receiver.requests()) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/hooks/tandem");
    EXPECT_EQ(request.Header("webhook-signature").rfind("v1,", 0), 0u);
    const Json body = Json::parse(request.body);
    EXPECT_EQ(body["notification_id"], request.Header("webhook-id"));
    EXPECT_EQ(body["case_id"], "SI-A");
    EXPECT_EQ(body["channel"], "partners");
  }
  StopCleanly(d);
  EXPECT_EQ(d.Log().find(kSecret), std::string::npos) << "the secret reached the log";
}

// Routing: the role route of one partnership sends only notifications naming that role to the
// webhook; everything else goes to the catch-all JSON-lines channel, and each delivery is its
// own outbox record.
TEST_F(NotifyTest, RolesOfAPartnershipFanOutToTheirChannels) {
  HttpReceiver receiver;
  Daemon d(dir_, "tandemd");
  d.Start(Config("channels:\n"
                 "  - {name: file, plugin: jsonl, config: {path: out/all.jsonl}}\n"
                 "  - {name: lsp, plugin: webhook, config: {secret: \"" +
                 std::string(kSecret) +
                 "\"}}\n"
                 "routes:\n"
                 "  - channels: [{channel: file}]\n"
                 "  - partnership: staffordshire\n"
                 "    role: la_lsp\n"
                 "    channels: [{channel: lsp, address: \"" +
                 receiver.url("/lsp") +
                 "\"}, {channel: file}]\n"
                 "  - partnership: elsewhere\n"
                 "    role: la_dsp\n"
                 "    channels: [{channel: lsp, address: \"" +
                 receiver.url("/never") + "\"}]\n"));
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);
  std::map<std::string, std::vector<std::string>> roles;  // notification id -> roles
  ASSERT_TRUE(WaitFor([&] {
    roles.clear();
    for (const Json& e : Timeline(Show(ep, "SI-A"), "notification")) {
      roles[e.value("notification_id", "")] = e.value("roles", std::vector<std::string>());
    }
    return roles.size() == 2;
  }));
  std::set<std::string> with_lsp;
  for (const auto& [id, r] : roles) {
    if (std::find(r.begin(), r.end(), "la_lsp") != r.end()) with_lsp.insert(id);
  }
  ASSERT_EQ(with_lsp.size(), 1u) << "the breach of sin_notification names la_lsp";
  const fs::path file = data_ / "out" / "all.jsonl";
  ASSERT_TRUE(WaitFor([&] { return Lines(Slurp(file)).size() == 2 && Outbox(ep).empty(); }))
      << Slurp(file) << d.Log();
  ASSERT_TRUE(receiver.WaitForRequests(1, std::chrono::seconds(5)));
  StopCleanly(d);
  const std::vector<std::string> seen = WebhookIds(receiver);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), with_lsp);
  for (const auto& request : receiver.requests()) EXPECT_EQ(request.target, "/lsp");
  // Each line of the file is its own delivery (its own id), all of one notification each.
  std::set<std::string> file_ids;
  std::set<uint64_t> deliveries;
  for (const std::string& line : Lines(Slurp(file))) {
    const Json j = Json::parse(line);
    file_ids.insert(j["notification_id"].get<std::string>());
    deliveries.insert(j["delivery_id"].get<uint64_t>());
    EXPECT_EQ(j["channel"], "file");
  }
  EXPECT_EQ(file_ids.size(), 2u);
  EXPECT_EQ(deliveries.size(), 2u);
}

// Killed after the webhook request left and before its delivery was recorded: after a restart
// the same notification is delivered again, with the same id.
TEST_F(NotifyTest, KilledBetweenSendAndRecordDeliversAgainWithTheSameId) {
  HttpReceiver receiver;
  receiver.Hold(true);
  const std::vector<std::string> args =
      Config(WebhookOnly(receiver.url(), ", timeout_ms: 30000"));
  std::string first_id;
  {
    Daemon d(dir_, "first");
    d.Start(args);
    const std::string ep = d.WaitReady();
    ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);
    ASSERT_TRUE(receiver.WaitForRequests(1, std::chrono::seconds(10))) << d.Log();
    first_id = receiver.requests()[0].Header("webhook-id");
    ASSERT_FALSE(first_id.empty());
    // The request is in the receiver's hands, unanswered: the daemon has recorded nothing.
    d.Signal(SIGKILL);
    ASSERT_TRUE(d.WaitExited().has_value());
  }
  receiver.Hold(false);
  Daemon d(dir_, "second");
  d.Start(args);
  const std::string ep = d.WaitReady();
  ASSERT_TRUE(WaitFor([&] { return Outbox(ep).empty(); })) << d.Log();
  const std::vector<std::string> seen = WebhookIds(receiver);
  EXPECT_GE(std::count(seen.begin(), seen.end(), first_id), 2)
      << "the notification in flight at the kill was delivered again";
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 2u);
  StopCleanly(d);
}

// A 400 is a permanent failure: the delivery is parked at once; an operator lists it and puts
// it back, and it is delivered with the same notification id.
TEST_F(NotifyTest, PermanentFailureParksTheDeliveryAndRetryDeliversIt) {
  HttpReceiver receiver;
  receiver.RespondWith({400, 400});
  Daemon d(dir_, "tandemd");
  d.Start(Config(WebhookOnly(receiver.url())));
  const std::string ep = d.WaitReady();
  ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);
  std::vector<Json> parked;
  ASSERT_TRUE(WaitFor([&] {
    parked = Outbox(ep, /*parked=*/true);
    return parked.size() == 2;
  })) << d.Log();
  EXPECT_EQ(receiver.requests().size(), 2u) << "each tried once, never retried";
  for (const Json& p : parked) {
    EXPECT_EQ(p["state"], "parked");
    EXPECT_EQ(p["channel"], "partners");
    EXPECT_EQ(p["attempts"], 1);
    EXPECT_NE(p["last_error"].get<std::string>().find("400"), std::string::npos) << p.dump();
  }
  const test::CtlRun text = Ctl({"outbox", "--endpoint", ep});
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("parked"), std::string::npos) << text.out;

  const uint64_t id = parked[0]["id"].get<uint64_t>();
  const test::CtlRun retry = Ctl({"outbox", "retry", std::to_string(id), "--endpoint", ep});
  ASSERT_EQ(retry.code, 0) << retry.err;
  EXPECT_NE(retry.out.find(std::to_string(id) + " re-queued partners"), std::string::npos)
      << retry.out;
  ASSERT_TRUE(receiver.WaitForRequests(3, std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return Outbox(ep, true).size() == 1 && Outbox(ep).size() == 1; }));
  EXPECT_EQ(receiver.requests()[2].Header("webhook-id"), parked[0]["notification_id"]);
  // A delivery that is not parked cannot be re-queued.
  const test::CtlRun again = Ctl({"outbox", "retry", std::to_string(id), "--endpoint", ep});
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.err.find("not parked"), std::string::npos) << again.err;
  StopCleanly(d);
}

// A plugin built for another ABI version is refused at start-up, naming both versions.
TEST_F(NotifyTest, APluginOfAnotherAbiVersionIsRefusedAtStart) {
  const fs::path plugins = PluginsDir({"wrong_abi"});
  Daemon d(dir_, "tandemd");
  d.Start(Config("channels:\n"
                 "  - {name: odd, plugin: wrong_abi}\n"
                 "routes:\n"
                 "  - channels: [{channel: odd}]\n",
                 "plugins_dir: " + plugins.string() + "\n"));
  auto status = d.WaitExited();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1);
  EXPECT_NE(d.Log().find("ABI version"), std::string::npos) << d.Log();
  EXPECT_NE(d.Log().find("tandem-wrong_abi.so"), std::string::npos) << d.Log();
}

// A plugin that crashes takes the process down, but not its state: the acked event and the
// undelivered notifications are all there after a restart without that channel.
TEST_F(NotifyTest, ACrashingPluginLosesNothingCommitted) {
  const fs::path plugins = PluginsDir({"crash"});
  const std::string dir_line = "plugins_dir: " + plugins.string() + "\n";
  const std::string log_only =
      "channels:\n  - {name: log, plugin: log}\nroutes:\n  - channels: [{channel: log}]\n";
  {
    // Acked on Christmas Eve, before any of its deadlines fall due.
    Daemon d(dir_, "before");
    d.Start(Config(log_only, dir_line, "2026-12-24T12:00:00Z"));
    const std::string ep = d.WaitReady();
    ASSERT_EQ(Publish(ep, {Incident("a1", "SI-A")}).code, 0);
    StopCleanly(d);
  }
  {
    // Back in February with a crashing channel: the overdue timers fire at start-up and the
    // first delivery kills the daemon.
    Daemon d(dir_, "crashing");
    d.Start(Config("channels:\n"
                   "  - {name: boom, plugin: crash}\n"
                   "routes:\n"
                   "  - channels: [{channel: boom}]\n",
                   dir_line));
    auto status = d.WaitExited();
    ASSERT_TRUE(status.has_value()) << "the crash plugin did not crash the daemon";
    EXPECT_TRUE(WIFSIGNALED(*status)) << d.Log();
  }
  Daemon d(dir_, "after");
  d.Start(Config(log_only, dir_line));
  const std::string ep = d.WaitReady();
  const Json view = Show(ep, "SI-A");
  EXPECT_EQ(Timeline(view, "notification").size(), 3u) << view.dump();
  EXPECT_EQ(Timeline(view, "breach").size(), 2u) << "fired once, before the crash";
  // The crash channel's deliveries wait, undelivered, for their channel to come back.
  const std::vector<Json> pending = Outbox(ep);
  ASSERT_EQ(pending.size(), 3u);
  for (const Json& p : pending) {
    EXPECT_EQ(p["channel"], "boom");
    EXPECT_EQ(p["attempts"], 0);
  }
  StopCleanly(d);
}

}  // namespace
}  // namespace tandem
