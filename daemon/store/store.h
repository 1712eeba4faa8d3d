#pragma once
// The durable store: one RocksDB database per data directory holding every case, the per-case
// event log, the first answer to each event_id, the pending timers in due order, the
// notification outbox, and a hash-chained audit log (DESIGN, "Storage"). One writer builds a
// Batch per loop turn from engine outcomes and commits it in one synced write; any number of
// readers read concurrently without blocking it. Nothing here logs: failures are Status values.
//
// Column families, keys and values (keys are built in daemon/store/internal/keys.h):
//   cases        case_id                                   -> v1::CaseState
//   events       case_id, 0x00, BE u64 case sequence       -> v1::Event as received
//                (the sequence is the case's events_applied after the event)
//   dedupe       event_id                                  -> v1::DedupeRecord (accepted or
//                                                             rejected, first answer only)
//   timers       BE u64 (due seconds ^ 1<<63), case_id,     -> v1::Timer (pending only)
//                0x00, BE u64 timer id
//   outbox       BE u64 outbox sequence                    -> v1::OutboxRecord
//   dead_letter  BE u64 outbox sequence                    -> v1::OutboxRecord (given up on)
//   audit        BE u64 audit sequence (1, 2, ...)         -> v1::AuditEntry
//   case_audit   case_id, 0x00, BE u64 audit sequence      -> empty (the audit records of each
//                                                             case, for its timeline)
//   meta         "schema_version"                          -> decimal ASCII, kSchemaVersion
//                "audit_head"                              -> v1::AuditHead
//                "outbox_last_sequence"                    -> BE u64
// "BE u64" is 8 bytes, most significant first, so bytewise order is numeric order; flipping
// the sign bit of the due seconds makes instants before 1970 sort first.
//
// The audit chain: record n stores previous_hash = hash(n-1) (32 zero bytes for n = 1) and
// is kept as AuditEntry{record, hash} where `record` is the AuditRecord serialized with
// SetSerializationDeterministic and hash = SHA-256(hash(n-1) || record) over exactly
// the stored bytes. The newest (sequence, hash) is also kept
// in meta "audit_head" in the same write, so deleting records at the tail is detected too.

#include <google/protobuf/arena.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/engine.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/event.pb.h"
#include "proto/tandem/v1/store.pb.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace tandem::store {

// The storage schema version this build reads and writes.
// Version 2 added the `case_audit` index; a version 1 store is indexed when it is opened.
inline constexpr uint32_t kSchemaVersion = 2;

struct StoreOptions {
  // Tests only: the RocksDB environment the database is opened with; nullptr means
  // rocksdb::Env::Default(). Not owned; must outlive the Store. The commit-failure tests pass
  // an environment whose write-ahead-log writes fail on demand.
  rocksdb::Env* env_for_test = nullptr;
};

// A pending timer and the case it belongs to. Its due instant is timer.due_at().
struct TimerEntry {
  std::string case_id;
  v1::Timer timer;
};

class Store;

// One channel a notification is delivered to (tandemd's routes): a channel instance's name and
// the address it delivers to.
struct DeliveryChannel {
  std::string channel;
  std::string address;
};

// Returns the channels a notification effect goes to; the store writes one outbox row per
// channel. Set on the Store by the writer's owner (Store::SetNotificationRouter).
using NotificationRouter =
    std::function<std::vector<DeliveryChannel>(const v1::Notification& notification)>;

// The changes of one loop turn (any number of events, timer firings and outbox updates), made
// durable together by Store::Commit. Each Add method either adds all its rows or, returning an
// error, nothing. The batch numbers audit and outbox records from the store's counters as they
// were at NewBatch and advances its own copies; the store adopts them only when the commit
// succeeds. It also remembers the case states and dedupe answers it holds, so the writer can
// apply a second event to a case, or answer a duplicate, before the commit.
// Owned by the writer; lives on the writer strand. Keeps a reference to its Store, which must
// outlive it. Move-only.
class Batch {
 public:
  Batch(Batch&&) noexcept;
  Batch& operator=(Batch&&) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch();

