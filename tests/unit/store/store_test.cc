#include "daemon/store/store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/store/internal/keys.h"
#include "tests/unit/store/store_test_util.h"

namespace tandem::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using test::At;
using test::Incident;
using test::MustOpen;
using test::RawDb;
using test::Sequences;
using test::Submitted;
using ::testing::HasSubstr;

std::vector<std::string> Ids(const std::vector<v1::Event>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.event_id());
  return ids;
}

// The ids of the store's pending timers, and the ids a case of `Incident` then `Submitted`
// should have pending: timer 3 (partners_informed) stays, 1 and 2 (sin_notification) were
// cancelled, and the submission set its own (rapid_review's). Both sorted.
std::vector<uint64_t> PendingTimerIds(const Store& store) {
  auto timers = store.DueTimers(At("2100-01-01T00:00:00Z"), 10);
  EXPECT_TRUE(timers.ok()) << timers.status().ToString();
  std::vector<uint64_t> ids;
  if (timers.ok()) {
    for (const auto& t : *timers) ids.push_back(t.timer.id());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}
std::vector<uint64_t> PendingAfterSubmission(const engine::Outcome& submitted) {
  std::vector<uint64_t> want = {3};
  for (const auto& t : submitted.timers_set) want.push_back(t.id());
  std::sort(want.begin(), want.end());
  return want;
}

std::vector<std::string> Describe(const std::vector<TimerEntry>& timers) {
  std::vector<std::string> out;
  for (const auto& t : timers) {
    out.push_back(t.case_id + "#" + std::to_string(t.timer.id()) + "@" +
                  calendar::FormatInstant(engine::ToInstant(t.timer.due_at())));
  }
  return out;
}

// A store opened for the test, with Accept, FireNext and Reopen.
class StoreTest : public test::StoreFixture {};

// ---- Open, lock, schema.

TEST_F(StoreTest, OpenCreatesEveryColumnFamilyAndWritesTheSchemaVersion) {
  store_.reset();
  std::vector<std::string> names;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir_.path().string(), &names).ok());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"audit", "case_audit", "cases", "dead_letter", "dedupe",
                                      "default", "events", "meta", "outbox", "timers"}));
  RawDb raw(dir_.path());
  EXPECT_EQ(raw.Get("meta", internal::kMetaSchemaVersion), "2");
  EXPECT_TRUE(raw.Keys("cases").empty());
}

TEST_F(StoreTest, OpenCreatesMissingParentDirectories) {
  store_.reset();
  const auto nested = dir_.path() / "a" / "b";
  auto store = MustOpen(nested);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::exists(nested / "tandemd.lock"));
}

TEST_F(StoreTest, LockFileHoldsThePid) {
  std::ifstream in(dir_.path() / "tandemd.lock");
  std::string pid;
  in >> pid;
  EXPECT_EQ(pid, std::to_string(::getpid()));
}

TEST_F(StoreTest, SecondOpenInTheSameProcessIsRefusedWhileTheFirstIsOpen) {
  auto second = Store::Open(dir_.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(dir_.path().string()));
  EXPECT_THAT(second.status().message(), HasSubstr("pid " + std::to_string(::getpid())));
  // Closing the first releases the directory.
  store_.reset();
  auto third = Store::Open(dir_.path());
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST_F(StoreTest, OpenFromAnotherProcessIsRefusedWhileTheFirstIsOpen) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child reports through its exit code only: 0 refused naming the parent, 1 opened,
    // 2 refused for another reason.
    auto opened = Store::Open(dir_.path());
    if (opened.ok()) ::_exit(1);
    const bool named =
        opened.status().code() == StatusCode::kFailedPrecondition &&
        opened.status().message().find("pid " + std::to_string(::getppid())) != std::string::npos;
    ::_exit(named ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(StoreTest, ALockHeldOnAnotherOpenFileDescriptionRefusesOpen) {
  store_.reset();
  // What another process holding the lock looks like: a separate open file description.
  const int fd = ::open((dir_.path() / "tandemd.lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto refused = Store::Open(dir_.path());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  ::close(fd);
  EXPECT_TRUE(Store::Open(dir_.path()).ok());
}

TEST_F(StoreTest, NewerSchemaVersionIsRefusedNamingBothVersions) {
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Put("meta", internal::kMetaSchemaVersion, "3");
  }
  auto opened = Store::Open(dir_.path());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(opened.status().message(), HasSubstr("version 3"));
  EXPECT_THAT(opened.status().message(), HasSubstr("version 2"));
}

TEST_F(StoreTest, UnreadableSchemaVersionIsDataLoss) {
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Put("meta", internal::kMetaSchemaVersion, "one");
  }
  EXPECT_EQ(Store::Open(dir_.path()).status().code(), StatusCode::kDataLoss);
}

TEST_F(StoreTest, DataWithoutSchemaVersionIsDataLoss) {
  Accept(Incident("e1", "SI-1"));
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Delete("meta", internal::kMetaSchemaVersion);
  }
  auto opened = Store::Open(dir_.path());
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("no storage schema version"));
}

