#pragma once
// The daemon's single writer: every state change (published events, fired timers, delivery
// outcomes) goes through it into a store::Batch and a synced commit. Its ordering rule:
//
//   drain input -> engine -> batch -> synced commit -> acks -> wake the outbox
//
// An ack is never sent before the commit that holds its answer, and every commit before it,
// returned OK. When a commit fails, the writer sends no ack of that batch nor of any later one,
// and reports the failure so the daemon exits non-zero (DESIGN, "on a storage error the daemon
// stops acknowledging").
//
// Published events and delivery outcomes are committed in a pipeline (group commit): the batch of
// what was received so far is written on a thread of its own while the writer thread goes on
// applying what arrives meanwhile to the next batch, which is written as soon as the first is
// done. The writer reads a case or an answer from its open batch first, then from the batch being
// written, then from the store. The work that reads the store on its own (the timer service's
// firing turns, `outbox retry`) waits until nothing is open or being written (WhenIdle); the
// requests that arrive in the meantime wait for it, in order.

#include <google/protobuf/arena.h>

#include <asio/any_io_executor.hpp>
#include <asio/thread_pool.hpp>
#include <deque>
#include <functional>
#include <memory>
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
  // Sends a reply (serialized v1::Reply) to the peer that asked; called only after the commit
  // holding its answer returned OK.
  std::function<void(const ingest::Peer& peer, std::string bytes)> send;
  // After every successful commit: whether it set or cancelled timers, the earliest due instant
  // of the timers it set (nullopt when it set none, or when the caller of Commit did not say),
  // and whether it added outbox records (wake the dispatcher). The daemon re-arms the timer
  // service only when that can change what it waits for (daemon.cc, StartWriterAndTimers).
  std::function<void(bool timers_changed, std::optional<calendar::Instant> earliest_timer_set,
                     bool notifications_added)>
      on_committed;
  // Once, when a commit failed or the store could not be read: the daemon must stop.
  std::function<void(const Status& status)> on_fatal;
  // Optional. Stop and restart taking requests (ingest::Router::Pause/Resume): called when
  // `max_waiting` requests wait for a commit while one is in progress, and when they no longer
  // do. This bounds a commit, and so the replies sent to one peer at once.
  std::function<void()> pause_input;
  std::function<void()> resume_input;
};

// Lives on the writer thread (the daemon's single io_context thread, whose executor is
// `executor`): every method runs there, and so does every hook. The batch being written is
// written on a thread the writer owns, whose completion is posted to `executor` (and keeps its
// io_context from running out of work until then). Keeps references to `store` and `engines`,
// which must outlive it.
class Writer {
 public:
  Writer(store::Store& store, const Engines& engines, WriterHooks hooks,
         asio::any_io_executor executor, std::size_t max_waiting = 1000);
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  // Waits for a write in progress to end; its completion, and any reply, is then never seen.
  ~Writer();

  // Handles one publish request: answers a repeated event_id with DUPLICATE (the first answer,
  // from the open batch, the batch being written or the store), else applies the event to the
  // case as those hold it and adds the change (ACCEPTED) or the refusal (REJECTED) to the open
  // batch. The reply goes out after that batch's commit. The case takes the event's facts.
  // `event_bytes` is the event as received (ingest::PublishedEventBytes), which the event log
  // stores as it is; when empty, the event is serialized again.
  // REQUIRES: request.has_publish().
  void Publish(const ingest::Peer& peer, v1::Request* request, std::string_view event_bytes = {});
  void Publish(const ingest::Peer& peer, v1::Request&& request) { Publish(peer, &request); }

  // Returns an empty request on the open batch's arena (opening one), for the caller to parse
  // a request into and hand to Publish: the case then takes the event's facts without a copy,
  // and the request is freed with the batch. Null once the writer has failed or is stopping.
  v1::Request* NewRequest();

  // Handles one retry_delivery request, once no batch is being written: moves the parked
  // delivery back to the outbox in the open batch and answers, after its commit, with an
  // OutboxList holding it as now pending, or with an Error (not_found) when no such delivery is
  // parked. The outbox is woken after the commit.
  // REQUIRES: request.has_retry_delivery().
  void RetryDelivery(const ingest::Peer& peer, const v1::Request& request);

  // Queues a reply that needs no commit of its own (a body that is not a Request); it goes out
  // with the open batch's replies, after every commit before it.
  void QueueReply(const ingest::Peer& peer, const v1::Reply& reply);

  // Ends a burst of requests: hands the open batch to the writing thread unless a batch is
  // being written, in which case it follows when that one is done, with whatever was added to
  // it meanwhile (a group commit). Replies go out, in order, as their commits return OK.
  void EndTurn();

  // Runs `work` on the writer thread once nothing is open or being written (at once when that
  // is so already), before the requests that arrive in the meantime, which wait for it.
  // Not run at all once the writer has failed.
  void WhenIdle(std::function<void()> work);

