#pragma once
// The host side of the notification plugin ABI (plugins/include/tandem/plugin.h): loading a
// plugin library defensively, and a configured instance of it as an outbox Sink. Also the one
// definition of the notification JSON a plugin receives (plugins/README.md).

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/base/status.h"
#include "daemon/outbox/sink.h"
#include "proto/tandem/v1/store.pb.h"
#include "tandem/plugin.h"

namespace tandem::outbox {

// A plugin shared library, loaded and checked. Immutable after Load; safe to share between
// threads. dlcloses the library when the last reference goes, so every instance holds one.
class PluginLibrary {
 public:
  // Loads `path` with dlopen(RTLD_NOW | RTLD_LOCAL), checks the ABI version of its table before
  // reading anything else from it, then its name and functions.
  // Returns kNotFound if `path` does not exist; kInvalidArgument naming `path` and dlerror() if
  // it cannot be loaded or exports no tandem_plugin_entry, or if its table is incomplete or its
  // name is not lowercase letters, digits and '_'; kFailedPrecondition naming both versions if
  // it was built for another ABI version (the library is closed again).
  static Result<std::shared_ptr<const PluginLibrary>> Load(const std::filesystem::path& path);

  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::filesystem::path& path() const { return path_; }
  const tandem_plugin& api() const { return *api_; }

 private:
  PluginLibrary(std::filesystem::path path, void* handle, const tandem_plugin* api);

  const std::filesystem::path path_;
  void* const handle_;
  const tandem_plugin* const api_;
  const std::string name_;
  const std::string version_;
};

// Returns the file a plugin named `plugin` is loaded from: <dir>/tandem-<plugin>.so.
std::filesystem::path PluginPath(const std::filesystem::path& dir, std::string_view plugin);

// A configured instance of a plugin (a channel instance), delivering to the address each record
// names. Lives on one dispatcher thread for Deliver; CheckAddress is for start-up.
class PluginSink final : public Sink {
 public:
  // Creates the instance `name` of `library` from `config_json` (a JSON object). `data_dir` is
  // lent to the plugin for resolving relative paths; `logger` receives the plugin's log lines,
  // prefixed "<name>: ".
  // Returns kInvalidArgument with the plugin's message, prefixed with the instance's name, if
  // the plugin refuses the configuration.
  static Result<std::unique_ptr<PluginSink>> Create(std::shared_ptr<const PluginLibrary> library,
                                                    std::string name, std::string_view config_json,
                                                    const std::filesystem::path& data_dir,
                                                    std::shared_ptr<spdlog::logger> logger);
  // Destroys the plugin's instance.
  ~PluginSink() override;
  PluginSink(const PluginSink&) = delete;
  PluginSink& operator=(const PluginSink&) = delete;

  // The instance's name (as configured), not the plugin's.
  std::string_view name() const override { return name_; }
  const PluginLibrary& library() const { return *library_; }

  // Returns OK if the plugin accepts `address`, else kInvalidArgument with its reason.
  Status CheckAddress(std::string_view address) const;

  // Delivers `record` to record.address() through the plugin: OK when delivered, kUnavailable
  // for a retryable failure, kFailedPrecondition for a permanent one (both with the plugin's
  // message), kInternal if the record cannot be turned into JSON or the plugin returned a value
  // the ABI does not define (treated as permanent: the plugin is broken).
  Status Deliver(const v1::OutboxRecord& record) override;

 private:
  struct Host;
  PluginSink(std::shared_ptr<const PluginLibrary> library, std::string name,
             std::unique_ptr<Host> host);

  const std::shared_ptr<const PluginLibrary> library_;
  const std::string name_;
  const std::unique_ptr<Host> host_;
  void* instance_ = nullptr;
};

// Returns `record` as the notification JSON of plugins/README.md: one object, no newline.
// Returns kInternal if a string in it is not valid UTF-8.
Result<std::string> NotificationJson(const v1::OutboxRecord& record);

}  // namespace tandem::outbox