  // Adds an accepted event: its event log row (key: the outcome's events_applied), its dedupe
  // row, the new case state, a timers row for each of outcome.timers_set, the deletion of each
  // of outcome.timers_cancelled, the outbox rows of each notification effect (one per channel
  // the store's NotificationRouter gives; one without a channel when no router is set; when the
  // router gives none, one straight into dead_letter saying so, so nothing is lost unseen), and
  // one audit record carrying all the effects. `now` is the loop turn's instant.
  // The change's effects are outcome.effects, unless the engine appended them to a timeline of
  // the caller's (the `into` of Engine's methods): then pass that `timeline` and the index of
  // the change's first effect in it, and the effects from there to its end are used.
  // The event log row is `event_bytes` when not empty: the event serialized (as it was received,
  // before the case took its facts); else `event` serialized here.
  // Returns kInvalidArgument if the event's case_id is empty, holds a 0 byte or differs from the
  // outcome's, if the event_id is empty, if the outcome's events_applied is 0, or if a timeline
  // is given while outcome.effects is not empty or `first_effect` lies outside it;
  // kAlreadyExists if this batch already holds an answer for the event_id.
  // REQUIRES: the event_id has no answer in the store (the writer asked GetDedupe).
  // Copies what it needs, but for a `timeline`'s effects: the audit record is made from them
  // when the batch is written, so the timeline must outlive the batch's Store::Write (Commit).
  Status AddAccepted(const v1::Event& event, const engine::Outcome& outcome, calendar::Instant now,
                     const v1::Timeline* timeline = nullptr, int first_effect = 0,
                     std::string_view event_bytes = {});

  // As AddAccepted, for a change the engine made in place (Engine::ApplyInPlace) to `*state`,
  // a case state of this batch's own: MutablePendingCase's, or NewCaseState's, which the batch
  // then keeps as the case's. `diff` is the change's timer diff; the timers it set are read
  // from `*state`. The effects are `timeline`'s from `first_effect` on.
  // Errors as AddAccepted; on an error nothing is added (a NewCaseState stays unused).
  Status AddAcceptedInPlace(const v1::Event& event, v1::CaseState* state,
                            const engine::TimerDiff& diff, calendar::Instant now,
                            const v1::Timeline& timeline, int first_effect,
                            std::string_view event_bytes = {});

  // Returns an empty case state on the batch's arena, for a case the batch does not hold: the
  // caller fills it (Store::ReadCase, a copy of the case from the batch being written, or the
  // engine's new case) and hands it to AddAcceptedInPlace. One never handed over is freed with
  // the batch. Case states on the arena are freed all at once, with no walk over their fields.
  v1::CaseState* NewCaseState();
  // The arena of the batch's case states, for whatever else lives and dies with the batch (the
  // writer's requests and effects of the turn).
  google::protobuf::Arena* arena() const { return arena_.get(); }

  // Adds a rejected event: a dedupe row holding `why`'s code name and message (so a retry gets
  // the same answer) and an audit record; nothing else. An event_id that is empty or longer
  // than engine::kMaxIdBytes cannot be a dedupe key: such a rejection gets its audit record
  // only. Returns kInvalidArgument if `why` is OK; kAlreadyExists if this batch already holds
  // an answer for the event_id.
  Status AddRejected(const v1::Event& event, const Status& why, calendar::Instant now);