TEST_F(StoreTest, EmptyStoreWithoutSchemaVersionIsInitialised) {
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Delete("meta", internal::kMetaSchemaVersion);
  }
  Reopen();
  store_.reset();
  RawDb raw(dir_.path());
  EXPECT_EQ(raw.Get("meta", internal::kMetaSchemaVersion), "2");
}

TEST_F(StoreTest, UnknownColumnFamilyReachesTheSchemaCheck) {
  // A newer build's extra column family must not stop this build from reading the version.
  store_.reset();
  {
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir_.path().string(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& n : names) descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path().string(), descriptors, &handles, &db).ok());
    rocksdb::ColumnFamilyHandle* extra = nullptr;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "future", &extra).ok());
    handles.push_back(extra);
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }
  Reopen();
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(store_->GetCase("SI-1").ok());
}

TEST_F(StoreTest, AVersion1StoreGetsItsCaseAuditIndexWhenOpened) {
  Accept(Incident("e1", "SI-1"));
  Accept(Incident("e2", "SI-2"));
  Accept(Submitted("e3", "SI-1"));
  const std::vector<v1::AuditRecord> before = *store_->CaseAuditRecords("SI-1");
  ASSERT_EQ(before.size(), 2u);
  store_.reset();
  {
    // As version 1 left it: no index.
    RawDb raw(dir_.path());
    for (const std::string& key : raw.Keys("case_audit")) raw.Delete("case_audit", key);
    raw.Put("meta", internal::kMetaSchemaVersion, "1");
  }
  Reopen();
  ASSERT_NE(store_, nullptr);
  auto after = store_->CaseAuditRecords("SI-1");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*after)[i], before[i])) << i;
  }
  EXPECT_EQ(store_->CaseAuditRecords("SI-2")->size(), 1u);
  store_.reset();
  RawDb raw(dir_.path());
  EXPECT_EQ(raw.Get("meta", internal::kMetaSchemaVersion), "2");
  EXPECT_EQ(raw.Keys("case_audit").size(), 3u);
}

// ---- A case's audit records.

TEST_F(StoreTest, CaseAuditRecordsAreTheCasesOwnInSequenceOrder) {
  Accept(Incident("e1", "SI-1"));
  Accept(Incident("e10", "SI-10"));  // an id that extends SI-1's
  Accept(Submitted("e2", "SI-1"));
  // A refused event is recorded for the case it named.
  EXPECT_EQ(Refuse(Incident("e3", "SI-1", "2027-01-05", "2027-01-05T09:00:00Z")).code(),
            StatusCode::kAlreadyExists);
  auto records = store_->CaseAuditRecords("SI-1");
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  std::vector<std::string> causes;
  std::vector<uint64_t> sequences;
  for (const auto& r : *records) {
    EXPECT_EQ(r.case_id(), "SI-1");
    causes.push_back(r.cause());
    sequences.push_back(r.sequence());
  }
  EXPECT_EQ(causes, (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(sequences, (std::vector<uint64_t>{1, 3, 4}));
  ASSERT_FALSE((*records)[0].effects().empty());  // with the effects of each change
  EXPECT_TRUE((*records)[2].has_event_rejected());
  EXPECT_EQ(store_->CaseAuditRecords("SI-10")->size(), 1u);
  EXPECT_TRUE(store_->CaseAuditRecords("SI-2")->empty());
  EXPECT_TRUE(store_->CaseAuditRecords(std::string("SI-1\0", 5))->empty());
}

TEST_F(StoreTest, AnIndexedAuditRecordThatIsGoneIsDataLoss) {
  Accept(Incident("e1", "SI-1"));
  Accept(Submitted("e2", "SI-1"));
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Delete("audit", internal::SequenceKey(2));
  }
  Reopen();
  auto records = store_->CaseAuditRecords("SI-1");
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(records.status().message(), HasSubstr("record 2"));
}

// ---- Accepted events.

TEST_F(StoreTest, AcceptedEventWritesExactlyItsRows) {
  const v1::Event event = Incident("e1", "SI-1");
  const engine::Outcome outcome = Accept(event);
  ASSERT_EQ(outcome.timers_set.size(), 3u);

  auto stored = store_->GetCase("SI-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(**stored, outcome.state));

  auto dedupe = store_->GetDedupe("e1");
  ASSERT_TRUE(dedupe.ok() && dedupe->has_value());
  EXPECT_EQ((*dedupe)->case_id(), "SI-1");
  ASSERT_TRUE((*dedupe)->has_accepted());
  EXPECT_EQ((*dedupe)->accepted().event_type(), "incident.reported");
  EXPECT_EQ((*dedupe)->accepted().case_sequence(), 1u);
  EXPECT_EQ((*dedupe)->accepted().state(), "screening");
  EXPECT_EQ(engine::ToInstant((*dedupe)->committed_at()), At("2026-12-24T10:15:00Z"));

  auto events = store_->CaseEvents("SI-1");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*events)[0], event));

  auto timers = store_->DueTimers(At("2100-01-01T00:00:00Z"), 10);
  ASSERT_TRUE(timers.ok());
  EXPECT_EQ(Describe(*timers),
            (std::vector<std::string>{"SI-1#1@2026-12-31T00:00:00Z", "SI-1#2@2027-01-06T00:00:00Z",
                                      "SI-1#3@2027-01-06T00:00:00Z"}));

  // Opening a case notifies no one: nothing in the outbox.
  EXPECT_TRUE(store_->Outbox(10)->empty());

  auto audit = store_->AuditRecords(1, 10);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  const v1::AuditRecord& record = (*audit)[0];
  EXPECT_EQ(record.sequence(), 1u);
  EXPECT_EQ(record.case_id(), "SI-1");
  EXPECT_EQ(record.cause(), "e1");
  ASSERT_TRUE(record.has_event_accepted());
  EXPECT_EQ(record.event_accepted().case_sequence(), 1u);
  ASSERT_EQ(record.effects_size(), static_cast<int>(outcome.effects.size()));
  for (std::size_t i = 0; i < outcome.effects.size(); ++i) {
    EXPECT_TRUE(
        MessageDifferencer::Equals(record.effects(static_cast<int>(i)), outcome.effects[i]));
  }
  EXPECT_EQ(store_->last_audit_sequence(), 1u);

  // Nothing else: exactly one row in each family the event touches.
  store_.reset();
  RawDb raw(dir_.path());
  EXPECT_EQ(raw.Keys("cases").size(), 1u);
  EXPECT_EQ(raw.Keys("events"), (std::vector<std::string>{internal::EventKey("SI-1", 1)}));
  EXPECT_EQ(raw.Keys("dedupe"), (std::vector<std::string>{"e1"}));
  EXPECT_EQ(raw.Keys("timers").size(), 3u);
  EXPECT_TRUE(raw.Keys("outbox").empty());
  EXPECT_TRUE(raw.Keys("dead_letter").empty());
  EXPECT_EQ(raw.Keys("audit"), (std::vector<std::string>{internal::SequenceKey(1)}));
  EXPECT_EQ(raw.Keys("meta"),
            (std::vector<std::string>{std::string(internal::kMetaAuditHead),
                                      std::string(internal::kMetaSchemaVersion)}));
}

