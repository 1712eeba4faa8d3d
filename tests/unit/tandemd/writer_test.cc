// The writer's promise when storage fails (DESIGN, "on a storage error the daemon stops
// acknowledging"): the turn whose commit fails sends no ack at all (not even the answers that
// needed no commit of their own), on_fatal is told why exactly once, every later publish and
// commit is refused without an ack, and after a restart the store holds exactly what was acked.
// The failure is real: RocksDB runs on a file system whose write-ahead-log writes fail on demand
// (StoreOptions::env_for_test), the way a full or dying disk fails them. Also the writer's
// answer to retry_delivery (`tandemctl outbox retry`), which changes the store like a publish.

#include "daemon/tandemd/writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/config/loader.h"
#include "daemon/engine/engine.h"
#include "daemon/ingest/router.h"
#include "daemon/store/store.h"
#include "daemon/tandemd/engines.h"
#include "proto/tandem/v1/envelope.pb.h"
#include "tests/unit/store/failing_wal.h"
#include "tests/unit/tandemd/tandemd_test_util.h"

namespace tandem::tandemd {
namespace {

using store::test::FailingWalFileSystem;
using test::At;
using ::testing::HasSubstr;

// A retry_delivery request for delivery `id`.
v1::Request Retry(uint64_t id) {
  v1::Request request;
  request.set_request_id("retry-" + std::to_string(id));
  request.mutable_retry_delivery()->set_delivery_id(id);
  return request;
}

// A publish request for an incident.reported of the shipped serious_incident workflow; with
// `ill_typed` its became_aware_on is not a date, so the engine rejects it.
v1::Request Incident(const std::string& event_id, const std::string& case_id,
                     bool ill_typed = false) {
  v1::Request request;
  request.set_request_id("req-" + event_id);
  v1::Event& e = *request.mutable_publish()->mutable_event();
  e.set_event_id(event_id);
  e.set_case_id(case_id);
  e.set_partnership("staffordshire");
  e.set_type("incident.reported");
  *e.mutable_occurred_at() = engine::ToTimestamp(At("2026-12-24T10:15:00Z"));
  e.set_actor("la");
  auto& facts = *e.mutable_facts()->mutable_fields();
  facts["became_aware_on"].set_string_value(ill_typed ? "yesterday" : "2026-12-24");
  facts["outcome"].set_string_value("seriously_harmed");
  facts["abuse_or_neglect"].set_string_value("suspected");
  facts["location"].set_string_value("in_area");
  return request;
}

// A publish request for partners.informed on case `case_id` (accepted in any open state).
v1::Request Informed(const std::string& event_id, const std::string& case_id) {
  v1::Request request = Incident(event_id, case_id);
  v1::Event& e = *request.mutable_publish()->mutable_event();
  e.set_type("partners.informed");
  e.mutable_facts()->Clear();
  (*e.mutable_facts()->mutable_fields())["informed_on"].set_string_value("2026-12-24");
  return request;
}

struct Sent {
  std::string routing_id;
  v1::Reply reply;
};

class WriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<FailingWalFileSystem>();
    env_ = rocksdb::NewCompositeEnv(fs_);
    store::StoreOptions options;
    options.env_for_test = env_.get();
    auto store = store::Store::Open(dir_.path(), options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    // The seam is live: the database's log goes through the failing file system.
    ASSERT_GT(fs_->wal_files(), 0);

    auto cal = config::LoadCalendar("");
    ASSERT_TRUE(cal.ok()) << cal.status().ToString();
    auto workflows = config::LoadWorkflows("");
    ASSERT_TRUE(workflows.ok()) << workflows.status().ToString();
    engines_ = std::make_unique<Engines>(std::move(cal).value(), std::move(workflows).value());

    MakeWriter(1000);
  }

