// The store's side of notification routing: Batch writes one outbox record per channel the
// NotificationRouter gives (or one without a channel when no router is set, or a dead letter
// when it gives none), and Batch::Requeue puts a parked record back in the outbox.

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "daemon/store/store.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using test::At;
using test::Incident;
using test::Sequences;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class StoreRoutingTest : public test::StoreFixture {
 protected:
  // Applies the incident for SI-1 at its occurred_at (it queues no notification) and commits.
  void AcceptIncident() { Accept(Incident("e1", "SI-1")); }

  // The notification effects of the audit records from `from` on.
  std::vector<v1::Effect> AuditedNotifications(uint64_t from) {
    auto audit = store_->AuditRecords(from, 1000);
    EXPECT_TRUE(audit.ok()) << audit.status().ToString();
    std::vector<v1::Effect> out;
    if (!audit.ok()) return out;
    for (const auto& r : *audit) {
      for (const auto& e : r.effects()) {
        if (e.has_notification()) out.push_back(e);
      }
    }
    return out;
  }

  // The audit chain verifies and ends at the newest record.
  void ExpectAuditVerifies() {
    auto verified = store_->VerifyAudit();
    ASSERT_TRUE(verified.ok()) << verified.status().ToString();
    EXPECT_EQ(*verified, store_->last_audit_sequence());
  }
};

// ---- Fan-out.

TEST_F(StoreRoutingTest, WritesOneRecordPerChannelWithConsecutiveSequencesAndOneEffect) {
  std::vector<v1::Notification> routed;
  store_->SetNotificationRouter([&](const v1::Notification& n) {
    routed.push_back(n);
    return std::vector<DeliveryChannel>{
        {"log", ""}, {"hook", "https://receiver.example.org/in"}, {"mail", "dsl@example.org"}};
  });
  AcceptIncident();
  EXPECT_TRUE(routed.empty());  // an incident queues no notification
  const uint64_t audit_before = store_->last_audit_sequence();
  const calendar::Instant fired_at = FireNext().at;

  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok()) << outbox.status().ToString();
  ASSERT_THAT(Sequences(*outbox), ElementsAre(1, 2, 3));
  EXPECT_EQ(store_->last_outbox_sequence(), 3u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"log", ""}, {"hook", "https://receiver.example.org/in"}, {"mail", "dsl@example.org"}};
  for (std::size_t i = 0; i < outbox->size(); ++i) {
    const v1::OutboxRecord& r = (*outbox)[i];
    EXPECT_EQ(r.channel(), expected[i].first) << i;
    EXPECT_EQ(r.address(), expected[i].second) << i;
    EXPECT_EQ(r.attempts(), 0u);
    EXPECT_TRUE(r.last_error().empty());
    EXPECT_EQ(engine::ToInstant(r.next_attempt_at()), fired_at);
    EXPECT_EQ(engine::ToInstant(r.enqueued_at()), fired_at);
    EXPECT_FALSE(r.has_dead_lettered_at());
    EXPECT_TRUE(MessageDifferencer::Equals(r.effect(), (*outbox)[0].effect())) << i;
  }
  EXPECT_EQ((*outbox)[0].effect().notification().notification_id(), "SI-1:timer:1:1");
  // The router was asked once, with the notification the records carry; the audit holds the
  // effect once, however many channels it went to.
  ASSERT_EQ(routed.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(routed[0], (*outbox)[0].effect().notification()));
  const auto audited = AuditedNotifications(audit_before + 1);
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(audited[0], (*outbox)[0].effect()));
  EXPECT_TRUE(store_->DeadLetters(10)->empty());

  // The next notification's records follow on.
  FireNext();
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1, 2, 3, 4, 5, 6));
  ExpectAuditVerifies();
}

TEST_F(StoreRoutingTest, WithoutARouterWritesOneRecordWithoutAChannel) {
  AcceptIncident();
  FireNext();
  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].sequence(), 1u);
  EXPECT_EQ((*outbox)[0].channel(), "");
  EXPECT_EQ((*outbox)[0].address(), "");
  EXPECT_EQ(store_->last_outbox_sequence(), 1u);
}

