// Crash test of the daemon's promise: "nothing acknowledged is ever lost, nothing is applied
// twice, and no escalation is silently skipped". Publishers stream serious_incident events
// (numbered, over real DEALER sockets, many requests in flight) into the real `tandemd` while the
// test SIGKILLs it at random points (during start-up, during the catch-up of overdue timers, in
// the middle of bursts) and restarts it on the same data directory. Each publisher keeps a
// ledger of the answers it got; after a restart it resends every request still unanswered,
// with the same event_id, in the order it first sent them.
//
// During the run every answer is checked against the plan: the expected outcome of each
// event is known in advance (the cases follow the shipped workflow's happy path; one planned
// event in ten is ill-typed and must be REJECTED; some events are sent twice on purpose), an
// event is never answered ACCEPTED or REJECTED twice, and a DUPLICATE carries the first answer.
// A DUPLICATE for an event first sent to this very daemon process would mean the dedupe
// record existed before its event was ever committed.
//
// Each restart moves the daemon's clock one day on (clock_offset_seconds, capped at 30 days),
// so deadlines fall due while the daemon is down and must fire, once, after the restart.
//
// At the end: the daemon's query path (query_case, list_deadlines --overdue) for a sample, then,
// with the daemon stopped, the store read-side: every ACCEPTED event is in its case's event log
// exactly once and in order, events_applied counts them, every REJECTED event left no event row,
// the dedupe records hold the first answers, each event and each timer has at most one audit
// record, no deadline effect is doubled, no overdue timer is left pending, and the audit chain
// verifies.
//
// Knobs (environment): TANDEM_CRASH_SEED (replay a run; the seed is printed), TANDEM_CRASH_KILLS
// (default 30; e.g. 1000 by hand), TANDEM_CRASH_RATE (offered events/s, default 2500),
// TANDEM_CRASH_UPTIME_MS (mean time between ready and the kill, default 300).

#include <google/protobuf/struct.pb.h>
#include <gtest/gtest.h>
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "daemon/base/status.h"
#include "daemon/engine/engine.h"
#include "daemon/ingest/client.h"
#include "daemon/store/store.h"
#include "proto/tandem/v1/envelope.pb.h"
#include "proto/tandem/v1/store.pb.h"
#include "tests/integration/tandemd_process.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kTandemd[] = TANDEM_BINARY_DIR "/daemon/tandemd/tandemd";
constexpr int kPublishers = 2;
// Requests in flight per publisher (below the daemon's per-peer high-water mark of 1000).
constexpr std::size_t kWindow = 128;
// Publishers release their offered rate in bursts this often, so turns hold many events.
constexpr milliseconds kBurstEvery{20};
// The longest a running daemon may leave every request of a publisher unanswered.
constexpr milliseconds kStall{30000};
// The daemon's clock at the first start; every restart adds a day, up to kMaxDays.
constexpr int64_t kBaseEpoch = 1796126400;  // 2026-12-01T12:00:00Z
constexpr int kMaxDays = 30;
constexpr int64_t kDay = 86400;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