  // (Re)makes the writer, pausing the input at `max_waiting` requests waiting for a commit.
  void MakeWriter(std::size_t max_waiting) {
    WriterHooks hooks;
    hooks.now = [] { return At("2026-12-24T12:00:00Z"); };
    hooks.on_committed = [this](bool, std::optional<calendar::Instant>, bool notifications_added) {
      ++commits_;
      notifications_added_ = notifications_added;
    };
    hooks.on_fatal = [this](const Status& status) { fatal_.push_back(status); };
    hooks.send = [this](const ingest::Peer& peer, std::string bytes) {
      Sent s;
      s.routing_id = peer.routing_id;
      EXPECT_TRUE(s.reply.ParseFromString(bytes));
      sent_.push_back(std::move(s));
    };
    hooks.pause_input = [this] { input_.push_back("pause"); };
    hooks.resume_input = [this] { input_.push_back("resume"); };
    writer_ = std::make_unique<Writer>(*store_, *engines_, std::move(hooks), io_.get_executor(),
                                       max_waiting);
  }

  // Sets `batch` to fire the store's first due timer at its due instant, as the timer service
  // makes it.
  void FirstTimerBatch(std::optional<store::Batch>* batch) {
    auto next = store_->NextDueTimer();
    ASSERT_TRUE(next.ok() && next->has_value());
    auto stored = store_->GetCase((*next)->case_id);
    ASSERT_TRUE(stored.ok() && stored->has_value());
    const calendar::Instant due = engine::ToInstant((*next)->timer.due_at());
    auto outcome = engines_->Newest().Fire(**stored, (*next)->timer.id(), due);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    batch->emplace(store_->NewBatch());
    ASSERT_TRUE((*batch)->AddFired((*next)->timer.id(), (*next)->timer, *outcome, due).ok());
  }

  // Fires the store's first due timer through the writer, as the timer service does.
  void FireFirstTimer() {
    std::optional<store::Batch> batch;
    ASSERT_NO_FATAL_FAILURE(FirstTimerBatch(&batch));
    ASSERT_TRUE(writer_->Commit(std::move(*batch), /*timers_changed=*/true).ok());
  }

  // Opens case SI-1 and fires its first timer, whose notification leaves one delivery in the
  // outbox (to `channel`'s receiver, or without a channel when `channel` is empty); sets `*id`
  // to its outbox sequence.
  void QueueOneDelivery(const std::string& channel, uint64_t* id) {
    if (!channel.empty()) {
      store_->SetNotificationRouter([channel](const v1::Notification&) {
        return std::vector<store::DeliveryChannel>{{channel, "https://receiver.example.org/in"}};
      });
    }
    writer_->Publish(peer_, Incident("e1", "SI-1"));
    ASSERT_EQ(EndTurn().size(), 1u);
    ASSERT_NO_FATAL_FAILURE(FireFirstTimer());
    ASSERT_EQ(store_->Outbox(10)->size(), 1u);
    *id = (*store_->Outbox(10))[0].sequence();
  }

  // Ends the writer's turn, runs the loop until its commits are done, and returns what it sent.
  std::vector<Sent> EndTurn() {
    writer_->EndTurn();
    io_.restart();
    io_.run();
    EXPECT_TRUE(writer_->failed() || writer_->idle());
    return std::exchange(sent_, {});
  }

