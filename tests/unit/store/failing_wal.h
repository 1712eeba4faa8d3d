#pragma once
// A RocksDB file system whose write-ahead-log writes fail on demand, the way a full or dying
// disk fails them: the store's commit-failure tests and the daemon writer's open a store on it
// (StoreOptions::env_for_test, through rocksdb::NewCompositeEnv).

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>
#include <string>
#include <utility>

namespace tandem::store::test {

// A write-ahead-log file whose appends and syncs fail while `*fail` is set.
class FailingWalFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FailingWalFile(std::unique_ptr<rocksdb::FSWritableFile> file, const std::atomic<bool>* fail)
      : FSWritableFileOwnerWrapper(std::move(file)), fail_(fail) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (*fail_) return Injected();
    return target()->Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (*fail_) return Injected();
    return target()->Append(data, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (*fail_) return Injected();
    return target()->Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (*fail_) return Injected();
    return target()->Fsync(options, dbg);
  }

 private:
  static rocksdb::IOStatus Injected() {
    return rocksdb::IOStatus::NoSpace("injected: no space left on device");
  }
  const std::atomic<bool>* fail_;
};

// The default file system, except that write-ahead-log files (NNNNNN.log) fail while failing.
class FailingWalFileSystem : public rocksdb::FileSystemWrapper {
 public:
  FailingWalFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  static const char* kClassName() { return "FailingWalFileSystem"; }
  const char* Name() const override { return kClassName(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, file, dbg);
    Wrap(name, s, file);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* file,
                                       rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->ReopenWritableFile(name, options, file, dbg);
    Wrap(name, s, file);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* file,
                                      rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->ReuseWritableFile(name, old_name, options, file, dbg);
    Wrap(name, s, file);
    return s;
  }

  void set_failing(bool failing) { fail_ = failing; }
  int wal_files() const { return wal_files_; }

 private:
  void Wrap(const std::string& name, const rocksdb::IOStatus& s,
            std::unique_ptr<rocksdb::FSWritableFile>* file) {
    const bool wal = name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
    if (!s.ok() || !wal) return;
    ++wal_files_;
    *file = std::make_unique<FailingWalFile>(std::move(*file), &fail_);
  }

  std::atomic<bool> fail_{false};
  std::atomic<int> wal_files_{0};
};

}  // namespace tandem::store::test