TEST_F(StoreTest, LaterEventCancelsAndSetsTimersAndAppendsToTheLog) {
  Accept(Incident("e1", "SI-1"));
  const engine::Outcome outcome = Accept(Submitted("e2", "SI-1"));
  ASSERT_EQ(outcome.timers_cancelled.size(), 2u);
  ASSERT_EQ(outcome.timers_set.size(), 2u);

  auto events = store_->CaseEvents("SI-1");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Ids(*events), (std::vector<std::string>{"e1", "e2"}));

  EXPECT_EQ(PendingTimerIds(*store_), PendingAfterSubmission(outcome));
  EXPECT_EQ((*store_->GetCase("SI-1"))->events_applied(), 2u);
}

TEST_F(StoreTest, CaseEventsOfOneCaseExcludeACaseWhoseIdExtendsIt) {
  Accept(Incident("e1", "SI-1"));
  Accept(Incident("e10", "SI-10"));
  Accept(Submitted("e2", "SI-1"));
  EXPECT_EQ(Ids(*store_->CaseEvents("SI-1")), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(Ids(*store_->CaseEvents("SI-10")), (std::vector<std::string>{"e10"}));
  EXPECT_TRUE(store_->CaseEvents("SI-2")->empty());
}

TEST_F(StoreTest, AddAcceptedRefusesBadInputAndLeavesTheBatchUnchanged) {
  const v1::Event event = Incident("e1", "SI-1");
  const calendar::Instant now = At("2026-12-24T10:15:00Z");
  auto outcome = test::Engine().Apply(nullptr, event, now);
  ASSERT_TRUE(outcome.ok());
  Batch batch = store_->NewBatch();

  v1::Event other_case = event;
  other_case.set_case_id("SI-2");
  EXPECT_EQ(batch.AddAccepted(other_case, *outcome, now).code(), StatusCode::kInvalidArgument);
  v1::Event zero_byte = event;
  zero_byte.set_case_id(std::string("SI\0-1", 5));
  engine::Outcome zero_outcome = *outcome;
  zero_outcome.state.set_case_id(zero_byte.case_id());
  EXPECT_EQ(batch.AddAccepted(zero_byte, zero_outcome, now).code(), StatusCode::kInvalidArgument);
  engine::Outcome no_sequence = *outcome;
  no_sequence.state.set_events_applied(0);
  EXPECT_EQ(batch.AddAccepted(event, no_sequence, now).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.last_audit_sequence(), 0u);

  ASSERT_TRUE(batch.AddAccepted(event, *outcome, now).ok());
  EXPECT_EQ(batch.AddAccepted(event, *outcome, now).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(batch.changes(), 1u);
  EXPECT_EQ(batch.last_audit_sequence(), 1u);
}

// ---- Group commit and the pending overlay.

TEST_F(StoreTest, OneBatchCarriesManyEventsAndSeesItsOwnCaseStates) {
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  for (const v1::Event& event :
       {Incident("e1", "SI-1"), Incident("e2", "SI-2"), Submitted("e3", "SI-1")}) {
    EXPECT_EQ(batch.PendingDedupe(event.event_id()), nullptr);
    auto outcome = test::ApplyInTurn(*store_, batch, event, now);
    ASSERT_TRUE(outcome.ok()) << event.event_id() << ": " << outcome.status().ToString();
    ASSERT_TRUE(batch.AddAccepted(event, *outcome, now).ok());
  }
  // The submission applied to the batch's SI-1, not to the (absent) stored one.
  ASSERT_NE(batch.PendingCase("SI-1"), nullptr);
  EXPECT_EQ(batch.PendingCase("SI-1")->events_applied(), 2u);
  EXPECT_EQ(batch.PendingCase("SI-1")->state(), "notified");
  EXPECT_EQ(batch.PendingCase("SI-3"), nullptr);
  // A duplicate within the turn is answered from the batch.
  const v1::DedupeRecord* dup = batch.PendingDedupe("e3");
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->accepted().case_sequence(), 2u);
  // Nothing is visible before the commit.
  EXPECT_FALSE(store_->GetCase("SI-1")->has_value());
  EXPECT_FALSE(store_->GetDedupe("e1")->has_value());

  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_EQ((*store_->GetCase("SI-1"))->state(), "notified");
  EXPECT_EQ(Ids(*store_->CaseEvents("SI-1")), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(store_->last_audit_sequence(), 3u);
  EXPECT_EQ(*store_->VerifyAudit(), 3u);
}

TEST_F(StoreTest, TimersSetAndCancelledWithinOneBatchLeaveOnlyTheLiveOnes) {
  // The batch writes no row for a timer it both set and cancelled, and a row for every other.
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  engine::Outcome submitted;
  for (const v1::Event& event : {Incident("e1", "SI-1"), Submitted("e2", "SI-1")}) {
    auto outcome = test::ApplyInTurn(*store_, batch, event, now);
    ASSERT_TRUE(outcome.ok()) << event.event_id() << ": " << outcome.status().ToString();
    ASSERT_TRUE(batch.AddAccepted(event, *outcome, now).ok());
    submitted = std::move(outcome).value();
  }
  ASSERT_EQ(submitted.timers_cancelled.size(), 2u);
  ASSERT_EQ(submitted.timers_set.size(), 2u);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());

  // As when the two events commit apart (LaterEventCancelsAndSetsTimersAndAppendsToTheLog).
  EXPECT_EQ(PendingTimerIds(*store_), PendingAfterSubmission(submitted));
  EXPECT_EQ(*store_->VerifyAudit(), 2u);
}

// ---- Rejections and duplicates.

TEST_F(StoreTest, RejectedEventWritesOnlyDedupeAndAudit) {
  const v1::Event event = Submitted("e9", "SI-404");
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  auto outcome = test::ApplyInTurn(*store_, batch, event, now);
  ASSERT_FALSE(outcome.ok());
  ASSERT_TRUE(batch.AddRejected(event, outcome.status(), now).ok());
  ASSERT_NE(batch.PendingDedupe("e9"), nullptr);
  EXPECT_EQ(batch.PendingCase("SI-404"), nullptr);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());

  auto dedupe = store_->GetDedupe("e9");
  ASSERT_TRUE(dedupe.ok() && dedupe->has_value());
  ASSERT_TRUE((*dedupe)->has_rejected());
  EXPECT_EQ((*dedupe)->rejected().code(), StatusCodeName(outcome.status().code()));
  EXPECT_EQ((*dedupe)->rejected().reason(), outcome.status().message());
  EXPECT_EQ((*dedupe)->case_id(), "SI-404");

  auto audit = store_->AuditRecords(1, 10);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_TRUE((*audit)[0].has_event_rejected());
  EXPECT_EQ((*audit)[0].cause(), "e9");
  EXPECT_EQ((*audit)[0].effects_size(), 0);

  store_.reset();
  RawDb raw(dir_.path());
  EXPECT_TRUE(raw.Keys("cases").empty());
  EXPECT_TRUE(raw.Keys("events").empty());
  EXPECT_TRUE(raw.Keys("timers").empty());
  EXPECT_TRUE(raw.Keys("outbox").empty());
  EXPECT_EQ(raw.Keys("dedupe"), (std::vector<std::string>{"e9"}));
  EXPECT_EQ(raw.Keys("audit").size(), 1u);
}