  // Members are destroyed bottom-up: the writer before the store, the store before its
  // file system, the directory last.
  test::ScopedDir dir_;
  asio::io_context io_;
  std::shared_ptr<FailingWalFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Engines> engines_;
  std::unique_ptr<Writer> writer_;
  int commits_ = 0;
  bool notifications_added_ = false;  // as the last on_committed said
  std::vector<Status> fatal_;
  std::vector<Sent> sent_;
  std::vector<std::string> input_;  // pause_input and resume_input calls
  const ingest::Peer peer_{"publisher-1", false};
};

TEST_F(WriterTest, FailedCommitSendsNoAckReportsOnceAndRefusesEverythingAfter) {
  // A healthy turn: acked after its commit.
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  std::vector<Sent> sent = EndTurn();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].routing_id, "publisher-1");
  EXPECT_EQ(sent[0].reply.request_id(), "req-e1");
  EXPECT_EQ(sent[0].reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(commits_, 1);
  EXPECT_TRUE(fatal_.empty());

  // The disk fails. The turn holds a new event, a duplicate of an acked one and a rejection:
  // none of the three answers leaves, since the turn's commit did not return OK.
  fs_->set_failing(true);
  writer_->Publish(peer_, Incident("e2", "SI-2"));
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->Publish(peer_, Incident("bad", "SI-3", /*ill_typed=*/true));
  EXPECT_TRUE(EndTurn().empty());
  EXPECT_TRUE(writer_->failed());
  EXPECT_EQ(commits_, 1);
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_THAT(fatal_[0].message(), HasSubstr("injected"));
  EXPECT_THAT(fatal_[0].message(), HasSubstr("commit"));

  // The disk recovers, but the writer has stopped: later publishes, replies that need no commit
  // and the timer service's commits all get nothing, and on_fatal is not called again.
  fs_->set_failing(false);
  writer_->Publish(peer_, Incident("e3", "SI-3"));
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->QueueReply(peer_, v1::Reply());
  EXPECT_TRUE(EndTurn().empty());
  EXPECT_FALSE(writer_->Commit(store_->NewBatch(), /*timers_changed=*/true).ok());
  EXPECT_EQ(commits_, 1);
  EXPECT_EQ(fatal_.size(), 1u);

  // After a restart only what was acked is there.
  writer_.reset();
  store_.reset();
  auto reopened = store::Store::Open(dir_.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  const store::Store& db = **reopened;
  ASSERT_TRUE(db.GetCase("SI-1")->has_value());
  EXPECT_EQ((*db.GetCase("SI-1"))->events_applied(), 1u);
  EXPECT_EQ(db.CaseEvents("SI-1")->size(), 1u);
  EXPECT_TRUE(db.GetDedupe("e1")->has_value());
  for (const char* id : {"e2", "bad", "e3"}) EXPECT_FALSE(db.GetDedupe(id)->has_value()) << id;
  for (const char* c : {"SI-2", "SI-3"}) EXPECT_FALSE(db.GetCase(c)->has_value()) << c;
  auto audit = db.VerifyAudit();
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(*audit, 1u);
}

TEST_F(WriterTest, FailureOnTheFirstTurnAcksNothingAtAll) {
  fs_->set_failing(true);
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  EXPECT_TRUE(EndTurn().empty());
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_EQ(commits_, 0);
  fs_->set_failing(false);
  // A retry of the same event after the failure is not answered either.
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  EXPECT_TRUE(EndTurn().empty());

  writer_.reset();
  store_.reset();
  auto reopened = store::Store::Open(dir_.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_FALSE((*reopened)->GetCase("SI-1")->has_value());
  EXPECT_FALSE((*reopened)->GetDedupe("e1")->has_value());
  auto audit = (*reopened)->VerifyAudit();
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(*audit, 0u);
}

TEST_F(WriterTest, FailedTimerCommitStopsTheWriterToo) {
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  ASSERT_EQ(EndTurn().size(), 1u);
  // The timer service commits through the same path: fire the case's first timer.
  std::optional<store::Batch> batch;
  ASSERT_NO_FATAL_FAILURE(FirstTimerBatch(&batch));

  fs_->set_failing(true);
  const Status failed = writer_->Commit(std::move(*batch), /*timers_changed=*/true);
  EXPECT_FALSE(failed.ok());
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_EQ(fatal_[0], failed);
  fs_->set_failing(false);
  // The next publish, though the disk is back, is not acked.
  writer_->Publish(peer_, Incident("e2", "SI-2"));
  EXPECT_TRUE(EndTurn().empty());
  EXPECT_EQ(fatal_.size(), 1u);
}

// Delivery outcomes join the open batch like events: one arriving while a batch is being written
// does not wait for the writer to be idle (which would hold back the events after it for a
// commit of its own), and is reported recorded only after the commit that holds it.
TEST_F(WriterTest, DeliveryOutcomesShareTheNextCommitWithEvents) {
  uint64_t id = 0;
  ASSERT_NO_FATAL_FAILURE(QueueOneDelivery(/*channel=*/"hook", &id));
  const int commits_before = commits_;

  // A batch is being written (its completion not yet handled) when the outcome and an event
  // arrive.
  writer_->Publish(peer_, Incident("e2", "SI-2"));
  writer_->EndTurn();
  ASSERT_FALSE(writer_->idle());
  outbox::DeliveryResult delivered;
  delivered.kind = outbox::DeliveryResult::Kind::kDelivered;
  delivered.sequence = id;
  delivered.attempts = 1;
  std::vector<std::string> order;
  writer_->RecordDeliveries({delivered},
                            [&](const outbox::DeliveryResult&) { order.push_back("recorded"); });
  writer_->Publish(peer_, Incident("e3", "SI-3"));
  EXPECT_TRUE(order.empty());
  const std::vector<Sent> sent = EndTurn();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(order, std::vector<std::string>{"recorded"});
  // e2's batch, then one holding the outcome and e3: no commit of the outcome's own.
  EXPECT_EQ(commits_, commits_before + 2);
  EXPECT_TRUE(store_->Outbox(10)->empty());
  auto audit = store_->AuditRecords(store_->last_audit_sequence() - 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  std::vector<bool> delivered_records;
  for (const auto& r : *audit) delivered_records.push_back(r.has_notification_delivered());
  EXPECT_EQ(std::count(delivered_records.begin(), delivered_records.end(), true), 1);
  EXPECT_EQ(*store_->VerifyAudit(), store_->last_audit_sequence());
}

// `tandemctl outbox retry`: the parked delivery goes back to the outbox in the turn's batch, and
// the answer, after the commit, shows it pending from attempt 1.
TEST_F(WriterTest, RetryDeliveryPutsAParkedDeliveryBackAndAnswersWithItPending) {
  uint64_t id = 0;
  ASSERT_NO_FATAL_FAILURE(QueueOneDelivery(/*channel=*/"hook", &id));
  // The outbox parked it: a permanent failure.
  outbox::DeliveryResult dead;
  dead.kind = outbox::DeliveryResult::Kind::kDeadLetter;
  dead.sequence = id;
  dead.attempts = 1;
  dead.error = "hook: failed_precondition: HTTP 410";
  int recorded = 0;
  writer_->RecordDeliveries({dead}, [&](const outbox::DeliveryResult&) { ++recorded; });
  EXPECT_EQ(recorded, 0);  // once committed
  EndTurn();
  ASSERT_EQ(recorded, 1);
  ASSERT_EQ(store_->DeadLetters(10)->size(), 1u);
  ASSERT_TRUE(store_->Outbox(10)->empty());
  const int commits_before = commits_;
  const uint64_t audit_before = store_->last_audit_sequence();

  writer_->RetryDelivery(peer_, Retry(id));
  EXPECT_EQ(commits_, commits_before);  // nothing until the turn ends
  const std::vector<Sent> sent = EndTurn();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].routing_id, "publisher-1");
  const v1::Reply& reply = sent[0].reply;
  EXPECT_EQ(reply.request_id(), "retry-" + std::to_string(id));
  ASSERT_TRUE(reply.has_outbox()) << reply.DebugString();
  EXPECT_TRUE(reply.outbox().parked().empty());
  ASSERT_EQ(reply.outbox().pending_size(), 1);
  const v1::OutboxRecord& pending = reply.outbox().pending(0);
  EXPECT_EQ(pending.sequence(), id);
  EXPECT_EQ(pending.attempts(), 0u);
  EXPECT_TRUE(pending.last_error().empty());
  EXPECT_FALSE(pending.has_dead_lettered_at());
  EXPECT_EQ(engine::ToInstant(pending.next_attempt_at()), At("2026-12-24T12:00:00Z"));
  EXPECT_EQ(pending.channel(), "hook");
  EXPECT_EQ(pending.address(), "https://receiver.example.org/in");
  EXPECT_EQ(pending.effect().notification().notification_id(), "SI-1:timer:1:1");

  // Committed (one commit, which woke the outbox), as the reply says.
  EXPECT_EQ(commits_, commits_before + 1);
  EXPECT_TRUE(notifications_added_);
  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].SerializeAsString(), pending.SerializeAsString());
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  ASSERT_TRUE((*audit)[0].has_notification_requeued());
  EXPECT_EQ((*audit)[0].notification_requeued().outbox_sequence(), id);
  EXPECT_EQ((*audit)[0].notification_requeued().attempts(), 1u);
  EXPECT_EQ((*audit)[0].notification_requeued().last_error(),
            "hook: failed_precondition: HTTP 410");
  auto verified = store_->VerifyAudit();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, store_->last_audit_sequence());
  EXPECT_TRUE(fatal_.empty());
}