int64_t RealNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "YYYY-MM-DD" of the day `days` after 1970-01-01.
std::string Day(int64_t days) {
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

// ---- The plan: every event and its expected first answer.

struct PlannedEvent {
  std::string case_id;
  std::string type;
  bool accept = true;  // else rejected with `code`
  std::string code;    // the StatusCode name of the expected rejection
};

// One request a publisher sends (an event_id may be planned twice: a deliberate resend).
struct Slot {
  std::string event_id;
  std::string request_id;
  std::string bytes;  // the serialized v1::Request
};

struct PlannedCase {
  std::string case_id;
  int64_t aware_day = 0;                  // days since 1970
  bool complete = true;                   // runs to closed_no_lcspr; else stays in screening
  std::vector<std::string> accepted_ids;  // in publishing order
};

v1::Event MakeEvent(const std::string& event_id, const std::string& case_id,
                    const std::string& type, int64_t day,
                    const std::vector<std::pair<std::string, std::string>>& facts) {
  v1::Event e;
  e.set_event_id(event_id);
  e.set_case_id(case_id);
  e.set_partnership("staffordshire");
  e.set_type(type);
  e.mutable_occurred_at()->set_seconds(day * kDay + 10 * 3600);
  e.set_source("lcs");
  e.set_actor("la");
  auto& fields = *e.mutable_facts()->mutable_fields();
  for (const auto& [name, value] : facts) fields[name].set_string_value(value);
  return e;
}

// ---- What publishers and the kill loop share.

// The daemon currently serving: `epoch` counts the starts that reached "ready".
struct Serving {
  std::mutex mu;
  int epoch = 0;
  std::string endpoint;
  // Answers received by all publishers, so a kill can be aimed just after acks left a daemon.
  std::atomic<uint64_t> answers{0};
};

struct Answer {
  bool known = false;
  v1::AckStatus first = v1::ACK_STATUS_UNSPECIFIED;
  std::string code;
  int accepted_acks = 0;
  int rejected_acks = 0;
  int duplicate_acks = 0;
};

class Publisher {
 public:
  Publisher(int index, std::vector<Slot> slots, const std::map<std::string, PlannedEvent>& plan,
            Serving& serving, std::atomic<bool>& abort, double rate)
      : index_(index),
        slots_(std::move(slots)),
        plan_(plan),
        serving_(serving),
        abort_(abort),
        rate_(rate) {}

  void Run() {
    zmq::context_t context(1);
    std::optional<zmq::socket_t> socket;
    int epoch = 0;
    std::size_t next = 0;
    // Slot index -> the epoch it was last sent in; resent in slot order after a restart.
    std::map<std::size_t, int> inflight;
    const auto start = Clock::now();
    auto last_progress = Clock::now();
    while (!abort_.load() && (next < slots_.size() || !inflight.empty())) {
      int serving_epoch = 0;
      std::string endpoint;
      {
        std::lock_guard lock(serving_.mu);
        serving_epoch = serving_.epoch;
        endpoint = serving_.endpoint;
      }
      if (serving_epoch != epoch) {
        // A new daemon: take whatever answers the old socket still holds, then resend the
        // unanswered requests to the new one, in the order first sent.
        if (socket.has_value()) {
          Receive(*socket, inflight, epoch);
          socket.reset();
        }
        epoch = serving_epoch;
        socket.emplace(context, zmq::socket_type::dealer);
        socket->set(zmq::sockopt::linger, 0);
        socket->set(zmq::sockopt::sndhwm, 0);
        socket->connect(endpoint);
        for (auto& [i, sent_in] : inflight) {
          Send(*socket, i, epoch);
          sent_in = epoch;
          ++resends_;
        }
        last_progress = Clock::now();
      }
      if (!socket.has_value()) {
        std::this_thread::sleep_for(milliseconds(5));
        continue;
      }
      // Offer new requests: up to the window, and up to the burst-paced rate.
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const double bursts = std::floor(elapsed / (kBurstEvery.count() / 1000.0)) + 1;
      const auto allowed = static_cast<std::size_t>(bursts * rate_ * kBurstEvery.count() / 1000.0);
      while (next < slots_.size() && inflight.size() < kWindow && next < allowed) {
        Send(*socket, next, epoch);
        inflight[next] = epoch;
        ++next;
      }
      zmq::pollitem_t item = {socket->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(10));
      if (Receive(*socket, inflight, epoch) > 0 || inflight.empty()) {
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > kStall) {
        Violation("no answer for " + std::to_string(kStall.count()) + " ms from daemon epoch " +
                  std::to_string(epoch) + " with " + std::to_string(inflight.size()) +
                  " requests in flight");
        abort_ = true;
      }
    }
    done_ = true;
  }

  bool done() const { return done_.load(); }
  const std::map<std::string, Answer>& ledger() const { return ledger_; }
  const std::vector<std::string>& violations() const { return violations_; }
  uint64_t resends() const { return resends_; }
  uint64_t lost_ack_duplicates() const { return lost_ack_duplicates_; }

 private:
  void Send(zmq::socket_t& socket, std::size_t i, int epoch) {
    const Slot& slot = slots_[i];
    auto [it, inserted] = first_sent_epoch_.emplace(slot.event_id, epoch);
    static_cast<void>(it);
    static_cast<void>(inserted);
    // sndhwm 0: a DEALER queues without limit, so this never drops.
    if (!socket.send(zmq::buffer(slot.bytes), zmq::send_flags::dontwait)) {
      Violation("send refused for " + slot.request_id);
    }
  }

  // Takes every reply waiting on `socket`; returns how many answered a request in flight.
  int Receive(zmq::socket_t& socket, std::map<std::size_t, int>& inflight, int epoch) {
    int answered = 0;
    while (true) {
      zmq::message_t frame;
      if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
      v1::Reply reply;
      if (!reply.ParseFromArray(frame.data(), static_cast<int>(frame.size())) ||
          reply.request_id().size() < 2) {
        Violation("a reply that does not parse");
        continue;
      }
      const std::size_t i = std::stoull(reply.request_id().substr(1));
      auto it = inflight.find(i);
      if (i >= slots_.size() || it == inflight.end()) {
        Violation("a reply to " + reply.request_id() + ", which is not in flight");
        continue;
      }
      inflight.erase(it);
      ++answered;
      serving_.answers.fetch_add(1);
      Check(slots_[i], reply, epoch);
    }
    return answered;
  }

  void Check(const Slot& slot, const v1::Reply& reply, int epoch) {
    const std::string& id = slot.event_id;
    if (!reply.has_ack() || reply.ack().event_id() != id) {
      Violation(id + ": the reply is not an ack of this event");
      return;
    }
    const v1::Ack& ack = reply.ack();
    const PlannedEvent& plan = plan_.at(id);
    const v1::AckStatus expected = plan.accept ? v1::ACK_STATUS_ACCEPTED : v1::ACK_STATUS_REJECTED;
    Answer& a = ledger_[id];
    switch (ack.status()) {
      case v1::ACK_STATUS_ACCEPTED:
      case v1::ACK_STATUS_REJECTED: {
        (ack.status() == v1::ACK_STATUS_ACCEPTED ? a.accepted_acks : a.rejected_acks)++;
        if (a.known) {
          Violation(id + ": answered " + v1::AckStatus_Name(ack.status()) +
                    " again after its first answer " + v1::AckStatus_Name(a.first) +
                    ": applied twice");
          return;
        }
        if (ack.status() != expected || (!plan.accept && ack.code() != plan.code)) {
          Violation(id + ": answered " + v1::AckStatus_Name(ack.status()) + " " + ack.code() + " " +
                    ack.reason() + "; planned " + v1::AckStatus_Name(expected) + " " + plan.code);
        }
        a.known = true;
        a.first = ack.status();
        a.code = ack.code();
        return;
      }
      case v1::ACK_STATUS_DUPLICATE: {
        ++a.duplicate_acks;
        if (a.known) {
          if (ack.first_status() != a.first) {
            Violation(id + ": DUPLICATE says first " + v1::AckStatus_Name(ack.first_status()) +
                      " but the first answer was " + v1::AckStatus_Name(a.first));
          }
          return;
        }
        // No answer seen yet: legitimate only when the event reached an earlier daemon
        // process, which committed it but died before its ack got out.
        if (first_sent_epoch_.at(id) >= epoch) {
          Violation(id + ": DUPLICATE from the first daemon it was ever sent to (epoch " +
                    std::to_string(epoch) + "): a dedupe record without its commit");
        }
        if (ack.first_status() != expected || (!plan.accept && ack.code() != plan.code)) {
          Violation(id + ": DUPLICATE with first " + v1::AckStatus_Name(ack.first_status()) + " " +
                    ack.code() + "; planned " + v1::AckStatus_Name(expected));
        }
        ++lost_ack_duplicates_;
        a.known = true;
        a.first = ack.first_status();
        a.code = ack.code();
        return;
      }
      default:
        Violation(id + ": ack status " + v1::AckStatus_Name(ack.status()));
    }
  }

  void Violation(std::string what) {
    violations_.push_back("publisher " + std::to_string(index_) + ": " + std::move(what));
  }

  const int index_;
  const std::vector<Slot> slots_;
  const std::map<std::string, PlannedEvent>& plan_;
  Serving& serving_;
  std::atomic<bool>& abort_;
  const double rate_;
  std::map<std::string, int> first_sent_epoch_;
  std::map<std::string, Answer> ledger_;
  std::vector<std::string> violations_;
  uint64_t resends_ = 0;
  uint64_t lost_ack_duplicates_ = 0;
  std::atomic<bool> done_{false};
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "crash_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
    data_ = dir_ / "data";
  }
  void TearDown() override {
    if (!HasFailure()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    } else {
      std::fprintf(stderr, "crash_test: kept %s for inspection\n", dir_.c_str());
    }
  }

  // The tandemd arguments for the daemon's `days`-th day after kBaseEpoch.
  std::vector<std::string> Args(int days) {
    const int64_t offset = kBaseEpoch + days * kDay - RealNow();
    last_offset_ = offset;
    const fs::path config = dir_ / ("config." + std::to_string(days) + ".yaml");
    std::ofstream(config) << "clock_offset_seconds: " << offset << "\n";
    return {"--data", data_.string(), "--ingest", "tcp://127.0.0.1:*", "--config", config.string()};
  }

  fs::path dir_;
  fs::path data_;
  // The clock offset of the last start: the daemon's now is RealNow() + last_offset_.
  int64_t last_offset_ = 0;
};

