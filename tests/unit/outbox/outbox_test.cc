#include "daemon/outbox/outbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/engine/engine.h"
#include "daemon/store/store.h"
#include "tests/unit/outbox/outbox_test_util.h"

namespace tandem::outbox {
namespace {

using std::chrono::seconds;
using test::At;
using test::Attempt;
using test::AttemptOf;
using test::FakeClock;
using test::Journal;
using test::OutboxSequences;
using test::ScriptedSink;
using test::Settle;
using test::TestWriter;
using test::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = DeliveryResult::Kind;

// Options that make the tests fast and exact: no jitter, a short poll, a fixed seed.
DispatcherOptions TestOptions() {
  DispatcherOptions options;
  options.jitter = 0.0;
  options.seed = 1;
  options.idle_poll = std::chrono::milliseconds(10);
  return options;
}

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = store::test::MustOpen(dir_.path() / "db");
    ASSERT_NE(store_, nullptr);
  }

  // Routes every notification to each of `channels` (so each has one outbox record per channel,
  // with consecutive sequences, in that order), opens each case, then fires every pending timer
  // in due order: three notifications per case, the cases' interleaved by due instant.
  void Fill(const std::vector<std::string>& case_ids, const std::vector<std::string>& channels) {
    store_->SetNotificationRouter(test::RouteTo(channels));
    for (const std::string& case_id : case_ids) {
      ASSERT_TRUE(test::AcceptIncident(*store_, "e-" + case_id, case_id));
    }
    ASSERT_TRUE(test::FireAllTimers(*store_));
  }

  // Makes the dispatcher (not started) with `sinks` and a writer, automatic or queueing.
  Dispatcher& Make(std::vector<std::unique_ptr<Sink>> sinks, DispatcherOptions options,
                   bool automatic = true) {
    writer_ = std::make_unique<TestWriter>(store_.get(), &clock_, automatic);
    dispatcher_ = std::make_unique<Dispatcher>(*store_, std::move(sinks), std::move(options),
                                               clock_.Function(), writer_->Callback());
    writer_->add_dispatcher(dispatcher_.get());
    return *dispatcher_;
  }

  // Makes another dispatcher (not started) on the same store, reporting to the same writer, as
  // tandemd runs one per channel instance. REQUIRES: Make was called.
  Dispatcher& MakeAnother(std::vector<std::unique_ptr<Sink>> sinks, DispatcherOptions options) {
    more_.push_back(std::make_unique<Dispatcher>(*store_, std::move(sinks), std::move(options),
                                                 clock_.Function(), writer_->Callback()));
    writer_->add_dispatcher(more_.back().get());
    return *more_.back();
  }

  std::unique_ptr<Sink> Recording(const std::string& name, int failures = 0,
                                  std::function<bool(const v1::OutboxRecord&)> fails = nullptr) {
    return std::make_unique<ScriptedSink>(name, &journal_, failures, std::move(fails));
  }

  bool OutboxEmpty() { return OutboxSequences(*store_).empty(); }

  // Commits, in a batch of its own, record `sequence` rescheduled to `next_attempt_at` with
  // `attempts` and `error` (as an earlier run's failures would leave it).
  void Reschedule(uint64_t sequence, uint32_t attempts, calendar::Instant next_attempt_at,
                  const std::string& error) {
    store::Batch batch = store_->NewBatch();
    ASSERT_TRUE(batch.Reschedule(sequence, attempts, next_attempt_at, error).ok());
    ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  }

  // The sequences of the pending outbox records of `channel`.
  std::vector<uint64_t> OnChannel(const std::string& channel) {
    auto records = store_->Outbox(10000);
    EXPECT_TRUE(records.ok()) << records.status().ToString();
    std::vector<uint64_t> out;
    if (!records.ok()) return out;
    for (const auto& r : *records) {
      if (r.channel() == channel) out.push_back(r.sequence());
    }
    return out;
  }

  // The store's audit records of delivered / dead-lettered notifications.
  std::vector<v1::AuditRecord> AuditOf(bool delivered) {
    auto audit = store_->AuditRecords(1, 10000);
    EXPECT_TRUE(audit.ok());
    std::vector<v1::AuditRecord> out;
    for (const auto& r : *audit) {
      if (delivered ? r.has_notification_delivered() : r.has_notification_dead_lettered()) {
        out.push_back(r);
      }
    }
    return out;
  }

