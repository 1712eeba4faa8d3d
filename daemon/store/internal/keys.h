#pragma once
// The byte layout of every key the store writes, in one place (daemon/store/store.h documents
// the column families). RocksDB orders keys bytewise, so each encoding is chosen for the scans
// the store makes: a case's events by prefix in sequence order, timers in due order, outbox and
// audit records in sequence order. Shared by store.cc and the encoding tests.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/calendar/calendar.h"

namespace tandem::store::internal {

// The column families, indexed by Cf. The store also keeps RocksDB's "default" family, unused.
enum Cf : std::size_t {
  kCases = 0,
  kEvents,
  kDedupe,
  kTimers,
  kOutbox,
  kDeadLetter,
  kAudit,
  kMeta,
  kCaseAudit,
  kCfCount,
};
inline constexpr std::array<std::string_view, kCfCount> kCfNames = {
    "cases", "events", "dedupe", "timers", "outbox", "dead_letter", "audit", "meta", "case_audit"};

// Keys of `meta`. schema_version: decimal ASCII (e.g. "1"). audit_head: a v1::AuditHead.
// outbox_last_sequence: the last outbox sequence handed out, big-endian u64 (delivered records
// are deleted, so the highest outbox key alone could hand a sequence out twice).
inline constexpr std::string_view kMetaSchemaVersion = "schema_version";
inline constexpr std::string_view kMetaAuditHead = "audit_head";
inline constexpr std::string_view kMetaOutboxLastSequence = "outbox_last_sequence";

// Appends `v` as 8 big-endian bytes.
void AppendBigEndian64(std::string* out, uint64_t v);
// Returns the big-endian u64 in the 8 bytes at `p`.
uint64_t ReadBigEndian64(const char* p);

// `cases`: the case_id's bytes.
std::string CaseKey(std::string_view case_id);

// `events`: case_id, one 0 byte, big-endian sequence (the case's events_applied after the
// event). A case's events share EventPrefix(case_id) and sort in sequence order.
// REQUIRES: case_id holds no 0 byte (else one case's prefix could match another's keys).
std::string EventKey(std::string_view case_id, uint64_t sequence);
std::string EventPrefix(std::string_view case_id);

// `case_audit`: the audit sequences of each case, laid out as EventKey (case_id, one 0 byte,
// big-endian audit sequence), with empty values: a case's audit records are a prefix scan.
// REQUIRES: case_id holds no 0 byte.
std::string CaseAuditKey(std::string_view case_id, uint64_t audit_sequence);

// `dedupe`: the event_id's bytes.
std::string DedupeKey(std::string_view event_id);

// `timers`: the due instant in seconds as a big-endian u64 with the sign bit flipped (so
// instants before 1970 sort before later ones), case_id, one 0 byte, big-endian timer id.
// Keys sort by due instant, then case_id, then timer id: the first key is the next due timer.
// REQUIRES: case_id holds no 0 byte.
std::string TimerKey(calendar::Instant due, std::string_view case_id, uint64_t timer_id);
// Returns the smallest key above every timer key due at or before `until`.
// REQUIRES: `until` is below the largest representable instant.
std::string TimerKeyAfter(calendar::Instant until);

struct TimerKeyParts {
  calendar::Instant due;
  std::string case_id;
  uint64_t timer_id = 0;
};
// Returns the parts of a TimerKey, or nullopt if `key` is not one.
std::optional<TimerKeyParts> ParseTimerKey(std::string_view key);

// `outbox`, `dead_letter`, `audit`: the big-endian u64 sequence.
std::string SequenceKey(uint64_t sequence);
// Returns the sequence of a SequenceKey, or nullopt if `key` is not 8 bytes.
std::optional<uint64_t> ParseSequenceKey(std::string_view key);

}  // namespace tandem::store::internal