TEST_F(CrashTest, SigkillAtRandomPointsLosesNoAckedEventAndAppliesNoneTwice) {
  const uint64_t seed = EnvOr("TANDEM_CRASH_SEED", std::random_device{}());
  const int kills = static_cast<int>(EnvOr("TANDEM_CRASH_KILLS", 30));
  const double rate = static_cast<double>(EnvOr("TANDEM_CRASH_RATE", 2500));
  const int uptime_ms = static_cast<int>(EnvOr("TANDEM_CRASH_UPTIME_MS", 300));
  std::printf(
      "crash_test: seed=%llu kills=%d rate=%.0f/s uptime_mean=%d ms (replay with "
      "TANDEM_CRASH_SEED=%llu)\n",
      static_cast<unsigned long long>(seed), kills, rate, uptime_ms,
      static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);

  // ---- The plan: enough events to keep publishing until about the last kill (about 3.9 events
  // per case; a daemon's life lasts uptime_mean plus its start-up), dealt to the publishers.
  const int cases = std::max(200, static_cast<int>(kills * rate * (uptime_ms + 100) / 1000 / 3.9));
  const int64_t first_aware = (kBaseEpoch / kDay) - 29;  // 2026-11-02
  std::vector<PlannedCase> planned(cases);
  std::map<std::string, PlannedEvent> plan;
  std::vector<std::vector<Slot>> slots(kPublishers);
  {
    // Each publisher sends its cases in blocks of 40: every block's first events, then its
    // second events, ..., so a case's events are ordered on one connection but rarely adjacent.
    std::vector<std::vector<std::vector<std::pair<std::string, v1::Event>>>> per_case(kPublishers);
    for (int c = 0; c < cases; ++c) {
      PlannedCase& pc = planned[c];
      char id[32];
      std::snprintf(id, sizeof id, "CR-%06d", c);
      pc.case_id = id;
      pc.aware_day = first_aware + static_cast<int64_t>(rng() % 47);
      pc.complete = rng() % 5 != 0;
      std::vector<std::pair<std::string, v1::Event>> events;
      auto add = [&](const std::string& suffix, const std::string& type, int64_t day,
                     std::vector<std::pair<std::string, std::string>> facts, bool accept,
                     const std::string& code) {
        const std::string event_id = pc.case_id + "-" + suffix;
        events.emplace_back(event_id, MakeEvent(event_id, pc.case_id, type, day, facts));
        plan[event_id] = PlannedEvent{pc.case_id, type, accept, code};
        if (accept) pc.accepted_ids.push_back(event_id);
      };
      const int64_t d = pc.aware_day;
      add("1", "incident.reported", d,
          {{"became_aware_on", Day(d)},
           {"incident_on", Day(d - 1)},
           {"child_dob", "2012-05-03"},
           {"outcome", "seriously_harmed"},
           {"abuse_or_neglect", "suspected"},
           {"location", "in_area"}},
          true, "");
      if (rng() % 7 == 0) {
        // The same event_id again, on purpose: DUPLICATE (first ACCEPTED), nothing applied.
        events.push_back(events.front());
      }
      add("2", "partners.informed", d + 2, {{"informed_on", Day(d + 2)}}, true, "");
      if (rng() % 10 == 0) {
        add("bad", "partners.informed", d + 2, {{"informed_on", "not-a-date"}}, false,
            "invalid_argument");
      }
      if (pc.complete) {
        add("3", "notification.submitted", d + 3, {{"submitted_on", Day(d + 3)}}, true, "");
        add("4", "rapid_review.submitted", d + 10,
            {{"submitted_on", Day(d + 10)}, {"decision", "no_lcspr"}}, true, "");
      }
      per_case[c % kPublishers].push_back(std::move(events));
    }
    for (int p = 0; p < kPublishers; ++p) {
      auto& mine = per_case[p];
      for (std::size_t block = 0; block < mine.size(); block += 40) {
        const std::size_t end = std::min(mine.size(), block + 40);
        for (std::size_t k = 0;; ++k) {
          bool any = false;
          for (std::size_t c = block; c < end; ++c) {
            if (k >= mine[c].size()) continue;
            any = true;
            Slot slot;
            slot.event_id = mine[c][k].first;
            slot.request_id = "r" + std::to_string(slots[p].size());
            v1::Request request;
            request.set_request_id(slot.request_id);
            *request.mutable_publish()->mutable_event() = mine[c][k].second;
            slot.bytes = request.SerializeAsString();
            slots[p].push_back(std::move(slot));
          }
          if (!any) break;
        }
      }
    }
  }
  std::size_t total_slots = 0;
  for (const auto& s : slots) total_slots += s.size();

  // ---- Publish while killing.
  Serving serving;
  std::atomic<bool> abort{false};
  std::vector<std::unique_ptr<Publisher>> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.push_back(std::make_unique<Publisher>(p, std::move(slots[p]), plan, serving, abort,
                                                     rate / kPublishers));
  }
  std::vector<std::thread> threads;
  for (auto& p : publishers) threads.emplace_back([&p] { p->Run(); });
  auto all_done = [&] {
    return std::all_of(publishers.begin(), publishers.end(),
                       [](const auto& p) { return p->done(); });
  };
  auto stop_publishers = [&] {
    abort = true;
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  };

  const auto started = Clock::now();
  test::TandemdProcess daemon(kTandemd, dir_, "tandemd");
  int days = 0;
  int kills_while_publishing = 0;
  int kills_in_startup = 0;
  int kills_aimed = 0;
  int kills_done = 0;
  for (int k = 0; k < kills && !abort.load(); ++k) {
    ASSERT_TRUE(daemon.Start(Args(std::min(days, kMaxDays))));
    if (rng() % 8 == 0) {
      // Kill during start-up: opening the store, replaying its log, before "ready".
      std::this_thread::sleep_for(milliseconds(rng() % 60));
      if (daemon.WaitReady(milliseconds(0), milliseconds(0)).has_value()) {
        // It was quicker: a kill right after ready, in the catch-up of overdue timers.
      } else {
        ++kills_in_startup;
      }
      daemon.Kill();
      ++kills_done;
      ++days;
      continue;
    }
    const std::optional<std::string> endpoint = daemon.WaitReady(milliseconds(20000));
    if (!endpoint.has_value()) {
      stop_publishers();
      FAIL() << "tandemd did not become ready after kill " << k << ":\n" << daemon.Log();
    }
    {
      std::lock_guard lock(serving.mu);
      ++serving.epoch;
      serving.endpoint = *endpoint;
    }
    std::uniform_int_distribution<int> uptime(0, 2 * uptime_ms);
    std::this_thread::sleep_for(milliseconds(uptime(rng)));
    if (rng() % 2 == 0) {
      // Aim at the moment acks come out: the daemon has just finished a commit and is busy
      // with the next turn (or, were acks ever sent before their commit, inside that commit).
      const uint64_t seen = serving.answers.load();
      const auto until = Clock::now() + milliseconds(50);
      while (serving.answers.load() == seen && Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      ++kills_aimed;
    }
    if (!all_done()) ++kills_while_publishing;
    const std::optional<int> status = daemon.Kill();
    ASSERT_TRUE(status.has_value());
    // It must have been running until the kill, not failed on its own.
    if (!(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)) {
      stop_publishers();
      FAIL() << "tandemd exited by itself before kill " << k << ":\n" << daemon.Log();
    }
    ++kills_done;
    ++days;
  }

  // ---- The last start: every publisher finishes, overdue timers catch up.
  const int final_days = std::min(days, kMaxDays);
  ASSERT_TRUE(daemon.Start(Args(final_days)));
  const std::optional<std::string> endpoint = daemon.WaitReady(milliseconds(20000));
  if (!endpoint.has_value()) {
    stop_publishers();
    FAIL() << "tandemd did not become ready after the last kill:\n" << daemon.Log();
  }
  {
    std::lock_guard lock(serving.mu);
    ++serving.epoch;
    serving.endpoint = *endpoint;
  }
  const auto finish_by = Clock::now() + std::chrono::seconds(120);
  while (!all_done() && !abort.load() && Clock::now() < finish_by) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  const bool finished = all_done();
  stop_publishers();
  const double run_seconds = std::chrono::duration<double>(Clock::now() - started).count();

  std::map<std::string, Answer> ledger;
  uint64_t resends = 0;
  uint64_t lost_ack_duplicates = 0;
  for (const auto& p : publishers) {
    for (const auto& v : p->violations()) ADD_FAILURE() << v;
    ledger.insert(p->ledger().begin(), p->ledger().end());
    resends += p->resends();
    lost_ack_duplicates += p->lost_ack_duplicates();
  }
  ASSERT_TRUE(finished) << "publishers did not finish within 120 s of the last start";

  // The daemon's query path: overdue deadlines catch up (no OPEN one stays past due), and a
  // sample of cases shows exactly its accepted events.
  zmq::context_t context(1);
  ingest::ClientOptions client_options;
  client_options.reply_timeout = milliseconds(10000);
  client_options.max_attempts = 1;
  client_options.deadline = milliseconds(10000);
  auto client = ingest::Client::Connect(context, *endpoint, client_options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  std::size_t overdue_left = 0;
  std::size_t breached_listed = 0;
  const auto catch_up_by = Clock::now() + std::chrono::seconds(30);
  int queries = 0;
  do {
    v1::Request request;
    request.set_request_id("deadlines-" + std::to_string(++queries));
    request.mutable_list_deadlines()->set_overdue_only(true);
    auto reply = client->Call(request);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ASSERT_TRUE(reply->has_deadlines()) << reply->DebugString();
    overdue_left = 0;
    breached_listed = 0;
    for (const auto& d : reply->deadlines().deadlines()) {
      if (d.deadline().status() == v1::DEADLINE_STATUS_OPEN) ++overdue_left;
      if (d.deadline().status() == v1::DEADLINE_STATUS_BREACHED) ++breached_listed;
    }
    if (overdue_left == 0) break;
    std::this_thread::sleep_for(milliseconds(100));
  } while (Clock::now() < catch_up_by);
  EXPECT_EQ(overdue_left, 0u) << "deadlines past due whose breach timer never fired";
  std::vector<int> sample;
  for (int i = 0; i < 8; ++i) sample.push_back(static_cast<int>(rng() % cases));
  for (int c : sample) {
    v1::Request request;
    request.set_request_id("case-" + std::to_string(c));
    request.mutable_query_case()->set_case_id(planned[c].case_id);
    auto reply = client->Call(request);
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ASSERT_TRUE(reply->has_case_view()) << reply->DebugString();
    std::vector<std::string> ids;
    for (const auto& e : reply->case_view().events()) ids.push_back(e.event_id());
    EXPECT_EQ(ids, planned[c].accepted_ids) << planned[c].case_id;
    EXPECT_EQ(reply->case_view().state().events_applied(), planned[c].accepted_ids.size());
  }
  const std::optional<int> stopped = daemon.Terminate();
  ASSERT_TRUE(stopped.has_value()) << "tandemd did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << daemon.Log();
  // The daemon's "now" when it stopped (its clock is the real one plus the offset).
  const int64_t final_now = RealNow() + last_offset_;

  // ---- The store, read-side, with the daemon stopped.
  auto opened = store::Store::Open(data_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  const store::Store& db = **opened;
  const Result<uint64_t> audit_records = db.VerifyAudit();
  ASSERT_TRUE(audit_records.ok()) << audit_records.status().ToString();

  // Audit records per cause: an event has exactly one, a timer at most one.
  std::map<std::string, int> accepted_records, rejected_records;
  std::map<std::pair<std::string, std::string>, int> timer_records;
  // Deadline effects per case: at most one breach, one met, one warning per warning.
  std::map<std::string, int> effect_counts;
  uint64_t timers_fired = 0;
  uint64_t late_firings = 0;
  for (uint64_t from = 1;;) {
    auto page = db.AuditRecords(from, 4096);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const v1::AuditRecord& r : *page) {
      if (r.has_event_accepted()) ++accepted_records[r.cause()];
      if (r.has_event_rejected()) ++rejected_records[r.cause()];
      if (r.has_timer_fired()) {
        ++timer_records[{r.case_id(), r.cause()}];
        ++timers_fired;
      }
      for (const v1::Effect& e : r.effects()) {
        std::string key;
        if (e.has_breach()) {
          key = "breach " + e.breach().name();
          late_firings += e.breach().late();
        } else if (e.has_met()) {
          key = "met " + e.met().name();
        } else if (e.has_warning()) {
          key = "warning " + e.warning().name() + " " +
                std::to_string(e.warning().working_days_before());
        } else if (e.has_deadline() && !e.deadline().recomputed()) {
          key = "deadline " + e.deadline().name();
        } else {
          continue;
        }
        ++effect_counts[e.case_id() + " " + key];
      }
    }
    if (page->size() < 4096) break;
    from = page->back().sequence() + 1;
  }
  for (const auto& [key, n] : timer_records) {
    EXPECT_EQ(n, 1) << key.first << " " << key.second << " fired " << n << " times";
  }
  for (const auto& [key, n] : effect_counts) EXPECT_EQ(n, 1) << key << " appears " << n << " times";

  uint64_t accepted = 0, rejected = 0, duplicates_acked = 0;
  int breached_incomplete = 0;
  for (const PlannedCase& pc : planned) {
    auto state = db.GetCase(pc.case_id);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    ASSERT_TRUE(state->has_value()) << pc.case_id << " is missing";
    const v1::CaseState& cs = **state;
    EXPECT_EQ(cs.events_applied(), pc.accepted_ids.size()) << pc.case_id;
    EXPECT_EQ(cs.state(), pc.complete ? "closed_no_lcspr" : "screening") << pc.case_id;
    auto events = db.CaseEvents(pc.case_id);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    std::vector<std::string> ids;
    for (const auto& e : *events) ids.push_back(e.event_id());
    EXPECT_EQ(ids, pc.accepted_ids) << pc.case_id << ": event log differs from the accepted events";
    for (const v1::DeadlineInstance& d : cs.deadlines()) {
      // A deadline past due is never left OPEN: its breach timer fired (after a restart when
      // the daemon was down at the time).
      if (d.status() == v1::DEADLINE_STATUS_OPEN) {
        EXPECT_GT(d.due_at().seconds(), final_now) << pc.case_id << " " << d.name();
      }
    }
    if (!pc.complete) {
      for (const v1::DeadlineInstance& d : cs.deadlines()) {
        if (d.name() != "sin_notification" || d.due_at().seconds() > final_now) continue;
        ++breached_incomplete;
        EXPECT_EQ(d.status(), v1::DEADLINE_STATUS_BREACHED) << pc.case_id;
        EXPECT_EQ(effect_counts[pc.case_id + " breach sin_notification"], 1) << pc.case_id;
        // Its warning fired at most once (checked above for every effect); none when the
        // incident was applied after both the warning day and the deadline had passed.
      }
    }
  }
  for (const auto& [id, planned_event] : plan) {
    auto it = ledger.find(id);
    ASSERT_TRUE(it != ledger.end() && it->second.known) << id << " was never answered";
    const Answer& a = it->second;
    duplicates_acked += a.duplicate_acks;
    auto dedupe = db.GetDedupe(id);
    ASSERT_TRUE(dedupe.ok()) << dedupe.status().ToString();
    ASSERT_TRUE(dedupe->has_value()) << id << ": answered but no dedupe record";
    if (a.first == v1::ACK_STATUS_ACCEPTED) {
      ++accepted;
      EXPECT_TRUE((*dedupe)->has_accepted()) << id;
      EXPECT_EQ(accepted_records[id], 1) << id;
      EXPECT_EQ(rejected_records[id], 0) << id;
    } else {
      ++rejected;
      EXPECT_TRUE((*dedupe)->has_rejected()) << id;
      EXPECT_EQ((*dedupe)->rejected().code(), a.code) << id;
      EXPECT_EQ(accepted_records[id], 0) << id;
      EXPECT_EQ(rejected_records[id], 1) << id;
    }
  }
  // Every event present once, and nothing else: the event logs hold exactly the accepted ones.
  uint64_t logged = 0;
  ASSERT_TRUE(db.ForEachCase([&](const v1::CaseState& s) {
                  logged += s.events_applied();
                  return true;
                }).ok());
  EXPECT_EQ(logged, accepted);
  // No overdue timer is left pending.
  auto next = db.NextDueTimer();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  if (next->has_value()) {
    EXPECT_GT((*next)->timer.due_at().seconds(), final_now);
  }

  std::printf(
      "crash_test: seed=%llu kills=%d (while publishing %d, during start-up %d, aimed at acks %d) "
      "in %.1f s; "
      "events planned=%zu sends=%zu resends=%llu; first answers ACCEPTED=%llu REJECTED=%llu; "
      "DUPLICATE acks=%llu (of which acks lost to a kill=%llu); timers fired=%llu (late "
      "breaches %llu, deadlines listed breached %zu, overdue sin_notification checked %d); "
      "audit records=%llu, chain verified\n",
      static_cast<unsigned long long>(seed), kills_done, kills_while_publishing, kills_in_startup,
      kills_aimed, run_seconds, plan.size(), total_slots, static_cast<unsigned long long>(resends),
      static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected),
      static_cast<unsigned long long>(duplicates_acked),
      static_cast<unsigned long long>(lost_ack_duplicates),
      static_cast<unsigned long long>(timers_fired), static_cast<unsigned long long>(late_firings),
      breached_listed, breached_incomplete, static_cast<unsigned long long>(*audit_records));
  EXPECT_GE(kills_done, std::min(kills, 20));
}

}  // namespace
}  // namespace tandem
