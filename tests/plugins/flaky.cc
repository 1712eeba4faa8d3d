// A plugin that fails the first `fail_times` attempts of each notification (RETRY), then
// delivers, so the daemon's retry path can be driven. It appends every attempt, as one fsynced
// JSON line, to the file `path` (relative to the data directory):
//   {"notification_id":"...","delivery_id":7,"attempt":1,"result":"retry"}
// so a test can read what the daemon asked of it and what it answered. Any address.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

class FlakyInstance final : public Instance {
 public:
  FlakyInstance(int64_t fail_times, std::filesystem::path path, int fd)
      : fail_times_(fail_times), path_(std::move(path)), fd_(fd) {}
  ~FlakyInstance() override { ::close(fd_); }
  FlakyInstance(const FlakyInstance&) = delete;
  FlakyInstance& operator=(const FlakyInstance&) = delete;

  std::string CheckAddress(std::string_view) const override { return ""; }

  Outcome Deliver(const tandem_plugin_delivery& delivery) override {
    int64_t& seen = attempts_[delivery.notification_id];
    const bool fail = seen < fail_times_;
    nlohmann::ordered_json line;
    line["notification_id"] = delivery.notification_id;
    line["delivery_id"] = delivery.delivery_id;
    line["attempt"] = delivery.attempt;
    line["result"] = fail ? "retry" : "delivered";
    const std::string text = line.dump() + "\n";
    // One write with O_APPEND, then fsync: the record of an attempt is on disk before the daemon
    // hears the answer, so a test reading the file after the daemon acted sees it.
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::fsync(fd_) != 0) {
      return Outcome::Retry("test: cannot record the attempt in " + path_.string() + ": " +
                            std::strerror(errno));
    }
    ++seen;
    if (fail) {
      return Outcome::Retry("test: failing attempt " + std::to_string(seen) + " of " +
                            std::to_string(fail_times_));
    }
    return Outcome::Delivered();
  }

 private:
  const int64_t fail_times_;
  const std::filesystem::path path_;
  const int fd_;
  // Attempts seen per notification_id; Deliver is called one at a time (plugin.h).
  std::map<std::string, int64_t, std::less<>> attempts_;
};

std::unique_ptr<Instance> MakeFlaky(std::string_view, Config& config,
                                    const tandem_plugin_host& host, std::string* error) {
  const int64_t fail_times = config.Int("fail_times", 1, 0, 1000000);
  const std::string file = config.String("path", "flaky.jsonl");
  if (std::string why = config.Finish(); !why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  const std::filesystem::path path = std::filesystem::path(host.data_dir) / file;
  // A directory that cannot be made shows as the open's error just below.
  std::error_code ignored;
  std::filesystem::create_directories(path.parent_path(), ignored);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    *error = "file " + path.string() + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  return std::make_unique<FlakyInstance>(fail_times, path, fd);
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("flaky", "1.0.0", &::tandem::plugins::MakeFlaky)
