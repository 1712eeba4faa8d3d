#include "daemon/store/store.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "daemon/store/internal/keys.h"

namespace tandem::store {
namespace {

using internal::Cf;

constexpr std::size_t kHashBytes = SHA256_DIGEST_LENGTH;

std::string ZeroHash() { return std::string(kHashBytes, '\0'); }

std::string SystemError(int err) { return std::error_code(err, std::generic_category()).message(); }

// Maps a RocksDB failure onto our codes: corruption is data loss; everything else (I/O errors,
// a busy or read-only database) is internal. `what` names the operation and the store.
Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return OkStatus();
  std::string message = what + ": " + s.ToString();
  if (s.IsCorruption()) return DataLossError(std::move(message));
  return InternalError(std::move(message));
}

// Returns SHA-256(previous || record). OpenSSL's SHA-256 uses the CPU's SHA instructions where
// it has them: 1.0 us per audit record here, where libsodium's portable code took 3.7 us.
std::string ChainHash(std::string_view previous, std::string_view record) {
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                        &EVP_MD_CTX_free);
  std::string out(kHashBytes, '\0');
  unsigned int size = 0;
  // Fails only when OpenSSL cannot allocate; a chain with a wrong hash must never be written.
  const bool hashed =
      context != nullptr && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1 &&
      EVP_DigestUpdate(context.get(), previous.data(), previous.size()) == 1 &&
      EVP_DigestUpdate(context.get(), record.data(), record.size()) == 1 &&
      EVP_DigestFinal_ex(context.get(), reinterpret_cast<unsigned char*>(out.data()), &size) == 1;
  TANDEM_CHECK(hashed && size == kHashBytes);
  return out;
}

// The tags of the length-delimited fields an audit row is written with (ChainAudits).
constexpr uint32_t LengthDelimitedTag(uint32_t field) { return (field << 3) | 2; }
constexpr uint32_t kRecordTag = LengthDelimitedTag(v1::AuditEntry::kRecordFieldNumber);
constexpr uint32_t kHashTag = LengthDelimitedTag(v1::AuditEntry::kHashFieldNumber);
constexpr uint32_t kEffectTag = LengthDelimitedTag(v1::AuditRecord::kEffectsFieldNumber);

template <typename M>
Status Parse(const rocksdb::Slice& bytes, M* out, const std::string& what) {
  if (!out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return DataLossError(what + " does not parse");
  }
  return OkStatus();
}

// Parses an `audit` row: the AuditEntry, then the record it holds. `what` names the row.
Status ParseAuditRecord(const rocksdb::Slice& row, v1::AuditRecord* record,
                        const std::string& what) {
  v1::AuditEntry entry;
  TANDEM_RETURN_IF_ERROR(Parse(row, &entry, what));
  return Parse(entry.record(), record, what);
}

