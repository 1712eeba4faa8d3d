#pragma once
// Helpers shared by the outbox tests: a store whose outbox holds real notifications (engine
// outcomes of the shipped serious_incident workflow, committed through the store, fanned out to
// the channels a test router names), a fake UTC clock, sinks that record or fail on demand, and
// a writer that applies the dispatchers' outcomes to batches and commits them, as the daemon's
// writer strand does. Every wait is bounded by kWait; nothing depends on the wall clock.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/engine.h"
#include "daemon/outbox/outbox.h"
#include "daemon/store/store.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::outbox::test {

using store::test::At;

// The longest any test waits for the dispatcher to do something.
inline constexpr std::chrono::seconds kWait{2};

// Waits until `done()` holds, polling every millisecond, for at most kWait. Returns done().
inline bool WaitUntil(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A UTC clock that moves only when the test says so. Thread-safe.
class FakeClock {
 public:
  explicit FakeClock(calendar::Instant start) : seconds_(start.time_since_epoch().count()) {}
  calendar::Instant Now() const { return calendar::Instant(std::chrono::seconds(seconds_.load())); }
  void Set(calendar::Instant to) { seconds_.store(to.time_since_epoch().count()); }
  void Advance(std::chrono::seconds by) { seconds_.fetch_add(by.count()); }
  std::function<calendar::Instant()> Function() const {
    return [this] { return Now(); };
  }

 private:
  std::atomic<int64_t> seconds_;
};

// Returns a router that sends every notification to each of `channels`, in that order, with
// the address "addr-<channel>".
inline store::NotificationRouter RouteTo(std::vector<std::string> channels) {
  return [channels = std::move(channels)](const v1::Notification&) {
    std::vector<store::DeliveryChannel> out;
    for (const std::string& channel : channels) out.push_back({channel, "addr-" + channel});
    return out;
  };
}

// One call of a test sink's Deliver.
struct Attempt {
  std::string sink;
  uint64_t sequence = 0;
  std::string case_id;
  std::string notification_id;
  uint32_t attempts_before = 0;  // the record's attempts field when it was delivered
  bool ok = false;
  std::string channel;  // the record's channel and address
  std::string address;
};

// Returns the Attempt of `sink` delivering `record`.
inline Attempt AttemptOf(std::string sink, const v1::OutboxRecord& record, bool ok) {
  Attempt attempt;
  attempt.sink = std::move(sink);
  attempt.sequence = record.sequence();
  attempt.case_id = record.effect().case_id();
  attempt.notification_id = record.effect().notification().notification_id();
  attempt.attempts_before = record.attempts();
  attempt.ok = ok;
  attempt.channel = record.channel();
  attempt.address = record.address();
  return attempt;
}

// Every Deliver call of the test sinks, in order. Thread-safe.
class Journal {
 public:
  void Add(Attempt attempt) {
    std::lock_guard lock(mu_);
    attempts_.push_back(std::move(attempt));
  }
  std::vector<Attempt> attempts() const {
    std::lock_guard lock(mu_);
    return attempts_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return attempts_.size();
  }
  // The sequences `sink` was given, in order (failed attempts included when `all`).
  std::vector<uint64_t> Sequences(const std::string& sink, bool all = false) const {
    std::vector<uint64_t> out;
    for (const Attempt& a : attempts()) {
      if (a.sink == sink && (all || a.ok)) out.push_back(a.sequence);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Attempt> attempts_;
};

// A sink that records every call in a Journal and fails the first `failures` deliveries of the
// records `fails` selects (every record by default), with `code`: kUnavailable ("test sink
// <name> is down", retryable) or any other code ("test sink <name> refused it", permanent).
class ScriptedSink final : public Sink {
 public:
  ScriptedSink(std::string name, Journal* journal, int failures = 0,
               std::function<bool(const v1::OutboxRecord&)> fails = nullptr,
               StatusCode code = StatusCode::kUnavailable)
      : name_(std::move(name)),
        journal_(journal),
        failures_(failures),
        fails_(std::move(fails)),
        code_(code) {}

  std::string_view name() const override { return name_; }

  Status Deliver(const v1::OutboxRecord& record) override {
    const bool selected = fails_ == nullptr || fails_(record);
    const bool fail = selected && failures_ != 0;
    if (fail && failures_ > 0) --failures_;
    journal_->Add(AttemptOf(name_, record, !fail));
    if (!fail) return OkStatus();
    if (code_ == StatusCode::kUnavailable) {
      return UnavailableError("test sink " + name_ + " is down");
    }
    return Status(code_, "test sink " + name_ + " refused it");
  }

 private:
  std::string name_;
  Journal* journal_;
  int failures_;  // negative: fail for ever
  std::function<bool(const v1::OutboxRecord&)> fails_;
  StatusCode code_;
};

// Acts as the daemon's writer: receives the dispatchers' outcomes (their `record` callback),
// applies them to a batch, commits it and calls Dispatcher::Recorded on every dispatcher (as
// tandemd does: each ignores the outcomes of records that are not its channels'). In automatic
// mode it does so at once, on the reporting dispatcher's thread; otherwise it queues them until
// ApplyPending. All commits, the test's own included (Locked), run under one mutex: the store
// has one writer.
class TestWriter {
 public:
  TestWriter(store::Store* store, const FakeClock* clock, bool automatic)
      : store_(store), clock_(clock), automatic_(automatic) {}

  void add_dispatcher(Dispatcher* dispatcher) {
    std::lock_guard lock(mu_);
    dispatchers_.push_back(dispatcher);
  }

  std::function<void(DeliveryResult)> Callback() {
    return [this](DeliveryResult result) { Post(std::move(result)); };
  }

  void Post(DeliveryResult result) {
    std::lock_guard lock(mu_);
    reported_.push_back(result);
    if (automatic_) {
      ApplyLocked({result});
    } else {
      pending_.push_back(std::move(result));
    }
  }

  // Applies every queued outcome in one batch, commits it, and tells the dispatcher.
  void ApplyPending() {
    std::lock_guard lock(mu_);
    std::vector<DeliveryResult> pending = std::move(pending_);
    pending_.clear();
    ApplyLocked(pending);
  }

  // Runs `change` as the writer (e.g. to commit more notifications while the dispatcher runs).
  void Locked(const std::function<void()>& change) {
    std::lock_guard lock(mu_);
    change();
  }

  // Every outcome reported so far, in order.
  std::vector<DeliveryResult> reported() const {
    std::lock_guard lock(mu_);
    return reported_;
  }
  std::size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  // Waits (at most kWait) until `n` outcomes have been reported in all. Returns whether they were.
  bool WaitReported(std::size_t n) const {
    return WaitUntil([&] { return reported().size() >= n; });
  }

 private:
  void ApplyLocked(const std::vector<DeliveryResult>& results) {
    if (results.empty()) return;
    const calendar::Instant now = clock_->Now();
    store::Batch batch = store_->NewBatch();
    for (const DeliveryResult& r : results) {
      switch (r.kind) {
        case DeliveryResult::Kind::kDelivered:
          EXPECT_TRUE(batch.MarkDelivered(r.sequence, now).ok()) << r.sequence;
          break;
        case DeliveryResult::Kind::kRetry:
          EXPECT_TRUE(batch.Reschedule(r.sequence, r.attempts, r.next_attempt_at, r.error).ok())
              << r.sequence;
          break;
        case DeliveryResult::Kind::kDeadLetter:
          EXPECT_TRUE(batch.Reschedule(r.sequence, r.attempts, now, r.error).ok()) << r.sequence;
          EXPECT_TRUE(batch.MoveToDeadLetter(r.sequence, r.error, now).ok()) << r.sequence;
          break;
      }
    }
    const Status committed = store_->Commit(std::move(batch), /*sync=*/true);
    EXPECT_TRUE(committed.ok()) << committed.ToString();
    for (Dispatcher* dispatcher : dispatchers_) {
      for (const DeliveryResult& r : results) dispatcher->Recorded(r);
    }
  }

  store::Store* store_;
  const FakeClock* clock_;
  const bool automatic_;
  mutable std::mutex mu_;
  std::vector<Dispatcher*> dispatchers_;
  std::vector<DeliveryResult> reported_;
  std::vector<DeliveryResult> pending_;
};

// Commits an incident for `case_id` (aware on `aware_on`) and fires every timer of the store
// in due order, each in a batch of its own at its due instant: each timer queues one
// notification. Returns false (after a test failure) if a step fails.
inline bool AcceptIncident(store::Store& store, const std::string& event_id,
                           const std::string& case_id, std::string_view aware_on = "2026-12-24",
                           std::string_view at = "2026-12-24T10:15:00Z") {
  const v1::Event event = store::test::Incident(event_id, case_id, aware_on, at);
  const calendar::Instant now = engine::ToInstant(event.occurred_at());
  store::Batch batch = store.NewBatch();
  auto outcome = store::test::ApplyInTurn(store, batch, event, now);
  EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
  if (!outcome.ok()) return false;
  EXPECT_TRUE(batch.AddAccepted(event, *outcome, now).ok());
  const Status committed = store.Commit(std::move(batch), true);
  EXPECT_TRUE(committed.ok()) << committed.ToString();
  return committed.ok();
}

inline bool FireAllTimers(store::Store& store) {
  for (int fired = 0; fired < 100; ++fired) {
    auto next = store.NextDueTimer();
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok()) return false;
    if (!next->has_value()) return true;
    const store::TimerEntry entry = **next;
    const calendar::Instant now = engine::ToInstant(entry.timer.due_at());
    auto outcome = store::test::FireStored(store, entry, now);
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    if (!outcome.ok()) return false;
    store::Batch batch = store.NewBatch();
    EXPECT_TRUE(batch.AddFired(entry.timer.id(), entry.timer, *outcome, now).ok());
    const Status committed = store.Commit(std::move(batch), true);
    EXPECT_TRUE(committed.ok()) << committed.ToString();
    if (!committed.ok()) return false;
  }
  ADD_FAILURE() << "timers keep firing";
  return false;
}

// Returns the sequences of the pending outbox records (of `case_id` only, if given).
inline std::vector<uint64_t> OutboxSequences(const store::Store& store,
                                             const std::string& case_id = "") {
  auto records = store.Outbox(10000);
  EXPECT_TRUE(records.ok()) << records.status().ToString();
  std::vector<uint64_t> out;
  if (!records.ok()) return out;
  for (const auto& r : *records) {
    if (case_id.empty() || r.effect().case_id() == case_id) out.push_back(r.sequence());
  }
  return out;
}

// Wakes `dispatcher` and waits (at most 2 * kWait) until a scan that started after the call has
// finished, so whatever the test changed before has been seen.
inline bool Settle(Dispatcher& dispatcher) {
  const uint64_t before = dispatcher.ScansForTest();
  dispatcher.Wake();
  if (!WaitUntil([&] { return dispatcher.ScansForTest() >= before + 1; })) return false;
  // The scan that finished may have begun before the Wake; the Wake (given again, in case that
  // scan consumed it) makes the next one start after it.
  dispatcher.Wake();
  return WaitUntil([&] { return dispatcher.ScansForTest() >= before + 2; });
}

}  // namespace tandem::outbox::test