  // Members are destroyed bottom-up: the dispatcher stops before the writer and store go.
  store::test::ScopedDir dir_;
  std::unique_ptr<store::Store> store_;
  FakeClock clock_{At("2027-03-01T09:00:00Z")};
  Journal journal_;
  std::unique_ptr<TestWriter> writer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<Dispatcher>> more_;
};

TEST_F(DispatcherTest, DeliversEachRecordToTheSinkOfItsChannelInOrderAndEmptiesTheOutbox) {
  Fill({"SI-1", "SI-2"}, {"a", "b"});
  auto records = store_->Outbox(100);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  // Six notifications, each with a record for a and then one for b.
  ASSERT_EQ(records->size(), 12u);
  std::vector<uint64_t> sequences;
  std::vector<std::string> notification_ids;
  for (std::size_t i = 0; i < records->size(); ++i) {
    const v1::OutboxRecord& r = (*records)[i];
    ASSERT_EQ(r.channel(), i % 2 == 0 ? "a" : "b") << i;
    sequences.push_back(r.sequence());
    if (i % 2 == 0) notification_ids.push_back(r.effect().notification().notification_id());
  }
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("b"));  // the order of the sinks is not the order of delivery
  sinks.push_back(Recording("a"));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());
  dispatcher.Start();

  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  dispatcher.Stop();
  // Each record went once, to the sink of its channel, with the route's address, in sequence
  // order; so each sink saw every notification once, in order.
  const auto attempts = journal_.attempts();
  ASSERT_EQ(attempts.size(), 12u);
  std::vector<std::string> ids_a;
  std::vector<std::string> ids_b;
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    EXPECT_EQ(attempts[i].sequence, sequences[i]) << i;
    EXPECT_EQ(attempts[i].sink, i % 2 == 0 ? "a" : "b") << i;
    EXPECT_EQ(attempts[i].channel, attempts[i].sink) << i;
    EXPECT_EQ(attempts[i].address, "addr-" + attempts[i].sink) << i;
    EXPECT_TRUE(attempts[i].ok);
    (attempts[i].sink == "a" ? ids_a : ids_b).push_back(attempts[i].notification_id);
  }
  EXPECT_EQ(ids_a, notification_ids);
  EXPECT_EQ(ids_b, notification_ids);
  for (const DeliveryResult& r : writer_->reported()) {
    EXPECT_EQ(r.kind, Kind::kDelivered);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_TRUE(r.error.empty());
  }
  EXPECT_EQ(writer_->reported().size(), 12u);
  const auto delivered = AuditOf(true);
  ASSERT_EQ(delivered.size(), 12u);
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    EXPECT_EQ(delivered[i].notification_delivered().attempts(), 1u);
    EXPECT_EQ(delivered[i].notification_delivered().outbox_sequence(), sequences[i]);
    EXPECT_EQ(delivered[i].notification_delivered().channel(), i % 2 == 0 ? "a" : "b");
  }
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
}

