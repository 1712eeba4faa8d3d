#include "daemon/tandemd/writer.h"

#include <spdlog/spdlog.h>

#include <array>
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

Writer::Writer(store::Store& store, const Engines& engines, WriterHooks hooks)
    : store_(store), engines_(engines), hooks_(std::move(hooks)) {}

void Writer::OpenTurn() {
  if (batch_.has_value()) return;
  batch_.emplace(store_.NewBatch());
  turn_now_ = hooks_.now();
  timers_changed_ = false;
  earliest_timer_set_.reset();
  arena_.Reset();
  timeline_ = google::protobuf::Arena::CreateMessage<v1::Timeline>(&arena_);
}

void Writer::Fail(const Status& status) {
  if (failed()) return;
  failure_ = status;
  replies_.clear();
  batch_.reset();
  hooks_.on_fatal(status);
}

void Writer::QueueReply(const ingest::Peer& peer, const v1::Reply& reply) {
  if (failed()) return;
  replies_.emplace_back(peer, reply.SerializeAsString());
}

void Writer::Publish(const ingest::Peer& peer, const v1::Request& request) {
  if (failed()) return;
  OpenTurn();
  const v1::Event& event = request.publish().event();
  const std::string& event_id = event.event_id();
  auto reply = [&](const v1::Reply& r) { replies_.emplace_back(peer, r.SerializeAsString()); };

  // Dedupe: this turn's batch first (a retry inside one burst), then the store. Ids that
  // cannot be dedupe keys are refused by the engine below.
  if (!event_id.empty() && event_id.size() <= engine::kMaxIdBytes) {
    if (const v1::DedupeRecord* pending = batch_->PendingDedupe(event_id)) {
      reply(ingest::DuplicateReply(request.request_id(), event_id, FirstOutcome(*pending)));
      return;
    }
    auto stored = store_.GetDedupe(event_id);
    if (!stored.ok()) {
      Fail(stored.status().WithPrefix("reading dedupe"));
      return;
    }
    if (stored->has_value()) {
      reply(ingest::DuplicateReply(request.request_id(), event_id, FirstOutcome(**stored)));
      return;
    }
  }

  // Only tandem links cases (the starting events of cases that a workflow opens).
  const Status why =
      event.opened_by_case().empty()
          ? Apply(event, 0)
          : Reject(event, InvalidArgumentError("opened_by_case is set by tandem only"));
  if (failed()) return;
  reply(why.ok() ? ingest::AcceptedReply(request.request_id(), event_id)
                 : ingest::RejectedReply(request.request_id(), event_id, why));
}

void Writer::RetryDelivery(const ingest::Peer& peer, const v1::Request& request) {
  if (failed()) return;
  OpenTurn();
  const uint64_t id = request.retry_delivery().delivery_id();
  Result<v1::OutboxRecord> requeued = batch_->Requeue(id, turn_now_);
  v1::Reply reply;
  if (requeued.ok()) {
    requeued_ = true;
    reply.set_request_id(request.request_id());
    *reply.mutable_outbox()->add_pending() = std::move(requeued).value();
    spdlog::info("delivery re-queued by an operator: outbox_sequence={}", id);
  } else if (requeued.status().code() == StatusCode::kNotFound) {
    reply = ingest::ErrorReply(request.request_id(), requeued.status());
  } else {
    Fail(requeued.status().WithPrefix("re-queueing a delivery"));
    return;
  }
  replies_.emplace_back(peer, reply.SerializeAsString());
}

