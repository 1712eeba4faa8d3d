#include "daemon/tandemd/config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string_view>

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
)";

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
    return config;
  }();
  return *defaults;
}

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
    config.MergeFrom(file);
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
  if (config.outbox().jsonl_path().empty()) {
    config.mutable_outbox()->set_jsonl_path(
        (std::filesystem::path(config.data_dir()) / "notifications.jsonl").string());
  }
  return config;
}

std::vector<std::string> ChangedSettings(const v1::DaemonConfig& config) {
  std::vector<std::string> out;
  v1::DaemonConfig defaults = DefaultConfig();
  // The JSON-lines path follows the data directory unless it is set on its own.
  defaults.mutable_outbox()->set_jsonl_path(
      (std::filesystem::path(config.data_dir()) / "notifications.jsonl").string());
  Diff(config, defaults, "", &out);
  return out;
}

}  // namespace tandem::tandemd
