#pragma once
// What every shipped plugin shares: the C ABI's trampolines (exceptions never cross the
// boundary, error buffers are filled safely), strict parsing of the instance's JSON
// configuration (an unknown key is an error), and logging through the host. A plugin writes a
// subclass of Instance and a factory, then TANDEM_DEFINE_PLUGIN(name, version, factory).
// Linked statically into each plugin; nothing here is exported.

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tandem/plugin.h"

namespace tandem::plugins {

// The outcome of one delivery: DELIVERED with an empty error, or RETRY / PERMANENT_FAILURE with
// a message naming the destination and the failure (never the subject or body).
struct Outcome {
  tandem_plugin_result result = TANDEM_PLUGIN_DELIVERED;
  std::string error;

  static Outcome Delivered() { return {}; }
  static Outcome Retry(std::string error) { return {TANDEM_PLUGIN_RETRY, std::move(error)}; }
  static Outcome Permanent(std::string error) {
    return {TANDEM_PLUGIN_PERMANENT_FAILURE, std::move(error)};
  }
};

// A configured plugin instance. Deliver is called from one thread at a time (plugin.h,
// "Threading"); CheckAddress from the daemon's main thread before any delivery.
class Instance {
 public:
  virtual ~Instance() = default;
  // Returns "" if `address` is one this instance can deliver to, else why not. No I/O.
  virtual std::string CheckAddress(std::string_view address) const = 0;
  virtual Outcome Deliver(const tandem_plugin_delivery& delivery) = 0;
};

// The instance's JSON configuration, read key by key. Every getter marks its key as known;
// Finish() then reports any key no getter asked for, so a misspelt key is an error rather than
// a silently ignored setting. Errors accumulate: the first one is kept and reported by Finish.
class Config {
 public:
  // REQUIRES: `json` outlives the Config.
  explicit Config(const nlohmann::json& json);

  // Each returns the key's value, or `fallback` when the key is absent; a value of the wrong
  // type (or out of range) records an error naming the key and returns `fallback`.
  std::string String(const std::string& key, std::string fallback = "");
  bool Bool(const std::string& key, bool fallback);
  // An integer in [min, max].
  int64_t Int(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  // Milliseconds in [1, max_ms].
  std::chrono::milliseconds Millis(const std::string& key, std::chrono::milliseconds fallback,
                                   int64_t max_ms = 600000);
  // An array of strings (an absent key gives an empty vector).
  std::vector<std::string> Strings(const std::string& key);
  // An array of integers, each in [min, max] (an absent key gives an empty vector).
  std::vector<int64_t> Ints(const std::string& key, int64_t min, int64_t max);
  // An object of string values, e.g. extra headers (an absent key gives an empty vector).
  std::vector<std::pair<std::string, std::string>> StringMap(const std::string& key);
  // A key that must be present (and a non-empty string).
  std::string RequiredString(const std::string& key);

  // Records an error about `key` (for checks a getter cannot make).
  void Fail(const std::string& key, const std::string& why);

  // Returns "" if every key was known and well-typed, else the first error, e.g.
  // "config key 'timeout_ms': expected an integer" or "unknown config key 'timout_ms'".
  std::string Finish() const;

 private:
  const nlohmann::json* Find(const std::string& key);

  const nlohmann::json& json_;
  std::set<std::string> known_;
  std::string error_;
};

// Logs through the host (plugin.h: tandem_plugin_host.log). Copyable; valid while the instance
// lives.
class HostLog {
 public:
  explicit HostLog(const tandem_plugin_host* host) : host_(host) {}
  void Info(const std::string& message) const { Log(TANDEM_PLUGIN_LOG_INFO, message); }
  void Warn(const std::string& message) const { Log(TANDEM_PLUGIN_LOG_WARN, message); }
  void Error(const std::string& message) const { Log(TANDEM_PLUGIN_LOG_ERROR, message); }

 private:
  void Log(int level, const std::string& message) const {
    if (host_ != nullptr && host_->log != nullptr) host_->log(host_->context, level, message.c_str());
  }
  const tandem_plugin_host* host_;
};

// Creates an instance from its name, configuration and host. On failure returns nullptr and
// sets *error. May throw; the trampoline turns an exception into a create failure.
using Factory = std::unique_ptr<Instance> (*)(std::string_view name, Config& config,
                                              const tandem_plugin_host& host, std::string* error);

// Copies `message` into `buffer` (size `size`), NUL-terminated and truncated at a UTF-8
// character boundary. A NULL buffer or size 0 writes nothing.
void WriteError(std::string_view message, char* buffer, size_t size);

namespace internal {
int Create(Factory factory, const char* name, const char* config_json,
           const tandem_plugin_host* host, void** instance, char* error, size_t error_size);
int CheckAddress(void* instance, const char* address, char* error, size_t error_size);
tandem_plugin_result Deliver(void* instance, const tandem_plugin_delivery* delivery, char* error,
                             size_t error_size);
void Destroy(void** instance);
}  // namespace internal

}  // namespace tandem::plugins

// Defines the plugin's exported entry point and its function table.
//   TANDEM_DEFINE_PLUGIN("webhook", "1.0.0", &MakeWebhook)
#define TANDEM_DEFINE_PLUGIN(NAME, VERSION, FACTORY)                                          \
  namespace {                                                                                 \
  int TandemPluginCreate(const char* name, const char* config_json,                           \
                         const tandem_plugin_host* host, void** instance, char* error,        \
                         size_t error_size) {                                                 \
    return ::tandem::plugins::internal::Create(FACTORY, name, config_json, host, instance,    \
                                               error, error_size);                            \
  }                                                                                           \
  const tandem_plugin kTandemPluginTable = {                                                  \
      TANDEM_PLUGIN_ABI_VERSION,          NAME,                                               \
      VERSION,                            &TandemPluginCreate,                                \
      &::tandem::plugins::internal::CheckAddress, &::tandem::plugins::internal::Deliver,      \
      &::tandem::plugins::internal::Destroy};                                                 \
  }                                                                                           \
  extern "C" TANDEM_PLUGIN_EXPORT const tandem_plugin* tandem_plugin_entry(void) {            \
    return &kTandemPluginTable;                                                               \
  }