TEST_F(WriterTest, RetryDeliveryOfNoParkedDeliveryAnswersNotFoundAndCommitsNothing) {
  uint64_t pending_id = 0;
  ASSERT_NO_FATAL_FAILURE(QueueOneDelivery(/*channel=*/"", &pending_id));
  const int commits_before = commits_;
  const uint64_t audit_before = store_->last_audit_sequence();
  const std::string outbox_before = (*store_->Outbox(10))[0].SerializeAsString();

  writer_->RetryDelivery(peer_, Retry(99));
  writer_->RetryDelivery(peer_, Retry(pending_id));  // in the outbox, not parked
  const std::vector<Sent> sent = EndTurn();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].reply.request_id(), "retry-99");
  ASSERT_TRUE(sent[0].reply.has_error()) << sent[0].reply.DebugString();
  EXPECT_EQ(sent[0].reply.error().code(), "not_found");
  EXPECT_THAT(sent[0].reply.error().message(), HasSubstr("99"));
  EXPECT_EQ(sent[1].reply.request_id(), "retry-" + std::to_string(pending_id));
  ASSERT_TRUE(sent[1].reply.has_error()) << sent[1].reply.DebugString();
  EXPECT_EQ(sent[1].reply.error().code(), "not_found");
  EXPECT_THAT(sent[1].reply.error().message(), HasSubstr("pending"));

  EXPECT_EQ(commits_, commits_before);
  EXPECT_EQ(store_->last_audit_sequence(), audit_before);
  ASSERT_EQ(store_->Outbox(10)->size(), 1u);
  EXPECT_EQ((*store_->Outbox(10))[0].SerializeAsString(), outbox_before);
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  EXPECT_FALSE(writer_->failed());
  EXPECT_TRUE(fatal_.empty());
}

