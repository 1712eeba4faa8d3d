#pragma once
// Helpers shared by the store tests: a fresh temporary data directory per test, the shipped
// workflows and calendar with an engine over them, events of the shipped serious_incident
// workflow, a loop turn's "apply against the batch, else the store" step, a fixture with an open
// store that accepts events and fires timers, and raw RocksDB access so a test can tamper with a
// closed store the way a careless operator or a bad disk would.
// Deterministic: no wall clock, no randomness.

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/config/loader.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/workflow.h"
#include "daemon/store/internal/keys.h"
#include "daemon/store/store.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/event.pb.h"

namespace tandem::store::test {

inline constexpr std::string_view kPartnership = "staffordshire";

// Stops the test binary when data every test relies on cannot be loaded.
[[noreturn]] inline void Fatal(const std::string& what) {
  std::fprintf(stderr, "test setup failed: %s\n", what.c_str());
  std::abort();
}

// Returns the instant written "YYYY-MM-DDTHH:MM:SSZ".
inline calendar::Instant At(std::string_view rfc3339) {
  google::protobuf::Timestamp ts;
  if (!google::protobuf::util::TimeUtil::FromString(std::string(rfc3339), &ts)) {
    ADD_FAILURE() << "bad instant in test: " << rfc3339;
  }
  return engine::ToInstant(ts);
}

// The engine over the shipped workflows and England & Wales calendar, loaded once. Immutable,
// so sharing it keeps the tests hermetic.
inline const engine::Engine& Engine() {
  static const calendar::WorkingDayCalendar* cal = [] {
    auto loaded = config::LoadCalendar("");
    if (!loaded.ok()) Fatal(loaded.status().ToString());
    return std::move(loaded).value().release();
  }();
  static const engine::WorkflowSet* workflows = [] {
    auto loaded = config::LoadWorkflows("");
    if (!loaded.ok()) Fatal(loaded.status().ToString());
    return std::move(loaded).value().release();
  }();
  static const engine::Engine engine(*workflows, *cal);
  return engine;
}

using Facts = std::vector<std::pair<std::string, std::string>>;

// Returns an event of the shipped partnership whose facts are all strings (dates and enums).
inline v1::Event Event(std::string event_id, std::string case_id, std::string type,
                       std::string_view occurred_at, const Facts& facts) {
  v1::Event e;
  e.set_event_id(std::move(event_id));
  e.set_case_id(std::move(case_id));
  e.set_partnership(std::string(kPartnership));
  e.set_type(std::move(type));
  *e.mutable_occurred_at() = engine::ToTimestamp(At(occurred_at));
  e.set_source("lcs");
  e.set_actor("la");
  for (const auto& [name, value] : facts) {
    (*e.mutable_facts()->mutable_fields())[name].set_string_value(value);
  }
  return e;
}

// A serious incident the local authority became aware of on `aware_on`, reported at `at`.
inline v1::Event Incident(std::string event_id, std::string case_id,
                          std::string_view aware_on = "2026-12-24",
                          std::string_view at = "2026-12-24T10:15:00Z") {
  return Event(std::move(event_id), std::move(case_id), "incident.reported", at,
               {{"became_aware_on", std::string(aware_on)},
                {"outcome", "seriously_harmed"},
                {"abuse_or_neglect", "suspected"},
                {"location", "in_area"}});
}

// The Panel was notified on `on`.
inline v1::Event Submitted(std::string event_id, std::string case_id,
                           std::string_view on = "2027-01-04",
                           std::string_view at = "2027-01-04T16:40:00Z") {
  return Event(std::move(event_id), std::move(case_id), "notification.submitted", at,
               {{"submitted_on", std::string(on)}});
}

// Applies `event` as the daemon's loop turn will: to the case as `batch` left it, else as the
// store holds it. Fails the test on a read error.
inline Result<engine::Outcome> ApplyInTurn(const Store& store, const Batch& batch,
                                           const v1::Event& event, calendar::Instant now) {
  if (const v1::CaseState* pending = batch.PendingCase(event.case_id())) {
    return Engine().Apply(pending, event, now);
  }
  auto stored = store.GetCase(event.case_id());
  EXPECT_TRUE(stored.ok()) << stored.status().ToString();
  if (!stored.ok()) return stored.status();
  return Engine().Apply(stored->has_value() ? &**stored : nullptr, event, now);
}

// Fires `entry`'s timer at `now` against the case as the store holds it.
inline Result<engine::Outcome> FireStored(const Store& store, const TimerEntry& entry,
                                          calendar::Instant now) {
  auto stored = store.GetCase(entry.case_id);
  EXPECT_TRUE(stored.ok()) << stored.status().ToString();
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return NotFoundError("test: no case " + entry.case_id);
  return Engine().Fire(**stored, entry.timer.id(), now);
}

// Returns the sequences of `records`, in order.
inline std::vector<uint64_t> Sequences(const std::vector<v1::OutboxRecord>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r.sequence());
  return out;
}