  // Adds a fired timer: deletes the timer's row (found by `timer`'s due_at, the outcome's
  // case_id and `timer_id`), then as AddAccepted without the event log and dedupe rows; the
  // audit record's cause is "timer:<id>". `timer` is the timer as it was pending
  // (TimerEntry::timer); `timeline` and `first_effect` as for AddAccepted.
  // Returns kInvalidArgument if timer.id() != timer_id, if the case_id is empty or holds a 0
  // byte, or for a timeline as AddAccepted.
  Status AddFired(uint64_t timer_id, const v1::Timer& timer, const engine::Outcome& outcome,
                  calendar::Instant now, const v1::Timeline* timeline = nullptr,
                  int first_effect = 0);

  // Deletes outbox record `sequence` and adds an audit record saying it was delivered after
  // `attempts` attempts (the record's attempts plus the successful one).
  // Returns kNotFound if the outbox (with this batch's changes) has no such record; kDataLoss or
  // kInternal if reading it fails.
  Status MarkDelivered(uint64_t sequence, calendar::Instant now);

  // Rewrites outbox record `sequence` with `attempts`, `next_attempt_at` and `error` as its last
  // error. No audit record: the attempts are recorded when the record leaves the outbox.
  // Returns kNotFound, kDataLoss or kInternal as MarkDelivered.
  Status Reschedule(uint64_t sequence, uint32_t attempts, calendar::Instant next_attempt_at,
                    std::string_view error);

  // Moves outbox record `sequence` to dead_letter (same key) with `error` as its last error and
  // `now` as dead_lettered_at, and adds an audit record. The record's attempts are kept: call
  // Reschedule first (or count the failed attempt in it) to record the last one.
  // Returns kNotFound, kDataLoss or kInternal as MarkDelivered.
  Status MoveToDeadLetter(uint64_t sequence, std::string_view error, calendar::Instant now);

  // Moves dead_letter record `sequence` back to the outbox (same key) to be delivered again
  // from attempt 1, due at `now`, adds an audit record with its attempts and last error, and
  // returns the record as it is now pending. A record parked because no route gave it a
  // channel is routed again instead (new records, one per channel; the first is returned).
  // Returns kNotFound if no such record is parked (naming it pending when it is in the outbox)
  // or if it still has no route; kDataLoss or kInternal if reading it fails. On an error the
  // batch is unchanged.
  Result<v1::OutboxRecord> Requeue(uint64_t sequence, calendar::Instant now);

  // Returns the newest case state this batch holds for `case_id`, or nullptr when it changed
  // no such case. The pointer is valid until the batch is next changed, moved or destroyed.
  const v1::CaseState* PendingCase(std::string_view case_id) const;
  // As PendingCase, for the writer to apply the next event in place (Engine::ApplyInPlace, then
  // AddAcceptedInPlace): whatever it leaves there is what the batch holds for the case.
  v1::CaseState* MutablePendingCase(std::string_view case_id);
  // Returns the answer this batch holds for `event_id`, or nullptr. Valid as PendingCase.
  const v1::DedupeRecord* PendingDedupe(std::string_view event_id) const;

  // Returns the number of Add, MarkDelivered, Reschedule and MoveToDeadLetter calls that
  // succeeded.
  std::size_t changes() const { return changes_; }
  bool empty() const { return changes_ == 0; }
  // The audit and outbox sequences this batch will have used once committed.
  uint64_t last_audit_sequence() const { return audit_sequence_; }
  uint64_t last_outbox_sequence() const { return outbox_sequence_; }
  // True when the batch numbered new outbox records (notifications, re-routed dead letters).
  bool numbered_outbox_records() const { return outbox_sequence_ != first_outbox_sequence_; }