TEST_F(StoreTest, RejectionWithoutAUsableEventIdIsAuditedButNotDeduped) {
  v1::Event no_id = Incident("", "SI-1");
  v1::Event long_id = Incident(std::string(engine::kMaxIdBytes + 1, 'x'), "SI-1");
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.AddRejected(no_id, InvalidArgumentError("event_id is required"), now).ok());
  ASSERT_TRUE(batch.AddRejected(long_id, InvalidArgumentError("event_id too long"), now).ok());
  EXPECT_EQ(batch.AddRejected(no_id, OkStatus(), now).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 2u);
  store_.reset();
  RawDb raw(dir_.path());
  EXPECT_TRUE(raw.Keys("dedupe").empty());
}

TEST_F(StoreTest, DuplicateIsFoundThroughGetDedupeAfterCommitAndReopen) {
  Accept(Incident("e1", "SI-1"));
  Reopen();
  auto first = store_->GetDedupe("e1");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_TRUE((*first)->has_accepted());
  EXPECT_FALSE(store_->GetDedupe("e2")->has_value());
}

TEST_F(StoreTest, SameEventIdRejectedTwiceInOneBatchIsRefused) {
  const v1::Event event = Submitted("e9", "SI-404");
  const calendar::Instant now = At("2027-01-04T16:40:00Z");
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.AddRejected(event, NotFoundError("no case"), now).ok());
  EXPECT_EQ(batch.AddRejected(event, NotFoundError("no case"), now).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(batch.changes(), 1u);
}

