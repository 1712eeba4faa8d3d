#pragma once
// The durable timer service: fires the store's pending timers when they fall due, through the
// engine and the writer's commit path. Due times are UTC instants read from the daemon's clock;
// waits run on the monotonic clock (asio::steady_timer). The next due timer is found with one
// seek (Store::NextDueTimer); firing happens in bounded turns so that a flood of due timers
// (say 100,000 at one instant after downtime) never keeps ingest from being acknowledged.
// After downtime every overdue timer fires exactly once, in due order: a timer's row is deleted
// in the same commit that records its firing, and the engine marks it late (now > due).

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/engine.h"
#include "daemon/store/store.h"
#include "proto/tandem/v1/case.pb.h"

namespace tandem::timers {

struct TimerServiceOptions {
  // The most timers one turn fires (one batch, one synced commit). Between turns the service
  // posts the next one, so ingest bursts queued on the executor run in between.
  // REQUIRES: > 0.
  std::size_t max_fires_per_turn = 256;
  // The longest single wait. Waits run on the monotonic clock while due times are UTC: waking
  // up at least this often notices a wall clock that was stepped forward.
  std::chrono::seconds max_wait{60};
};

// What the service needs from the daemon. Every callback runs on the service's executor.
struct TimerServiceHooks {
  // The daemon's clock: UTC now plus the configured offset, in whole seconds.
  std::function<calendar::Instant()> now;
  // The engine that runs `state`'s workflow version (after a reload, running cases keep the
  // workflow version they started with, which may live in an older engine).
  std::function<const engine::Engine&(const v1::CaseState& state)> engine_for;
  // The writer's commit path: commits `batch` durably (sync) and returns the commit's status.
  // On an error the writer stops acknowledging; the service stops firing.
  std::function<Status(store::Batch&& batch)> commit;
  // Optional. Runs `turn` (a firing turn, which reads the store and commits) once the writer has
  // nothing open or being written, so that the store holds every change before it; unset, a
  // turn runs at once.
  std::function<void(std::function<void()> turn)> when_writer_idle;
  // Optional. Called once when the service stops because of an error (a store read or a commit
  // failed). Not called for Stop().
  std::function<void(const Status& status)> on_failure;
};

// What one firing turn did.
struct FireReport {
  // Timers fired and recorded.
  std::size_t fired = 0;
  // Timers the engine refused to fire (e.g. the case's workflow version is no longer loaded).
  // Each is recorded as a `rejected` effect with cause "timer:<id>" in the case's audit trail,
  // removed from the case and from the timer index, so it never blocks the timers behind it.
  std::size_t refused = 0;
  // Timers an earlier firing in the same turn had already cancelled.
  std::size_t skipped = 0;
  // True when the turn stopped at max_fires_per_turn: more timers may be due.
  bool more = false;
};

// Lives on the writer's executor (a single-threaded io_context, or the writer strand): every
// method, and the callbacks, run there. Keeps references to `store`, which must outlive it, and
// to the executor's io_context, which must outlive any pending wait. Not copyable.
class TimerService {
 public:
  TimerService(asio::any_io_executor executor, store::Store& store, TimerServiceHooks hooks,
               TimerServiceOptions options = {});
  ~TimerService();
  TimerService(const TimerService&) = delete;
  TimerService& operator=(const TimerService&) = delete;

  // Starts the service: fires every timer already due (after downtime: all overdue ones, in due
  // order, in bounded turns), then waits for the next one.
  void Start();

  // Re-reads the next due timer and re-arms the wait. Call after every commit that set or
  // cancelled timers. Does nothing while a run of firing turns is in progress (it re-arms when
  // it ends) or after Stop.
  void Rearm();

  // Cancels the wait; no timer fires after this. Idempotent.
  void Stop();

  // Fires, in due order, at most max_fires_per_turn timers due at or before `now` in one batch
  // and commits it through hooks.commit. Returns what it did, or the error of a store read or of
  // the commit (the caller decides to stop). A commit is made only when something changed.
  // Used by the service's own turns; public so tests can drive turns directly.
  Result<FireReport> FireDueOnce(calendar::Instant now);

  // The due instant the service is waiting for, or nullopt when idle or firing.
  std::optional<calendar::Instant> armed_for() const { return armed_for_; }
  // Totals since construction.
  uint64_t fired_total() const { return fired_total_; }
  uint64_t refused_total() const { return refused_total_; }
  uint64_t turns() const { return turns_; }

 private:
  // Runs one firing turn and posts the next one while timers remain due.
  void FireTurn();
  // FireTurn once the writer is idle (TimerServiceHooks::when_writer_idle).
  void FireTurnNow();
  void Fail(const Status& status);

  asio::any_io_executor executor_;
  store::Store& store_;
  TimerServiceHooks hooks_;
  TimerServiceOptions options_;
  asio::steady_timer timer_;
  // Incremented by every arm and by Stop; a wait completion for an older generation is stale.
  uint64_t generation_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  bool firing_ = false;
  std::optional<calendar::Instant> armed_for_;
  uint64_t fired_total_ = 0;
  uint64_t refused_total_ = 0;
  uint64_t turns_ = 0;
};

}  // namespace tandem::timers