 private:
  friend class Store;
  Batch(const Store* store, uint64_t generation, uint64_t audit_sequence, uint64_t outbox_sequence);
  // The checks of AddAccepted: the event and its case's new `state`.
  Status CheckAccepted(const v1::Event& event, const v1::CaseState& state) const;
  // The rows of an accepted event, checked: its log, dedupe, outbox and audit rows.
  void AddAcceptedRows(const v1::Event& event, const v1::CaseState& state,
                       const std::vector<const v1::Effect*>& effects, calendar::Instant now,
                       std::string_view event_bytes);
  // The timer rows of `outcome`: deletions of its cancelled timers, rows of those it set.
  void AddTimers(const engine::Outcome& outcome);
  void AddNotifications(const std::vector<const v1::Effect*>& effects, calendar::Instant now);
  // Returns the batch's state of `case_id`, a new empty one when it holds none.
  v1::CaseState* CaseSlot(const std::string& case_id);
  // Adds the outbox rows of one notification effect (AddAccepted says which).
  void AddNotification(const v1::Effect& effect, calendar::Instant now);

  // Numbers `record` and keeps it, with `effects` (the record's effects, not copied into it),
  // for ChainAudits.
  void AddAudit(v1::AuditRecord record, std::vector<const v1::Effect*> effects = {});
  // Store::Write's part: adds the audit rows, each record chained to the one before it (the
  // first to `previous_hash`), and the audit head in meta; returns the last record's hash.
  std::string ChainAudits(std::string previous_hash);
  // Removes the timer row `key`: no row at all when this batch set it, else a deletion.
  void DeleteTimer(std::string key);
  // Store::Write's part: adds the rows of cases_ (each case as the batch holds it now) and of
  // the *_rows_ maps, in key order.
  void PutRows();
  // Returns outbox record `sequence` as this batch leaves it.
  Result<v1::OutboxRecord> FindOutbox(uint64_t sequence) const;

  const Store* store_;
  // Store::generation_ when the batch was made; Commit refuses a batch made before another
  // commit, whose sequences would clash.
  uint64_t generation_;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
  uint64_t audit_sequence_;
  // The hash of the batch's last audit record (or of the record before it, when it has none),
  // once Store::Write has chained them.
  std::string audit_hash_;
  uint64_t outbox_sequence_;
  uint64_t first_outbox_sequence_;  // outbox_sequence_ when the batch was made
  std::size_t changes_ = 0;
  // The newest state of every case the batch changed, on arena_: its row is written from here.
  std::unique_ptr<google::protobuf::Arena> arena_ = std::make_unique<google::protobuf::Arena>();
  std::map<std::string, v1::CaseState*, std::less<>> cases_;
  // Rows added in key order when the batch is written: RocksDB's memtable takes keys in order
  // far faster than in arrival order (its skip list starts each search where the last insert
  // ended). A timer's row is nullopt when the batch deletes it.
  std::map<std::string, std::string, std::less<>> event_rows_;
  std::map<std::string, std::string, std::less<>> dedupe_rows_;
  std::map<std::string, std::optional<std::string>, std::less<>> timer_rows_;
  // The audit records, numbered, to be chained and serialized when the batch is written.
  struct PendingAudit {
    v1::AuditRecord record;
    std::vector<const v1::Effect*> effects;
  };
  std::vector<PendingAudit> audits_;
  // Copies of the effects of outcomes given without a timeline, which may be gone by then.
  std::deque<v1::Effect> owned_effects_;
  std::map<std::string, v1::DedupeRecord, std::less<>> dedupe_;
  // Outbox records this batch wrote (value) or removed (nullopt).
  std::map<uint64_t, std::optional<v1::OutboxRecord>> outbox_;
  // Dead letters this batch moved back to the outbox.
  std::set<uint64_t> requeued_;
};

