#include "daemon/outbox/sink.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "daemon/base/check.h"
#include "proto/tandem/v1/case.pb.h"

namespace tandem::outbox {
namespace {

std::string Errno(int err) { return std::strerror(err); }

// ---- Log sink.

class LogSink final : public Sink {
 public:
  explicit LogSink(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {}

  std::string_view name() const override { return "log"; }

  // The body is left out on purpose: it is free text for a human reader, and logs keep to
  // identifiers. Roles and the subject say who was told what kind of thing.
  Status Deliver(const v1::OutboxRecord& record) override {
    const v1::Effect& effect = record.effect();
    const v1::Notification& n = effect.notification();
    std::string roles;
    for (const std::string& role : n.roles()) {
      if (!roles.empty()) roles += ',';
      roles += role;
    }
    logger_->info(
        "notification {} outbox_sequence={} attempt={} case_id={} cause={} kind={} roles={} "
        "subject=\"{}\"",
        n.notification_id(), record.sequence(), record.attempts() + 1, effect.case_id(),
        effect.cause(), v1::NotificationKind_Name(n.kind()), roles, n.subject());
    return OkStatus();
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

// ---- JSON-lines file sink.

// Returns `record` as one line of JSON, newline included.
Result<std::string> JsonLine(const v1::OutboxRecord& record) {
  // The effect without its notification gives "at", "case_id" and "cause", escaped by protobuf;
  // the notification follows as an object of its own.
  v1::Effect head = record.effect();
  head.clear_notification();
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string head_json;
  std::string notification_json;
  if (!google::protobuf::util::MessageToJsonString(head, &head_json, options).ok() ||
      !google::protobuf::util::MessageToJsonString(record.effect().notification(),
                                                   &notification_json, options)
           .ok()) {
    return InternalError("outbox record " + std::to_string(record.sequence()) +
                         ": cannot convert to JSON");
  }
  // head_json is an object, "{}" when empty; splice its members between the sequence and the
  // notification.
  std::string line = "{\"outbox_sequence\":" + std::to_string(record.sequence()) + ",";
  if (head_json.size() > 2) {
    line.append(head_json, 1, head_json.size() - 2);
    line += ',';
  }
  line += "\"notification\":";
  line += notification_json;
  line += "}\n";
  return line;
}

class JsonLinesSink final : public Sink {
 public:
  JsonLinesSink(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~JsonLinesSink() override { ::close(fd_); }
  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;

  std::string_view name() const override { return "jsonl"; }

  Status Deliver(const v1::OutboxRecord& record) override {
    TANDEM_ASSIGN_OR_RETURN(const std::string line, JsonLine(record));
    struct stat before {};
    if (::fstat(fd_, &before) != 0) return Failed("stat", errno);
    const char* data = line.data();
    std::size_t left = line.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, data, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        Truncate(before.st_size);
        return Failed("write", err);
      }
      data += n;
      left -= static_cast<std::size_t>(n);
    }
    if (::fsync(fd_) != 0) {
      // After a failed fsync the page cache may no longer match the disk; the line is delivered
      // again on the retry, so drop it now rather than risk it twice in the file.
      const int err = errno;
      Truncate(before.st_size);
      return Failed("fsync", err);
    }
    return OkStatus();
  }

 private:
  Status Failed(std::string_view what, int err) const {
    return UnavailableError(std::string(what) + " " + path_.string() + ": " + Errno(err));
  }
  // Cuts a partly written line off, so the next line starts on a line of its own. Best effort:
  // when it fails too, the delivery error already reports the file's trouble.
  void Truncate(off_t size) {
    while (::ftruncate(fd_, size) != 0 && errno == EINTR) {
    }
  }

  const std::filesystem::path path_;
  const int fd_;
};

}  // namespace

std::unique_ptr<Sink> MakeLogSink(std::shared_ptr<spdlog::logger> logger) {
  TANDEM_CHECK(logger != nullptr);  // the daemon passes its own logger; null is a caller bug
  return std::make_unique<LogSink>(std::move(logger));
}

Result<std::unique_ptr<Sink>> MakeJsonLinesSink(const std::filesystem::path& path) {
  const std::filesystem::path parent = path.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return InternalError("jsonl sink " + path.string() + ": cannot create directory " +
                           parent.string() + ": " + ec.message());
    }
  }
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return InternalError("jsonl sink " + path.string() + ": cannot open: " + Errno(errno));
  }
  if (!existed) {
    // Make the new file's directory entry durable too, or a crash could lose the whole file
    // after Deliver had fsynced its contents.
    const std::string dir = parent.empty() ? std::string(".") : parent.string();
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const int err = dir_fd < 0 ? errno : (::fsync(dir_fd) != 0 ? errno : 0);
    if (dir_fd >= 0) ::close(dir_fd);
    if (err != 0) {
      ::close(fd);
      return InternalError("jsonl sink " + path.string() + ": cannot sync directory " + dir + ": " +
                           Errno(err));
    }
  }
  return std::unique_ptr<Sink>(std::make_unique<JsonLinesSink>(path, fd));
}

}  // namespace tandem::outbox
