// A commit whose write fails puts the store in a failed state it never leaves, and advances no
// counter. The failure is real: RocksDB runs on a file system whose write-ahead-log writes fail
// on demand (StoreOptions::env_for_test, the store's one test seam), the way a full or dying disk
// fails them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "daemon/store/store.h"
#include "tests/unit/store/failing_wal.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::store {
namespace {

using test::At;
using test::FailingWalFileSystem;
using test::Incident;
using test::MustOpen;
using test::ScopedDir;
using ::testing::HasSubstr;

class CommitFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<FailingWalFileSystem>();
    env_ = rocksdb::NewCompositeEnv(fs_);
    StoreOptions options;
    options.env_for_test = env_.get();
    store_ = MustOpen(dir_.path(), options);
    ASSERT_NE(store_, nullptr);
    // The seam is live: the database's log goes through the failing file system.
    ASSERT_GT(fs_->wal_files(), 0);
  }

  // Returns a batch accepting the incident `event_id` on `case_id`.
  Batch AcceptBatch(const std::string& event_id, const std::string& case_id) {
    const v1::Event e = Incident(event_id, case_id);
    const calendar::Instant now = At("2026-12-24T10:15:00Z");
    Batch batch = store_->NewBatch();
    auto outcome = test::Engine().Apply(nullptr, e, now);
    EXPECT_TRUE(outcome.ok());
    if (outcome.ok()) {
      EXPECT_TRUE(batch.AddAccepted(e, *outcome, now).ok());
    }
    return batch;
  }

  ScopedDir dir_;
  std::shared_ptr<FailingWalFileSystem> fs_;
  std::unique_ptr<rocksdb::Env> env_;
  std::unique_ptr<Store> store_;
};

TEST_F(CommitFailureTest, FailedWriteFailsTheStoreForGoodAndAdvancesNoCounter) {
  ASSERT_TRUE(store_->Commit(AcceptBatch("e1", "SI-1"), true).ok());
  const uint64_t audit = store_->last_audit_sequence();
  const std::string head = store_->audit_head_hash();
  ASSERT_EQ(audit, 1u);

  fs_->set_failing(true);
  const Status failed = store_->Commit(AcceptBatch("e2", "SI-2"), true);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), StatusCode::kInternal);
  EXPECT_THAT(failed.message(), HasSubstr("injected"));
  EXPECT_THAT(failed.message(), HasSubstr(dir_.path().string()));
  EXPECT_EQ(store_->health(), failed);
  EXPECT_EQ(store_->last_audit_sequence(), audit);
  EXPECT_EQ(store_->audit_head_hash(), head);

  // The disk recovers, but the store stays failed: the same error, nothing written.
  fs_->set_failing(false);
  EXPECT_EQ(store_->Commit(AcceptBatch("e3", "SI-3"), true), failed);
  EXPECT_EQ(store_->Commit(store_->NewBatch(), true), failed);
  EXPECT_FALSE(store_->GetCase("SI-2")->has_value());
  EXPECT_FALSE(store_->GetCase("SI-3")->has_value());
  // Reads still work.
  EXPECT_TRUE(store_->GetCase("SI-1")->has_value());

  // After a restart only what was acknowledged is there, and the chain continues from it.
  store_.reset();
  store_ = MustOpen(dir_.path());
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->last_audit_sequence(), audit);
  EXPECT_EQ(store_->audit_head_hash(), head);
  EXPECT_TRUE(store_->GetCase("SI-1")->has_value());
  EXPECT_FALSE(store_->GetCase("SI-2")->has_value());
  EXPECT_FALSE(store_->GetDedupe("e2")->has_value());
  ASSERT_TRUE(store_->Commit(AcceptBatch("e2", "SI-2"), true).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 2u);
  auto verified = store_->VerifyAudit();
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(*verified, 2u);
}

TEST_F(CommitFailureTest, UnsyncedWriteFailureFailsTheStoreToo) {
  fs_->set_failing(true);
  const Status failed = store_->Commit(AcceptBatch("e1", "SI-1"), /*sync=*/false);
  ASSERT_FALSE(failed.ok());
  fs_->set_failing(false);
  EXPECT_EQ(store_->Commit(AcceptBatch("e2", "SI-2"), true), failed);
  EXPECT_EQ(store_->last_audit_sequence(), 0u);
}

}  // namespace
}  // namespace tandem::store