TEST_F(DispatcherTest, RetriesWithExponentialBackoffOnTheInjectedClock) {
  Fill({"SI-1"}, {"flaky"});
  ASSERT_THAT(OutboxSequences(*store_), ElementsAre(1, 2, 3));
  DispatcherOptions options = TestOptions();
  options.initial_backoff = seconds(5);
  options.max_backoff = seconds(12);
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(
      Recording("flaky", 3, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  Dispatcher& dispatcher = Make(std::move(sinks), options);
  const calendar::Instant t0 = clock_.Now();
  dispatcher.Start();

  // First failure: 5 s.
  ASSERT_TRUE(writer_->WaitReported(1));
  DeliveryResult r = writer_->reported()[0];
  EXPECT_EQ(r.kind, Kind::kRetry);
  EXPECT_EQ(r.sequence, 1u);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.next_attempt_at, t0 + seconds(5));
  EXPECT_THAT(r.error, HasSubstr("flaky: unavailable: test sink flaky is down"));
  ASSERT_TRUE(Settle(dispatcher));
  auto row = store_->Outbox(1);
  ASSERT_TRUE(row.ok() && row->size() == 1u);
  EXPECT_EQ((*row)[0].attempts(), 1u);
  EXPECT_EQ(engine::ToInstant((*row)[0].next_attempt_at()), t0 + seconds(5));
  EXPECT_THAT((*row)[0].last_error(), HasSubstr("test sink flaky is down"));
  // The case's later records wait behind it.
  EXPECT_THAT(journal_.Sequences("flaky", true), ElementsAre(1));

  // Not a second early.
  clock_.Advance(seconds(4));
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_EQ(journal_.size(), 1u);
  clock_.Advance(seconds(1));
  ASSERT_TRUE(writer_->WaitReported(2));
  r = writer_->reported()[1];
  EXPECT_EQ(r.kind, Kind::kRetry);
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_EQ(r.next_attempt_at, t0 + seconds(5 + 10));

  // Third failure: 20 s, capped at 12.
  clock_.Advance(seconds(10));
  ASSERT_TRUE(writer_->WaitReported(3));
  r = writer_->reported()[2];
  EXPECT_EQ(r.kind, Kind::kRetry);
  EXPECT_EQ(r.attempts, 3u);
  EXPECT_EQ(r.next_attempt_at, t0 + seconds(5 + 10 + 12));
  clock_.Advance(seconds(11));
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_EQ(journal_.size(), 3u);

  // The fourth attempt succeeds, and the case's later records follow in order.
  clock_.Advance(seconds(1));
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  EXPECT_THAT(journal_.Sequences("flaky", true), ElementsAre(1, 1, 1, 1, 2, 3));
  EXPECT_EQ(writer_->reported()[3].kind, Kind::kDelivered);
  EXPECT_EQ(writer_->reported()[3].attempts, 4u);
  const auto delivered = AuditOf(true);
  ASSERT_EQ(delivered.size(), 3u);
  EXPECT_EQ(delivered[0].notification_delivered().outbox_sequence(), 1u);
  EXPECT_EQ(delivered[0].notification_delivered().attempts(), 4u);
  // Each retry carried the attempts made before it.
  const auto attempts = journal_.attempts();
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(attempts[i].attempts_before, i);
}

TEST_F(DispatcherTest, JitteredBackoffStaysWithinItsBoundsWithAFixedSeed) {
  Fill({"SI-1"}, {"down"});
  DispatcherOptions options = TestOptions();
  options.initial_backoff = seconds(100);
  options.max_backoff = seconds(100000);
  options.jitter = 0.5;
  options.seed = 42;
  options.max_attempts = 6;
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("down", -1));
  Dispatcher& dispatcher = Make(std::move(sinks), options);
  dispatcher.Start();

  bool any_jittered = false;
  for (uint32_t attempts = 1; attempts < 6; ++attempts) {
    ASSERT_TRUE(writer_->WaitReported(attempts));
    const DeliveryResult r = writer_->reported()[attempts - 1];
    ASSERT_EQ(r.kind, Kind::kRetry);
    ASSERT_EQ(r.attempts, attempts);
    const int64_t base = 100LL << (attempts - 1);
    const int64_t wait = (r.next_attempt_at - clock_.Now()).count();
    EXPECT_GE(wait, base / 2) << attempts;
    EXPECT_LE(wait, base + base / 2) << attempts;
    any_jittered = any_jittered || wait != base;
    clock_.Set(r.next_attempt_at);
  }
  EXPECT_TRUE(any_jittered);
  ASSERT_TRUE(writer_->WaitReported(6));
  EXPECT_EQ(writer_->reported()[5].kind, Kind::kDeadLetter);
}

TEST_F(DispatcherTest, DeadLettersARecordAfterMaxAttemptsThenDeliversTheRestOfItsCase) {
  Fill({"SI-1"}, {"broken"});
  DispatcherOptions options = TestOptions();
  options.max_attempts = 3;
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(
      Recording("broken", -1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  Dispatcher& dispatcher = Make(std::move(sinks), options);
  dispatcher.Start();

  ASSERT_TRUE(writer_->WaitReported(1));
  clock_.Advance(seconds(5));
  ASSERT_TRUE(writer_->WaitReported(2));
  clock_.Advance(seconds(10));
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  const auto reported = writer_->reported();
  ASSERT_EQ(reported.size(), 5u);
  EXPECT_EQ(reported[0].kind, Kind::kRetry);
  EXPECT_EQ(reported[1].kind, Kind::kRetry);
  EXPECT_EQ(reported[2].kind, Kind::kDeadLetter);
  EXPECT_EQ(reported[2].sequence, 1u);
  EXPECT_EQ(reported[2].attempts, 3u);
  EXPECT_THAT(reported[2].error, HasSubstr("broken: unavailable"));
  EXPECT_EQ(reported[3].kind, Kind::kDelivered);
  EXPECT_EQ(reported[4].kind, Kind::kDelivered);

  auto dead = store_->DeadLetters(10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].sequence(), 1u);
  EXPECT_EQ((*dead)[0].attempts(), 3u);
  EXPECT_THAT((*dead)[0].last_error(), HasSubstr("test sink broken is down"));
  const auto audit = AuditOf(false);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].notification_dead_lettered().attempts(), 3u);
  EXPECT_EQ(audit[0].notification_dead_lettered().notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ(audit[0].notification_dead_lettered().channel(), "broken");
  EXPECT_THAT(journal_.Sequences("broken", true), ElementsAre(1, 1, 1, 2, 3));
}