  // Commits a batch built elsewhere on the writer thread, from the store's state (the timer
  // service's firing turns), synced, then calls on_committed with `timers_changed` and
  // `earliest_timer_set`. Returns the commit's status; an error has already been reported
  // through on_fatal.
  // REQUIRES: idle(): run it from WhenIdle work.
  Status Commit(store::Batch&& batch, bool timers_changed,
                std::optional<calendar::Instant> earliest_timer_set = std::nullopt);

  // Records delivery outcomes reported by the outbox dispatcher in the open batch, as events
  // are (delivered -> MarkDelivered; retry -> Reschedule; dead letter -> Reschedule then
  // MoveToDeadLetter), and calls `recorded` for each outcome once that batch is committed (or
  // found moot: the record is no longer in the outbox). Nothing is called after a failure.
  // The records are read from the store even while a batch is being written: a record was
  // committed before it was delivered, and the dispatcher reports one outcome of a record at a
  // time (it awaits Recorded), so no batch in flight changes a record an outcome is about.
  void RecordDeliveries(std::vector<outbox::DeliveryResult> results,
                        std::function<void(const outbox::DeliveryResult&)> recorded);

  // Stops taking requests (those waiting for WhenIdle work are dropped unanswered: their
  // publishers retry) and calls `stopped` once the batches already taken are committed and
  // answered, or at once if the writer has failed.
  void Stop(std::function<void()> stopped);

  // True once a commit or a store read failed; the writer then refuses all work.
  bool failed() const { return !failure_.ok(); }
  // True when no batch is being written and the open one, if any, holds no change.
  bool idle() const { return !writing_.has_value() && (!open_ || open_->batch.empty()); }

 private:
  // A batch and what waits for its commit. The changes' effects and the requests live on the
  // batch's arena: the batch reads the effects again when it is written (its audit records),
  // and all of it is freed with the turn, off the writer thread (Written).
  struct Turn {
    explicit Turn(store::Batch b);
    store::Batch batch;
    v1::Timeline* timeline;  // on batch.arena()
    std::vector<std::pair<ingest::Peer, std::string>> replies;
    bool timers_changed = false;
    bool requeued = false;  // a parked delivery went back to the outbox
    std::optional<calendar::Instant> earliest_timer_set;
    // Called after the commit, after the replies (RecordDeliveries).
    std::vector<std::function<void()>> after_commit;
  };
  // A request that arrived while WhenIdle work waited, or a retry_delivery while a batch was
  // being written.
  struct Deferred {
    ingest::Peer peer;
    v1::Request request;
  };

  // Applies `*event` in the open batch: accepted (its rows added, with `event_bytes` as its log
  // row when not empty, then the cases its change opened applied after it, `depth` counting such
  // openings) or refused (the refusal recorded). An accepted event's facts are taken.
  // Returns OK when accepted, else the reason; fails the writer when the store cannot be read.
  Status Apply(v1::Event* event, int depth, std::string_view event_bytes);
  // Applies the starting events of the cases that effects from `first_effect` on opened.
  void OpenCases(int first_effect, int depth);
  // Records that `event` was refused for `why`, and returns `why`.
  Status Reject(const v1::Event& event, const Status& why);
  // Reads the case as the batch being written or the store has it (the open batch's is applied
  // in place) into `*into`; returns whether there is one. And the first answer as the open batch
  // or the batch being written has it.
  Result<bool> ReadCase(const std::string& case_id, v1::CaseState* into) const;
  const v1::DedupeRecord* PendingDedupe(const std::string& event_id) const;

  // Opens a batch (with its instant and timeline) when there is none.
  void OpenTurn();
  // Moves things on: writes the open batch when nothing is being written; when idle, sends the
  // open batch's replies, runs WhenIdle work, then the requests that waited for it.
  void Pump();
  // Submits the open batch and writes it on the writing thread.
  void StartWrite();
  // The writing thread's answer, on the writer thread.
  void Written(const Status& written);
  void Send(std::vector<std::pair<ingest::Peer, std::string>> replies);
  // Sends a committed turn's replies, then runs its after_commit work.
  void Answer(Turn& turn);
  // Pauses or resumes the input as the requests waiting for a commit reach or leave
  // max_waiting_.
  void Throttle();
  void Fail(const Status& status);

  store::Store& store_;
  const Engines& engines_;
  WriterHooks hooks_;
  asio::any_io_executor executor_;
  Status failure_;
  const std::size_t max_waiting_;
  bool stopping_ = false;
  bool pumping_ = false;
  bool input_paused_ = false;

  std::optional<Turn> open_;
  std::optional<Turn> writing_;
  calendar::Instant turn_now_{};  // the open batch's instant
  std::deque<std::function<void()>> idle_work_;
  std::vector<Deferred> deferred_;
  // Last: destroyed (joined) first, while the batch it may be writing still exists.
  asio::thread_pool writing_thread_{1};
};

}  // namespace tandem::tandemd
