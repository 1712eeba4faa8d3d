// The audit chain: every record chained to the one before it by SHA-256, the head kept in meta,
// and VerifyAudit finding an edited, deleted, reordered or truncated log, naming the first bad
// sequence. Tampering is done on the closed store through RocksDB itself.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "daemon/store/internal/keys.h"
#include "daemon/store/store.h"
#include "proto/tandem/v1/store.pb.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::store {
namespace {

using test::At;
using test::Incident;
using test::MustOpen;
using test::RawDb;
using test::ScopedDir;
using test::Submitted;
using ::testing::HasSubstr;

std::string Sha256(std::string_view a, std::string_view b) {
  std::string joined = std::string(a) + std::string(b);
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(joined.data()), joined.size());
  return out;
}

class AuditTest : public ::testing::Test {
 protected:
  // Builds a log of five records over three commits: two accepted events in one batch, a
  // rejection, a fired timer, a delivered notification.
  void SetUp() override {
    store_ = MustOpen(dir_.path());
    ASSERT_NE(store_, nullptr);
    {
      const calendar::Instant now = At("2026-12-24T10:15:00Z");
      Batch batch = store_->NewBatch();
      for (const v1::Event& e : {Incident("e1", "SI-1"), Incident("e2", "SI-2")}) {
        auto outcome = test::ApplyInTurn(*store_, batch, e, now);
        ASSERT_TRUE(outcome.ok());
        ASSERT_TRUE(batch.AddAccepted(e, *outcome, now).ok());
      }
      const v1::Event bad = Submitted("e3", "SI-404");
      ASSERT_TRUE(batch.AddRejected(bad, NotFoundError("case 'SI-404' does not exist"), now).ok());
      ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
    }
    {
      auto next = store_->NextDueTimer();
      ASSERT_TRUE(next.ok() && next->has_value());
      const calendar::Instant now = engine::ToInstant((*next)->timer.due_at());
      auto outcome = test::FireStored(*store_, **next, now);
      ASSERT_TRUE(outcome.ok());
      Batch batch = store_->NewBatch();
      ASSERT_TRUE(batch.AddFired((*next)->timer.id(), (*next)->timer, *outcome, now).ok());
      ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
    }
    {
      Batch batch = store_->NewBatch();
      ASSERT_TRUE(batch.MarkDelivered(1, At("2026-12-31T00:01:00Z")).ok());
      ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
    }
    ASSERT_EQ(store_->last_audit_sequence(), 5u);
  }

  // Closes the store, lets `tamper` change the database, reopens, and returns VerifyAudit.
  template <typename F>
  Result<uint64_t> VerifyAfter(F tamper) {
    store_.reset();
    {
      RawDb raw(dir_.path());
      tamper(raw);
    }
    store_ = MustOpen(dir_.path());
    if (store_ == nullptr) return InternalError("test: reopen failed");
    return store_->VerifyAudit();
  }

  static v1::AuditEntry Entry(RawDb& raw, uint64_t sequence) {
    v1::AuditEntry entry;
    const auto value = raw.Get("audit", internal::SequenceKey(sequence));
    EXPECT_TRUE(value.has_value() && entry.ParseFromString(*value)) << sequence;
    return entry;
  }

  ScopedDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditTest, IntactChainVerifiesWithItsCount) {
  auto verified = store_->VerifyAudit();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 5u);
}

TEST_F(AuditTest, RecordsSayWhatHappenedInOrder) {
  auto records = store_->AuditRecords(1, 100);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 5u);
  EXPECT_TRUE((*records)[0].has_event_accepted());
  EXPECT_TRUE((*records)[1].has_event_accepted());
  EXPECT_TRUE((*records)[2].has_event_rejected());
  EXPECT_EQ((*records)[2].event_rejected().code(), "not_found");
  EXPECT_TRUE((*records)[3].has_timer_fired());
  EXPECT_TRUE((*records)[4].has_notification_delivered());
  for (std::size_t i = 0; i < records->size(); ++i) EXPECT_EQ((*records)[i].sequence(), i + 1);
  // Paging.
  EXPECT_EQ(store_->AuditRecords(4, 1)->front().sequence(), 4u);
}