TEST_F(DispatcherTest, CountsTheAttemptsTheStoreAlreadyRecorded) {
  Fill({"SI-1"}, {"down"});
  // A previous run failed record 1 seven times.
  ASSERT_NO_FATAL_FAILURE(Reschedule(1, 7, clock_.Now(), "earlier failure"));
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("down", 1));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());  // max_attempts 8
  dispatcher.Start();
  ASSERT_TRUE(writer_->WaitReported(1));
  const DeliveryResult r = writer_->reported()[0];
  EXPECT_EQ(r.kind, Kind::kDeadLetter);
  EXPECT_EQ(r.attempts, 8u);
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  EXPECT_EQ((*store_->DeadLetters(10))[0].attempts(), 8u);
}

TEST_F(DispatcherTest, DoesNotDeliverARecordAgainWhileItsOutcomeAwaitsTheWriter) {
  Fill({"SI-1", "SI-2"}, {"s"});
  std::vector<std::unique_ptr<Sink>> sinks;
  // Record 1 fails once: its row still says "due now" until the writer records the retry.
  sinks.push_back(Recording("s", 1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions(), /*automatic=*/false);
  dispatcher.Start();

  // Record 1 failed; SI-1's later records wait behind it; SI-2's three were delivered.
  ASSERT_TRUE(writer_->WaitReported(4));
  ASSERT_TRUE(Settle(dispatcher));
  clock_.Advance(seconds(3600));  // past record 1's back-off, too
  ASSERT_TRUE(Settle(dispatcher));
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_EQ(journal_.size(), 4u);
  EXPECT_EQ(writer_->reported().size(), 4u);
  EXPECT_EQ(OutboxSequences(*store_).size(), 6u);  // nothing recorded yet

  // The writer commits; record 1 is due again and its case follows; nothing goes twice.
  writer_->ApplyPending();
  ASSERT_TRUE(writer_->WaitReported(5));
  writer_->ApplyPending();
  ASSERT_TRUE(writer_->WaitReported(7));
  writer_->ApplyPending();
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_TRUE(OutboxEmpty());
  EXPECT_EQ(writer_->reported().size(), 7u);
  std::vector<uint64_t> ok = journal_.Sequences("s");
  std::sort(ok.begin(), ok.end());
  EXPECT_EQ(ok, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

// A sink that runs `hook` (once) just before delivering record `sequence`, and records every
// delivery in a Journal like ScriptedSink.
class HookSink final : public Sink {
 public:
  HookSink(Journal* journal, uint64_t sequence, std::function<void()> hook)
      : journal_(journal), sequence_(sequence), hook_(std::move(hook)) {}
  std::string_view name() const override { return "hook"; }
  Status Deliver(const v1::OutboxRecord& record) override {
    if (record.sequence() == sequence_ && hook_) std::exchange(hook_, nullptr)();
    journal_->Add(AttemptOf("hook", record, true));
    return OkStatus();
  }

 private:
  Journal* journal_;
  uint64_t sequence_;
  std::function<void()> hook_;
};

// A scan reads a page, then delivers its records one by one. If the writer records the results
// of an earlier scan meanwhile, rows of that page it just removed must not go out again.
TEST_F(DispatcherTest, ARecordTheWriterRecordsDuringAScanIsNotDeliveredAgainFromItsPage) {
  Fill({"SI-1", "SI-2"}, {"hook"});
  const std::vector<uint64_t> first_case = OutboxSequences(*store_, "SI-1");
  const std::vector<uint64_t> second_case = OutboxSequences(*store_, "SI-2");
  ASSERT_FALSE(first_case.empty());
  ASSERT_FALSE(second_case.empty());
  // SI-1's first record waits an hour, so the first scan delivers SI-2's records only...
  const uint64_t waiting = first_case.front();
  ASSERT_LT(waiting, second_case.back());
  ASSERT_NO_FATAL_FAILURE(Reschedule(waiting, 0, clock_.Now() + seconds(3600), "test"));
  std::vector<std::unique_ptr<Sink>> sinks;
  // ...and the second scan, delivering it, lets the writer record those first: the rows of
  // SI-2 still in that scan's page are gone from the store by the time the scan reaches them.
  sinks.push_back(
      std::make_unique<HookSink>(&journal_, waiting, [this] { writer_->ApplyPending(); }));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions(), /*automatic=*/false);
  dispatcher.Start();
  ASSERT_TRUE(writer_->WaitReported(second_case.size()));
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_EQ(journal_.Sequences("hook"), second_case);

  clock_.Advance(seconds(3601));
  dispatcher.Wake();
  ASSERT_TRUE(writer_->WaitReported(second_case.size() + first_case.size()));
  writer_->ApplyPending();
  ASSERT_TRUE(Settle(dispatcher));
  std::vector<uint64_t> delivered = journal_.Sequences("hook");
  std::sort(delivered.begin(), delivered.end());
  std::vector<uint64_t> all = first_case;
  all.insert(all.end(), second_case.begin(), second_case.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(delivered, all);  // each once
  EXPECT_TRUE(OutboxEmpty());
}

TEST_F(DispatcherTest, AFailingRecordHoldsBackItsOwnCaseOnly) {
  Fill({"SI-1", "SI-2"}, {"s"});
  const std::vector<uint64_t> si1 = OutboxSequences(*store_, "SI-1");
  const std::vector<uint64_t> si2 = OutboxSequences(*store_, "SI-2");
  ASSERT_EQ(si1.size(), 3u);
  ASSERT_EQ(si2.size(), 3u);
  // The case's records interleave with the other's, so holding back is per case, not a prefix.
  ASSERT_LT(si2.front(), si1.back());
  const uint64_t first = si1.front();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(
      Recording("s", 1, [first](const v1::OutboxRecord& r) { return r.sequence() == first; }));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());
  dispatcher.Start();

  ASSERT_TRUE(WaitUntil([&] { return OutboxSequences(*store_, "SI-2").empty(); }));
  ASSERT_TRUE(Settle(dispatcher));
  EXPECT_EQ(OutboxSequences(*store_, "SI-1"), si1);
  EXPECT_EQ(journal_.Sequences("s", true), (std::vector<uint64_t>{si1[0], si2[0], si2[1], si2[2]}));

  clock_.Advance(seconds(5));
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  std::vector<uint64_t> si1_delivered;
  for (const uint64_t s : journal_.Sequences("s")) {
    if (std::find(si1.begin(), si1.end(), s) != si1.end()) si1_delivered.push_back(s);
  }
  EXPECT_EQ(si1_delivered, si1);
}

TEST_F(DispatcherTest, WakePicksUpRowsCommittedAfterStart) {
  DispatcherOptions options = TestOptions();
  options.idle_poll = std::chrono::minutes(10);  // only Wake can find the new rows in time
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("s"));
  Dispatcher& dispatcher = Make(std::move(sinks), options);
  dispatcher.Start();
  ASSERT_TRUE(WaitUntil([&] { return dispatcher.ScansForTest() >= 1; }));
  writer_->Locked([&] { Fill({"SI-1"}, {"s"}); });
  dispatcher.Wake();
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  EXPECT_THAT(journal_.Sequences("s"), ElementsAre(1, 2, 3));
}

TEST_F(DispatcherTest, SleepsUntilTheEarliestRetryIsDueWithoutBeingWoken) {
  Fill({"SI-1"}, {"s"});
  DispatcherOptions options = TestOptions();
  options.idle_poll = std::chrono::minutes(10);
  options.initial_backoff = seconds(1);
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("s", 1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  Dispatcher& dispatcher = Make(std::move(sinks), options, /*automatic=*/false);
  dispatcher.Start();
  ASSERT_TRUE(writer_->WaitReported(1));
  // The first scan ends with record 1 awaiting its record and its case held: nothing is due, so
  // only Wake, Recorded or the 10 minute poll could start another.
  ASSERT_TRUE(WaitUntil([&] { return dispatcher.ScansForTest() >= 1; }));
  EXPECT_EQ(dispatcher.ScansForTest(), 1u);
  // The rescan after Recorded sees the retry due in 1 s and sleeps that long, not idle_poll.
  writer_->ApplyPending();
  ASSERT_TRUE(WaitUntil([&] { return dispatcher.ScansForTest() >= 2; }));
  clock_.Advance(seconds(1));
  ASSERT_TRUE(writer_->WaitReported(4));
  EXPECT_THAT(journal_.Sequences("s", true), ElementsAre(1, 1, 2, 3));
  writer_->ApplyPending();
  EXPECT_TRUE(OutboxEmpty());
}

TEST_F(DispatcherTest, StopWhileABackoffIsPendingReturnsPromptly) {
  Fill({"SI-1"}, {"down"});
  DispatcherOptions options = TestOptions();
  options.idle_poll = std::chrono::minutes(10);
  options.initial_backoff = seconds(3600);
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("down", -1));
  Dispatcher& dispatcher = Make(std::move(sinks), options);
  dispatcher.Start();
  ASSERT_TRUE(writer_->WaitReported(1));
  ASSERT_TRUE(Settle(dispatcher));  // now asleep until the back-off or the poll
  const auto started = std::chrono::steady_clock::now();
  dispatcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(1));
  dispatcher.Stop();  // idempotent
  EXPECT_EQ(journal_.size(), 1u);
}