TEST_F(StoreRoutingTest, TheRouterAppliesToBatchesMadeAfterItIsSet) {
  AcceptIncident();
  FireNext();
  store_->SetNotificationRouter([](const v1::Notification&) {
    return std::vector<DeliveryChannel>{{"a", ""}, {"b", ""}};
  });
  FireNext();
  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_THAT(Sequences(*outbox), ElementsAre(1, 2, 3));
  EXPECT_EQ((*outbox)[0].channel(), "");
  EXPECT_EQ((*outbox)[1].channel(), "a");
  EXPECT_EQ((*outbox)[2].channel(), "b");
  // An empty function goes back to one record without a channel.
  store_->SetNotificationRouter(nullptr);
  FireNext();
  outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_THAT(Sequences(*outbox), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ((*outbox)[3].channel(), "");
}

TEST_F(StoreRoutingTest, ANotificationWithoutAChannelIsParkedSayingSo) {
  AcceptIncident();
  store_->SetNotificationRouter(
      [](const v1::Notification&) { return std::vector<DeliveryChannel>{}; });
  const uint64_t audit_before = store_->last_audit_sequence();
  const calendar::Instant fired_at = FireNext().at;

  EXPECT_TRUE(store_->Outbox(10)->empty());
  auto dead = store_->DeadLetters(10);
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  ASSERT_EQ(dead->size(), 1u);
  const v1::OutboxRecord& r = (*dead)[0];
  EXPECT_EQ(r.sequence(), 1u);
  EXPECT_EQ(r.last_error(), "no route gives this notification a channel");
  EXPECT_EQ(r.attempts(), 0u);
  EXPECT_EQ(r.channel(), "");
  EXPECT_EQ(engine::ToInstant(r.dead_lettered_at()), fired_at);
  EXPECT_EQ(engine::ToInstant(r.enqueued_at()), fired_at);
  EXPECT_EQ(r.effect().notification().notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ(store_->last_outbox_sequence(), 1u);
  // The change itself is recorded as ever, with the notification among its effects.
  EXPECT_EQ(AuditedNotifications(audit_before + 1).size(), 1u);
  ExpectAuditVerifies();

  // The sequence is used: the next notification, routed, comes after it.
  store_->SetNotificationRouter([](const v1::Notification&) {
    return std::vector<DeliveryChannel>{{"log", ""}};
  });
  FireNext();
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(2));
  EXPECT_THAT(Sequences(*store_->DeadLetters(10)), ElementsAre(1));
}

TEST_F(StoreRoutingTest, FanOutSurvivesAReopen) {
  store_->SetNotificationRouter([](const v1::Notification&) {
    return std::vector<DeliveryChannel>{{"a", "x"}, {"b", "y"}};
  });
  AcceptIncident();
  FireNext();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->last_outbox_sequence(), 2u);
  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[1].channel(), "b");
  EXPECT_EQ((*outbox)[1].address(), "y");
}

// ---- Delivery outcomes carry the channel.

TEST_F(StoreRoutingTest, DeliveredAndDeadLetteredAuditRecordsNameTheChannel) {
  store_->SetNotificationRouter([](const v1::Notification&) {
    return std::vector<DeliveryChannel>{{"log", ""}, {"hook", "https://h"}};
  });
  AcceptIncident();
  FireNext();
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.MarkDelivered(1, At("2027-01-01T00:00:00Z")).ok());
  ASSERT_TRUE(batch.Reschedule(2, 1, At("2027-01-01T00:00:00Z"), "hook: HTTP 410").ok());
  ASSERT_TRUE(batch.MoveToDeadLetter(2, "hook: HTTP 410", At("2027-01-01T00:00:00Z")).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 2u);
  ASSERT_TRUE((*audit)[0].has_notification_delivered());
  EXPECT_EQ((*audit)[0].notification_delivered().channel(), "log");
  ASSERT_TRUE((*audit)[1].has_notification_dead_lettered());
  EXPECT_EQ((*audit)[1].notification_dead_lettered().channel(), "hook");
  auto dead = store_->DeadLetters(10);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].channel(), "hook");
  EXPECT_EQ((*dead)[0].address(), "https://h");
  ExpectAuditVerifies();
}