bool HasZeroByte(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Whether a case_id can key the case_audit index. A refused event's may not: it is recorded in
// the audit log whatever it holds, but no such case exists to show.
bool Indexable(std::string_view case_id) { return !case_id.empty() && !HasZeroByte(case_id); }

// Returns the effects of `timeline` from `first` on. `what` names the change for the error.
Result<std::vector<const v1::Effect*>> TimelineEffects(const v1::Timeline& timeline, int first,
                                                       const std::string& what) {
  if (first < 0 || first > timeline.effects_size()) {
    return InvalidArgumentError("store: " + what + ": first effect " + std::to_string(first) +
                                " lies outside the timeline's " +
                                std::to_string(timeline.effects_size()) + " effects");
  }
  std::vector<const v1::Effect*> effects;
  for (int i = first; i < timeline.effects_size(); ++i) effects.push_back(&timeline.effects(i));
  return effects;
}

// Returns the effects of one change: copies of outcome.effects kept in `owned` (the outcome
// may be gone when the batch is written), or `timeline`'s from `first` on when the engine
// appended them there. `what` names the change for the error.
Result<std::vector<const v1::Effect*>> ChangeEffects(const engine::Outcome& outcome,
                                                     const v1::Timeline* timeline, int first,
                                                     const std::string& what,
                                                     std::deque<v1::Effect>* owned) {
  if (timeline == nullptr) {
    std::vector<const v1::Effect*> effects;
    for (const auto& effect : outcome.effects) effects.push_back(&owned->emplace_back(effect));
    return effects;
  }
  if (!outcome.effects.empty()) {
    return InvalidArgumentError("store: " + what +
                                ": effects both in the outcome and in a timeline");
  }
  return TimelineEffects(*timeline, first, what);
}

// Returns the pending timer `id` of `state`, or nullptr.
const v1::Timer* FindTimer(const v1::CaseState& state, uint64_t id) {
  for (const v1::DeadlineInstance& deadline : state.deadlines()) {
    for (const v1::Timer& timer : deadline.timers()) {
      if (timer.id() == id) return &timer;
    }
  }
  return nullptr;
}

// Reads the pid a lock holder wrote, for the error message.
std::string ReadHolderPid(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? std::string("unknown") : pid;
}

// Opens <dir>/tandemd.lock and takes an exclusive flock on it, then writes our pid into it.
// flock locks belong to the open file description, so a second open of the file in this same
// process is refused too.
Result<int> LockDir(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "tandemd.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return InternalError("store " + dir.string() + ": cannot open lock file " + path.string() +
                         ": " + SystemError(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = ReadHolderPid(fd);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return FailedPreconditionError("data directory " + dir.string() +
                                     " is in use by another tandemd (pid " + holder + ")");
    }
    return InternalError("store " + dir.string() + ": cannot lock " + path.string() + ": " +
                         SystemError(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    ::close(fd);
    return InternalError("store " + dir.string() + ": cannot write " + path.string() + ": " +
                         SystemError(err));
  }
  return fd;
}

// Releases a snapshot when a scan ends.
class SnapshotGuard {
 public:
  explicit SnapshotGuard(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~SnapshotGuard() { db_->ReleaseSnapshot(snapshot_); }
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Batch

Batch::Batch(const Store* store, uint64_t generation, uint64_t audit_sequence,
             uint64_t outbox_sequence)
    : store_(store),
      generation_(generation),
      batch_(std::make_unique<rocksdb::WriteBatch>()),
      audit_sequence_(audit_sequence),
      outbox_sequence_(outbox_sequence),
      first_outbox_sequence_(outbox_sequence) {}

Batch::Batch(Batch&&) noexcept = default;
Batch& Batch::operator=(Batch&&) noexcept = default;
Batch::~Batch() = default;

Status Batch::CheckAccepted(const v1::Event& event, const v1::CaseState& state) const {
  const std::string& event_id = event.event_id();
  const std::string& case_id = event.case_id();
  if (event_id.empty()) return InvalidArgumentError("store: accepted event has no event_id");
  if (case_id.empty() || HasZeroByte(case_id)) {
    return InvalidArgumentError("store: event_id=" + event_id +
                                ": case_id is empty or holds a 0 byte");
  }
  if (state.case_id() != case_id) {
    return InvalidArgumentError("store: event_id=" + event_id + ": the outcome is for case '" +
                                state.case_id() + "', not '" + case_id + "'");
  }
  if (state.events_applied() == 0) {
    return InvalidArgumentError("store: event_id=" + event_id +
                                ": the outcome's case has events_applied 0");
  }
  if (dedupe_.count(event_id) != 0) {
    return AlreadyExistsError("store: event_id=" + event_id + " is already in this batch");
  }
  return OkStatus();
}

Status Batch::AddAccepted(const v1::Event& event, const engine::Outcome& outcome,
                          calendar::Instant now, const v1::Timeline* timeline, int first_effect,
                          std::string_view event_bytes) {
  TANDEM_RETURN_IF_ERROR(CheckAccepted(event, outcome.state));
  TANDEM_ASSIGN_OR_RETURN(std::vector<const v1::Effect*> effects,
                          ChangeEffects(outcome, timeline, first_effect,
                                        "event_id=" + event.event_id(), &owned_effects_));
  AddTimers(outcome);
  AddAcceptedRows(event, outcome.state, effects, now, event_bytes);
  *CaseSlot(event.case_id()) = outcome.state;
  return OkStatus();
}

Status Batch::AddAcceptedInPlace(const v1::Event& event, v1::CaseState* state,
                                 const engine::TimerDiff& diff, calendar::Instant now,
                                 const v1::Timeline& timeline, int first_effect,
                                 std::string_view event_bytes) {
  TANDEM_RETURN_IF_ERROR(CheckAccepted(event, *state));
  TANDEM_ASSIGN_OR_RETURN(std::vector<const v1::Effect*> effects,
                          TimelineEffects(timeline, first_effect, "event_id=" + event.event_id()));
  const std::string& case_id = event.case_id();
  for (const engine::TimerRef& t : diff.cancelled) {
    DeleteTimer(internal::TimerKey(t.due, case_id, t.id));
  }
  for (const engine::TimerRef& t : diff.set) {
    const v1::Timer* timer = FindTimer(*state, t.id);
    // The diff lists the timers the change left pending in the case.
    TANDEM_CHECK(timer != nullptr);
    timer_rows_.insert_or_assign(internal::TimerKey(t.due, case_id, t.id),
                                 timer->SerializeAsString());
  }
  AddAcceptedRows(event, *state, effects, now, event_bytes);
  cases_.insert_or_assign(case_id, state);
  return OkStatus();
}

v1::CaseState* Batch::NewCaseState() {
  return google::protobuf::Arena::CreateMessage<v1::CaseState>(arena_.get());
}

v1::CaseState* Batch::CaseSlot(const std::string& case_id) {
  v1::CaseState*& slot = cases_[case_id];
  if (slot == nullptr) slot = NewCaseState();
  return slot;
}

void Batch::AddAcceptedRows(const v1::Event& event, const v1::CaseState& state,
                            const std::vector<const v1::Effect*>& effects, calendar::Instant now,
                            std::string_view event_bytes) {
  const std::string& event_id = event.event_id();
  const std::string& case_id = event.case_id();
  const uint64_t sequence = state.events_applied();
  event_rows_.emplace(internal::EventKey(case_id, sequence),
                      event_bytes.empty() ? event.SerializeAsString() : std::string(event_bytes));

  v1::DedupeRecord dedupe;
  dedupe.set_event_id(event_id);
  dedupe.set_case_id(case_id);
  v1::AcceptedEvent* accepted = dedupe.mutable_accepted();
  accepted->set_event_type(event.type());
  accepted->set_case_sequence(sequence);
  accepted->set_state(state.state());
  *dedupe.mutable_committed_at() = engine::ToTimestamp(now);
  dedupe_rows_.emplace(internal::DedupeKey(event_id), dedupe.SerializeAsString());

  AddNotifications(effects, now);

  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(case_id);
  audit.set_cause(event_id);
  *audit.mutable_event_accepted() = dedupe.accepted();
  AddAudit(std::move(audit), effects);

  dedupe_.insert_or_assign(event_id, std::move(dedupe));
  ++changes_;
}

Status Batch::AddRejected(const v1::Event& event, const Status& why, calendar::Instant now) {
  const std::string& event_id = event.event_id();
  if (why.ok()) {
    return InvalidArgumentError("store: event_id=" + event_id + ": a rejection needs an error");
  }
  const bool keyed = !event_id.empty() && event_id.size() <= engine::kMaxIdBytes;
  if (keyed && dedupe_.count(event_id) != 0) {
    return AlreadyExistsError("store: event_id=" + event_id + " is already in this batch");
  }
  const v1::Effect rejection = engine::RejectionEffect(event, why, now);

  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(event.case_id());
  audit.set_cause(event_id);
  *audit.mutable_event_rejected() = rejection.rejected();
  AddAudit(std::move(audit));

  if (keyed) {
    v1::DedupeRecord dedupe;
    dedupe.set_event_id(event_id);
    dedupe.set_case_id(event.case_id());
    *dedupe.mutable_rejected() = rejection.rejected();
    *dedupe.mutable_committed_at() = engine::ToTimestamp(now);
    dedupe_rows_.emplace(internal::DedupeKey(event_id), dedupe.SerializeAsString());
    dedupe_.insert_or_assign(event_id, std::move(dedupe));
  }
  ++changes_;
  return OkStatus();
}

Status Batch::AddFired(uint64_t timer_id, const v1::Timer& timer, const engine::Outcome& outcome,
                       calendar::Instant now, const v1::Timeline* timeline, int first_effect) {
  const std::string& case_id = outcome.state.case_id();
  if (timer.id() != timer_id) {
    return InvalidArgumentError("store: fired timer " + std::to_string(timer_id) +
                                " was given timer " + std::to_string(timer.id()) + "'s record");
  }
  if (case_id.empty() || HasZeroByte(case_id)) {
    return InvalidArgumentError("store: timer " + std::to_string(timer_id) +
                                ": case_id is empty or holds a 0 byte");
  }
  TANDEM_ASSIGN_OR_RETURN(const std::vector<const v1::Effect*> effects,
                          ChangeEffects(outcome, timeline, first_effect,
                                        "timer " + std::to_string(timer_id), &owned_effects_));
  DeleteTimer(internal::TimerKey(engine::ToInstant(timer.due_at()), case_id, timer_id));
  AddTimers(outcome);
  AddNotifications(effects, now);

  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(case_id);
  audit.set_cause("timer:" + std::to_string(timer_id));
  v1::TimerFired* fired = audit.mutable_timer_fired();
  *fired->mutable_timer() = timer;
  fired->set_state(outcome.state.state());
  AddAudit(std::move(audit), effects);
  *CaseSlot(case_id) = outcome.state;
  ++changes_;
  return OkStatus();
}

Status Batch::MarkDelivered(uint64_t sequence, calendar::Instant now) {
  TANDEM_ASSIGN_OR_RETURN(v1::OutboxRecord record, FindOutbox(sequence));
  batch_->Delete(store_->handles_[Cf::kOutbox], internal::SequenceKey(sequence));

  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(record.effect().case_id());
  audit.set_cause("outbox:" + std::to_string(sequence));
  v1::NotificationDelivered* delivered = audit.mutable_notification_delivered();
  delivered->set_outbox_sequence(sequence);
  delivered->set_notification_id(record.effect().notification().notification_id());
  delivered->set_attempts(record.attempts() + 1);
  delivered->set_channel(record.channel());
  AddAudit(std::move(audit));

  outbox_.insert_or_assign(sequence, std::nullopt);
  ++changes_;
  return OkStatus();
}

Status Batch::Reschedule(uint64_t sequence, uint32_t attempts, calendar::Instant next_attempt_at,
                         std::string_view error) {
  TANDEM_ASSIGN_OR_RETURN(v1::OutboxRecord record, FindOutbox(sequence));
  record.set_attempts(attempts);
  *record.mutable_next_attempt_at() = engine::ToTimestamp(next_attempt_at);
  record.set_last_error(std::string(error));
  batch_->Put(store_->handles_[Cf::kOutbox], internal::SequenceKey(sequence),
              record.SerializeAsString());
  outbox_.insert_or_assign(sequence, std::move(record));
  ++changes_;
  return OkStatus();
}

Status Batch::MoveToDeadLetter(uint64_t sequence, std::string_view error, calendar::Instant now) {
  TANDEM_ASSIGN_OR_RETURN(v1::OutboxRecord record, FindOutbox(sequence));
  record.set_last_error(std::string(error));
  *record.mutable_dead_lettered_at() = engine::ToTimestamp(now);
  batch_->Delete(store_->handles_[Cf::kOutbox], internal::SequenceKey(sequence));
  batch_->Put(store_->handles_[Cf::kDeadLetter], internal::SequenceKey(sequence),
              record.SerializeAsString());

  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(record.effect().case_id());
  audit.set_cause("outbox:" + std::to_string(sequence));
  v1::NotificationDeadLettered* dead = audit.mutable_notification_dead_lettered();
  dead->set_outbox_sequence(sequence);
  dead->set_notification_id(record.effect().notification().notification_id());
  dead->set_attempts(record.attempts());
  dead->set_last_error(std::string(error));
  dead->set_channel(record.channel());
  AddAudit(std::move(audit));

  outbox_.insert_or_assign(sequence, std::nullopt);
  ++changes_;
  return OkStatus();
}

const v1::CaseState* Batch::PendingCase(std::string_view case_id) const {
  const auto it = cases_.find(case_id);
  return it == cases_.end() ? nullptr : it->second;
}

v1::CaseState* Batch::MutablePendingCase(std::string_view case_id) {
  const auto it = cases_.find(case_id);
  return it == cases_.end() ? nullptr : it->second;
}

const v1::DedupeRecord* Batch::PendingDedupe(std::string_view event_id) const {
  const auto it = dedupe_.find(event_id);
  return it == dedupe_.end() ? nullptr : &it->second;
}

void Batch::AddAudit(v1::AuditRecord record, std::vector<const v1::Effect*> effects) {
  record.set_sequence(++audit_sequence_);
  audits_.push_back({std::move(record), std::move(effects)});
}

std::string Batch::ChainAudits(std::string previous_hash) {
  using google::protobuf::io::CodedOutputStream;
  const auto& h = store_->handles_;
  std::string value;
  for (PendingAudit& audit : audits_) {
    audit.record.set_previous_hash(previous_hash);
    // The row is the AuditEntry {record, hash}, written here field by field into one buffer:
    // the record's bytes are its fields, then each effect as an entry of its `effects` field,
    // written from the effects themselves rather than copied into the record first; they parse
    // as the record with its effects in order. Sizes first, so that nothing is copied twice.
    std::size_t record_size = audit.record.ByteSizeLong();
    for (const v1::Effect* effect : audit.effects) {
      const std::size_t size = effect->ByteSizeLong();
      record_size += CodedOutputStream::VarintSize32(kEffectTag) +
                     CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) + size;
    }
    const std::size_t record_start =
        CodedOutputStream::VarintSize32(kRecordTag) + CodedOutputStream::VarintSize32(record_size);
    value.resize(record_start + record_size + CodedOutputStream::VarintSize32(kHashTag) +
                 CodedOutputStream::VarintSize32(kHashBytes) + kHashBytes);
    {
      google::protobuf::io::ArrayOutputStream array(value.data(), static_cast<int>(value.size()));
      CodedOutputStream coded(&array);
      coded.SetSerializationDeterministic(true);
      coded.WriteVarint32(kRecordTag);
      coded.WriteVarint32(static_cast<uint32_t>(record_size));
      audit.record.SerializeWithCachedSizes(&coded);
      for (const v1::Effect* effect : audit.effects) {
        coded.WriteVarint32(kEffectTag);
        coded.WriteVarint32(static_cast<uint32_t>(effect->GetCachedSize()));
        effect->SerializeWithCachedSizes(&coded);
      }
      const std::string hash =
          ChainHash(previous_hash, std::string_view(value).substr(record_start, record_size));
      coded.WriteVarint32(kHashTag);
      coded.WriteVarint32(kHashBytes);
      coded.WriteRaw(hash.data(), static_cast<int>(hash.size()));
      // Serializing cannot fail, and the sizes were computed from the same messages.
      TANDEM_CHECK(!coded.HadError() && coded.ByteCount() == static_cast<int>(value.size()));
      previous_hash = hash;
    }
    batch_->Put(h[Cf::kAudit], internal::SequenceKey(audit.record.sequence()), value);
    if (Indexable(audit.record.case_id())) {
      batch_->Put(h[Cf::kCaseAudit],
                  internal::CaseAuditKey(audit.record.case_id(), audit.record.sequence()), "");
    }
  }
  if (!audits_.empty()) {
    v1::AuditHead head;
    head.set_sequence(audit_sequence_);
    head.set_hash(previous_hash);
    batch_->Put(h[Cf::kMeta], internal::kMetaAuditHead, head.SerializeAsString());
  }
  return previous_hash;
}

void Batch::DeleteTimer(std::string key) {
  const auto it = timer_rows_.find(key);
  if (it != timer_rows_.end() && it->second.has_value()) {
    // Set by this very batch: timer ids are never reused, so the store has no such row.
    timer_rows_.erase(it);
    return;
  }
  timer_rows_.insert_or_assign(std::move(key), std::nullopt);
}

void Batch::PutRows() {
  const auto& h = store_->handles_;
  for (const auto& [case_id, state] : cases_) {
    batch_->Put(h[Cf::kCases], internal::CaseKey(case_id), state->SerializeAsString());
  }
  for (const auto& [key, value] : event_rows_) batch_->Put(h[Cf::kEvents], key, value);
  for (const auto& [key, value] : dedupe_rows_) batch_->Put(h[Cf::kDedupe], key, value);
  for (const auto& [key, value] : timer_rows_) {
    if (value.has_value()) {
      batch_->Put(h[Cf::kTimers], key, *value);
    } else {
      batch_->Delete(h[Cf::kTimers], key);
    }
  }
}

void Batch::AddTimers(const engine::Outcome& outcome) {
  const std::string& case_id = outcome.state.case_id();
  for (const auto& timer : outcome.timers_cancelled) {
    DeleteTimer(internal::TimerKey(engine::ToInstant(timer.due_at()), case_id, timer.id()));
  }
  for (const auto& timer : outcome.timers_set) {
    timer_rows_.insert_or_assign(
        internal::TimerKey(engine::ToInstant(timer.due_at()), case_id, timer.id()),
        timer.SerializeAsString());
  }
}

void Batch::AddNotifications(const std::vector<const v1::Effect*>& effects, calendar::Instant now) {
  for (const v1::Effect* effect : effects) {
    if (effect->kind_case() == v1::Effect::kNotification) AddNotification(*effect, now);
  }
}

void Batch::AddNotification(const v1::Effect& effect, calendar::Instant now) {
  const auto& h = store_->handles_;
  std::vector<DeliveryChannel> channels;
  if (store_->router_) {
    channels = store_->router_(effect.notification());
  } else {
    channels.emplace_back();
  }
  v1::OutboxRecord record;
  *record.mutable_effect() = effect;
  *record.mutable_next_attempt_at() = engine::ToTimestamp(now);
  *record.mutable_enqueued_at() = engine::ToTimestamp(now);
  if (channels.empty()) {
    // The daemon's configuration requires a catch-all route, so this is a router's bug; the
    // notification is kept where an operator sees it (tandemctl outbox) rather than dropped.
    record.set_sequence(++outbox_sequence_);
    record.set_last_error("no route gives this notification a channel");
    *record.mutable_dead_lettered_at() = engine::ToTimestamp(now);
    batch_->Put(h[Cf::kDeadLetter], internal::SequenceKey(record.sequence()),
                record.SerializeAsString());
    return;
  }
  for (DeliveryChannel& channel : channels) {
    record.set_sequence(++outbox_sequence_);
    record.set_channel(std::move(channel.channel));
    record.set_address(std::move(channel.address));
    batch_->Put(h[Cf::kOutbox], internal::SequenceKey(record.sequence()),
                record.SerializeAsString());
    outbox_.insert_or_assign(record.sequence(), record);
  }
}

Result<v1::OutboxRecord> Batch::Requeue(uint64_t sequence, calendar::Instant now) {
  const std::string what = "store: delivery " + std::to_string(sequence);
  if (requeued_.contains(sequence)) return NotFoundError(what + " was already re-queued");
  TANDEM_ASSIGN_OR_RETURN(std::optional<v1::OutboxRecord> parked,
                          store_->ReadOutbox(sequence, /*dead_letter=*/true));
  if (!parked) {
    const Result<v1::OutboxRecord> pending = FindOutbox(sequence);
    if (pending.ok()) return NotFoundError(what + " is not parked: it is pending in the outbox");
    return NotFoundError(what + " is not parked (no such delivery in dead_letter)");
  }
  const auto& h = store_->handles_;
  v1::AuditRecord audit;
  *audit.mutable_at() = engine::ToTimestamp(now);
  audit.set_case_id(parked->effect().case_id());
  audit.set_cause("outbox:" + std::to_string(sequence));
  v1::NotificationRequeued* requeued = audit.mutable_notification_requeued();
  requeued->set_outbox_sequence(sequence);
  requeued->set_notification_id(parked->effect().notification().notification_id());
  requeued->set_attempts(parked->attempts());
  requeued->set_last_error(parked->last_error());
  requeued->set_channel(parked->channel());
  if (parked->channel().empty() && store_->router_) {
    // Parked because no route gave it a channel (AddNotification): route it again, now that
    // the routes may have one, as new deliveries.
    if (store_->router_(parked->effect().notification()).empty()) {
      return NotFoundError(what + " still has no route giving it a channel");
    }
    batch_->Delete(h[Cf::kDeadLetter], internal::SequenceKey(sequence));
    const uint64_t first = outbox_sequence_ + 1;
    AddNotification(parked->effect(), now);
    requeued_.insert(sequence);
    AddAudit(std::move(audit));
    ++changes_;
    return *outbox_.at(first);
  }
  v1::OutboxRecord record = std::move(*parked);
  record.set_attempts(0);
  record.clear_last_error();
  record.clear_dead_lettered_at();
  *record.mutable_next_attempt_at() = engine::ToTimestamp(now);
  batch_->Delete(h[Cf::kDeadLetter], internal::SequenceKey(sequence));
  batch_->Put(h[Cf::kOutbox], internal::SequenceKey(sequence), record.SerializeAsString());
  outbox_.insert_or_assign(sequence, record);
  requeued_.insert(sequence);
  AddAudit(std::move(audit));
  ++changes_;
  return record;
}

Result<v1::OutboxRecord> Batch::FindOutbox(uint64_t sequence) const {
  const auto it = outbox_.find(sequence);
  if (it != outbox_.end()) {
    if (!it->second) {
      return NotFoundError("store: outbox record " + std::to_string(sequence) +
                           " already left the outbox in this batch");
    }
    return *it->second;
  }
  TANDEM_ASSIGN_OR_RETURN(std::optional<v1::OutboxRecord> stored, store_->ReadOutbox(sequence));
  if (!stored) return NotFoundError("store: no outbox record " + std::to_string(sequence));
  return std::move(*stored);
}

// ---------------------------------------------------------------------------------------------
// Store: opening

Store::Store(std::filesystem::path dir, int lock_fd) : dir_(std::move(dir)), lock_fd_(lock_fd) {}

Store::~Store() {
  if (db_ != nullptr) {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      // Destroying a handle only frees memory; it cannot fail for an open database.
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    // Every acknowledged write was synced by Commit; a failing close loses nothing acked, and a
    // destructor has no one to report to.
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
  // The lock goes last, after the database is closed.
  ::close(lock_fd_);
}

Result<std::unique_ptr<Store>> Store::Open(const std::filesystem::path& dir,
                                           const StoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError("store " + dir.string() + ": cannot create: " + ec.message());
  TANDEM_ASSIGN_OR_RETURN(const int lock_fd, LockDir(dir));
  std::unique_ptr<Store> store(new Store(dir, lock_fd));
  TANDEM_RETURN_IF_ERROR(store->OpenDb(options));
  TANDEM_RETURN_IF_ERROR(store->CheckSchema());
  TANDEM_RETURN_IF_ERROR(store->LoadCounters());
  store->next_audit_sequence_ = store->audit_sequence_;
  store->chain_hash_ = store->audit_hash_;
  store->next_outbox_sequence_ = store->outbox_sequence_;
  return store;
}

// Opens every column family: ours (created when missing), RocksDB's default, and any other the
// database already has, so that a store written by a newer build reaches the schema check and
// is refused with its version rather than with RocksDB's complaint about unopened families.
namespace {
// All memtables together, and the block cache shared by all column families.
constexpr std::size_t kMemtableBudgetBytes = 64 << 20;
constexpr std::size_t kBlockCacheBytes = 32 << 20;
}  // namespace

Status Store::OpenDb(const StoreOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  if (options.env_for_test != nullptr) db_options.env = options.env_for_test;
  // Memory and restart bounds (README, "Performance"). By default each of the nine column
  // families may hold 2 x 64 MB of memtables and its own 8 MB block cache: with a million open
  // cases tandemd's RSS reached 337 MB, and a restart replayed every log not yet flushed (4.8 s
  // to ready). One budget for all memtables flushes the largest family when it is reached, so
  // both the memory and the log a restart replays stay near it; one block cache serves all
  // families. Durability is unchanged: every commit is still synced to the log.
  db_options.db_write_buffer_size = kMemtableBudgetBytes;
  db_options.max_total_wal_size = 2 * kMemtableBudgetBytes;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));

  std::vector<std::string> names(internal::kCfNames.begin(), internal::kCfNames.end());
  names.push_back(rocksdb::kDefaultColumnFamilyName);
  std::vector<std::string> existing;
  // Fails for a directory that holds no database yet; DB::Open below reports real problems.
  if (rocksdb::DB::ListColumnFamilies(db_options, dir_.string(), &existing).ok()) {
    for (const auto& name : existing) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  // Point lookups that mostly miss: every published event looks up its event_id (almost
  // always new) and its case (new for a starting event). Bloom filters, in the memtable and in
  // the tables, answer most misses without searching the memtable's skip list or a table's
  // index. The other families are scanned or read by key that exists.
  rocksdb::BlockBasedTableOptions filtered_table_options = table_options;
  filtered_table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions filtered(db_options);
  filtered.memtable_whole_key_filtering = true;
  filtered.memtable_prefix_bloom_size_ratio = 0.02;
  filtered.table_factory.reset(rocksdb::NewBlockBasedTableFactory(filtered_table_options));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) {
    const bool lookups =
        name == internal::kCfNames[Cf::kDedupe] || name == internal::kCfNames[Cf::kCases];
    descriptors.emplace_back(name, lookups ? filtered : rocksdb::ColumnFamilyOptions(db_options));
  }
  rocksdb::DB* db = nullptr;
  const rocksdb::Status s =
      rocksdb::DB::Open(db_options, dir_.string(), descriptors, &handles_, &db);
  if (!s.ok()) return FromRocks(s, "store " + dir_.string() + ": cannot open the database");
  db_.reset(db);
  return OkStatus();
}

Status Store::CheckSchema() {
  const std::string where = "store " + dir_.string();
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[Cf::kMeta], internal::kMetaSchemaVersion, &value);
  if (s.IsNotFound()) {
    // A fresh store gets the current version; a store with data but no version is not ours to
    // guess about.
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handle));
      it->SeekToFirst();
      TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), where + ": cannot read"));
      if (it->Valid()) {
        return DataLossError(where + " holds data (column family '" + handle->GetName() +
                             "') but no storage schema version");
      }
    }
    rocksdb::WriteOptions write;
    write.sync = true;
    s = db_->Put(write, handles_[Cf::kMeta], internal::kMetaSchemaVersion,
                 std::to_string(kSchemaVersion));
    return FromRocks(s, where + ": cannot write the schema version");
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(s, where + ": cannot read the schema version"));
  uint64_t version = 0;
  const bool digits = !value.empty() && value.size() <= 9 &&
                      value.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) return DataLossError(where + ": the storage schema version is unreadable");
  version = std::stoull(value);
  if (version == 1) return MigrateFrom1();
  if (version != kSchemaVersion) {
    return FailedPreconditionError(where + " has storage schema version " +
                                   std::to_string(version) + "; this build reads version " +
                                   std::to_string(kSchemaVersion));
  }
  return OkStatus();
}