TEST_F(DispatcherTest, StopFinishesTheDeliveryInProgressAndDeliversNothingAfter) {
  Fill({"SI-1"}, {"blocking"});
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool first = true;
  // A sink whose first delivery blocks until the test releases it.
  class Blocking final : public Sink {
   public:
    explicit Blocking(std::function<void()> block) : block_(std::move(block)) {}
    std::string_view name() const override { return "blocking"; }
    Status Deliver(const v1::OutboxRecord&) override {
      block_();
      return OkStatus();
    }

   private:
    std::function<void()> block_;
  };
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::make_unique<Blocking>([&] {
    if (!first) return;
    first = false;
    entered.set_value();
    released.wait();
  }));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());
  dispatcher.Start();
  ASSERT_EQ(entered.get_future().wait_for(test::kWait), std::future_status::ready);

  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    dispatcher.Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(stopped.load());  // Stop waits for the delivery in progress
  release.set_value();
  stopper.join();
  EXPECT_TRUE(stopped.load());
  // The finished delivery was reported; the other two records were left for the next run.
  const auto reported = writer_->reported();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].kind, Kind::kDelivered);
  EXPECT_EQ(reported[0].sequence, 1u);
  EXPECT_THAT(OutboxSequences(*store_), ElementsAre(2, 3));
}

