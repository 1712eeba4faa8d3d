#pragma once
// The notification outbox dispatcher (DESIGN, "The path of one event"). The writer commits each
// notification to the store's outbox in the same batch as the state change that caused it, one
// record per channel (a channel instance and an address); a Dispatcher, on a thread of its own,
// reads the pending records of its channels, hands each to the Sink of its channel, and reports
// the outcome back to the writer, which records it (delivered; retry later with exponential
// back-off and jitter; or moved to dead_letter after the configured attempts, or at once on a
// permanent failure). Delivery is at least once: a record is delivered again after a failure or
// a crash before its outcome was committed, and receivers dedupe by its stable notification_id.

#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/outbox/internal/backoff.h"
#include "daemon/outbox/sink.h"
#include "daemon/store/store.h"

namespace tandem::outbox {

// What the dispatcher asks the writer to record; the writer adds it to its next batch
// (kDelivered -> Batch::MarkDelivered; kRetry -> Batch::Reschedule; kDeadLetter -> Reschedule
// then Batch::MoveToDeadLetter), commits it, and then calls Dispatcher::Recorded.
struct DeliveryResult {
  enum class Kind { kDelivered, kRetry, kDeadLetter };
  Kind kind;
  uint64_t sequence;
  uint32_t attempts;                    // attempts made so far, including this one
  calendar::Instant next_attempt_at{};  // kRetry only
  std::string error;                    // kRetry, kDeadLetter: the last failure, no fact values
};

struct DispatcherOptions {
  uint32_t max_attempts = 8;                  // then dead letter
  std::chrono::seconds initial_backoff{5};    // the wait after the first failed attempt
  std::chrono::seconds max_backoff{3600};     // no wait (before jitter) is longer
  double jitter = 0.2;                        // +/- fraction of each back-off, in [0, 1]
  std::size_t batch = 256;                    // records read per store read; a scan pages on
  std::chrono::milliseconds idle_poll{1000};  // rescan when not woken
  uint64_t seed = 0;                          // jitter RNG seed (0: random)
  // Where the dispatcher logs store read failures (once per run of failures, and when reads
  // recover); nullptr means spdlog's default logger. Never per notification.
  std::shared_ptr<spdlog::logger> logger;
};

// Delivers the store's pending outbox records of its channels on a thread of its own: a record
// goes to the sink whose name() is the record's channel; records of other channels are left to
// the dispatchers that have them (tandemd runs one dispatcher per channel instance, so a slow
// receiver delays only its own channel).
//
// One scan reads the outbox in sequence order and delivers each record of its channels that is
// due. It skips:
//  - records whose next_attempt_at is after now(): they and every later record of the same case
//    wait, and the dispatcher sleeps until the earliest of them is due (or Wake, or idle_poll);
//  - records whose outcome it has reported and the writer has not yet Recorded ("awaiting
//    record"): the store still shows the old row, which must not be delivered twice. An
//    awaiting kRetry also holds back the later records of its case, so each case's records are
//    delivered in sequence order; other cases go on.
// A sink's kUnavailable error (a retryable failure) becomes kRetry with next_attempt_at =
// now() + min(max_backoff, initial_backoff * 2^(attempts-1)) +/- jitter (whole seconds, never
// before now()), or kDeadLetter once attempts reaches max_attempts. Any other error is a
// permanent failure: kDeadLetter at once.
//
// Threading: the constructor, Start, Stop and the destructor belong to the owner (one thread);
// Wake and Recorded are thread-safe and may be called from any thread, including from inside
// `record`. Sinks, `now` and `record` are called only from the dispatcher's thread, never while
// it holds its lock.
class Dispatcher {
 public:
  // `now` gives the current UTC instant (the daemon's clock, which tests offset); `record` is
  // called (from the dispatcher's thread) once per delivery outcome; the daemon posts it to its
  // writer strand. Keeps references to `store`, which must outlive the Dispatcher; owns `sinks`.
  // REQUIRES: options.max_attempts >= 1, options.batch >= 1, 0 <= options.jitter <= 1,
  // 0 <= initial_backoff <= max_backoff, idle_poll >= 0, `now`, `record` and every sink are
  // non-null, and no two sinks have the same name.
  Dispatcher(const store::Store& store, std::vector<std::unique_ptr<Sink>> sinks,
             DispatcherOptions options, std::function<calendar::Instant()> now,
             std::function<void(DeliveryResult)> record);
  // Stop()s.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Starts the dispatcher's thread, which scans at once.
  // REQUIRES: Start has not been called before.
  void Start();
  // Thread-safe: new rows were committed; scan now (or as soon as the current scan ends).
  void Wake();
  // Thread-safe: the writer committed `result` (or gave up on it); the record may be scanned
  // again: a kRetry row is picked up again when due, a delivered or dead-lettered row is gone
  // (if the writer gave up on the commit, the row is still there and is delivered again).
  // A sequence the dispatcher is not awaiting is ignored.
  void Recorded(const DeliveryResult& result);
  // Thread-safe: asks the thread to stop after the delivery in progress, without waiting. The
  // daemon asks every channel's dispatcher first and then Stops each, so the slow deliveries of
  // several channels finish in parallel. Idempotent.
  void RequestStop();
  // RequestStop, then waits for the delivery in progress (its outcome is still passed to
  // `record`) and joins the thread; does not wait for back-offs. After Stop returns, nothing of
  // the dispatcher runs. Idempotent; a no-op before Start.
  void Stop();

  // Thread-safe: the number of scans of the whole outbox finished so far. Tests wait on it to
  // know that a scan started after their change has run.
  uint64_t ScansForTest() const;

 private:
  // The dispatcher thread's loop: scan, then sleep until woken, stopped, the earliest pending
  // record is due or idle_poll has passed.
  void Run();
  // Reads the whole outbox once, page by page, and delivers what is due. Returns the earliest
  // next_attempt_at of the records it left waiting for their time, or nullopt: when there are
  // none, when it was stopped, or when the store could not be read (logged once per run of
  // failures; the next poll tries again).
  std::optional<calendar::Instant> Scan();
  // Delivers `record` to `sink` and returns the outcome to report.
  DeliveryResult Deliver(Sink& sink, const v1::OutboxRecord& record);

  const store::Store& store_;
  // By name, the channel a record names.
  const std::map<std::string, std::unique_ptr<Sink>, std::less<>> sinks_;
  const DispatcherOptions options_;
  const std::function<calendar::Instant()> now_;
  const std::function<void(DeliveryResult)> record_;
  std::shared_ptr<spdlog::logger> logger_;

  // Dispatcher thread only.
  internal::Backoff backoff_;
  bool read_failing_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  bool woken_ = false;  // guarded by mu_
  uint64_t scans_ = 0;  // guarded by mu_
  // Reported outcomes not yet Recorded, by sequence.
  std::map<uint64_t, DeliveryResult::Kind> awaiting_;  // guarded by mu_
  // Results the writer recorded since the current scan began; the scan's pages may predate
  // their commits, so their rows are skipped until the next scan. Guarded by mu_.
  std::map<uint64_t, DeliveryResult::Kind> recorded_;

  // Owner thread only.
  std::thread thread_;
  bool started_ = false;
};

}  // namespace tandem::outbox