// A fresh directory under testing::TempDir() named after the running test and the process,
// removed before and after the test. Not created: Store::Open creates it.
class ScopedDir {
 public:
  ScopedDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // A parameterized test's names hold '/' ("Prefix/Suite", "Test/Case"): one folder, not two.
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("tandem_store_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
  }
  ~ScopedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Direct access to a CLOSED store's database, every column family opened by name.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& dir) {
    rocksdb::Options options;
    std::vector<std::string> names;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, dir.string(), &names);
    if (!s.ok()) Fatal("RawDb: " + s.ToString());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* db = nullptr;
    s = rocksdb::DB::Open(options, dir.string(), descriptors, &handles_, &db);
    if (!s.ok()) Fatal("RawDb: " + s.ToString());
    db_.reset(db);
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Put(std::string_view cf, std::string_view key, std::string_view value) {
    const rocksdb::Status s = db_->Put(rocksdb::WriteOptions(), Handle(cf), key, value);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Delete(std::string_view cf, std::string_view key) {
    const rocksdb::Status s = db_->Delete(rocksdb::WriteOptions(), Handle(cf), key);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::optional<std::string> Get(std::string_view cf, std::string_view key) {
    std::string value;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Handle(cf), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    EXPECT_TRUE(s.ok()) << s.ToString();
    return value;
  }
  // Every key of `cf`, in order.
  std::vector<std::string> Keys(std::string_view cf) {
    std::vector<std::string> keys;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), Handle(cf)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return keys;
  }

 private:
  rocksdb::ColumnFamilyHandle* Handle(std::string_view cf) {
    for (auto* h : handles_) {
      if (h->GetName() == cf) return h;
    }
    Fatal("RawDb: no column family " + std::string(cf));
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

// Opens the store in `dir` and fails the test (returning null) if that fails.
inline std::unique_ptr<Store> MustOpen(const std::filesystem::path& dir,
                                       const StoreOptions& options = {}) {
  auto opened = Store::Open(dir, options);
  EXPECT_TRUE(opened.ok()) << opened.status().ToString();
  return opened.ok() ? std::move(opened).value() : nullptr;
}

// What StoreFixture::FireNext did: the engine's outcome, and the instant the timer fired at.
struct Fired {
  engine::Outcome outcome;
  calendar::Instant at{};
};

// A store opened in a fresh directory for each test, and the loop turn's changes one at a time:
// an accepted event, a fired timer, each in a batch of its own, committed. A step that fails
// fails the test.
class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = MustOpen(dir_.path());
    ASSERT_NE(store_, nullptr);
  }

  // Closes the store and opens it again from the same directory.
  void Reopen() {
    store_.reset();
    store_ = MustOpen(dir_.path());
    ASSERT_NE(store_, nullptr);
  }

  // Applies `event` at its occurred_at in a batch of its own and commits it.
  engine::Outcome Accept(const v1::Event& event) {
    const calendar::Instant now = engine::ToInstant(event.occurred_at());
    Batch batch = store_->NewBatch();
    auto outcome = ApplyInTurn(*store_, batch, event, now);
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    if (!outcome.ok()) return {};
    EXPECT_TRUE(batch.AddAccepted(event, *outcome, now).ok());
    const Status committed = store_->Commit(std::move(batch), /*sync=*/true);
    EXPECT_TRUE(committed.ok()) << committed.ToString();
    return std::move(outcome).value();
  }

  // Applies `event`, which the engine must refuse, at its occurred_at in a batch of its own,
  // records the refusal and commits it; returns the refusal.
  Status Refuse(const v1::Event& event) {
    const calendar::Instant now = engine::ToInstant(event.occurred_at());
    Batch batch = store_->NewBatch();
    auto outcome = ApplyInTurn(*store_, batch, event, now);
    EXPECT_FALSE(outcome.ok()) << event.event_id() << " was accepted";
    if (outcome.ok()) return InternalError("accepted");
    EXPECT_TRUE(batch.AddRejected(event, outcome.status(), now).ok());
    const Status committed = store_->Commit(std::move(batch), /*sync=*/true);
    EXPECT_TRUE(committed.ok()) << committed.ToString();
    return outcome.status();
  }

  // Fires the timer due first at its due instant, in a batch of its own, and commits it.
  Fired FireNext() {
    auto next = store_->NextDueTimer();
    EXPECT_TRUE(next.ok() && next->has_value());
    if (!next.ok() || !next->has_value()) return {};
    const TimerEntry entry = **next;
    Fired fired;
    fired.at = engine::ToInstant(entry.timer.due_at());
    auto outcome = FireStored(*store_, entry, fired.at);
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    if (!outcome.ok()) return fired;
    Batch batch = store_->NewBatch();
    EXPECT_TRUE(batch.AddFired(entry.timer.id(), entry.timer, *outcome, fired.at).ok());
    const Status committed = store_->Commit(std::move(batch), /*sync=*/true);
    EXPECT_TRUE(committed.ok()) << committed.ToString();
    fired.outcome = std::move(outcome).value();
    return fired;
  }

  ScopedDir dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace tandem::store::test