TEST_F(DispatcherTest, StopBeforeStartIsANoOp) {
  std::vector<std::unique_ptr<Sink>> sinks;
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());
  dispatcher.Stop();
  dispatcher.Stop();
  EXPECT_EQ(dispatcher.ScansForTest(), 0u);
}

// ---- Channels: each record goes to the sink its channel names, in the dispatcher that has it.

// SI-1's three notifications, each on channels a and b: a's records are 1, 3 and 5, b's are 2, 4
// and 6.
class DispatcherChannelsTest : public DispatcherTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(DispatcherTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(Fill({"SI-1"}, {"a", "b"}));
    ASSERT_EQ(OnChannel("a"), on_a_);
    ASSERT_EQ(OnChannel("b"), on_b_);
  }

  const std::vector<uint64_t> on_a_{1, 3, 5};
  const std::vector<uint64_t> on_b_{2, 4, 6};
};

// tandemd runs one dispatcher per channel instance on one store: each must leave the other
// channels' records alone (neither deliver nor report them, nor let them hold its own back).
TEST_F(DispatcherChannelsTest, RecordsOfAChannelWithoutASinkAreLeftForTheDispatcherThatHasIt) {
  // b's first record waits an hour: were it not skipped, it would hold back the case's later
  // records (3 and 5) in this dispatcher.
  ASSERT_NO_FATAL_FAILURE(Reschedule(2, 0, clock_.Now() + seconds(3600), "test"));
  auto before = store_->Outbox(100);
  ASSERT_TRUE(before.ok());
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("a"));
  Dispatcher& first = Make(std::move(sinks), TestOptions());
  first.Start();

  ASSERT_TRUE(WaitUntil([&] { return OutboxSequences(*store_) == on_b_; }));
  ASSERT_TRUE(Settle(first));
  ASSERT_TRUE(Settle(first));
  EXPECT_EQ(journal_.Sequences("a", true), on_a_);
  EXPECT_EQ(journal_.size(), 3u);
  std::vector<uint64_t> reported;
  for (const DeliveryResult& r : writer_->reported()) {
    EXPECT_EQ(r.kind, Kind::kDelivered);
    reported.push_back(r.sequence);
  }
  EXPECT_EQ(reported, on_a_);
  // b's rows are as they were: not attempted, not rescheduled.
  auto after = store_->Outbox(100);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 3u);
  for (const v1::OutboxRecord& r : *after) {
    const auto was = std::find_if(before->begin(), before->end(),
                                  [&](const auto& b) { return b.sequence() == r.sequence(); });
    ASSERT_NE(was, before->end());
    EXPECT_EQ(r.SerializeAsString(), was->SerializeAsString()) << r.sequence();
  }

  // A second dispatcher, with a b sink, delivers them: in the case's order, so none before the
  // waiting one is due. The first delivers nothing more.
  std::vector<std::unique_ptr<Sink>> more;
  more.push_back(Recording("b"));
  Dispatcher& second = MakeAnother(std::move(more), TestOptions());
  second.Start();
  ASSERT_TRUE(Settle(second));
  EXPECT_EQ(journal_.Sequences("b", true), std::vector<uint64_t>{});
  EXPECT_EQ(OutboxSequences(*store_), on_b_);
  clock_.Advance(seconds(3600));
  second.Wake();
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  ASSERT_TRUE(Settle(first));
  ASSERT_TRUE(Settle(second));
  EXPECT_EQ(journal_.Sequences("a", true), on_a_);
  EXPECT_EQ(journal_.Sequences("b", true), on_b_);
  EXPECT_EQ(writer_->reported().size(), 6u);
  for (const Attempt& a : journal_.attempts()) EXPECT_EQ(a.channel, a.sink) << a.sequence;
}

