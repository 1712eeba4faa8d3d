#include "daemon/tandemd/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>

#include <set>
#include <string_view>
#include <utility>

#include "daemon/base/file.h"
#include "daemon/engine/internal/yaml_proto.h"

namespace tandem::tandemd {
namespace {

// The defaults, in the file format the operator writes (DESIGN, "Embedded default").
constexpr std::string_view kDefaultYaml = R"(data_dir: ./var/tandem
ingest:
  endpoint: tcp://127.0.0.1:7450
  max_message_bytes: 1048576
  max_messages_per_turn: 1000
outbox:
  max_attempts: 8
  initial_backoff_seconds: 5
  max_backoff_seconds: 3600
channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
    config:
      path: notifications.jsonl
routes:
  - channels:
      - channel: log
      - channel: jsonl
)";

bool IsChannelName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Checks the channel instances and routes of `config` as config.proto describes them. `lines`
// and `origin` say where the operator's file put each field (the embedded defaults pass);
// `routes_given` says whether the routes are the file's or the embedded ones.
Status CheckChannelsAndRoutes(const v1::DaemonConfig& config,
                              const engine::internal::LineMap& lines, std::string_view origin,
                              bool routes_given) {
  std::set<std::string, std::less<>> names;
  for (int i = 0; i < config.channels_size(); ++i) {
    const v1::ChannelInstance& channel = config.channels(i);
    const std::string path = "channels[" + std::to_string(i) + "]";
    if (!IsChannelName(channel.name())) {
      return InvalidArgumentError(lines.Where(origin, path + ".name") +
                                  ": a channel name is letters, digits, '_' and '-'");
    }
    if (!names.insert(channel.name()).second) {
      return InvalidArgumentError(lines.Where(origin, path + ".name") + ": channel '" +
                                  channel.name() + "' is defined twice");
    }
    if (channel.plugin().empty()) {
      return InvalidArgumentError(lines.Where(origin, path) + ": names no plugin");
    }
  }
  bool catch_all = false;
  std::set<std::pair<std::string, std::string>> routed;
  for (int i = 0; i < config.routes_size(); ++i) {
    const v1::Route& route = config.routes(i);
    const std::string path = "routes[" + std::to_string(i) + "]";
    if (!routed.emplace(route.partnership(), route.role()).second) {
      return InvalidArgumentError(lines.Where(origin, path) + ": a second route for partnership '" +
                                  route.partnership() + "' and role '" + route.role() +
                                  "' (empty means every one); merge them");
    }
    catch_all = catch_all || (route.partnership().empty() && route.role().empty());
    if (route.channels_size() == 0) {
      return InvalidArgumentError(lines.Where(origin, path) + ": lists no channels");
    }
    for (int j = 0; j < route.channels_size(); ++j) {
      const std::string& name = route.channels(j).channel();
      if (!names.contains(name) && !routes_given) {
        return InvalidArgumentError(lines.Where(origin, "channels") +
                                    ": these channels replace the embedded ones, and the "
                                    "embedded route uses channel '" +
                                    name + "': give routes too");
      }
      if (!names.contains(name)) {
        return InvalidArgumentError(
            lines.Where(origin, path + ".channels[" + std::to_string(j) + "].channel") +
            ": no channel named '" + name + "' is defined");
      }
    }
  }
  if (!catch_all) {
    return InvalidArgumentError(
        lines.Where(origin, "routes") +
        ": no catch-all route (one with neither partnership nor role), so some notification "
        "could have no channel; add one, e.g. to the log channel");
  }
  return OkStatus();
}

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string ScalarText(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return std::to_string(r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::to_string(r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT32:
      return std::to_string(r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::to_string(r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(m, f) ? "true" : "false";
    default:
      return "?";
  }
}

void Diff(const Message& config, const Message& defaults, const std::string& prefix,
          std::vector<std::string>* out) {
  const auto* d = config.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string key = prefix + f->name();
    if (f->is_repeated()) {
      // Lists (channels, routes) are logged by their size only: a channel's settings may hold
      // a secret, and start-up logs each channel by name anyway.
      const Reflection* r = config.GetReflection();
      const int size = r->FieldSize(config, f);
      bool same = size == defaults.GetReflection()->FieldSize(defaults, f);
      for (int j = 0; same && j < size; ++j) {
        // Field by field: serialized bytes of a Struct depend on its map's order.
        same = google::protobuf::util::MessageDifferencer::Equals(
            r->GetRepeatedMessage(config, f, j),
            defaults.GetReflection()->GetRepeatedMessage(defaults, f, j));
      }
      if (!same) out->push_back(key + "=" + std::to_string(size) + " entries");
      continue;
    }
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Diff(config.GetReflection()->GetMessage(config, f),
           defaults.GetReflection()->GetMessage(defaults, f), key + ".", out);
      continue;
    }
    const std::string value = ScalarText(config, f);
    if (value != ScalarText(defaults, f)) out->push_back(key + "=" + value);
  }
}

}  // namespace

const v1::DaemonConfig& DefaultConfig() {
  static const v1::DaemonConfig* defaults = [] {
    auto* config = new v1::DaemonConfig();
    auto parsed = engine::internal::ParseYamlInto(kDefaultYaml, "<embedded defaults>", config);
    // The embedded text is part of this program and parsed by every test of it.
    TANDEM_CHECK(parsed.ok());
    TANDEM_CHECK(CheckChannelsAndRoutes(*config, *parsed, "<embedded defaults>", true).ok());
    config->set_plugins_dir(TANDEM_PLUGIN_DIR);
    return config;
  }();
  return *defaults;
}

constexpr uint32_t kMaxMessagesPerTurn = 100'000;

Result<v1::DaemonConfig> LoadConfig(const DaemonOptions& options) {
  v1::DaemonConfig config = DefaultConfig();
  if (!options.config_file.empty()) {
    const std::string origin = options.config_file.string();
    TANDEM_ASSIGN_OR_RETURN(const std::string text, ReadFile(options.config_file));
    v1::DaemonConfig file;
    TANDEM_ASSIGN_OR_RETURN(const engine::internal::LineMap lines,
                            engine::internal::ParseYamlInto(text, origin, &file));
    // proto3 scalars: a key the file sets to its type's zero reads as unset and keeps the
    // default; every such zero is either the default already (clock_offset_seconds) or would
    // be refused anyway (a zero size, attempt count or back-off).
    if (file.ingest().max_message_bytes() < 0) {
      return InvalidArgumentError(lines.Where(origin, "ingest.max_message_bytes") +
                                  ": must be positive");
    }
    // The writer pauses the input at this many requests waiting for a commit, and the ingest
    // socket queues three times as many replies per peer: a bound keeps both in memory.
    if (file.ingest().max_messages_per_turn() > kMaxMessagesPerTurn) {
      return InvalidArgumentError(lines.Where(origin, "ingest.max_messages_per_turn") +
                                  ": must be at most " + std::to_string(kMaxMessagesPerTurn));
    }
    // Lists replace the defaults' lists as a whole: an operator who lists channels means those.
    if (file.channels_size() > 0) config.clear_channels();
    if (file.routes_size() > 0) config.clear_routes();
    config.MergeFrom(file);
    TANDEM_RETURN_IF_ERROR(CheckChannelsAndRoutes(config, lines, origin, file.routes_size() > 0));
    if (config.outbox().initial_backoff_seconds() > config.outbox().max_backoff_seconds()) {
      const std::string_view path = file.outbox().initial_backoff_seconds() != 0
                                        ? "outbox.initial_backoff_seconds"
                                        : "outbox.max_backoff_seconds";
      return InvalidArgumentError(lines.Where(origin, path) +
                                  ": initial_backoff_seconds must not exceed max_backoff_seconds");
    }
  }
  if (!options.data_dir.empty()) config.set_data_dir(options.data_dir);
  if (!options.ingest_endpoint.empty()) {
    config.mutable_ingest()->set_endpoint(options.ingest_endpoint);
  }
  if (!options.workflows_dir.empty()) config.set_workflows_dir(options.workflows_dir);
  if (!options.calendar_file.empty()) config.set_calendar_file(options.calendar_file);
  return config;
}

std::vector<std::string> ChangedSettings(const v1::DaemonConfig& config) {
  std::vector<std::string> out;
  Diff(config, DefaultConfig(), "", &out);
  return out;
}

}  // namespace tandem::tandemd