// ---- Timers.

TEST_F(StoreTest, TimersComeBackInDueOrderInBoundedBatches) {
  Accept(Incident("e1", "SI-B", "2026-12-24"));
  Accept(Incident("e2", "SI-A", "2026-12-24"));
  Accept(Incident("e3", "SI-C", "2026-11-02", "2026-11-02T09:00:00Z"));

  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->case_id, "SI-C");
  EXPECT_EQ((*next)->timer.id(), 1u);

  auto all = store_->DueTimers(At("2100-01-01T00:00:00Z"), 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Describe(*all), (std::vector<std::string>{
                                "SI-C#1@2026-11-05T00:00:00Z",
                                "SI-C#2@2026-11-10T00:00:00Z",
                                "SI-C#3@2026-11-10T00:00:00Z",
                                "SI-A#1@2026-12-31T00:00:00Z",
                                "SI-B#1@2026-12-31T00:00:00Z",
                                "SI-A#2@2027-01-06T00:00:00Z",
                                "SI-A#3@2027-01-06T00:00:00Z",
                                "SI-B#2@2027-01-06T00:00:00Z",
                                "SI-B#3@2027-01-06T00:00:00Z",
                            }));
  // Bounded by count: the first `limit` in the same order.
  const std::vector<std::string> every = Describe(*all);
  EXPECT_EQ(Describe(*store_->DueTimers(At("2100-01-01T00:00:00Z"), 4)),
            std::vector<std::string>(every.begin(), every.begin() + 4));
  // Bounded by instant: due at or before `until`, inclusive.
  EXPECT_EQ(Describe(*store_->DueTimers(At("2026-12-31T00:00:00Z"), 100)).size(), 5u);
  EXPECT_EQ(Describe(*store_->DueTimers(At("2026-12-30T23:59:59Z"), 100)).size(), 3u);
  EXPECT_TRUE(store_->DueTimers(At("2026-11-04T23:59:59Z"), 100)->empty());
  EXPECT_TRUE(store_->DueTimers(At("2100-01-01T00:00:00Z"), 0)->empty());
}

TEST_F(StoreTest, NoTimersMeansNoNextTimer) {
  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST_F(StoreTest, FiredTimerIsDeletedAndItsNotificationQueued) {
  Accept(Incident("e1", "SI-1"));
  const engine::Outcome fired = FireNext().outcome;  // the sin_notification warning, timer 1
  auto timers = store_->DueTimers(At("2100-01-01T00:00:00Z"), 10);
  ASSERT_TRUE(timers.ok());
  EXPECT_EQ(Describe(*timers), (std::vector<std::string>{"SI-1#2@2027-01-06T00:00:00Z",
                                                         "SI-1#3@2027-01-06T00:00:00Z"}));
  auto outbox = store_->Outbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 1u);
  const v1::OutboxRecord& record = (*outbox)[0];
  EXPECT_EQ(record.sequence(), 1u);
  EXPECT_EQ(record.attempts(), 0u);
  EXPECT_EQ(record.effect().notification().notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ(engine::ToInstant(record.next_attempt_at()), At("2026-12-31T00:00:00Z"));
  EXPECT_TRUE(MessageDifferencer::Equals(**store_->GetCase("SI-1"), fired.state));
  // A fired timer writes no event log or dedupe row.
  EXPECT_EQ(store_->CaseEvents("SI-1")->size(), 1u);
  auto audit = store_->AuditRecords(2, 10);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].cause(), "timer:1");
  ASSERT_TRUE((*audit)[0].has_timer_fired());
  EXPECT_EQ((*audit)[0].timer_fired().timer().id(), 1u);
  EXPECT_EQ(store_->last_outbox_sequence(), 1u);
}