// Per-case order is kept per channel: a record of channel a waiting for its retry holds back
// a's later records of the case, not b's (each channel has its own dispatcher in tandemd).
TEST_F(DispatcherChannelsTest, ARetryOnOneChannelDoesNotHoldBackAnotherChannelsRecordsOfTheCase) {
  std::vector<std::unique_ptr<Sink>> sinks_a;
  sinks_a.push_back(Recording("a", 1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  std::vector<std::unique_ptr<Sink>> sinks_b;
  sinks_b.push_back(Recording("b"));
  Dispatcher& dispatcher_a = Make(std::move(sinks_a), TestOptions());  // back-off 5 s
  Dispatcher& dispatcher_b = MakeAnother(std::move(sinks_b), TestOptions());
  dispatcher_a.Start();
  dispatcher_b.Start();

  ASSERT_TRUE(WaitUntil([&] { return OutboxSequences(*store_) == on_a_; }));
  ASSERT_TRUE(Settle(dispatcher_a));
  ASSERT_TRUE(Settle(dispatcher_b));
  EXPECT_EQ(journal_.Sequences("b"), on_b_);
  EXPECT_THAT(journal_.Sequences("a", true), ElementsAre(1));  // 3 and 5 wait behind 1
  EXPECT_EQ(OutboxSequences(*store_), on_a_);

  clock_.Advance(seconds(5));
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  EXPECT_THAT(journal_.Sequences("a", true), ElementsAre(1, 1, 3, 5));
  EXPECT_EQ(journal_.Sequences("b", true), on_b_);
}

TEST_F(DispatcherTest, AnUnavailableSinkIsRetriedNotParked) {
  Fill({"SI-1"}, {"s"});
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(Recording("s", 1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());  // max_attempts 8
  dispatcher.Start();
  ASSERT_TRUE(writer_->WaitReported(1));
  ASSERT_TRUE(Settle(dispatcher));
  const DeliveryResult r = writer_->reported()[0];
  EXPECT_EQ(r.kind, Kind::kRetry);
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.error, "s: unavailable: test sink s is down");
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  EXPECT_THAT(OutboxSequences(*store_), ElementsAre(1, 2, 3));

  clock_.Advance(seconds(5));
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  EXPECT_THAT(journal_.Sequences("s", true), ElementsAre(1, 1, 2, 3));
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
}

// Any sink error but kUnavailable is permanent (a refused address, a 4xx, a broken plugin): the
// record is parked at once, whatever attempts remain, and its case goes on.
class PermanentErrorTest : public DispatcherTest,
                           public ::testing::WithParamInterface<StatusCode> {};

TEST_P(PermanentErrorTest, DeadLettersAtTheFirstAttemptWithTheErrorAndTheCaseGoesOn) {
  Fill({"SI-1"}, {"s"});
  ASSERT_THAT(OutboxSequences(*store_), ElementsAre(1, 2, 3));
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::make_unique<ScriptedSink>(
      "s", &journal_, 1, [](const v1::OutboxRecord& r) { return r.sequence() == 1; }, GetParam()));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());  // max_attempts 8
  dispatcher.Start();
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  ASSERT_TRUE(Settle(dispatcher));

  const std::string error =
      "s: " + std::string(StatusCodeName(GetParam())) + ": test sink s refused it";
  const auto reported = writer_->reported();
  ASSERT_EQ(reported.size(), 3u);
  EXPECT_EQ(reported[0].kind, Kind::kDeadLetter);
  EXPECT_EQ(reported[0].sequence, 1u);
  EXPECT_EQ(reported[0].attempts, 1u);
  EXPECT_EQ(reported[0].error, error);
  EXPECT_EQ(reported[1].kind, Kind::kDelivered);
  EXPECT_EQ(reported[2].kind, Kind::kDelivered);
  EXPECT_THAT(journal_.Sequences("s", true), ElementsAre(1, 2, 3));  // one attempt of 1

  auto dead = store_->DeadLetters(10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].sequence(), 1u);
  EXPECT_EQ((*dead)[0].attempts(), 1u);
  EXPECT_EQ((*dead)[0].last_error(), error);
  EXPECT_EQ((*dead)[0].channel(), "s");
  EXPECT_EQ((*dead)[0].address(), "addr-s");
  const auto audit = AuditOf(false);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].notification_dead_lettered().attempts(), 1u);
  EXPECT_EQ(audit[0].notification_dead_lettered().last_error(), error);
  EXPECT_EQ(audit[0].notification_dead_lettered().channel(), "s");
}

