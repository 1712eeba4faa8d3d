#pragma once
// Notification sinks: where the outbox dispatcher hands each notification (DESIGN,
// "Notifications"). A Sink is the seam the plugins issue turns into dlopen'ed plugins; until then
// tandem ships two built in, the log sink and the JSON-lines file sink.

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string_view>

#include "daemon/base/status.h"
#include "proto/tandem/v1/store.pb.h"

namespace tandem::outbox {

// A destination for notifications. Owned by the Dispatcher; called only from the dispatcher's
// thread, one record at a time, so an implementation needs no locking of its own.
class Sink {
 public:
  virtual ~Sink() = default;
  // The sink's name, used in delivery errors ("<name>: <error>"). Stable for the sink's life.
  virtual std::string_view name() const = 0;
  // Delivers one notification. OK means delivered (durably, for a file sink). Any error means
  // not delivered; the dispatcher retries it later, so a message names the destination and the
  // failure, never a fact value. Never throws. Keeps no reference to `record`.
  virtual Status Deliver(const v1::OutboxRecord& record) = 0;
};

// Returns a sink named "log" that logs each notification at info through `logger`: its
// notification_id, outbox sequence, case_id, cause, kind, roles and subject, never its body.
// Logging a line per notification is the sink's whole purpose, so it is the one place that logs
// per notification at info. Deliver always returns OK. Keeps `logger`.
// REQUIRES: logger != nullptr.
std::unique_ptr<Sink> MakeLogSink(std::shared_ptr<spdlog::logger> logger);

// Returns a sink named "jsonl" that appends one JSON object per line to `path`:
//   {"outbox_sequence":<n>,"at":...,"case_id":...,"cause":...,"notification":{...}}
// where "notification" is the protobuf JSON mapping of the record's notification with the proto
// field names (notification_id, kind, roles, subject, body, ...), and "at", "case_id", "cause"
// are the effect's. Deliver writes the whole line and fsyncs the file before it returns OK; on
// a failed write it truncates the file back to its previous length, so a torn line is never
// left behind. Creates the file (mode 0640, then fsyncs its directory) and its parent
// directories if missing; appends to an existing file.
// Returns kInternal naming `path` and the OS error if the directory or the file cannot be
// created or opened. Deliver returns kUnavailable naming the path and the OS error when the
// write or the fsync fails (a full disk may recover), kInternal if the record cannot be
// converted to JSON.
Result<std::unique_ptr<Sink>> MakeJsonLinesSink(const std::filesystem::path& path);

}  // namespace tandem::outbox