// Version 1 had no case_audit index: every audit record about a case gets its index row, and the
// version becomes 2, in one synced write (a version 1 store holds no index row to overwrite).
Status Store::MigrateFrom1() {
  const std::string where = "store " + dir_.string() + ": building the case_audit index";
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[Cf::kAudit]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const auto sequence = internal::ParseSequenceKey(it->key().ToStringView());
    if (!sequence) return DataLossError(where + ": malformed audit key");
    v1::AuditRecord record;
    TANDEM_RETURN_IF_ERROR(ParseAuditRecord(it->value(), &record,
                                            where + ": audit record " + std::to_string(*sequence)));
    if (Indexable(record.case_id())) {
      batch.Put(handles_[Cf::kCaseAudit], internal::CaseAuditKey(record.case_id(), *sequence), "");
    }
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), where));
  batch.Put(handles_[Cf::kMeta], internal::kMetaSchemaVersion, std::to_string(kSchemaVersion));
  rocksdb::WriteOptions write;
  write.sync = true;
  return FromRocks(db_->Write(write, &batch), where);
}

// Loads the writer's counters from meta. The counters are written in the same batch as the
// records they number, so they are exactly as durable as those records.
Status Store::LoadCounters() {
  const std::string where = "store " + dir_.string();
  const rocksdb::ReadOptions read;
  auto has_any = [&](std::size_t cf) -> Result<bool> {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[cf]));
    it->SeekToFirst();
    TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), where + ": cannot read"));
    return it->Valid();
  };
  auto last_sequence = [&](std::size_t cf) -> Result<uint64_t> {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[cf]));
    it->SeekToLast();
    TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), where + ": cannot read"));
    if (!it->Valid()) return uint64_t{0};
    const auto sequence = internal::ParseSequenceKey(it->key().ToStringView());
    if (!sequence) {
      return DataLossError(where + ": malformed key in '" + handles_[cf]->GetName() + "'");
    }
    return *sequence;
  };

  std::string value;
  rocksdb::Status s = db_->Get(read, handles_[Cf::kMeta], internal::kMetaAuditHead, &value);
  if (s.IsNotFound()) {
    TANDEM_ASSIGN_OR_RETURN(const bool audited, has_any(Cf::kAudit));
    if (audited) return DataLossError(where + ": audit records but no audit head in meta");
    audit_sequence_ = 0;
    audit_hash_ = ZeroHash();
  } else {
    TANDEM_RETURN_IF_ERROR(FromRocks(s, where + ": cannot read the audit head"));
    v1::AuditHead head;
    TANDEM_RETURN_IF_ERROR(Parse(value, &head, where + ": the audit head"));
    if (head.hash().size() != kHashBytes) {
      return DataLossError(where + ": the audit head's hash is not " + std::to_string(kHashBytes) +
                           " bytes");
    }
    audit_sequence_ = head.sequence();
    audit_hash_ = head.hash();
  }

  s = db_->Get(read, handles_[Cf::kMeta], internal::kMetaOutboxLastSequence, &value);
  if (s.IsNotFound()) {
    outbox_sequence_ = 0;
  } else {
    TANDEM_RETURN_IF_ERROR(FromRocks(s, where + ": cannot read the outbox sequence"));
    const auto sequence = internal::ParseSequenceKey(value);
    if (!sequence) return DataLossError(where + ": the outbox sequence in meta is malformed");
    outbox_sequence_ = *sequence;
  }
  // A record above the counter would have its sequence handed out again.
  for (const std::size_t cf : {std::size_t{Cf::kOutbox}, std::size_t{Cf::kDeadLetter}}) {
    TANDEM_ASSIGN_OR_RETURN(const uint64_t last, last_sequence(cf));
    if (last > outbox_sequence_) {
      return DataLossError(where + ": '" + handles_[cf]->GetName() + "' holds sequence " +
                           std::to_string(last) + " above the outbox sequence in meta (" +
                           std::to_string(outbox_sequence_) + ")");
    }
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Store: reads

Result<std::optional<v1::CaseState>> Store::GetCase(std::string_view case_id) const {
  v1::CaseState state;
  TANDEM_ASSIGN_OR_RETURN(const bool found, ReadCase(case_id, &state));
  if (!found) return std::optional<v1::CaseState>();
  return std::optional<v1::CaseState>(std::move(state));
}

Result<bool> Store::ReadCase(std::string_view case_id, v1::CaseState* into) const {
  rocksdb::PinnableSlice value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[Cf::kCases], internal::CaseKey(case_id), &value);
  if (s.IsNotFound()) return false;
  const std::string what = "store " + dir_.string() + ": case '" + std::string(case_id) + "'";
  TANDEM_RETURN_IF_ERROR(FromRocks(s, what));
  TANDEM_RETURN_IF_ERROR(Parse(value, into, what));
  return true;
}