// An open data directory. Open holds an exclusive flock on <dir>/tandemd.lock until the Store
// is destroyed, so no two processes (nor two Stores in one process) share a directory.
// Read methods are thread-safe and may run on any thread while the writer commits; each scan
// reads one consistent snapshot. NewBatch, Commit and the counter accessors belong to the
// single writer (the writer strand).
class Store {
 public:
  // Opens the store in `dir`, creating the directory and a fresh store (schema version
  // kSchemaVersion) when there is none. A store of schema version 1 is brought to version 2
  // first: its `case_audit` index is built from the audit log, in one synced write with the new
  // version (a crash before it leaves version 1, and the next open builds it again).
  // Returns kFailedPrecondition naming `dir` and the holder's pid if another Store holds the
  // directory's lock, or naming both versions if the store's schema version is neither 1 nor
  // kSchemaVersion; kDataLoss if the store holds data but no schema version, a meta record is
  // unreadable, or RocksDB reports corruption; kInternal (with RocksDB's or the system's
  // message) if the directory, the lock file or the database cannot be opened.
  static Result<std::unique_ptr<Store>> Open(const std::filesystem::path& dir,
                                             const StoreOptions& options = {});

  // Closes the database, then releases the directory lock.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- Reads. Thread-safe. Errors: kDataLoss when a stored record does not parse or RocksDB
  // reports corruption, kInternal for other RocksDB errors.

  // Returns the case, or nullopt if there is none.
  Result<std::optional<v1::CaseState>> GetCase(std::string_view case_id) const;
  // As GetCase, parsing the case into `*into` (which may live on an arena); returns whether
  // there is one (`*into` is then unchanged).
  Result<bool> ReadCase(std::string_view case_id, v1::CaseState* into) const;
  // Returns the first answer recorded for `event_id`, or nullopt.
  Result<std::optional<v1::DedupeRecord>> GetDedupe(std::string_view event_id) const;
  // Returns the case's accepted events in the order they were applied (empty for no case).
  Result<std::vector<v1::Event>> CaseEvents(std::string_view case_id) const;
  // Returns the audit records about the case (its events accepted or refused, its timers fired,
  // its notifications delivered), in sequence order, from one snapshot; a seek, not a scan of
  // the whole log. Does not verify the chain.
  Result<std::vector<v1::AuditRecord>> CaseAuditRecords(std::string_view case_id) const;
  // Returns the pending timer due first (ties: case_id, then timer id), or nullopt.
  Result<std::optional<TimerEntry>> NextDueTimer() const;
  // Returns at most `limit` pending timers due at or before `until`, in due order.
  Result<std::vector<TimerEntry>> DueTimers(calendar::Instant until, std::size_t limit) const;
  // Returns at most `limit` outbox records with a sequence above `after`, in sequence order.
  // Records not yet due (next_attempt_at in the future) are included; the caller decides.
  Result<std::vector<v1::OutboxRecord>> Outbox(std::size_t limit, uint64_t after = 0) const;
  // As Outbox, for the dead letters.
  Result<std::vector<v1::OutboxRecord>> DeadLetters(std::size_t limit, uint64_t after = 0) const;
  // Calls `visit` with each case in case_id order, from one snapshot, until it returns false.
  // Keeps no reference to `visit` after returning.
  Status ForEachCase(const std::function<bool(const v1::CaseState&)>& visit) const;
  // Returns at most `limit` audit records with sequence >= `from`, in sequence order. Does not
  // verify the chain (VerifyAudit does).
  Result<std::vector<v1::AuditRecord>> AuditRecords(uint64_t from, std::size_t limit) const;
  // Walks the whole audit log from one snapshot and returns the number of records when every
  // record is in place and unchanged. Returns kDataLoss naming the first bad sequence when a
  // record was edited, deleted (a gap, or a missing tail against meta "audit_head"), reordered
  // or does not parse.
  Result<uint64_t> VerifyAudit() const;

  // ---- Writer.

  // Sets how notification effects fan out to channels in the batches made from now on; an
  // empty function (the default) writes one row per notification, without a channel.
  // Keeps `router`, which must be safe to call from the writer thread.
  void SetNotificationRouter(NotificationRouter router) { router_ = std::move(router); }

  // Returns an empty batch numbered from the store's current counters, or from those of the
  // submitted batch being written.
  // REQUIRES: at most one batch is being built at a time (only the newest one can commit).
  Batch NewBatch() const;

