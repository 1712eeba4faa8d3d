#pragma once
// tandemd's configuration: the embedded defaults, the operator's YAML file on top of them
// (validated like a workflow file: an unknown key or a bad value names the file, the line and
// the field), and the command-line options on top of both. Schema and documentation:
// proto/tandem/v1/config.proto.

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "proto/tandem/v1/config.pb.h"

namespace tandem::tandemd {

// The command line of tandemd. Empty strings mean "not given".
struct DaemonOptions {
  std::filesystem::path config_file;
  std::string data_dir;
  std::string ingest_endpoint;
  std::string workflows_dir;
  std::string calendar_file;
};

// Returns the embedded default configuration (every key set except the optional paths).
const v1::DaemonConfig& DefaultConfig();

// Returns the configuration: the defaults, then `options.config_file` when given (keys it sets
// replace the defaults; a list it gives, channels or routes, replaces the default list), then
// the command-line options.
// Returns kNotFound if the file does not exist; kInvalidArgument naming the file, the line and
// the field for a YAML error, an unknown key, a value of the wrong type, a value out of range
// (max_message_bytes and the outbox settings must be positive, initial back-off no more than
// the maximum), a channel name that is not letters, digits, '_' and '-' or is defined twice, a
// channel without a plugin, a route without channels or naming an undefined channel, two routes
// for one partnership and role, or no catch-all route. Plugins and addresses are checked when
// the daemon loads the plugins (a start-up step), not here.
Result<v1::DaemonConfig> LoadConfig(const DaemonOptions& options);

// Returns one "key=value" string per setting of `config` that differs from DefaultConfig(), in
// field order, with nested keys written "ingest.endpoint".
std::vector<std::string> ChangedSettings(const v1::DaemonConfig& config);

}  // namespace tandem::tandemd