Result<std::optional<v1::DedupeRecord>> Store::GetDedupe(std::string_view event_id) const {
  std::string value;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[Cf::kDedupe],
                                     internal::DedupeKey(event_id), &value);
  if (s.IsNotFound()) return std::optional<v1::DedupeRecord>();
  const std::string what =
      "store " + dir_.string() + ": dedupe record event_id=" + std::string(event_id);
  TANDEM_RETURN_IF_ERROR(FromRocks(s, what));
  v1::DedupeRecord record;
  TANDEM_RETURN_IF_ERROR(Parse(value, &record, what));
  return std::optional<v1::DedupeRecord>(std::move(record));
}

Result<std::vector<v1::Event>> Store::CaseEvents(std::string_view case_id) const {
  std::vector<v1::Event> events;
  // No stored case_id holds a 0 byte (Batch refuses them), and such an id's prefix could match
  // another case's keys.
  if (HasZeroByte(case_id)) return events;
  const std::string prefix = internal::EventPrefix(case_id);
  const std::string what =
      "store " + dir_.string() + ": events of case '" + std::string(case_id) + "'";
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[Cf::kEvents]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    v1::Event event;
    TANDEM_RETURN_IF_ERROR(Parse(it->value(), &event, what));
    events.push_back(std::move(event));
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), what));
  return events;
}