TEST_F(AuditTest, HashesAreSha256OfThePreviousHashAndTheStoredRecordBytes) {
  const std::string head = store_->audit_head_hash();
  store_.reset();
  RawDb raw(dir_.path());
  std::string previous(crypto_hash_sha256_BYTES, '\0');
  for (uint64_t n = 1; n <= 5; ++n) {
    const v1::AuditEntry entry = Entry(raw, n);
    v1::AuditRecord record;
    ASSERT_TRUE(record.ParseFromString(entry.record()));
    EXPECT_EQ(record.sequence(), n);
    EXPECT_EQ(record.previous_hash(), previous) << n;
    EXPECT_EQ(entry.hash(), Sha256(previous, entry.record())) << n;
    previous = entry.hash();
  }
  v1::AuditHead stored_head;
  ASSERT_TRUE(stored_head.ParseFromString(*raw.Get("meta", internal::kMetaAuditHead)));
  EXPECT_EQ(stored_head.sequence(), 5u);
  EXPECT_EQ(stored_head.hash(), previous);
  EXPECT_EQ(head, previous);
}

TEST_F(AuditTest, EditedRecordIsDetectedAtItsSequence) {
  auto verified = VerifyAfter([](RawDb& raw) {
    v1::AuditEntry entry = Entry(raw, 3);
    v1::AuditRecord record;
    ASSERT_TRUE(record.ParseFromString(entry.record()));
    record.set_case_id("SI-405");
    entry.set_record(record.SerializeAsString());
    raw.Put("audit", internal::SequenceKey(3), entry.SerializeAsString());
  });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 3 was changed"));
}

TEST_F(AuditTest, EditedRecordWithARecomputedHashBreaksTheNextLink) {
  auto verified = VerifyAfter([](RawDb& raw) {
    v1::AuditEntry entry = Entry(raw, 2);
    v1::AuditRecord record;
    ASSERT_TRUE(record.ParseFromString(entry.record()));
    record.set_cause("forged");
    entry.set_record(record.SerializeAsString());
    entry.set_hash(Sha256(record.previous_hash(), entry.record()));
    raw.Put("audit", internal::SequenceKey(2), entry.SerializeAsString());
  });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 3 does not chain"));
}

TEST_F(AuditTest, RewrittenLastRecordDisagreesWithTheHead) {
  auto verified = VerifyAfter([](RawDb& raw) {
    v1::AuditEntry entry = Entry(raw, 5);
    v1::AuditRecord record;
    ASSERT_TRUE(record.ParseFromString(entry.record()));
    record.set_cause("forged");
    entry.set_record(record.SerializeAsString());
    entry.set_hash(Sha256(record.previous_hash(), entry.record()));
    raw.Put("audit", internal::SequenceKey(5), entry.SerializeAsString());
  });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 5 does not match the head"));
}

TEST_F(AuditTest, DeletedRecordIsAGap) {
  auto verified = VerifyAfter([](RawDb& raw) { raw.Delete("audit", internal::SequenceKey(2)); });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 2 is missing"));
}

TEST_F(AuditTest, DeletedFirstRecordIsAGap) {
  auto verified = VerifyAfter([](RawDb& raw) { raw.Delete("audit", internal::SequenceKey(1)); });
  EXPECT_THAT(verified.status().message(), HasSubstr("record 1 is missing"));
}

TEST_F(AuditTest, ReorderedRecordsAreDetected) {
  auto verified = VerifyAfter([](RawDb& raw) {
    const auto two = raw.Get("audit", internal::SequenceKey(2));
    const auto three = raw.Get("audit", internal::SequenceKey(3));
    ASSERT_TRUE(two && three);
    raw.Put("audit", internal::SequenceKey(2), *three);
    raw.Put("audit", internal::SequenceKey(3), *two);
  });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 2 holds record 3"));
}