Status Writer::Apply(const v1::Event& event, int depth) {
  // The case as this turn left it, else as committed; a working copy the engine may take.
  std::optional<v1::CaseState> working;
  if (const v1::CaseState* pending = batch_->PendingCase(event.case_id())) {
    working = *pending;
  } else {
    auto stored = store_.GetCase(event.case_id());
    if (!stored.ok()) {
      Fail(stored.status().WithPrefix("reading case"));
      return failure_;
    }
    working = std::move(*stored);
  }
  const int first_effect = timeline_->effects_size();
  auto outcome = working.has_value()
                     ? engines_.For(*working).ApplyTaking(&*working, event, turn_now_, timeline_)
                     : engines_.Newest().Apply(nullptr, event, turn_now_, timeline_);
  if (!outcome.ok()) return Reject(event, outcome.status());
  // The store refuses what it cannot key (e.g. an id holding a 0 byte): a rejection like any
  // other; the effects left on the timeline are never used.
  const Status added = batch_->AddAccepted(event, *outcome, turn_now_, timeline_, first_effect);
  if (!added.ok()) return Reject(event, added);
  timers_changed_ |= !outcome->timers_set.empty() || !outcome->timers_cancelled.empty();
  for (const v1::Timer& t : outcome->timers_set) {
    const calendar::Instant due = engine::ToInstant(t.due_at());
    if (!earliest_timer_set_.has_value() || due < *earliest_timer_set_) earliest_timer_set_ = due;
  }
  OpenCases(first_effect, depth);
  return OkStatus();
}

void Writer::OpenCases(int first_effect, int depth) {
  for (const engine::OpenedCase& next : engine::CasesOpened(*timeline_, first_effect, depth)) {
    if (failed()) return;
    if (!next.refused.ok()) {
      (void)Reject(next.event, next.refused);
      continue;
    }
    // Its id derives from the event that opened it, which was new: it cannot have an answer
    // yet, unless this very turn already holds one (refused again as a duplicate would be).
    if (batch_->PendingDedupe(next.event.event_id()) != nullptr) continue;
    (void)Apply(next.event, depth + 1);  // a refusal is recorded with the event, as any
  }
}

Status Writer::Reject(const v1::Event& event, const Status& why) {
  const Status recorded = batch_->AddRejected(event, why, turn_now_);
  if (!recorded.ok()) {
    // Nothing was added; the publisher still gets its answer, and a retry is refused again.
    spdlog::warn("rejection not recorded: event_id_bytes={} code={}", event.event_id().size(),
                 StatusCodeName(recorded.code()));
  }
  return why;
}

void Writer::EndTurn(const std::function<void(const ingest::Peer&, std::string)>& send) {
  if (failed()) return;
  if (batch_.has_value()) {
    store::Batch batch = std::move(*batch_);
    batch_.reset();
    timeline_ = nullptr;
    const bool timers_changed = timers_changed_;
    if (!batch.empty() && !Commit(std::move(batch), timers_changed, earliest_timer_set_).ok()) {
      return;
    }
  }
  // Only now, after the synced commit returned OK.
  auto replies = std::move(replies_);
  replies_.clear();
  for (auto& [peer, bytes] : replies) send(peer, std::move(bytes));
}

Status Writer::Commit(store::Batch&& batch, bool timers_changed,
                      std::optional<calendar::Instant> earliest_timer_set) {
  if (failed()) return failure_;
  const uint64_t outbox_before = store_.last_outbox_sequence();
  const Status status = store_.Commit(std::move(batch), /*sync=*/true);
  const bool requeued = std::exchange(requeued_, false);
  if (!status.ok()) {
    Fail(status.WithPrefix("commit"));
    return failure_;
  }
  hooks_.on_committed(timers_changed, earliest_timer_set,
                      requeued || store_.last_outbox_sequence() != outbox_before);
  return OkStatus();
}

void Writer::RecordDeliveries(const std::vector<outbox::DeliveryResult>& results,
                              const std::function<void(const outbox::DeliveryResult&)>& recorded) {
  if (failed() || results.empty()) return;
  // Delivery outcomes are posted handlers of their own; a router turn opens and commits its
  // batch within one handler, so none is open here.
  TANDEM_CHECK(!batch_.has_value());
  const calendar::Instant now = hooks_.now();
  store::Batch batch = store_.NewBatch();
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
  if (!batch.empty() && !Commit(std::move(batch), false).ok()) return;
  for (const outbox::DeliveryResult& r : results) recorded(r);
}

}  // namespace tandem::tandemd
