// The jsonl plugin: appends each delivery's notification JSON, plus "\n", to one file and
// fsyncs it before reporting it delivered, so a line in the file is a notification the daemon
// may record as delivered. A failed write or fsync is cut off again (the file keeps whole lines
// only) and retried. Replaces the daemon's built-in JSON-lines sink (daemon/outbox/sink.cc) and
// keeps its durability: the file and any directory it creates are fsynced into their parents.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

std::string Errno(int err) { return std::strerror(err); }

// Fsyncs the directory `dir`, so an entry just made in it survives a crash. Returns 0 or errno.
int SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int err = ::fsync(fd) != 0 ? errno : 0;
  ::close(fd);
  return err;
}

// Creates every missing directory of the absolute path `dir` (mode 0750, less the umask) and
// fsyncs each one's parent after creating it. Returns "" or why not, naming the directory.
std::string MakeDirectories(const std::filesystem::path& dir) {
  std::filesystem::path prefix;
  for (const std::filesystem::path& part : dir) {
    prefix /= part;
    if (prefix == prefix.root_path()) continue;
    if (::mkdir(prefix.c_str(), 0750) == 0) {
      if (const int err = SyncDirectory(prefix.parent_path()); err != 0) {
        return "cannot sync directory " + prefix.parent_path().string() + ": " + Errno(err);
      }
      continue;
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return "cannot create directory " + prefix.string() + ": " +
           Errno(err == EEXIST ? ENOTDIR : err);
  }
  return "";
}

// Opens `path` for appending, creating it (mode 0640, less the umask) if it does not exist.
// Returns the descriptor, or -1 with errno set; *created says whether this call made the file.
int OpenForAppend(const std::filesystem::path& path, bool* created) {
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CLOEXEC;
  // O_EXCL first, so "created" is exact even when another instance or process opens the same
  // path at the same moment; the loop covers the file vanishing between the two opens.
  for (;;) {
    int fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, 0640);
    if (fd >= 0) {
      *created = true;
      return fd;
    }
    if (errno != EEXIST) return -1;
    fd = ::open(path.c_str(), kFlags);
    if (fd >= 0 || errno != ENOENT) {
      *created = false;
      return fd;
    }
  }
}

// Holds flock(LOCK_EX) on an open file for its scope.
class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    while ((error_ = ::flock(fd_, LOCK_EX) != 0 ? errno : 0) == EINTR) {
    }
  }
  ~FileLock() {
    if (error_ == 0) ::flock(fd_, LOCK_UN);
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // 0 if the lock is held, else the errno of flock.
  int error() const { return error_; }

 private:
  const int fd_;
  int error_ = 0;
};

class JsonlInstance final : public Instance {
 public:
  JsonlInstance(std::filesystem::path path, int fd, bool fsync)
      : path_(std::move(path)), fd_(fd), fsync_(fsync) {}
  ~JsonlInstance() override { ::close(fd_); }
  JsonlInstance(const JsonlInstance&) = delete;
  JsonlInstance& operator=(const JsonlInstance&) = delete;

  std::string CheckAddress(std::string_view address) const override {
    return address.empty()
               ? ""
               : "the jsonl plugin takes no address (the file is its config key 'path')";
  }

  // The lock makes "truncate back to the previous length" safe when several instances (or
  // daemons) append to one file: nobody else appends between our fstat and our ftruncate. The
  // line still goes out as one write() with O_APPEND, so writers that do not lock never
  // interleave inside it.
  Outcome Deliver(const tandem_plugin_delivery& delivery) override {
    std::string line(delivery.json, delivery.json_size);
    line += '\n';
    const FileLock lock(fd_);
    if (lock.error() != 0) return Failed("lock", lock.error());
    struct stat before {};
    if (::fstat(fd_, &before) != 0) return Failed("stat", errno);
    std::string_view left = line;
    while (!left.empty()) {
      const ssize_t n = ::write(fd_, left.data(), left.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        Truncate(before.st_size);
        return Failed("write", err);
      }
      // A short write (a full disk, a file size limit) is followed by one that reports why.
      left.remove_prefix(static_cast<std::size_t>(n));
    }
    if (fsync_ && ::fsync(fd_) != 0) {
      // After a failed fsync the page cache may no longer match the disk; the line is delivered
      // again on the retry, so drop it now rather than risk it twice in the file.
      const int err = errno;
      Truncate(before.st_size);
      return Failed("fsync", err);
    }
    return Outcome::Delivered();
  }

 private:
  Outcome Failed(std::string_view what, int err) const {
    return Outcome::Retry(std::string(what) + " " + path_.string() + ": " + Errno(err));
  }
  // Cuts a partly written line off, so the next line starts on a line of its own. Best effort:
  // when it fails too (or the path is not a regular file), the delivery error already reports
  // the file's trouble.
  void Truncate(off_t size) {
    while (::ftruncate(fd_, size) != 0 && errno == EINTR) {
    }
  }

  const std::filesystem::path path_;
  const int fd_;
  const bool fsync_;
};

std::unique_ptr<Instance> MakeJsonl(std::string_view, Config& config,
                                    const tandem_plugin_host& host, std::string* error) {
  const std::string configured = config.String("path", "notifications.jsonl");
  const bool fsync = config.Bool("fsync", true);
  if (configured.empty()) config.Fail("path", "expected a non-empty path");
  if (std::string why = config.Finish(); !why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  const std::filesystem::path path =
      (std::filesystem::path(host.data_dir) / configured).lexically_normal();
  if (!path.has_filename()) {
    *error = "config key 'path': " + path.string() + " names a directory, not a file";
    return nullptr;
  }
  if (std::string why = MakeDirectories(path.parent_path()); !why.empty()) {
    *error = "file " + path.string() + ": " + why;
    return nullptr;
  }
  bool created = false;
  const int fd = OpenForAppend(path, &created);
  if (fd < 0) {
    *error = "file " + path.string() + ": cannot open for appending: " + Errno(errno);
    return nullptr;
  }
  auto instance = std::make_unique<JsonlInstance>(path, fd, fsync);
  // Fails here rather than at the first delivery on a filesystem without flock.
  if (const FileLock lock(fd); lock.error() != 0) {
    *error = "file " + path.string() + ": cannot lock: " + Errno(lock.error());
    return nullptr;
  }
  if (created) {
    // Make the new file's directory entry durable too, or a crash could lose the whole file
    // after Deliver had fsynced its contents.
    if (const int err = SyncDirectory(path.parent_path()); err != 0) {
      *error = "file " + path.string() + ": cannot sync directory " + path.parent_path().string() +
               ": " + Errno(err);
      return nullptr;
    }
  }
  return instance;
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("jsonl", "1.0.0", &::tandem::plugins::MakeJsonl)