// ---- Requeue.

class RequeueTest : public StoreRoutingTest {
 protected:
  // SI-1's first notification on channels log (sequence 1) and hook (2); 2 is parked after five
  // attempts.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(StoreRoutingTest::SetUp());
    store_->SetNotificationRouter([](const v1::Notification&) {
      return std::vector<DeliveryChannel>{{"log", ""}, {"hook", "https://h"}};
    });
    AcceptIncident();
    FireNext();
    ASSERT_NO_FATAL_FAILURE(Park(5, "hook: unavailable: HTTP 503", kParkedAt));
    auto dead = store_->DeadLetters(10);
    ASSERT_TRUE(dead.ok());
    ASSERT_EQ(dead->size(), 1u);
    parked_ = (*dead)[0];
    ASSERT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1));
  }

  // Parks record 2 after `attempts` attempts, the last failing with `error`, as the writer does
  // (in a batch of its own, committed).
  void Park(uint32_t attempts, const std::string& error, calendar::Instant at) {
    Batch batch = store_->NewBatch();
    ASSERT_TRUE(batch.Reschedule(2, attempts, at, error).ok());
    ASSERT_TRUE(batch.MoveToDeadLetter(2, error, at).ok());
    ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  }

  // Requeues the parked record (2) at kNow in a batch of its own and commits it.
  void RequeueParked() {
    Batch batch = store_->NewBatch();
    ASSERT_TRUE(batch.Requeue(2, kNow).ok());
    ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  }

  const calendar::Instant kParkedAt = At("2027-01-02T00:00:00Z");
  const calendar::Instant kNow = At("2027-01-10T08:00:00Z");
  v1::OutboxRecord parked_;
};

TEST_F(RequeueTest, MovesAParkedRecordBackFromAttemptOneWithAnAuditRecord) {
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  auto requeued = batch.Requeue(2, kNow);
  ASSERT_TRUE(requeued.ok()) << requeued.status().ToString();
  EXPECT_FALSE(batch.empty());
  // Returned as it is now pending: the same record, its delivery state reset.
  v1::OutboxRecord expected = parked_;
  expected.set_attempts(0);
  expected.clear_last_error();
  expected.clear_dead_lettered_at();
  *expected.mutable_next_attempt_at() = engine::ToTimestamp(kNow);
  EXPECT_TRUE(MessageDifferencer::Equals(*requeued, expected)) << requeued->DebugString();
  EXPECT_EQ(requeued->sequence(), 2u);
  EXPECT_EQ(requeued->channel(), "hook");
  EXPECT_EQ(requeued->address(), "https://h");
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());

  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_THAT(Sequences(*outbox), ElementsAre(1, 2));
  EXPECT_TRUE(MessageDifferencer::Equals((*outbox)[1], expected));
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  EXPECT_EQ(store_->last_outbox_sequence(), 2u);  // the same key, no new sequence

  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  const v1::AuditRecord& record = (*audit)[0];
  EXPECT_EQ(record.sequence(), audit_before + 1);
  EXPECT_EQ(engine::ToInstant(record.at()), kNow);
  EXPECT_EQ(record.case_id(), "SI-1");
  EXPECT_EQ(record.cause(), "outbox:2");
  ASSERT_TRUE(record.has_notification_requeued());
  EXPECT_EQ(record.notification_requeued().outbox_sequence(), 2u);
  EXPECT_EQ(record.notification_requeued().notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ(record.notification_requeued().attempts(), 5u);
  EXPECT_EQ(record.notification_requeued().last_error(), "hook: unavailable: HTTP 503");
  ExpectAuditVerifies();
}

TEST_F(RequeueTest, ARequeuedRecordIsDeliveredInALaterBatch) {
  ASSERT_NO_FATAL_FAILURE(RequeueParked());
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.MarkDelivered(2, kNow + std::chrono::seconds(1)).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1));
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  ASSERT_TRUE((*audit)[0].has_notification_delivered());
  EXPECT_EQ((*audit)[0].notification_delivered().outbox_sequence(), 2u);
  EXPECT_EQ((*audit)[0].notification_delivered().attempts(), 1u);  // counted afresh
  EXPECT_EQ((*audit)[0].notification_delivered().channel(), "hook");
  ExpectAuditVerifies();
}