  // Writes `batch` in one atomic RocksDB write (WriteOptions.sync = `sync`) together with the
  // meta counters it advanced, then adopts its counters: Submit, Write and Finish in one call.
  // An empty batch writes nothing. Returns the error of the first failed write, mapped as for
  // Open, and from then on returns that same error without writing: the store is failed and the
  // writer must stop acknowledging (health() reports it). Returns kFailedPrecondition, without
  // failing the store, if another batch was committed (or submitted) since `batch` was made.
  Status Commit(Batch&& batch, bool sync);

  // A commit in three steps, so that the writer can build the next batch while this one is
  // being written (a pipelined group commit):
  //   Submit (writer thread)  adds the meta counter rows to `batch` and numbers the batches made
  //                           from now on after it, as if it were committed;
  //   Write  (any one thread) adds the rows of the batch's cases and its chained audit records
  //                           (serializing and hashing them off the writer thread) and writes
  //                           it; touches only `batch`'s rows and the database, so the writer
  //                           may meanwhile build a new batch and read this one's
  //                           PendingCase/PendingDedupe (const reads);
  //   Finish (writer thread)  adopts its counters when `written` is OK, else fails the store
  //                           with `written`, as Commit does.
  // Reads (GetCase, GetDedupe, ...) do not see a submitted batch until Write returned: the writer
  // must look in it first. At most one batch is submitted at a time, and it must be finished
  // before the next is submitted.
  // Submit returns the store's failure if it has failed, kFailedPrecondition (the store not
  // failed) if the batch is stale or another's or another one is being written, and
  // kInvalidArgument if `batch` is empty; nothing is submitted then.
  Status Submit(Batch& batch);
  // REQUIRES: `batch` was submitted and is not finished.
  Status Write(Batch& batch, bool sync);
  // Keeps no reference to `batch`, which the caller may destroy on any thread.
  Status Finish(const Batch& batch, const Status& written);

  // Returns OK, or the error that failed the store.
  Status health() const { return failed_; }
  // The last committed audit sequence (0 before the first record) and its hash (32 bytes).
  uint64_t last_audit_sequence() const { return audit_sequence_; }
  const std::string& audit_head_hash() const { return audit_hash_; }
  // The last outbox sequence handed out by a committed batch.
  uint64_t last_outbox_sequence() const { return outbox_sequence_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  friend class Batch;
  Store(std::filesystem::path dir, int lock_fd);

  // The steps of Open after the lock is held.
  Status OpenDb(const StoreOptions& options);
  Status CheckSchema();
  // Builds the case_audit index of a version 1 store and sets version 2.
  Status MigrateFrom1();
  Status LoadCounters();

  // Returns record `sequence` of the outbox (or of dead_letter) from the database, or nullopt.
  Result<std::optional<v1::OutboxRecord>> ReadOutbox(uint64_t sequence,
                                                     bool dead_letter = false) const;
  Result<std::vector<v1::OutboxRecord>> ScanRecords(std::size_t cf, std::size_t limit,
                                                    uint64_t after) const;

  std::filesystem::path dir_;
  int lock_fd_;
  std::unique_ptr<rocksdb::DB> db_;
  // Indexed by internal::Cf; plus any family found on disk that this build does not use.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  // Writer state. Committed counters (what the accessors report):
  uint64_t audit_sequence_ = 0;
  std::string audit_hash_;
  uint64_t outbox_sequence_ = 0;
  // What the next batch is numbered from: the committed counters, or those of the submitted
  // batch being written; and the number of batches submitted so far.
  uint64_t next_audit_sequence_ = 0;
  // The hash of the last audit record written (by Write; on the writing thread, one Write after
  // another).
  std::string chain_hash_;
  uint64_t next_outbox_sequence_ = 0;
  uint64_t generation_ = 0;
  bool writing_ = false;
  Status failed_;
  NotificationRouter router_;
};

}  // namespace tandem::store