Result<std::vector<v1::AuditRecord>> Store::CaseAuditRecords(std::string_view case_id) const {
  std::vector<v1::AuditRecord> records;
  if (!Indexable(case_id)) return records;
  const std::string what =
      "store " + dir_.string() + ": audit records of case '" + std::string(case_id) + "'";
  const SnapshotGuard snapshot(db_.get());
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();
  const std::string prefix = internal::CaseAuditKey(case_id, 0).substr(0, case_id.size() + 1);
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[Cf::kCaseAudit]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    if (key.size() != prefix.size() + 8) return DataLossError(what + ": malformed index key");
    keys.push_back(internal::SequenceKey(internal::ReadBigEndian64(key.data() + prefix.size())));
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), what));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(read, handles_[Cf::kAudit], slices.size(), slices.data(), values.data(),
                statuses.data());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const std::string record_what =
        what + ": record " + std::to_string(internal::ReadBigEndian64(keys[i].data()));
    if (statuses[i].IsNotFound()) return DataLossError(record_what + " is indexed but missing");
    TANDEM_RETURN_IF_ERROR(FromRocks(statuses[i], record_what));
    v1::AuditRecord record;
    TANDEM_RETURN_IF_ERROR(ParseAuditRecord(values[i], &record, record_what));
    records.push_back(std::move(record));
  }
  return records;
}