// The pipeline: while one batch is being written, the writer applies what arrives to the next,
// reading the cases and answers of the batch being written; nothing of either is answered before
// its own commit returned, and the second commit follows the first.
TEST_F(WriterTest, EventsArrivingWhileABatchIsWrittenSeeItAndAreAnsweredAfterTheirOwnCommit) {
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->EndTurn();  // the first batch is handed to the writing thread; its answer waits
  EXPECT_FALSE(writer_->idle());
  EXPECT_TRUE(sent_.empty());

  // The loop has not run: the first batch's commit is not handled yet, so these see it only in
  // the batch being written.
  writer_->Publish(peer_, Informed("e2", "SI-1"));  // the case exists there
  writer_->Publish(peer_, Incident("e1", "SI-1"));  // a retry: its answer is there
  writer_->Publish(peer_, Incident("e3", "SI-1"));  // a second starting event: refused
  writer_->EndTurn();
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(commits_, 0);

  const std::vector<Sent> sent = EndTurn();  // runs the loop: both commits, then the answers
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].reply.request_id(), "req-e1");
  EXPECT_EQ(sent[0].reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(sent[1].reply.request_id(), "req-e2");
  EXPECT_EQ(sent[1].reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(sent[2].reply.request_id(), "req-e1");
  EXPECT_EQ(sent[2].reply.ack().status(), v1::ACK_STATUS_DUPLICATE);
  EXPECT_EQ(sent[3].reply.request_id(), "req-e3");
  EXPECT_EQ(sent[3].reply.ack().status(), v1::ACK_STATUS_REJECTED);
  EXPECT_EQ(commits_, 2);

  auto stored = store_->GetCase("SI-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->events_applied(), 2u);
  ASSERT_EQ(store_->CaseEvents("SI-1")->size(), 2u);
  EXPECT_EQ((*store_->CaseEvents("SI-1"))[1].event_id(), "e2");
  auto audit = store_->VerifyAudit();
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(*audit, 3u);  // e1, e2 accepted; e3 refused
  EXPECT_TRUE(fatal_.empty());
}

// Events for a case the open batch already holds are applied to it in place: a refused one
// leaves it exactly as it was for the next.
TEST_F(WriterTest, ARefusedEventLeavesTheOpenBatchsCaseWholeForTheNext) {
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->Publish(peer_, Incident("e3", "SI-1"));  // a second starting event: refused
  writer_->Publish(peer_, Informed("e2", "SI-1"));
  const std::vector<Sent> sent = EndTurn();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].reply.ack().status(), v1::ACK_STATUS_REJECTED);
  EXPECT_EQ(sent[2].reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(commits_, 1);
  auto stored = store_->GetCase("SI-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->events_applied(), 2u);
  EXPECT_EQ((*stored)->state(), "screening");
  EXPECT_EQ((*stored)->facts_size(), 2);  // incident.reported's and partners.informed's
}

// Work that reads the store on its own (a timer turn, delivery outcomes) runs only once the batch
// being written is committed; requests arriving meanwhile wait for it and then apply in order.
TEST_F(WriterTest, IdleWorkWaitsForTheBatchBeingWrittenAndRequestsWaitForIt) {
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->EndTurn();
  std::vector<std::string> order;
  writer_->WhenIdle([&] {
    order.push_back("idle work");
    // It sees the first batch committed, and nothing of what arrived after it.
    EXPECT_TRUE(store_->GetCase("SI-1")->has_value());
    EXPECT_FALSE(store_->GetDedupe("e2")->has_value());
    EXPECT_TRUE(writer_->idle());
  });
  EXPECT_TRUE(order.empty());
  writer_->Publish(peer_, Informed("e2", "SI-1"));
  writer_->EndTurn();

  const std::vector<Sent> sent = EndTurn();
  EXPECT_EQ(order, std::vector<std::string>{"idle work"});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].reply.request_id(), "req-e1");
  EXPECT_EQ(sent[1].reply.request_id(), "req-e2");
  EXPECT_EQ(sent[1].reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ((*store_->GetCase("SI-1"))->events_applied(), 2u);
  EXPECT_EQ(commits_, 2);
}

// A failed write while the next batch is open: neither batch is answered.
TEST_F(WriterTest, AFailedWriteAnswersNeitherItsBatchNorTheNextOne) {
  fs_->set_failing(true);
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->EndTurn();
  writer_->Publish(peer_, Informed("e2", "SI-1"));
  EXPECT_TRUE(EndTurn().empty());
  ASSERT_EQ(fatal_.size(), 1u);
  EXPECT_THAT(fatal_[0].message(), HasSubstr("injected"));
  EXPECT_EQ(commits_, 0);
  fs_->set_failing(false);
  writer_.reset();
  store_.reset();
  auto reopened = store::Store::Open(dir_.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_FALSE((*reopened)->GetDedupe("e2")->has_value());
}

// Stop: the batch being written and the open one are committed and answered first; requests
// after Stop are not taken.
TEST_F(WriterTest, StopAnswersWhatWasTakenBeforeSayingItStopped) {
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  writer_->EndTurn();
  writer_->Publish(peer_, Informed("e2", "SI-1"));
  bool stopped = false;
  writer_->Stop([&] {
    stopped = true;
    EXPECT_EQ(sent_.size(), 2u);
  });
  EXPECT_FALSE(stopped);
  writer_->Publish(peer_, Incident("e3", "SI-3"));
  const std::vector<Sent> sent = EndTurn();
  EXPECT_TRUE(stopped);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].reply.request_id(), "req-e2");
  EXPECT_FALSE(store_->GetDedupe("e3")->has_value());
}

// A commit answers a bounded number of requests: while one is written, the input pauses once
// `max_waiting` requests wait for the next, and resumes when they are handed to the writing
// thread.
TEST_F(WriterTest, TheInputPausesWhileAFullBatchWaitsForTheOneBeingWritten) {
  MakeWriter(2);
  writer_->Publish(peer_, Incident("e1", "SI-1"));
  EXPECT_TRUE(input_.empty());  // nothing being written: no reason to wait
  writer_->EndTurn();
  writer_->Publish(peer_, Incident("e2", "SI-2"));
  EXPECT_TRUE(input_.empty());
  writer_->Publish(peer_, Incident("e3", "SI-3"));
  EXPECT_EQ(input_, std::vector<std::string>{"pause"});
  writer_->EndTurn();
  const std::vector<Sent> sent = EndTurn();
  EXPECT_EQ(input_, (std::vector<std::string>{"pause", "resume"}));
  ASSERT_EQ(sent.size(), 3u);
  for (const Sent& s : sent) EXPECT_EQ(s.reply.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(commits_, 2);
}

}  // namespace
}  // namespace tandem::tandemd