TEST_F(StoreTest, EffectsAppendedToACallersTimelineAreStoredFromTheirFirstIndex) {
  Accept(Incident("e1", "SI-1"));
  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok() && next->has_value());
  const calendar::Instant now = engine::ToInstant((*next)->timer.due_at());
  // The loop turn's timeline already holds an earlier change's effect.
  v1::Timeline timeline;
  *timeline.add_effects() =
      engine::RejectionEffect(Submitted("x", "SI-9"), NotFoundError("no case"), now);
  auto stored = store_->GetCase("SI-1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  auto outcome = test::Engine().Fire(**stored, (*next)->timer.id(), now, &timeline);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(outcome->effects.empty());
  ASSERT_EQ(timeline.effects_size(), 3);  // the rejection, the warning, its notification

  Batch batch = store_->NewBatch();
  EXPECT_EQ(batch.AddFired((*next)->timer.id(), (*next)->timer, *outcome, now, &timeline, 4).code(),
            StatusCode::kInvalidArgument);
  engine::Outcome both = *outcome;
  both.effects.push_back(timeline.effects(1));
  EXPECT_EQ(batch.AddFired((*next)->timer.id(), (*next)->timer, both, now, &timeline, 1).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.empty());
  ASSERT_TRUE(
      batch.AddFired((*next)->timer.id(), (*next)->timer, *outcome, now, &timeline, 1).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());

  auto outbox = store_->Outbox(10);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].effect().notification().notification_id(), "SI-1:timer:1:1");
  auto audit = store_->AuditRecords(2, 10);
  ASSERT_EQ(audit->size(), 1u);
  ASSERT_EQ((*audit)[0].effects_size(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals((*audit)[0].effects(0), timeline.effects(1)));
  EXPECT_TRUE(MessageDifferencer::Equals((*audit)[0].effects(1), timeline.effects(2)));
}

TEST_F(StoreTest, AddFiredRefusesAMismatchedTimer) {
  Accept(Incident("e1", "SI-1"));
  auto next = store_->NextDueTimer();
  ASSERT_TRUE(next.ok() && next->has_value());
  auto outcome = test::FireStored(*store_, **next, At("2026-12-31T00:00:00Z"));
  ASSERT_TRUE(outcome.ok());
  Batch batch = store_->NewBatch();
  EXPECT_EQ(batch.AddFired(2, (*next)->timer, *outcome, At("2026-12-31T00:00:00Z")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.empty());
}

// ---- Outbox.

class OutboxTest : public StoreTest {
 protected:
  // Opens SI-1 and fires its three timers: three notifications, outbox sequences 1..3.
  void SetUp() override {
    StoreTest::SetUp();
    Accept(Incident("e1", "SI-1"));
    for (int i = 0; i < 3; ++i) FireNext();
    ASSERT_EQ(Sequences(*store_->Outbox(10)), (std::vector<uint64_t>{1, 2, 3}));
  }
};

TEST_F(OutboxTest, OutboxPagesInSequenceOrder) {
  EXPECT_EQ(Sequences(*store_->Outbox(2)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Sequences(*store_->Outbox(2, 2)), (std::vector<uint64_t>{3}));
  EXPECT_TRUE(store_->Outbox(2, 3)->empty());
}

TEST_F(OutboxTest, RescheduleRecordsTheAttempt) {
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.Reschedule(2, 1, At("2027-01-07T00:05:00Z"), "connect refused").ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  auto outbox = store_->Outbox(10);
  ASSERT_EQ(outbox->size(), 3u);
  const v1::OutboxRecord& r = (*outbox)[1];
  EXPECT_EQ(r.sequence(), 2u);
  EXPECT_EQ(r.attempts(), 1u);
  EXPECT_EQ(r.last_error(), "connect refused");
  EXPECT_EQ(engine::ToInstant(r.next_attempt_at()), At("2027-01-07T00:05:00Z"));
  EXPECT_EQ(r.effect().notification().notification_id(), "SI-1:timer:2:1");
}

TEST_F(OutboxTest, DeliveredRecordLeavesTheOutboxWithAnAuditRecord) {
  const uint64_t audit_before = store_->last_audit_sequence();
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.Reschedule(1, 1, At("2027-01-01T00:00:00Z"), "timeout").ok());
  ASSERT_TRUE(batch.MarkDelivered(1, At("2027-01-01T00:00:10Z")).ok());
  // Gone within the batch already.
  EXPECT_EQ(batch.MarkDelivered(1, At("2027-01-01T00:00:10Z")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_EQ(Sequences(*store_->Outbox(10)), (std::vector<uint64_t>{2, 3}));
  auto audit = store_->AuditRecords(audit_before + 1, 10);
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].cause(), "outbox:1");
  ASSERT_TRUE((*audit)[0].has_notification_delivered());
  EXPECT_EQ((*audit)[0].notification_delivered().notification_id(), "SI-1:timer:1:1");
  EXPECT_EQ((*audit)[0].notification_delivered().attempts(), 2u);
  EXPECT_EQ((*audit)[0].case_id(), "SI-1");
}

TEST_F(OutboxTest, DeadLetteredRecordMovesWithItsError) {
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.Reschedule(3, 5, At("2027-01-07T00:00:00Z"), "HTTP 500").ok());
  ASSERT_TRUE(
      batch.MoveToDeadLetter(3, "HTTP 500 after 5 attempts", At("2027-01-08T00:00:00Z")).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  EXPECT_EQ(Sequences(*store_->Outbox(10)), (std::vector<uint64_t>{1, 2}));
  auto dead = store_->DeadLetters(10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].sequence(), 3u);
  EXPECT_EQ((*dead)[0].attempts(), 5u);
  EXPECT_EQ((*dead)[0].last_error(), "HTTP 500 after 5 attempts");
  EXPECT_EQ(engine::ToInstant((*dead)[0].dead_lettered_at()), At("2027-01-08T00:00:00Z"));
  auto audit = store_->AuditRecords(store_->last_audit_sequence(), 10);
  ASSERT_EQ(audit->size(), 1u);
  ASSERT_TRUE((*audit)[0].has_notification_dead_lettered());
  EXPECT_EQ((*audit)[0].notification_dead_lettered().attempts(), 5u);
}