TEST_P(PermanentErrorTest, CountsTheAttemptsTheStoreAlreadyRecorded) {
  Fill({"SI-1"}, {"s"});
  ASSERT_NO_FATAL_FAILURE(Reschedule(1, 3, clock_.Now(), "earlier failure"));
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::make_unique<ScriptedSink>("s", &journal_, 1, nullptr, GetParam()));
  Dispatcher& dispatcher = Make(std::move(sinks), TestOptions());
  dispatcher.Start();
  ASSERT_TRUE(WaitUntil([&] { return OutboxEmpty(); }));
  const DeliveryResult r = writer_->reported()[0];
  EXPECT_EQ(r.kind, Kind::kDeadLetter);
  EXPECT_EQ(r.sequence, 1u);
  EXPECT_EQ(r.attempts, 4u);
  EXPECT_EQ((*store_->DeadLetters(10))[0].attempts(), 4u);
}

INSTANTIATE_TEST_SUITE_P(EveryCodeButUnavailable, PermanentErrorTest,
                         ::testing::Values(StatusCode::kInvalidArgument, StatusCode::kNotFound,
                                           StatusCode::kAlreadyExists,
                                           StatusCode::kFailedPrecondition, StatusCode::kOutOfRange,
                                           StatusCode::kDataLoss, StatusCode::kInternal),
                         [](const ::testing::TestParamInfo<StatusCode>& info) {
                           return std::string(StatusCodeName(info.param));
                         });

using DispatcherDeathTest = DispatcherTest;

TEST_F(DispatcherDeathTest, TwoSinksOfOneNameAreRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::vector<std::unique_ptr<Sink>> sinks;
        sinks.push_back(Recording("a"));
        sinks.push_back(Recording("a"));
        Make(std::move(sinks), TestOptions());
      },
      "check failed");
}

}  // namespace
}  // namespace tandem::outbox