TEST_F(AuditTest, TruncatedTailIsDetectedThroughTheHead) {
  auto verified = VerifyAfter([](RawDb& raw) {
    raw.Delete("audit", internal::SequenceKey(5));
    raw.Delete("audit", internal::SequenceKey(4));
  });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 4 is missing"));
}

TEST_F(AuditTest, UnparseableRecordIsDataLoss) {
  auto verified = VerifyAfter(
      [](RawDb& raw) { raw.Put("audit", internal::SequenceKey(4), "\xff\xff\xff\xff"); });
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(verified.status().message(), HasSubstr("record 4"));
}

TEST_F(AuditTest, ChainContinuesAcrossReopen) {
  const std::string head = store_->audit_head_hash();
  store_.reset();
  store_ = MustOpen(dir_.path());
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->last_audit_sequence(), 5u);
  EXPECT_EQ(store_->audit_head_hash(), head);
  const v1::Event e = Submitted("e4", "SI-1", "2027-01-04", "2027-01-04T16:40:00Z");
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  auto outcome = test::ApplyInTurn(*store_, batch, e, now);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(batch.AddAccepted(e, *outcome, now).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  auto records = store_->AuditRecords(6, 10);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].previous_hash(), head);
  auto verified = store_->VerifyAudit();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 6u);
}

TEST_F(AuditTest, VerifyAuditReadsOneSnapshotWhileTheWriterCommits) {
  // A reader on another thread verifies the chain over and over while the writer commits: each
  // verification must see the records and the head of one moment, never a mix.
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> verifications{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto verified = store_->VerifyAudit();
      if (!verified.ok()) {
        ++failures;
        ADD_FAILURE() << verified.status().ToString();
      }
      ++verifications;
    }
  });
  // The writer paces itself to the reader (at least one verification per two commits) so that
  // verifications keep overlapping commits however the threads are scheduled.
  const calendar::Instant now = At("2027-01-04T00:00:00Z");
  const int commits = 200;
  {
    // Stops and joins the reader however this block is left.
    struct JoinOnExit {
      std::atomic<bool>& done;
      std::thread& thread;
      ~JoinOnExit() {
        done = true;
        thread.join();
      }
    } join_on_exit{done, reader};
    for (int i = 0; i < commits; ++i) {
      while (verifications.load() < i / 2) std::this_thread::yield();
      Batch batch = store_->NewBatch();
      const v1::Event e = Submitted("r" + std::to_string(i), "SI-404");
      ASSERT_TRUE(batch.AddRejected(e, NotFoundError("no case"), now).ok());
      ASSERT_TRUE(store_->Commit(std::move(batch), /*sync=*/true).ok());
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(verifications.load(), commits / 2 - 1);
  EXPECT_EQ(*store_->VerifyAudit(), 5u + commits);
}

TEST(Audit, EmptyStoreVerifiesWithNoRecords) {
  ScopedDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_NE(store, nullptr);
  auto verified = store->VerifyAudit();
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, 0u);
  EXPECT_EQ(store->audit_head_hash(), std::string(crypto_hash_sha256_BYTES, '\0'));
}

TEST(Audit, RecordsWithoutAHeadRefuseToOpen) {
  ScopedDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_NE(store, nullptr);
    Batch batch = store->NewBatch();
    ASSERT_TRUE(batch
                    .AddRejected(Submitted("e1", "SI-9"), NotFoundError("no case"),
                                 At("2027-01-04T00:00:00Z"))
                    .ok());
    ASSERT_TRUE(store->Commit(std::move(batch), true).ok());
  }
  {
    RawDb raw(dir.path());
    raw.Delete("meta", internal::kMetaAuditHead);
  }
  EXPECT_EQ(Store::Open(dir.path()).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace tandem::store