TEST_F(OutboxTest, UnknownSequenceIsNotFound) {
  Batch batch = store_->NewBatch();
  EXPECT_EQ(batch.MarkDelivered(99, At("2027-01-08T00:00:00Z")).code(), StatusCode::kNotFound);
  EXPECT_EQ(batch.Reschedule(99, 1, At("2027-01-08T00:00:00Z"), "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(batch.MoveToDeadLetter(99, "x", At("2027-01-08T00:00:00Z")).code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.last_audit_sequence(), store_->last_audit_sequence());
}

TEST_F(OutboxTest, SequencesContinueAfterDeliveryAndReopen) {
  // Deliver the newest record so the highest outbox key is gone before the reopen.
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.MarkDelivered(3, At("2027-01-08T00:00:00Z")).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), true).ok());
  const uint64_t audit_before = store_->last_audit_sequence();
  Reopen();
  EXPECT_EQ(store_->last_outbox_sequence(), 3u);
  EXPECT_EQ(store_->last_audit_sequence(), audit_before);
  // A new notification gets sequence 4, never 3 again.
  Accept(Incident("e2", "SI-2", "2027-02-01", "2027-02-01T09:00:00Z"));
  auto timers = store_->DueTimers(At("2100-01-01T00:00:00Z"), 100);
  ASSERT_TRUE(timers.ok());
  const TimerEntry* si2 = nullptr;
  for (const auto& t : *timers) {
    if (t.case_id == "SI-2" && si2 == nullptr) si2 = &t;
  }
  ASSERT_NE(si2, nullptr);
  const calendar::Instant now = engine::ToInstant(si2->timer.due_at());
  auto outcome = test::FireStored(*store_, *si2, now);
  ASSERT_TRUE(outcome.ok());
  Batch fire = store_->NewBatch();
  ASSERT_TRUE(fire.AddFired(si2->timer.id(), si2->timer, *outcome, now).ok());
  ASSERT_TRUE(store_->Commit(std::move(fire), true).ok());
  EXPECT_EQ(Sequences(*store_->Outbox(10)), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(*store_->VerifyAudit(), store_->last_audit_sequence());
}

// ---- Whole-store reads and persistence.

TEST_F(StoreTest, ForEachCaseVisitsEveryCaseInIdOrderAndCanStop) {
  Accept(Incident("e1", "SI-2"));
  Accept(Incident("e2", "SI-1"));
  Accept(Incident("e3", "SI-3"));
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ForEachCase([&](const v1::CaseState& c) {
                    seen.push_back(c.case_id());
                    return true;
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"SI-1", "SI-2", "SI-3"}));
  seen.clear();
  ASSERT_TRUE(store_
                  ->ForEachCase([&](const v1::CaseState& c) {
                    seen.push_back(c.case_id());
                    return seen.size() < 2;
                  })
                  .ok());
  EXPECT_EQ(seen.size(), 2u);
}

