// The timer service against a real store: bounded firing turns, due order across turns,
// exactly-once firing, lateness, refused timers that must not block the ones behind them, and
// the service arming itself and yielding to other work on its executor.

#include "daemon/timers/timer_service.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/engine/workflow.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::timers {
namespace {

using store::test::At;
using store::test::Incident;
using store::test::MustOpen;
using store::test::ScopedDir;

const engine::Engine& ShippedEngine() { return store::test::Engine(); }

// Opens `count` serious-incident cases, the i-th aware on a day i days after 2026-12-01, each
// committed on its own.
void OpenCases(store::Store& store, int count) {
  for (int i = 0; i < count; ++i) {
    const std::string day = "2026-12-" + std::string(i + 1 < 10 ? "0" : "") + std::to_string(i + 1);
    const v1::Event event =
        Incident("ev-" + std::to_string(i), "SI-" + std::to_string(i), day, day + "T10:00:00Z");
    store::Batch batch = store.NewBatch();
    auto outcome = store::test::ApplyInTurn(store, batch, event, At(day + "T10:00:00Z"));
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    ASSERT_TRUE(batch.AddAccepted(event, *outcome, At(day + "T10:00:00Z")).ok());
    ASSERT_TRUE(store.Commit(std::move(batch), true).ok());
  }
}

std::size_t PendingTimers(const store::Store& store) {
  auto all = store.DueTimers(calendar::Instant::max(), 1'000'000);
  EXPECT_TRUE(all.ok());
  return all.ok() ? all->size() : 0;
}

// The fired-timer audit records, in commit order.
std::vector<v1::AuditRecord> FiredRecords(const store::Store& store) {
  std::vector<v1::AuditRecord> fired;
  auto records = store.AuditRecords(1, 1'000'000);
  EXPECT_TRUE(records.ok());
  if (!records.ok()) return fired;
  for (auto& r : *records) {
    if (r.has_timer_fired()) fired.push_back(std::move(r));
  }
  return fired;
}

class TimerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = MustOpen(dir_.path());
    ASSERT_NE(store_, nullptr);
  }

  TimerServiceHooks Hooks(calendar::Instant now) {
    now_ = now;
    TimerServiceHooks hooks;
    hooks.now = [this] { return now_; };
    hooks.engine_for = [](const v1::CaseState&) -> const engine::Engine& {
      return ShippedEngine();
    };
    hooks.commit = [this](store::Batch&& batch) {
      ++commits_;
      return store_->Commit(std::move(batch), true);
    };
    hooks.on_failure = [this](const Status& s) { failure_ = s; };
    return hooks;
  }

  ScopedDir dir_;
  std::unique_ptr<store::Store> store_;
  asio::io_context io_;
  calendar::Instant now_{};
  int commits_ = 0;
  Status failure_;
};

TEST_F(TimerServiceTest, FiresAtMostTheTurnLimitPerCommit) {
  OpenCases(*store_, 5);
  const std::size_t pending = PendingTimers(*store_);
  ASSERT_GT(pending, 7u);
  TimerServiceOptions options;
  options.max_fires_per_turn = 3;
  TimerService service(io_.get_executor(), *store_, Hooks(At("2028-06-01T00:00:00Z")), options);

  auto first = service.FireDueOnce(now_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->fired + first->refused + first->skipped, 3u);
  EXPECT_TRUE(first->more);
  EXPECT_EQ(commits_, 1);
  EXPECT_EQ(FiredRecords(*store_).size(), first->fired);
}

TEST_F(TimerServiceTest, OverdueTimersFireOnceInDueOrderAndLate) {
  OpenCases(*store_, 6);
  TimerServiceOptions options;
  options.max_fires_per_turn = 4;
  const calendar::Instant now = At("2028-06-01T00:00:00Z");
  TimerService service(io_.get_executor(), *store_, Hooks(now), options);

  int turns = 0;
  for (;;) {
    auto report = service.FireDueOnce(now);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_LE(report->fired + report->refused + report->skipped, 4u);
    ++turns;
    if (!report->more) break;
    ASSERT_LT(turns, 1000);
  }
  EXPECT_GT(turns, 2);
  // Nothing due is left; a further turn fires nothing and commits nothing.
  auto left = store_->DueTimers(now, 10);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
  const int commits = commits_;
  auto again = service.FireDueOnce(now);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->fired, 0u);
  EXPECT_EQ(commits_, commits);

  const std::vector<v1::AuditRecord> fired = FiredRecords(*store_);
  ASSERT_FALSE(fired.empty());
  EXPECT_EQ(fired.size(), service.fired_total());
  std::set<std::pair<std::string, uint64_t>> seen;
  calendar::Instant previous{};
  for (const auto& r : fired) {
    const calendar::Instant due = engine::ToInstant(r.timer_fired().timer().due_at());
    EXPECT_LE(previous, due) << "fired out of due order: " << r.cause();
    previous = due;
    EXPECT_TRUE(seen.insert({r.case_id(), r.timer_fired().timer().id()}).second)
        << "fired twice: " << r.case_id() << " " << r.cause();
    bool marked = false;
    for (const auto& e : r.effects()) {
      if (e.has_warning()) {
        EXPECT_TRUE(e.warning().late()) << r.cause();
        marked = true;
      }
      if (e.has_breach()) {
        EXPECT_TRUE(e.breach().late()) << r.cause();
        marked = true;
      }
    }
    EXPECT_TRUE(marked) << "no warning or breach effect for " << r.cause();
  }
}

