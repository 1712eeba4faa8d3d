#pragma once
// The fixture the tests of a shipped plugin that reaches the network start from (webhook,
// email): a data directory, a captured log, and instances of the plugin made from JSON
// configurations, accepted or expected to be refused.

#include <gtest/gtest.h>
#include <sodium.h>
#include <stdlib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "daemon/outbox/plugin.h"
#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {

// Sets the environment variable `name` to `value` (unsets it for nullopt) for its lifetime, then
// restores what was there. For the proxy variables libcurl reads at each transfer. Not
// thread-safe: the environment is the process's.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = ::getenv(name_.c_str())) old_ = old;
    Set(value);
  }
  ~ScopedEnv() { Set(old_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void Set(const std::optional<std::string>& value) {
    if (value.has_value()) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

  const std::string name_;
  std::optional<std::string> old_;
};

// A fixture for the shipped plugin `plugin_`. Each test gets its own data directory and log.
class ShippedPluginTest : public ::testing::Test {
 protected:
  explicit ShippedPluginTest(std::string plugin) : plugin_(std::move(plugin)) {}

  // The tests compute signatures and decode base64 with libsodium.
  static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }

  // Returns an instance of the plugin configured with `config`, in the test's data directory,
  // logging to log_; nullptr (and a test failure) if it is refused.
  std::unique_ptr<outbox::PluginSink> Sink(const nlohmann::json& config) {
    return MakeSink(plugin_, config.dump(), dir_.path(), log_.logger);
  }

  // Creates an instance expected to be refused; returns the refusal (OK, and a test failure, if
  // it was accepted).
  Status CreateError(const nlohmann::json& config) {
    auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), plugin_));
    EXPECT_TRUE(library.ok()) << library.status().ToString();
    if (!library.ok()) return library.status();
    auto sink = outbox::PluginSink::Create(std::move(library).value(), "test", config.dump(),
                                           dir_.path(), log_.logger);
    EXPECT_FALSE(sink.ok()) << "the configuration was accepted: " << config.dump();
    return sink.ok() ? OkStatus() : sink.status();
  }

  const std::string plugin_;
  TempDir dir_;
  CapturedLog log_;
};

}  // namespace tandem::plugin_test
