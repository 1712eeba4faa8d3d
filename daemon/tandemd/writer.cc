#include "daemon/tandemd/writer.h"

#include <spdlog/spdlog.h>

#include <array>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <iterator>
#include <string_view>
#include <utility>

#include "daemon/engine/engine.h"
#include "daemon/ingest/envelope.h"

namespace tandem::tandemd {
namespace {

// The Status a stored rejection was recorded with, from its code name.
Status StoredRejection(const v1::Rejection& r) {
  static constexpr std::array kCodes = {
      StatusCode::kInvalidArgument,    StatusCode::kNotFound,   StatusCode::kAlreadyExists,
      StatusCode::kFailedPrecondition, StatusCode::kOutOfRange, StatusCode::kUnavailable,
      StatusCode::kDataLoss,           StatusCode::kInternal};
  for (StatusCode code : kCodes) {
    if (StatusCodeName(code) == r.code()) return Status(code, r.reason());
  }
  return InternalError(r.reason());
}

// The first answer `record` remembers: OK for an accepted event, else the rejection.
Status FirstOutcome(const v1::DedupeRecord& record) {
  if (record.has_rejected()) return StoredRejection(record.rejected());
  return OkStatus();
}

}  // namespace

Writer::Writer(store::Store& store, const Engines& engines, WriterHooks hooks,
               asio::any_io_executor executor, std::size_t max_waiting)
    : store_(store),
      engines_(engines),
      hooks_(std::move(hooks)),
      executor_(std::move(executor)),
      max_waiting_(max_waiting) {}

Writer::Turn::Turn(store::Batch b)
    : batch(std::move(b)),
      timeline(google::protobuf::Arena::CreateMessage<v1::Timeline>(batch.arena())) {}

Writer::~Writer() { writing_thread_.join(); }

void Writer::OpenTurn() {
  if (open_.has_value()) return;
  open_.emplace(store_.NewBatch());
  turn_now_ = hooks_.now();
}

void Writer::Fail(const Status& status) {
  if (failed()) return;
  failure_ = status;
  // A batch being written stays until its writing thread is done with it (Written).
  open_.reset();
  idle_work_.clear();
  deferred_.clear();
  hooks_.on_fatal(status);
}

void Writer::QueueReply(const ingest::Peer& peer, const v1::Reply& reply) {
  if (failed()) return;
  OpenTurn();
  open_->replies.emplace_back(peer, reply.SerializeAsString());
}

const v1::DedupeRecord* Writer::PendingDedupe(const std::string& event_id) const {
  if (const v1::DedupeRecord* open = open_->batch.PendingDedupe(event_id)) return open;
  return writing_.has_value() ? writing_->batch.PendingDedupe(event_id) : nullptr;
}

Result<bool> Writer::ReadCase(const std::string& case_id, v1::CaseState* into) const {
  if (writing_.has_value()) {
    if (const v1::CaseState* written = writing_->batch.PendingCase(case_id)) {
      into->CopyFrom(*written);
      return true;
    }
  }
  return store_.ReadCase(case_id, into);
}

v1::Request* Writer::NewRequest() {
  if (failed() || stopping_) return nullptr;
  OpenTurn();
  return google::protobuf::Arena::CreateMessage<v1::Request>(open_->batch.arena());
}

void Writer::Publish(const ingest::Peer& peer, v1::Request* request, std::string_view event_bytes) {
  if (failed() || stopping_) return;
  if (!idle_work_.empty() || !deferred_.empty()) {
    // The bytes are the receive buffer's: a deferred event is serialized again when applied.
    deferred_.push_back({peer, *request});
    Throttle();
    return;
  }
  OpenTurn();
  v1::Event& event = *request->mutable_publish()->mutable_event();
  const std::string& event_id = event.event_id();
  auto reply = [&](const v1::Reply& r) {
    open_->replies.emplace_back(peer, r.SerializeAsString());
  };

  // Dedupe: the batches not yet committed first (a retry inside one burst, or while its batch
  // is being written), then the store. Ids that cannot be dedupe keys are refused by the engine.
  if (!event_id.empty() && event_id.size() <= engine::kMaxIdBytes) {
    if (const v1::DedupeRecord* pending = PendingDedupe(event_id)) {
      reply(ingest::DuplicateReply(request->request_id(), event_id, FirstOutcome(*pending)));
      Throttle();
      return;
    }
    auto stored = store_.GetDedupe(event_id);
    if (!stored.ok()) {
      Fail(stored.status().WithPrefix("reading dedupe"));
      return;
    }
    if (stored->has_value()) {
      reply(ingest::DuplicateReply(request->request_id(), event_id, FirstOutcome(**stored)));
      Throttle();
      return;
    }
  }

  // Only tandem links cases (the starting events of cases that a workflow opens).
  const Status why =
      event.opened_by_case().empty()
          ? Apply(&event, 0, event_bytes)
          : Reject(event, InvalidArgumentError("opened_by_case is set by tandem only"));
  if (failed()) return;
  reply(why.ok() ? ingest::AcceptedReply(request->request_id(), event_id)
                 : ingest::RejectedReply(request->request_id(), event_id, why));
  Throttle();
}

void Writer::RetryDelivery(const ingest::Peer& peer, const v1::Request& request) {
  if (failed() || stopping_) return;
  // The dead letters are read from the store, which does not hold a batch being written yet.
  if (!idle_work_.empty() || !deferred_.empty() || writing_.has_value()) {
    deferred_.push_back({peer, request});
    return;
  }
  OpenTurn();
  const uint64_t id = request.retry_delivery().delivery_id();
  Result<v1::OutboxRecord> requeued = open_->batch.Requeue(id, turn_now_);
  v1::Reply reply;
  if (requeued.ok()) {
    open_->requeued = true;
    reply.set_request_id(request.request_id());
    *reply.mutable_outbox()->add_pending() = std::move(requeued).value();
    spdlog::info("delivery re-queued by an operator: outbox_sequence={}", id);
  } else if (requeued.status().code() == StatusCode::kNotFound) {
    reply = ingest::ErrorReply(request.request_id(), requeued.status());
  } else {
    Fail(requeued.status().WithPrefix("re-queueing a delivery"));
    return;
  }
  open_->replies.emplace_back(peer, reply.SerializeAsString());
}

Status Writer::Apply(v1::Event* taken, int depth, std::string_view event_bytes) {
  const v1::Event& event = *taken;
  // The log row is the event with its facts, which an accepted event gives to the case.
  std::string serialized;
  if (event_bytes.empty()) {
    serialized = event.SerializeAsString();
    event_bytes = serialized;
  }
  const int first_effect = open_->timeline->effects_size();
  store::Batch& batch = open_->batch;
  // The engine changes the case where the open batch holds it; a case the batch does not hold
  // yet is read into a state of the batch's own first (from the batch being written, else the
  // store), or made there when the event starts it.
  v1::CaseState* state = batch.MutablePendingCase(event.case_id());
  const bool held = state != nullptr;
  bool exists = held;
  if (!held) {
    state = batch.NewCaseState();
    Result<bool> read = ReadCase(event.case_id(), state);
    if (!read.ok()) {
      Fail(read.status().WithPrefix("reading case"));
      return failure_;
    }
    exists = *read;
  }
  engine::TimerDiff diff;
  const Status applied = exists
                             ? engines_.For(*state).ApplyInPlace(state, nullptr, event, taken,
                                                                 turn_now_, open_->timeline, &diff)
                             : engines_.Newest().ApplyInPlace(nullptr, state, event, taken,
                                                              turn_now_, open_->timeline, &diff);
  if (!applied.ok()) return Reject(event, applied);
  const Status added = batch.AddAcceptedInPlace(event, state, diff, turn_now_, *open_->timeline,
                                                first_effect, event_bytes);
  if (!added.ok()) {
    // The store refuses only ids it cannot key (e.g. one holding a 0 byte): a rejection like any
    // other, the effects left on the timeline never used. A case of the open batch, though, is
    // keyed in this very batch, which now holds it changed without its rows: nothing more may
    // commit.
    if (!held) return Reject(event, added);
    Fail(added.WithPrefix("adding an event to a case of the open batch"));
    return failure_;
  }
  open_->timers_changed |= !diff.set.empty() || !diff.cancelled.empty();
  std::optional<calendar::Instant>& earliest = open_->earliest_timer_set;
  for (const engine::TimerRef& t : diff.set) {
    if (!earliest.has_value() || t.due < *earliest) earliest = t.due;
  }
  OpenCases(first_effect, depth);
  return OkStatus();
}

void Writer::OpenCases(int first_effect, int depth) {
  for (engine::OpenedCase& next : engine::CasesOpened(*open_->timeline, first_effect, depth)) {
    if (failed()) return;
    if (!next.refused.ok()) {
      (void)Reject(next.event, next.refused);
      continue;
    }
    // Its id derives from the event that opened it, which was new: it cannot have an answer
    // yet, unless this very batch already holds one (refused again as a duplicate would be).
    if (open_->batch.PendingDedupe(next.event.event_id()) != nullptr) continue;
    (void)Apply(&next.event, depth + 1, {});  // a refusal is recorded with the event, as any
  }
}

Status Writer::Reject(const v1::Event& event, const Status& why) {
  const Status recorded = open_->batch.AddRejected(event, why, turn_now_);
  if (!recorded.ok()) {
    // Nothing was added; the publisher still gets its answer, and a retry is refused again.
    spdlog::warn("rejection not recorded: event_id_bytes={} code={}", event.event_id().size(),
                 StatusCodeName(recorded.code()));
  }
  return why;
}

void Writer::EndTurn() { Pump(); }

void Writer::WhenIdle(std::function<void()> work) {
  if (failed()) return;
  idle_work_.push_back(std::move(work));
  Pump();
}

void Writer::Stop(std::function<void()> stopped) {
  stopping_ = true;
  deferred_.clear();
  if (failed()) {
    stopped();
    return;
  }
  WhenIdle(std::move(stopped));
}

void Writer::Pump() {
  // Work run from here (WhenIdle work, requests that waited) may come back here; the loop below
  // picks up whatever it left.
  if (pumping_) return;
  pumping_ = true;
  while (!failed() && !writing_.has_value()) {
    if (open_.has_value() && !open_->batch.empty()) {
      StartWrite();
      break;
    }
    // Nothing is being written or waits to be: every commit before these replies is done.
    if (open_.has_value()) {
      Turn done = std::move(*open_);
      open_.reset();
      Answer(done);
    }
    if (!idle_work_.empty()) {
      std::function<void()> work = std::move(idle_work_.front());
      idle_work_.pop_front();
      work();
      continue;
    }
    if (deferred_.empty()) break;
    std::vector<Deferred> deferred = std::move(deferred_);
    deferred_.clear();
    for (std::size_t i = 0; i < deferred.size(); ++i) {
      Deferred& d = deferred[i];
      if (!deferred_.empty()) {
        // A retry_delivery waits again (for the batch before it): so does everything after it.
        deferred_.insert(deferred_.end(), std::make_move_iterator(deferred.begin() + i),
                         std::make_move_iterator(deferred.end()));
        break;
      }
      if (d.request.has_publish()) {
        Publish(d.peer, &d.request);
      } else {
        RetryDelivery(d.peer, d.request);
      }
    }
  }
  pumping_ = false;
  if (!failed()) Throttle();
}

void Writer::StartWrite() {
  Turn turn = std::move(*open_);
  open_.reset();
  const Status submitted = store_.Submit(turn.batch);
  if (!submitted.ok()) {
    Fail(submitted.WithPrefix("commit"));
    return;
  }
  writing_.emplace(std::move(turn));
  // The completion keeps the io_context running until it has been handled.
  asio::post(writing_thread_,
             [this, batch = &writing_->batch,
              done = asio::prefer(executor_, asio::execution::outstanding_work.tracked)] {
               Status written = store_.Write(*batch, /*sync=*/true);
               asio::post(done, [this, written = std::move(written)] { Written(written); });
             });
}

void Writer::Written(const Status& written) {
  Turn turn = std::move(*writing_);
  writing_.reset();
  if (failed()) return;  // a store read failed meanwhile: nothing more is answered
  const bool notifications_added = turn.requeued || turn.batch.numbered_outbox_records();
  const Status finished = store_.Finish(turn.batch, written);
  if (!finished.ok()) {
    Fail(finished.WithPrefix("commit"));
    return;
  }
  hooks_.on_committed(turn.timers_changed, turn.earliest_timer_set, notifications_added);
  // Only now, after the synced commit returned OK.
  Answer(turn);
  // Freeing a turn's cases, rows and effects is work of the size of building it: the writing
  // thread does it, before it writes the next batch.
  asio::post(writing_thread_, [done = std::move(turn)] {});
  Pump();
}

void Writer::Throttle() {
  const std::size_t waiting = deferred_.size() + (open_.has_value() ? open_->replies.size() : 0);
  if (!input_paused_ && !idle() && waiting >= max_waiting_) {
    input_paused_ = true;
    if (hooks_.pause_input) hooks_.pause_input();
  } else if (input_paused_ && (idle() || waiting < max_waiting_)) {
    input_paused_ = false;
    if (hooks_.resume_input) hooks_.resume_input();
  }
}

void Writer::Send(std::vector<std::pair<ingest::Peer, std::string>> replies) {
  for (auto& [peer, bytes] : replies) hooks_.send(peer, std::move(bytes));
}

void Writer::Answer(Turn& turn) {
  Send(std::move(turn.replies));
  for (auto& work : turn.after_commit) work();
  turn.after_commit.clear();
}

Status Writer::Commit(store::Batch&& batch, bool timers_changed,
                      std::optional<calendar::Instant> earliest_timer_set) {
  if (failed()) return failure_;
  TANDEM_CHECK(idle());
  const bool notifications_added = batch.numbered_outbox_records();
  const Status status = store_.Commit(std::move(batch), /*sync=*/true);
  if (!status.ok()) {
    Fail(status.WithPrefix("commit"));
    return failure_;
  }
  // An open batch holds no change (idle), but was numbered before this commit: renew it, with
  // the replies and the work that wait in it.
  if (open_.has_value()) {
    auto replies = std::move(open_->replies);
    auto after_commit = std::move(open_->after_commit);
    open_.emplace(store_.NewBatch());
    open_->replies = std::move(replies);
    open_->after_commit = std::move(after_commit);
  }
  hooks_.on_committed(timers_changed, earliest_timer_set, notifications_added);
  return OkStatus();
}

void Writer::RecordDeliveries(std::vector<outbox::DeliveryResult> results,
                              std::function<void(const outbox::DeliveryResult&)> recorded) {
  if (failed() || stopping_ || results.empty()) return;
  OpenTurn();
  const calendar::Instant now = hooks_.now();
  store::Batch& batch = open_->batch;
  for (const outbox::DeliveryResult& r : results) {
    Status s;
    switch (r.kind) {
      case outbox::DeliveryResult::Kind::kDelivered:
        s = batch.MarkDelivered(r.sequence, now);
        break;
      case outbox::DeliveryResult::Kind::kRetry:
        s = batch.Reschedule(r.sequence, r.attempts, r.next_attempt_at, r.error);
        break;
      case outbox::DeliveryResult::Kind::kDeadLetter:
        s = batch.Reschedule(r.sequence, r.attempts, now, r.error);
        if (s.ok()) s = batch.MoveToDeadLetter(r.sequence, r.error, now);
        if (s.ok()) {
          spdlog::error("notification dead-lettered: outbox_sequence={} attempts={} error=\"{}\"",
                        r.sequence, r.attempts, r.error);
        }
        break;
    }
    if (s.code() == StatusCode::kNotFound) {
      // Already gone from the outbox: nothing to record.
      spdlog::warn("delivery outcome for a record no longer in the outbox: outbox_sequence={}",
                   r.sequence);
      continue;
    }
    if (!s.ok()) {
      Fail(s.WithPrefix("recording a delivery"));
      return;
    }
  }
  open_->after_commit.push_back([results = std::move(results), recorded = std::move(recorded)] {
    for (const outbox::DeliveryResult& r : results) recorded(r);
  });
  Pump();
}

}  // namespace tandem::tandemd