TEST_F(RequeueTest, ARequeuedRecordCanBeParkedAgain) {
  ASSERT_NO_FATAL_FAILURE(RequeueParked());
  ASSERT_NO_FATAL_FAILURE(Park(1, "hook: failed_precondition: HTTP 410", kNow));
  auto dead = store_->DeadLetters(10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].attempts(), 1u);
  EXPECT_EQ((*dead)[0].last_error(), "hook: failed_precondition: HTTP 410");
  // And re-queued once more.
  Batch batch = store_->NewBatch();
  auto again = batch.Requeue(2, kNow + std::chrono::hours(1));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->attempts(), 0u);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1, 2));
  ExpectAuditVerifies();
}

TEST_F(RequeueTest, APendingRecordIsNotFoundSayingItIsPending) {
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  auto requeued = batch.Requeue(1, kNow);
  ASSERT_FALSE(requeued.ok());
  EXPECT_EQ(requeued.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(requeued.status().message(), HasSubstr("pending"));
  EXPECT_THAT(requeued.status().message(), HasSubstr("1"));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.last_audit_sequence(), audit_before);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_EQ(store_->last_audit_sequence(), audit_before);
  auto outbox = store_->Outbox(10);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].attempts(), 0u);
}

TEST_F(RequeueTest, AnUnknownRecordIsNotFound) {
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  auto requeued = batch.Requeue(99, kNow);
  ASSERT_FALSE(requeued.ok());
  EXPECT_EQ(requeued.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(requeued.status().message(), HasSubstr("99"));
  EXPECT_THAT(requeued.status().message(), Not(HasSubstr("pending")));
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.last_audit_sequence(), audit_before);
}

TEST_F(RequeueTest, ADeliveredRecordIsNotFound) {
  {
    Batch batch = store_->NewBatch();
    ASSERT_TRUE(batch.MarkDelivered(1, kNow).ok());
    ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  }
  Batch batch = store_->NewBatch();
  EXPECT_EQ(batch.Requeue(1, kNow).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(batch.empty());
}

TEST_F(RequeueTest, TheSameRecordTwiceInOneBatchIsNotFoundTheSecondTime) {
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.Requeue(2, kNow).ok());
  auto twice = batch.Requeue(2, kNow);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(twice.status().message(), HasSubstr("2"));
  EXPECT_EQ(batch.last_audit_sequence(), audit_before + 1);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_TRUE((*audit)[0].has_notification_requeued());
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1, 2));
  ExpectAuditVerifies();
}

TEST_F(RequeueTest, AStaleBatchWithARequeueCommitsNothing) {
  Batch stale = store_->NewBatch();
  ASSERT_TRUE(stale.Requeue(2, kNow).ok());
  {
    Batch first = store_->NewBatch();
    ASSERT_TRUE(first.MarkDelivered(1, kNow).ok());
    ASSERT_TRUE(store_->Commit(std::move(first), true).ok());
  }
  EXPECT_EQ(store_->Commit(std::move(stale), true).code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(Sequences(*store_->DeadLetters(10)), ElementsAre(2));
  EXPECT_TRUE(store_->Outbox(10)->empty());
  ExpectAuditVerifies();
}

TEST_F(RequeueTest, SurvivesAReopen) {
  ASSERT_NO_FATAL_FAILURE(RequeueParked());
  const uint64_t audit = store_->last_audit_sequence();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_THAT(Sequences(*store_->Outbox(10)), ElementsAre(1, 2));
  EXPECT_TRUE(store_->DeadLetters(10)->empty());
  EXPECT_EQ(store_->last_audit_sequence(), audit);
  EXPECT_EQ(store_->last_outbox_sequence(), 2u);
  ExpectAuditVerifies();
}

}  // namespace
}  // namespace tandem::store