Result<std::vector<TimerEntry>> Store::DueTimers(calendar::Instant until, std::size_t limit) const {
  std::vector<TimerEntry> timers;
  const std::string what = "store " + dir_.string() + ": timers";
  rocksdb::ReadOptions read;
  std::string upper;
  rocksdb::Slice upper_slice;
  if (until.time_since_epoch().count() < std::numeric_limits<int64_t>::max()) {
    upper = internal::TimerKeyAfter(until);
    upper_slice = upper;
    read.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[Cf::kTimers]));
  for (it->SeekToFirst(); it->Valid() && timers.size() < limit; it->Next()) {
    const auto parts = internal::ParseTimerKey(it->key().ToStringView());
    if (!parts) return DataLossError(what + ": malformed key");
    TimerEntry entry;
    entry.case_id = parts->case_id;
    TANDEM_RETURN_IF_ERROR(Parse(
        it->value(), &entry.timer,
        what + ": timer " + std::to_string(parts->timer_id) + " of case '" + parts->case_id + "'"));
    if (entry.timer.id() != parts->timer_id ||
        engine::ToInstant(entry.timer.due_at()) != parts->due) {
      return DataLossError(what + ": timer " + std::to_string(parts->timer_id) + " of case '" +
                           parts->case_id + "' does not match its key");
    }
    timers.push_back(std::move(entry));
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), what));
  return timers;
}

