#include "daemon/timers/timer_service.h"

#include <google/protobuf/arena.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/post.hpp>
#include <set>
#include <string>
#include <utility>

namespace tandem::timers {
namespace {

// Removes pending timer `timer_id` from `state`'s deadlines. Returns whether it was there.
bool RemovePendingTimer(v1::CaseState* state, uint64_t timer_id) {
  for (v1::DeadlineInstance& d : *state->mutable_deadlines()) {
    auto* timers = d.mutable_timers();
    for (int i = 0; i < timers->size(); ++i) {
      if (timers->Get(i).id() == timer_id) {
        timers->erase(timers->begin() + i);
        return true;
      }
    }
  }
  return false;
}

}  // namespace

TimerService::TimerService(asio::any_io_executor executor, store::Store& store,
                           TimerServiceHooks hooks, TimerServiceOptions options)
    : executor_(std::move(executor)),
      store_(store),
      hooks_(std::move(hooks)),
      options_(options),
      timer_(executor_) {
  // A turn that may fire nothing would never make progress: a configuration bug.
  TANDEM_CHECK(options_.max_fires_per_turn > 0);
  TANDEM_CHECK(hooks_.now && hooks_.engine_for && hooks_.commit);
}

TimerService::~TimerService() { Stop(); }

void TimerService::Start() {
  if (started_ || stopped_) return;
  started_ = true;
  Rearm();
}

void TimerService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  ++generation_;
  armed_for_.reset();
  timer_.cancel();
}

void TimerService::Fail(const Status& status) {
  Stop();
  if (hooks_.on_failure) hooks_.on_failure(status);
}

// One seek for the earliest pending timer. When it is already due, firing starts in a turn of
// its own (posted, so the caller, typically the end of an ingest turn, finishes first);
// otherwise the wait is armed for the time left, capped at max_wait.
void TimerService::Rearm() {
  if (!started_ || stopped_ || firing_) return;
  auto next = store_.NextDueTimer();
  if (!next.ok()) {
    Fail(next.status().WithPrefix("timers: reading the next due timer"));
    return;
  }
  const uint64_t generation = ++generation_;
  if (!next->has_value()) {
    armed_for_.reset();
    timer_.cancel();
    return;
  }
  const calendar::Instant due = engine::ToInstant((*next)->timer.due_at());
  const calendar::Instant now = hooks_.now();
  if (due <= now) {
    armed_for_.reset();
    timer_.cancel();
    firing_ = true;
    asio::post(executor_, [this, generation] {
      if (stopped_ || generation != generation_) {
        // A Stop (or nothing else: only Rearm and Stop change the generation, and Rearm does
        // nothing while firing_) came first.
        firing_ = false;
        return;
      }
      FireTurn();
    });
    return;
  }
  armed_for_ = due;
  const auto wait = std::min<std::chrono::seconds>(due - now, options_.max_wait);
  timer_.expires_after(wait);
  timer_.async_wait([this, generation](const std::error_code& ec) {
    if (ec || stopped_ || generation != generation_) return;
    armed_for_.reset();
    Rearm();
  });
}

void TimerService::FireTurn() {
  if (hooks_.when_writer_idle) {
    hooks_.when_writer_idle([this] { FireTurnNow(); });
    return;
  }
  FireTurnNow();
}

void TimerService::FireTurnNow() {
  if (stopped_) {
    firing_ = false;
    return;
  }
  auto report = FireDueOnce(hooks_.now());
  if (!report.ok()) {
    firing_ = false;
    Fail(report.status());
    return;
  }
  if (report->more) {
    // Yield: ingest turns already queued on the executor run before the next firing turn, so a
    // flood of due timers delays acks by at most one turn.
    asio::post(executor_, [this] { FireTurn(); });
    return;
  }
  firing_ = false;
  Rearm();
}

Result<FireReport> TimerService::FireDueOnce(calendar::Instant now) {
  FireReport report;
  TANDEM_ASSIGN_OR_RETURN(std::vector<store::TimerEntry> due,
                          store_.DueTimers(now, options_.max_fires_per_turn));
  if (due.empty()) return report;
  ++turns_;
  report.more = due.size() == options_.max_fires_per_turn;

  // The turn's effects live on one arena and are freed together (engine.h, `into`).
  google::protobuf::Arena arena;
  v1::Timeline* timeline = google::protobuf::Arena::CreateMessage<v1::Timeline>(&arena);
  store::Batch batch = store_.NewBatch();
  // Timers an earlier firing of this turn cancelled: their rows are already deleted in `batch`.
  std::set<std::pair<std::string, uint64_t>> cancelled;

  for (store::TimerEntry& entry : due) {
    const uint64_t id = entry.timer.id();
    if (cancelled.count({entry.case_id, id}) != 0) {
      ++report.skipped;
      continue;
    }
    v1::CaseState working;
    if (const v1::CaseState* pending = batch.PendingCase(entry.case_id)) {
      working = *pending;
    } else {
      TANDEM_ASSIGN_OR_RETURN(std::optional<v1::CaseState> stored, store_.GetCase(entry.case_id));
      if (!stored.has_value()) {
        return DataLossError("timers: timer " + std::to_string(id) + " belongs to case '" +
                             entry.case_id + "', which the store does not hold");
      }
      working = std::move(*stored);
    }
    const int first_effect = timeline->effects_size();
    const engine::Engine& engine = hooks_.engine_for(working);
    auto outcome = engine.FireTaking(&working, id, now, timeline);
    if (outcome.ok()) {
      for (const v1::Timer& t : outcome->timers_cancelled)
        cancelled.insert({entry.case_id, t.id()});
      TANDEM_RETURN_IF_ERROR(
          batch.AddFired(id, entry.timer, *outcome, now, timeline, first_effect));
      ++report.fired;
      continue;
    }
    // The engine refused: nothing was appended and `working` is unchanged. Leaving the timer
    // pending would block every timer behind it forever, so it is dropped, loudly: a `rejected`
    // effect in the case's audit trail and an error in the log.
    spdlog::error("timer refused: case_id={} timer_id={} deadline={} code={} reason=\"{}\"",
                  entry.case_id, id, entry.timer.deadline(),
                  StatusCodeName(outcome.status().code()), outcome.status().message());
    engine::Outcome dropped;
    RemovePendingTimer(&working, id);
    dropped.state = std::move(working);
    v1::Effect* e = timeline->add_effects();
    *e->mutable_at() = engine::ToTimestamp(now);
    e->set_case_id(entry.case_id);
    e->set_cause("timer:" + std::to_string(id));
    v1::Rejection* r = e->mutable_rejected();
    r->set_event_type("timer");
    r->set_code(std::string(StatusCodeName(outcome.status().code())));
    r->set_reason(outcome.status().message());
    TANDEM_RETURN_IF_ERROR(batch.AddFired(id, entry.timer, dropped, now, timeline, first_effect));
    ++report.refused;
  }
  if (!batch.empty()) TANDEM_RETURN_IF_ERROR(hooks_.commit(std::move(batch)));
  fired_total_ += report.fired;
  refused_total_ += report.refused;
  return report;
}

}  // namespace tandem::timers