TEST_F(TimerServiceTest, TimersNotYetDueStayPending) {
  OpenCases(*store_, 2);
  const std::size_t pending = PendingTimers(*store_);
  // 2026-12-01 + 5 working days: 8 December is the earliest deadline of case SI-0; its warning
  // (2 working days before) falls due earlier. Before the first due instant nothing fires.
  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok() && next->has_value());
  const calendar::Instant first_due = engine::ToInstant((*next)->timer.due_at());
  TimerService service(io_.get_executor(), *store_, Hooks(first_due - std::chrono::seconds(1)));
  auto report = service.FireDueOnce(now_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->fired, 0u);
  EXPECT_EQ(PendingTimers(*store_), pending);
  // At the due instant exactly, the timer fires and is not late.
  auto at_due = service.FireDueOnce(first_due);
  ASSERT_TRUE(at_due.ok());
  EXPECT_GE(at_due->fired, 1u);
  const auto fired = FiredRecords(*store_);
  ASSERT_FALSE(fired.empty());
  for (const auto& e : fired.front().effects()) {
    if (e.has_warning()) {
      EXPECT_FALSE(e.warning().late());
    }
    if (e.has_breach()) {
      EXPECT_FALSE(e.breach().late());
    }
  }
}

TEST_F(TimerServiceTest, RefusedTimerIsRecordedAndDroppedSoOthersFire) {
  OpenCases(*store_, 1);
  const std::size_t pending = PendingTimers(*store_);
  ASSERT_GT(pending, 1u);
  // An engine that knows no workflow refuses every firing (the case's workflow version is not
  // loaded), as after an operator removed a workflow file.
  static const engine::WorkflowSet kEmpty;
  static const engine::Engine kNoWorkflows(kEmpty, ShippedEngine().calendar());
  TimerServiceHooks hooks = Hooks(At("2028-06-01T00:00:00Z"));
  hooks.engine_for = [](const v1::CaseState&) -> const engine::Engine& { return kNoWorkflows; };
  TimerService service(io_.get_executor(), *store_, std::move(hooks));

  auto report = service.FireDueOnce(now_);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->refused, pending);
  EXPECT_EQ(report->fired, 0u);
  EXPECT_EQ(PendingTimers(*store_), 0u);
  const auto fired = FiredRecords(*store_);
  ASSERT_EQ(fired.size(), pending);
  for (const auto& r : fired) {
    ASSERT_EQ(r.effects_size(), 1);
    EXPECT_TRUE(r.effects(0).has_rejected());
    EXPECT_EQ(r.effects(0).cause(), r.cause());
    EXPECT_EQ(r.effects(0).rejected().code(), "failed_precondition");
  }
  auto state = store_->GetCase("SI-0");
  ASSERT_TRUE(state.ok() && state->has_value());
  for (const auto& d : (*state)->deadlines()) EXPECT_EQ(d.timers_size(), 0) << d.name();
}

TEST_F(TimerServiceTest, StartFiresOverdueTimersAndYieldsBetweenTurns) {
  OpenCases(*store_, 4);
  const std::size_t pending = PendingTimers(*store_);
  TimerServiceOptions options;
  options.max_fires_per_turn = 2;
  TimerServiceHooks hooks = Hooks(At("2028-06-01T00:00:00Z"));
  // Work queued on the executor while a turn commits (as an ingest burst would be) must run
  // before the next firing turn.
  std::vector<std::string> order;
  hooks.commit = [this, &order](store::Batch&& batch) {
    order.push_back("commit");
    asio::post(io_, [&order] { order.push_back("other"); });
    return store_->Commit(std::move(batch), true);
  };
  TimerService service(io_.get_executor(), *store_, std::move(hooks), options);
  service.Start();
  io_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(failure_.ok()) << failure_.ToString();
  EXPECT_EQ(PendingTimers(*store_), 0u);
  EXPECT_EQ(service.fired_total() + service.refused_total(), pending);
  ASSERT_GE(order.size(), 4u);
  for (std::size_t i = 0; i + 1 < order.size(); i += 2) {
    EXPECT_EQ(order[i], "commit") << i;
    EXPECT_EQ(order[i + 1], "other") << i;
  }
  EXPECT_FALSE(service.armed_for().has_value());
}

TEST_F(TimerServiceTest, WaitsOnTheMonotonicClockForTheNextDueTimer) {
  OpenCases(*store_, 1);
  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok() && next->has_value());
  const calendar::Instant due = engine::ToInstant((*next)->timer.due_at());
  // The daemon's clock: the real monotonic time elapsed since the test started, counted from
  // one second before the first due instant.
  const auto started = std::chrono::steady_clock::now();
  TimerServiceHooks hooks = Hooks(due);
  hooks.now = [started, due] {
    return due - std::chrono::seconds(1) +
           std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                            started);
  };
  TimerService service(io_.get_executor(), *store_, std::move(hooks));
  service.Start();
  ASSERT_TRUE(service.armed_for().has_value());
  EXPECT_EQ(*service.armed_for(), due);
  EXPECT_EQ(service.fired_total(), 0u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  while (service.fired_total() == 0 && std::chrono::steady_clock::now() < deadline) {
    io_.run_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(service.fired_total(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
  // Re-armed for the next timer, which lies in the future.
  ASSERT_TRUE(service.armed_for().has_value());
  EXPECT_GT(*service.armed_for(), due);
  service.Stop();
  EXPECT_FALSE(service.armed_for().has_value());
}

}  // namespace
}  // namespace tandem::timers
