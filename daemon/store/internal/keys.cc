#include "daemon/store/internal/keys.h"

namespace tandem::store::internal {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

// Flipping the sign bit maps int64 order onto unsigned (bytewise) order: INT64_MIN -> 0,
// -1 -> 0x7fff..., 0 -> 0x8000..., INT64_MAX -> 0xffff....
uint64_t OrderedSeconds(calendar::Instant t) {
  return static_cast<uint64_t>(static_cast<int64_t>(t.time_since_epoch().count())) ^ kSignBit;
}

calendar::Instant FromOrderedSeconds(uint64_t v) {
  return calendar::Instant(std::chrono::seconds(static_cast<int64_t>(v ^ kSignBit)));
}

}  // namespace

void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t ReadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string CaseKey(std::string_view case_id) { return std::string(case_id); }

std::string EventPrefix(std::string_view case_id) {
  std::string key(case_id);
  key.push_back('\0');
  return key;
}

std::string EventKey(std::string_view case_id, uint64_t sequence) {
  std::string key = EventPrefix(case_id);
  AppendBigEndian64(&key, sequence);
  return key;
}

std::string CaseAuditKey(std::string_view case_id, uint64_t audit_sequence) {
  return EventKey(case_id, audit_sequence);
}

std::string DedupeKey(std::string_view event_id) { return std::string(event_id); }

std::string TimerKey(calendar::Instant due, std::string_view case_id, uint64_t timer_id) {
  std::string key;
  key.reserve(8 + case_id.size() + 1 + 8);
  AppendBigEndian64(&key, OrderedSeconds(due));
  key.append(case_id);
  key.push_back('\0');
  AppendBigEndian64(&key, timer_id);
  return key;
}

std::string TimerKeyAfter(calendar::Instant until) {
  // Every key due at `until` starts with its 8 due bytes, so the 8 bytes of the next second
  // alone (a proper prefix of that second's keys) lie above all of them.
  std::string key;
  AppendBigEndian64(&key, OrderedSeconds(until + std::chrono::seconds(1)));
  return key;
}

std::optional<TimerKeyParts> ParseTimerKey(std::string_view key) {
  // 8 due bytes, at least one case_id byte, the 0 byte, 8 id bytes.
  if (key.size() < 8 + 1 + 1 + 8 || key[key.size() - 9] != '\0') return std::nullopt;
  TimerKeyParts parts;
  parts.due = FromOrderedSeconds(ReadBigEndian64(key.data()));
  parts.case_id = std::string(key.substr(8, key.size() - 8 - 9));
  if (parts.case_id.find('\0') != std::string::npos) return std::nullopt;
  parts.timer_id = ReadBigEndian64(key.data() + key.size() - 8);
  return parts;
}

std::string SequenceKey(uint64_t sequence) {
  std::string key;
  AppendBigEndian64(&key, sequence);
  return key;
}

std::optional<uint64_t> ParseSequenceKey(std::string_view key) {
  if (key.size() != 8) return std::nullopt;
  return ReadBigEndian64(key.data());
}

}  // namespace tandem::store::internal
