#pragma once
// Shared by the plugin tests: load a real plugin from the build tree through the daemon's own
// loader (daemon/outbox/plugin.h), make outbox records to deliver, and capture what the plugin
// logs through the host.

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "daemon/outbox/plugin.h"
#include "proto/tandem/v1/case.pb.h"
#include "proto/tandem/v1/store.pb.h"

namespace tandem::plugin_test {

// Where the shipped plugins are built (tandem-<name>.so).
inline std::filesystem::path ShippedPluginDir() {
  return std::filesystem::path(TANDEM_BINARY_DIR) / "plugins";
}
// Where the misbehaving test plugins of tests/plugins are built.
inline std::filesystem::path TestPluginDir() {
  return std::filesystem::path(TANDEM_BINARY_DIR) / "tests" / "plugins";
}

// A fresh directory under testing::TempDir(), removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "tandem_plugin_XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A logger that keeps its last lines, for asserting on what a plugin logged.
struct CapturedLog {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("plugin-test", sink);

  CapturedLog() {
    logger->set_level(spdlog::level::debug);
    sink->set_pattern("%l %v");
  }
  std::vector<std::string> lines() const { return sink->last_formatted(); }
};

// Loads the shipped plugin `plugin` and creates an instance named `instance` of it. When either
// step fails, records a test failure and returns nullptr (callers ASSERT_NE on it); use
// outbox::PluginLibrary directly to test failures.
inline std::unique_ptr<outbox::PluginSink> MakeSink(const std::string& plugin,
                                                    const std::string& config_json,
                                                    const std::filesystem::path& data_dir,
                                                    std::shared_ptr<spdlog::logger> logger,
                                                    const std::string& instance = "test") {
  auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), plugin));
  EXPECT_TRUE(library.ok()) << library.status().ToString();
  if (!library.ok()) return nullptr;
  auto sink = outbox::PluginSink::Create(std::move(library).value(), instance, config_json,
                                         data_dir, std::move(logger));
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  if (!sink.ok()) return nullptr;
  return std::move(sink).value();
}

// An outbox record of a deadline-warning notification, as the writer would store it.
inline v1::OutboxRecord MakeRecord(uint64_t sequence, const std::string& notification_id,
                                   const std::string& address,
                                   const std::string& channel = "test") {
  v1::OutboxRecord record;
  record.set_sequence(sequence);
  record.set_channel(channel);
  record.set_address(address);
  v1::Effect* effect = record.mutable_effect();
  *effect->mutable_at() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1795000000);
  effect->set_case_id("case-7");
  effect->set_cause("timer:3");
  v1::Notification* n = effect->mutable_notification();
  n->set_notification_id(notification_id);
  n->set_kind(v1::NOTIFICATION_KIND_DEADLINE_WARNING);
  n->add_roles("la_dsp");
  n->add_roles("partnership_chair");
  n->set_subject("Serious incident notification due in 2 working days");
  n->set_body("Case case-7: notify the Child Safeguarding Practice Review Panel by 2026-12-04.");
  n->set_workflow("serious_incident");
  n->set_partnership("northshire");
  n->set_deadline("notify_panel");
  n->set_due_on("2026-12-04");
  return record;
}

}  // namespace tandem::plugin_test