Result<std::optional<TimerEntry>> Store::NextDueTimer() const {
  TANDEM_ASSIGN_OR_RETURN(
      std::vector<TimerEntry> first,
      DueTimers(calendar::Instant(std::chrono::seconds(std::numeric_limits<int64_t>::max())), 1));
  if (first.empty()) return std::optional<TimerEntry>();
  return std::optional<TimerEntry>(std::move(first.front()));
}

Result<std::vector<v1::OutboxRecord>> Store::ScanRecords(std::size_t cf, std::size_t limit,
                                                         uint64_t after) const {
  std::vector<v1::OutboxRecord> records;
  const std::string what = "store " + dir_.string() + ": " + handles_[cf]->GetName();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[cf]));
  if (after == std::numeric_limits<uint64_t>::max()) return records;
  for (it->Seek(internal::SequenceKey(after + 1)); it->Valid() && records.size() < limit;
       it->Next()) {
    const auto sequence = internal::ParseSequenceKey(it->key().ToStringView());
    if (!sequence) return DataLossError(what + ": malformed key");
    v1::OutboxRecord record;
    TANDEM_RETURN_IF_ERROR(
        Parse(it->value(), &record, what + " record " + std::to_string(*sequence)));
    records.push_back(std::move(record));
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), what));
  return records;
}

Result<std::vector<v1::OutboxRecord>> Store::Outbox(std::size_t limit, uint64_t after) const {
  return ScanRecords(Cf::kOutbox, limit, after);
}

Result<std::vector<v1::OutboxRecord>> Store::DeadLetters(std::size_t limit, uint64_t after) const {
  return ScanRecords(Cf::kDeadLetter, limit, after);
}

Result<std::optional<v1::OutboxRecord>> Store::ReadOutbox(uint64_t sequence,
                                                          bool dead_letter) const {
  std::string value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[dead_letter ? Cf::kDeadLetter : Cf::kOutbox],
               internal::SequenceKey(sequence), &value);
  if (s.IsNotFound()) return std::optional<v1::OutboxRecord>();
  const std::string what = "store " + dir_.string() +
                           (dead_letter ? ": dead letter " : ": outbox record ") +
                           std::to_string(sequence);
  TANDEM_RETURN_IF_ERROR(FromRocks(s, what));
  v1::OutboxRecord record;
  TANDEM_RETURN_IF_ERROR(Parse(value, &record, what));
  return std::optional<v1::OutboxRecord>(std::move(record));
}

Status Store::ForEachCase(const std::function<bool(const v1::CaseState&)>& visit) const {
  const std::string what = "store " + dir_.string() + ": cases";
  // An iterator reads the implicit snapshot taken when it was created.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[Cf::kCases]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    v1::CaseState state;
    TANDEM_RETURN_IF_ERROR(
        Parse(it->value(), &state, what + ": case '" + it->key().ToString() + "'"));
    if (!visit(state)) break;
  }
  return FromRocks(it->status(), what);
}

