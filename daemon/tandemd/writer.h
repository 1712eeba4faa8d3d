#pragma once
// The daemon's single writer: every state change (published events, fired timers, delivery
// outcomes) goes through it into one store::Batch per loop turn and one synced commit. Its
// ordering rule, for every loop turn:
//
//   drain input -> engine -> one WriteBatch -> synced commit -> acks -> wake the outbox
//
// An ack is never sent before the commit that holds its answer returned OK. When a commit
// fails, the writer sends no ack of that turn nor of any later one, and reports the failure so
// the daemon exits non-zero (DESIGN, "on a storage error the daemon stops acknowledging").

#include <google/protobuf/arena.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/ingest/router.h"
#include "daemon/outbox/outbox.h"
#include "daemon/store/store.h"
#include "daemon/tandemd/engines.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::tandemd {

struct WriterHooks {
  // The daemon's clock (UTC plus the configured offset).
  std::function<calendar::Instant()> now;
  // After every successful commit: whether it set or cancelled timers, the earliest due instant
  // of the timers it set (nullopt when it set none, or when the caller of Commit did not say),
  // and whether it added outbox records (wake the dispatcher). The daemon re-arms the timer
  // service only when that can change what it waits for (daemon.cc, StartWriterAndTimers).
  std::function<void(bool timers_changed, std::optional<calendar::Instant> earliest_timer_set,
                     bool notifications_added)>
      on_committed;
  // Once, when a commit failed or the store could not be read: the daemon must stop.
  std::function<void(const Status& status)> on_fatal;
};

// Lives on the writer thread (the daemon's single io_context thread): every method runs there.
// Keeps references to `store` and `engines`, which must outlive it.
class Writer {
 public:
  Writer(store::Store& store, const Engines& engines, WriterHooks hooks);
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Handles one publish request of the current turn: answers a repeated event_id with
  // DUPLICATE (the first answer, from this turn's batch or the store), else applies the event
  // to the case as this turn's batch or the store holds it and adds the change (ACCEPTED) or
  // the refusal (REJECTED) to the turn's batch. The reply is queued until EndTurn.
  // REQUIRES: request.has_publish().
  void Publish(const ingest::Peer& peer, const v1::Request& request);

  // Handles one retry_delivery request of the current turn: moves the parked delivery back to
  // the outbox in this turn's batch and queues an OutboxList reply holding it as now pending,
  // or an Error reply (not_found) when no such delivery is parked. The reply goes out at
  // EndTurn, after the commit; the outbox is woken then.
  // REQUIRES: request.has_retry_delivery().
  void RetryDelivery(const ingest::Peer& peer, const v1::Request& request);

  // Queues a reply that needs no commit (a body that is not a Request), to go out at EndTurn
  // in order with the turn's other replies.
  void QueueReply(const ingest::Peer& peer, const v1::Reply& reply);

  // Ends the turn: commits its batch (synced) when it holds anything, then, only if that
  // returned OK, hands every queued reply to `send`. On a failed commit no reply is sent.
  void EndTurn(const std::function<void(const ingest::Peer&, std::string)>& send);

  // Commits a batch built elsewhere on the writer thread (the timer service's firing turns)
  // through the same path: synced, then on_committed with `timers_changed` and
  // `earliest_timer_set`. Returns the commit's status; an error has already been reported
  // through on_fatal.
  Status Commit(store::Batch&& batch, bool timers_changed,
                std::optional<calendar::Instant> earliest_timer_set = std::nullopt);

  // Records delivery outcomes reported by the outbox dispatcher in one batch (delivered ->
  // MarkDelivered; retry -> Reschedule; dead letter -> Reschedule then MoveToDeadLetter),
  // commits it, and calls `recorded` for each outcome once committed (or found moot: the
  // record is no longer in the outbox). Nothing is called after a failure.
  // REQUIRES: no turn is open (called from its own handler, never inside a router turn).
  void RecordDeliveries(const std::vector<outbox::DeliveryResult>& results,
                        const std::function<void(const outbox::DeliveryResult&)>& recorded);

  // True once a commit or a store read failed; the writer then refuses all work.
  bool failed() const { return !failure_.ok(); }

 private:
  // Applies `event` in this turn's batch: accepted (its rows added, then the cases its change
  // opened applied after it, `depth` counting such openings) or refused (the refusal recorded).
  // Returns OK when accepted, else the reason; fails the writer when the store cannot be read.
  Status Apply(const v1::Event& event, int depth);
  // Applies the starting events of the cases that effects from `first_effect` on opened.
  void OpenCases(int first_effect, int depth);
  // Records that `event` was refused for `why`, and returns `why`.
  Status Reject(const v1::Event& event, const Status& why);

  // Opens the turn's batch, instant and timeline when the turn's first publish arrives.
  void OpenTurn();
  void Fail(const Status& status);

  store::Store& store_;
  const Engines& engines_;
  WriterHooks hooks_;
  Status failure_;

  // The open turn.
  std::optional<store::Batch> batch_;
  calendar::Instant turn_now_{};
  bool timers_changed_ = false;
  bool requeued_ = false;  // a parked delivery went back to the outbox this turn
  std::optional<calendar::Instant> earliest_timer_set_;
  google::protobuf::Arena arena_;
  v1::Timeline* timeline_ = nullptr;  // on arena_, while a turn is open
  std::vector<std::pair<ingest::Peer, std::string>> replies_;
};

}  // namespace tandem::tandemd