TEST_F(StoreTest, ReopenKeepsEverything) {
  Accept(Incident("e1", "SI-1"));
  Accept(Submitted("e2", "SI-1"));
  const v1::CaseState state = **store_->GetCase("SI-1");
  const uint64_t audit = store_->last_audit_sequence();
  const std::string head = store_->audit_head_hash();
  const auto timers = Describe(*store_->DueTimers(At("2100-01-01T00:00:00Z"), 100));
  Reopen();
  EXPECT_TRUE(MessageDifferencer::Equals(**store_->GetCase("SI-1"), state));
  EXPECT_EQ(Ids(*store_->CaseEvents("SI-1")), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_TRUE(store_->GetDedupe("e2")->has_value());
  EXPECT_EQ(Describe(*store_->DueTimers(At("2100-01-01T00:00:00Z"), 100)), timers);
  EXPECT_EQ(store_->last_audit_sequence(), audit);
  EXPECT_EQ(store_->audit_head_hash(), head);
}

TEST_F(StoreTest, CorruptCaseRecordIsDataLoss) {
  Accept(Incident("e1", "SI-1"));
  store_.reset();
  {
    RawDb raw(dir_.path());
    raw.Put("cases", "SI-1", "\xff\xff\xff");
  }
  Reopen();
  auto read = store_->GetCase("SI-1");
  EXPECT_EQ(read.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("SI-1"));
}

// ---- Commit discipline.

TEST_F(StoreTest, StaleBatchIsRefusedWithoutFailingTheStore) {
  const calendar::Instant now = At("2026-12-24T10:15:00Z");
  Batch first = store_->NewBatch();
  Batch second = store_->NewBatch();
  const v1::Event e1 = Incident("e1", "SI-1");
  const v1::Event e2 = Incident("e2", "SI-2");
  ASSERT_TRUE(first.AddAccepted(e1, *test::Engine().Apply(nullptr, e1, now), now).ok());
  ASSERT_TRUE(second.AddAccepted(e2, *test::Engine().Apply(nullptr, e2, now), now).ok());
  ASSERT_TRUE(store_->Commit(std::move(first), true).ok());
  // Both numbered their audit record 1; the second must not write.
  EXPECT_EQ(store_->Commit(std::move(second), true).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->health().ok());
  EXPECT_FALSE(store_->GetCase("SI-2")->has_value());
  EXPECT_EQ(*store_->VerifyAudit(), 1u);
}

// The pipelined commit: a batch made while another is submitted is numbered after it, and
// commits after it; the store reads neither until written; a second submission waits its turn.
TEST_F(StoreTest, ABatchMadeWhileAnotherIsWrittenFollowsIt) {
  const calendar::Instant now = At("2026-12-24T10:15:00Z");
  const v1::Event e1 = Incident("e1", "SI-1");
  const v1::Event e2 = Incident("e2", "SI-2");
  Batch first = store_->NewBatch();
  ASSERT_TRUE(first.AddAccepted(e1, *test::Engine().Apply(nullptr, e1, now), now).ok());
  ASSERT_TRUE(store_->Submit(first).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 0u);  // not committed yet
  EXPECT_FALSE(store_->GetCase("SI-1")->has_value());

  Batch second = store_->NewBatch();
  ASSERT_TRUE(second.AddAccepted(e2, *test::Engine().Apply(nullptr, e2, now), now).ok());
  EXPECT_EQ(second.last_audit_sequence(), 2u);  // after the first's record 1
  EXPECT_EQ(store_->Submit(second).code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(store_->Finish(std::move(first), store_->Write(first, true)).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 1u);
  EXPECT_TRUE(store_->GetCase("SI-1")->has_value());
  ASSERT_TRUE(store_->Commit(std::move(second), true).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 2u);
  EXPECT_EQ(*store_->VerifyAudit(), 2u);
  Reopen();
  EXPECT_EQ(*store_->VerifyAudit(), 2u);
  EXPECT_TRUE(store_->GetCase("SI-2")->has_value());
}

// A write that failed fails the store, and the batch made after it can never commit.
TEST_F(StoreTest, AFailedWriteFailsTheStoreAndTheBatchAfterIt) {
  const calendar::Instant now = At("2026-12-24T10:15:00Z");
  const v1::Event e1 = Incident("e1", "SI-1");
  const v1::Event e2 = Incident("e2", "SI-2");
  Batch first = store_->NewBatch();
  ASSERT_TRUE(first.AddAccepted(e1, *test::Engine().Apply(nullptr, e1, now), now).ok());
  ASSERT_TRUE(store_->Submit(first).ok());
  Batch second = store_->NewBatch();
  ASSERT_TRUE(second.AddAccepted(e2, *test::Engine().Apply(nullptr, e2, now), now).ok());
  // Finish is told the write failed (the writer's thread reports what RocksDB said).
  const Status failed = store_->Finish(std::move(first), InternalError("disk gone"));
  EXPECT_EQ(failed.message(), "disk gone");
  EXPECT_EQ(store_->health(), failed);
  EXPECT_EQ(store_->Commit(std::move(second), true), failed);
  EXPECT_EQ(store_->last_audit_sequence(), 0u);
}

TEST_F(StoreTest, EmptyBatchCommitsNothing) {
  ASSERT_TRUE(store_->Commit(store_->NewBatch(), true).ok());
  EXPECT_EQ(store_->last_audit_sequence(), 0u);
  EXPECT_EQ(*store_->VerifyAudit(), 0u);
}

TEST_F(StoreTest, UnsyncedCommitIsReadableAndSurvivesACleanClose) {
  const v1::Event e1 = Incident("e1", "SI-1");
  const calendar::Instant now = At("2026-12-24T10:15:00Z");
  Batch batch = store_->NewBatch();
  ASSERT_TRUE(batch.AddAccepted(e1, *test::Engine().Apply(nullptr, e1, now), now).ok());
  ASSERT_TRUE(store_->Commit(std::move(batch), /*sync=*/false).ok());
  EXPECT_TRUE(store_->GetCase("SI-1")->has_value());
  Reopen();
  EXPECT_TRUE(store_->GetCase("SI-1")->has_value());
}

}  // namespace
}  // namespace tandem::store