Result<std::vector<v1::AuditRecord>> Store::AuditRecords(uint64_t from, std::size_t limit) const {
  std::vector<v1::AuditRecord> records;
  const std::string what = "store " + dir_.string() + ": audit";
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[Cf::kAudit]));
  for (it->Seek(internal::SequenceKey(from)); it->Valid() && records.size() < limit; it->Next()) {
    const auto sequence = internal::ParseSequenceKey(it->key().ToStringView());
    if (!sequence) return DataLossError(what + ": malformed key");
    v1::AuditRecord record;
    TANDEM_RETURN_IF_ERROR(
        ParseAuditRecord(it->value(), &record, what + " record " + std::to_string(*sequence)));
    records.push_back(std::move(record));
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), what));
  return records;
}

// Walks the chain from record 1, checking for each record in turn: its key is the next
// sequence (else a record is missing), its record names that sequence (else records were
// moved), it chains to the previous hash (else the previous record was replaced), and its hash
// covers its bytes (else it was edited). The head in meta then covers the tail.
Result<uint64_t> Store::VerifyAudit() const {
  const std::string where = "store " + dir_.string() + ": audit";
  const SnapshotGuard snapshot(db_.get());
  rocksdb::ReadOptions read;
  read.snapshot = snapshot.get();

  v1::AuditHead head;
  head.set_hash(ZeroHash());
  std::string value;
  const rocksdb::Status s = db_->Get(read, handles_[Cf::kMeta], internal::kMetaAuditHead, &value);
  if (!s.IsNotFound()) {
    TANDEM_RETURN_IF_ERROR(FromRocks(s, where + ": cannot read the head"));
    TANDEM_RETURN_IF_ERROR(Parse(value, &head, where + ": the head in meta"));
  }

  uint64_t expected = 1;
  std::string previous = ZeroHash();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, handles_[Cf::kAudit]));
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    const std::string n = std::to_string(expected);
    const auto sequence = internal::ParseSequenceKey(it->key().ToStringView());
    if (!sequence) return DataLossError(where + ": malformed key after record " + n);
    if (*sequence != expected) {
      return DataLossError(where + " record " + n + " is missing (the next record is " +
                           std::to_string(*sequence) + ")");
    }
    v1::AuditEntry entry;
    TANDEM_RETURN_IF_ERROR(Parse(it->value(), &entry, where + " record " + n));
    v1::AuditRecord record;
    TANDEM_RETURN_IF_ERROR(Parse(entry.record(), &record, where + " record " + n));
    if (record.sequence() != expected) {
      return DataLossError(where + " record " + n + " holds record " +
                           std::to_string(record.sequence()) + ": records were reordered");
    }
    if (record.previous_hash() != previous) {
      return DataLossError(where + " record " + n +
                           " does not chain to the record before it: that record was replaced");
    }
    const std::string hash = ChainHash(previous, entry.record());
    if (entry.hash() != hash) {
      return DataLossError(where + " record " + n + " was changed: its hash does not match");
    }
    previous = hash;
  }
  TANDEM_RETURN_IF_ERROR(FromRocks(it->status(), where));
  const uint64_t count = expected - 1;
  if (head.sequence() > count) {
    return DataLossError(where + " record " + std::to_string(count + 1) +
                         " is missing: the log ends at " + std::to_string(count) +
                         " but the head in meta is " + std::to_string(head.sequence()));
  }
  if (head.sequence() < count || head.hash() != previous) {
    return DataLossError(where + " record " + std::to_string(count) +
                         " does not match the head in meta (sequence " +
                         std::to_string(head.sequence()) + ")");
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// Store: writes

Batch Store::NewBatch() const {
  return Batch(this, generation_, next_audit_sequence_, next_outbox_sequence_);
}

Status Store::Commit(Batch&& batch, bool sync) {
  Batch b = std::move(batch);
  if (b.empty() && failed_.ok() && b.store_ == this && b.generation_ == generation_) {
    return OkStatus();
  }
  TANDEM_RETURN_IF_ERROR(Submit(b));
  const Status written = Write(b, sync);
  return Finish(std::move(b), written);
}

Status Store::Submit(Batch& b) {
  if (!failed_.ok()) return failed_;
  if (b.store_ != this) {
    return FailedPreconditionError("store " + dir_.string() + ": the batch is another store's");
  }
  if (b.generation_ != generation_) {
    return FailedPreconditionError("store " + dir_.string() +
                                   ": the batch was made before the last commit");
  }
  if (writing_) {
    return FailedPreconditionError("store " + dir_.string() + ": another batch is being written");
  }
  if (b.empty()) return InvalidArgumentError("store " + dir_.string() + ": the batch is empty");
  if (b.outbox_sequence_ != next_outbox_sequence_) {
    b.batch_->Put(handles_[Cf::kMeta], internal::kMetaOutboxLastSequence,
                  internal::SequenceKey(b.outbox_sequence_));
  }
  // The next batch is numbered after this one, as if it were committed already: if it is not,
  // the store fails and no later batch can commit.
  next_audit_sequence_ = b.audit_sequence_;
  next_outbox_sequence_ = b.outbox_sequence_;
  ++generation_;
  writing_ = true;
  return OkStatus();
}

Status Store::Write(Batch& b, bool sync) {
  // The rows whose bytes are made here rather than as the batch was built, on the writer's
  // thread: each case once, as the batch leaves it, and the audit records, chained to the last
  // record written before them (Writes run one at a time, each after the previous one).
  b.PutRows();
  b.audit_hash_ = b.ChainAudits(chain_hash_);
  rocksdb::WriteOptions write;
  write.sync = sync;
  const rocksdb::Status s = db_->Write(write, b.batch_.get());
  if (!s.ok()) return FromRocks(s, "store " + dir_.string() + ": commit failed");
  chain_hash_ = b.audit_hash_;
  return OkStatus();
}

Status Store::Finish(const Batch& b, const Status& written) {
  writing_ = false;
  if (!written.ok()) {
    // The write may or may not have reached the disk; nothing after it can be acknowledged.
    failed_ = written;
    return failed_;
  }
  audit_sequence_ = b.audit_sequence_;
  audit_hash_ = b.audit_hash_;
  outbox_sequence_ = b.outbox_sequence_;
  return OkStatus();
}

}  // namespace tandem::store
