// The log plugin: writes one line per delivery to the daemon's log, through the host, at info.
// It is for trying tandem out and for operators who watch the log; it delivers nothing anywhere
// else, so every delivery succeeds. The line carries identifiers only: the subject and the body
// are rendered from templates that may name facts, and the logs never carry fact values.

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

// Returns `text` with every control character written as \xNN, so a value cannot break the
// log's one-line-per-entry shape.
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out;
}

// Returns the string member `key` of `json`, or "-" when it is absent or not a string.
std::string Field(const nlohmann::json& json, const char* key) {
  const auto it = json.find(key);
  if (it == json.end() || !it->is_string()) return "-";
  return OneLine(it->get_ref<const std::string&>());
}

std::string Roles(const nlohmann::json& json) {
  const auto it = json.find("roles");
  if (it == json.end() || !it->is_array()) return "-";
  std::string roles;
  for (const auto& role : *it) {
    if (!role.is_string()) continue;
    if (!roles.empty()) roles += ',';
    roles += OneLine(role.get_ref<const std::string&>());
  }
  return roles;
}

class LogInstance final : public Instance {
 public:
  explicit LogInstance(const tandem_plugin_host& host) : log_(&host) {}

  // The log needs no address; whatever the route gives is ignored.
  std::string CheckAddress(std::string_view) const override { return ""; }

  // Logging one line per notification at info is this plugin's whole purpose, so it is the one
  // place that logs per notification at that level (CONVENTIONS C14). The fields a line carries
  // come from the notification JSON; the subject and body are left out on purpose.
  Outcome Deliver(const tandem_plugin_delivery& delivery) override {
    std::string line = "notification " + OneLine(delivery.notification_id) +
                       " delivery_id=" + std::to_string(delivery.delivery_id) +
                       " attempt=" + std::to_string(delivery.attempt);
    const nlohmann::json json = nlohmann::json::parse(
        std::string_view(delivery.json, delivery.json_size), nullptr, /*allow_exceptions=*/false);
    if (json.is_object()) {
      line += " channel=" + Field(json, "channel") + " case_id=" + Field(json, "case_id") +
              " cause=" + Field(json, "cause") + " kind=" + Field(json, "kind") +
              " roles=" + Roles(json);
    } else {
      // The host built the JSON, so this is not expected; the ids above still say which
      // notification went by, and the log has nothing to retry.
      line += " (the notification JSON is not an object)";
    }
    log_.Info(line);
    return Outcome::Delivered();
  }

 private:
  const HostLog log_;
};

std::unique_ptr<Instance> MakeLog(std::string_view, Config&, const tandem_plugin_host& host,
                                  std::string*) {
  // No configuration keys: Config::Finish reports any key as unknown.
  return std::make_unique<LogInstance>(host);
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("log", "1.0.0", &::tandem::plugins::MakeLog)
