#include "daemon/outbox/outbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "daemon/base/check.h"
#include "daemon/engine/engine.h"

namespace tandem::outbox {
namespace {

std::map<std::string, std::unique_ptr<Sink>, std::less<>> ByName(
    std::vector<std::unique_ptr<Sink>> sinks) {
  std::map<std::string, std::unique_ptr<Sink>, std::less<>> by_name;
  for (auto& sink : sinks) {
    TANDEM_CHECK(sink != nullptr);  // REQUIRES in the header: the daemon's own objects
    const std::string name(sink->name());
    // REQUIRES: unique names; the configuration refuses two channel instances of one name.
    TANDEM_CHECK(by_name.emplace(name, std::move(sink)).second);
  }
  return by_name;
}

}  // namespace

Dispatcher::Dispatcher(const store::Store& store, std::vector<std::unique_ptr<Sink>> sinks,
                       DispatcherOptions options, std::function<calendar::Instant()> now,
                       std::function<void(DeliveryResult)> record)
    : store_(store),
      sinks_(ByName(std::move(sinks))),
      options_(std::move(options)),
      now_(std::move(now)),
      record_(std::move(record)),
      logger_(options_.logger != nullptr ? options_.logger : spdlog::default_logger()),
      backoff_(options_.initial_backoff, options_.max_backoff, options_.jitter, options_.seed) {
  // Options come from the validated configuration; these would be caller bugs.
  TANDEM_CHECK(options_.max_attempts >= 1);
  TANDEM_CHECK(options_.batch >= 1);
  TANDEM_CHECK(options_.idle_poll.count() >= 0);
  TANDEM_CHECK(now_ != nullptr && record_ != nullptr);
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  TANDEM_CHECK(!started_);  // one thread per dispatcher, started once
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Dispatcher::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Dispatcher::Recorded(const DeliveryResult& result) {
  {
    std::lock_guard lock(mu_);
    // Another channel's record (the daemon tells every dispatcher): nothing here changed, and
    // waking would cost a scan of the whole outbox per delivery per channel.
    if (awaiting_.erase(result.sequence) == 0) return;
    // A page this scan read before the writer's commit still shows the old row: skip it until
    // the next scan, whose reads all come after the commit.
    recorded_.insert_or_assign(result.sequence, result.kind);
    // The row changed (or left): rescan so a delivered record's successors go on and a
    // rescheduled one's new time is seen.
    woken_ = true;
  }
  cv_.notify_all();
}

void Dispatcher::RequestStop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void Dispatcher::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

uint64_t Dispatcher::ScansForTest() const {
  std::lock_guard lock(mu_);
  return scans_;
}

void Dispatcher::Run() {
  while (true) {
    const std::optional<calendar::Instant> earliest = Scan();
    std::unique_lock lock(mu_);
    ++scans_;
    if (stop_) return;
    if (woken_) {
      woken_ = false;
      continue;
    }
    // Sleep for idle_poll, or less when a waiting record falls due sooner. The instants are the
    // daemon's UTC clock; the wait itself is on the steady clock, so a clock offset changed by a
    // test is seen at the next wake or poll.
    std::chrono::milliseconds wait = options_.idle_poll;
    if (earliest.has_value()) {
      lock.unlock();
      const auto until_due = *earliest - now_();
      lock.lock();
      wait = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(until_due),
                        std::chrono::milliseconds(0), wait);
    }
    cv_.wait_for(lock, wait, [this] { return stop_ || woken_; });
    if (stop_) return;
    woken_ = false;
  }
}

std::optional<calendar::Instant> Dispatcher::Scan() {
  std::optional<calendar::Instant> earliest;
  // Cases with a record still waiting for its (first or next) attempt: their later records wait
  // behind it, so each case's notifications arrive in sequence order.
  std::set<std::string, std::less<>> held;
  uint64_t after = 0;
  {
    // Every read below comes after the commits of the results recorded so far.
    std::lock_guard lock(mu_);
    recorded_.clear();
  }
  while (true) {
    auto page = store_.Outbox(options_.batch, after);
    if (!page.ok()) {
      if (!read_failing_) {
        logger_->warn("outbox dispatcher: cannot read the outbox, retrying every {} ms: {}",
                      options_.idle_poll.count(), page.status().ToString());
      }
      read_failing_ = true;
      return std::nullopt;
    }
    if (read_failing_) {
      logger_->info("outbox dispatcher: reading the outbox again");
      read_failing_ = false;
    }
    for (const v1::OutboxRecord& record : *page) {
      after = record.sequence();
      const auto sink = sinks_.find(record.channel());
      if (sink == sinks_.end()) continue;  // another dispatcher's channel
      const std::string& case_id = record.effect().case_id();
      if (held.contains(case_id)) continue;
      bool awaiting = false;
      {
        std::lock_guard lock(mu_);
        if (stop_) return std::nullopt;
        const DeliveryResult::Kind* kind = nullptr;
        if (auto it = awaiting_.find(record.sequence()); it != awaiting_.end()) {
          kind = &it->second;
        } else if (auto r = recorded_.find(record.sequence()); r != recorded_.end()) {
          kind = &r->second;
        }
        if (kind != nullptr) {
          awaiting = true;
          // A delivered (or dead-lettered) record is done with as far as order goes; one to be
          // retried still comes before its successors.
          if (*kind == DeliveryResult::Kind::kRetry) held.insert(case_id);
        }
      }
      if (awaiting) continue;
      const calendar::Instant due = engine::ToInstant(record.next_attempt_at());
      if (due > now_()) {
        held.insert(case_id);
        earliest = earliest.has_value() ? std::min(*earliest, due) : due;
        continue;
      }
      DeliveryResult result = Deliver(*sink->second, record);
      if (result.kind == DeliveryResult::Kind::kRetry) held.insert(case_id);
      {
        // Awaiting before reporting: the writer may commit and call Recorded before `record_`
        // even returns.
        std::lock_guard lock(mu_);
        awaiting_.insert_or_assign(result.sequence, result.kind);
      }
      record_(std::move(result));
    }
    if (page->size() < options_.batch) return earliest;
  }
}

DeliveryResult Dispatcher::Deliver(Sink& sink, const v1::OutboxRecord& record) {
  const Status delivered = sink.Deliver(record);
  DeliveryResult result;
  result.kind = DeliveryResult::Kind::kDelivered;
  result.sequence = record.sequence();
  result.attempts = record.attempts() + 1;
  if (delivered.ok()) return result;
  result.error = std::string(sink.name()) + ": " + delivered.ToString();
  // Only kUnavailable may succeed later; anything else (a 4xx answer, a refused mailbox, a
  // broken plugin) would fail the same way on every attempt, so it is parked for an operator.
  if (delivered.code() != StatusCode::kUnavailable || result.attempts >= options_.max_attempts) {
    result.kind = DeliveryResult::Kind::kDeadLetter;
    return result;
  }
  result.kind = DeliveryResult::Kind::kRetry;
  result.next_attempt_at = now_() + backoff_.Next(result.attempts);
  return result;
}

}  // namespace tandem::outbox
