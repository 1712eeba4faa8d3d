#include "daemon/outbox/plugin.h"

#include <dlfcn.h>
#include <google/protobuf/util/time_util.h>

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

#include "daemon/base/check.h"
#include "daemon/engine/engine.h"
#include "proto/tandem/v1/case.pb.h"

namespace tandem::outbox {
namespace {

// Room for a plugin's error message; longer ones are truncated by the plugin.
constexpr std::size_t kErrorBytes = 1024;

std::string DlError() {
  const char* error = ::dlerror();
  return error != nullptr ? error : "unknown error";
}

bool IsPluginName(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

// ---- PluginLibrary

PluginLibrary::PluginLibrary(std::filesystem::path path, void* handle, const tandem_plugin* api)
    : path_(std::move(path)),
      handle_(handle),
      api_(api),
      name_(api->name),
      version_(api->version) {}

PluginLibrary::~PluginLibrary() { ::dlclose(handle_); }

Result<std::shared_ptr<const PluginLibrary>> PluginLibrary::Load(
    const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFoundError("plugin " + path.string() + ": no such file");
  }
  // RTLD_LOCAL: two plugins may bundle different versions of a library without their symbols
  // binding to each other's. RTLD_NOW: a missing symbol fails here, not at the first delivery.
  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return InvalidArgumentError("plugin " + path.string() + ": cannot load: " + DlError());
  }
  auto refuse = [&](Status status) {
    ::dlclose(handle);
    return status;
  };
  ::dlerror();
  void* entry_symbol = ::dlsym(handle, TANDEM_PLUGIN_ENTRY_SYMBOL);
  if (entry_symbol == nullptr) {
    return refuse(InvalidArgumentError("plugin " + path.string() + ": not a tandem plugin: no " +
                                       TANDEM_PLUGIN_ENTRY_SYMBOL + " (" + DlError() + ")"));
  }
  const auto entry = reinterpret_cast<tandem_plugin_entry_fn>(entry_symbol);
  const tandem_plugin* api = entry();
  if (api == nullptr) {
    return refuse(InvalidArgumentError("plugin " + path.string() + ": " +
                                       TANDEM_PLUGIN_ENTRY_SYMBOL + " returned NULL"));
  }
  // The version first: in a table of another version, nothing after abi_version may be where
  // this header puts it.
  if (api->abi_version != TANDEM_PLUGIN_ABI_VERSION) {
    return refuse(FailedPreconditionError(
        "plugin " + path.string() + " was built for plugin ABI version " +
        std::to_string(api->abi_version) + ", but this tandemd speaks version " +
        std::to_string(TANDEM_PLUGIN_ABI_VERSION) +
        ": rebuild it against this tandem's plugins/include/tandem/plugin.h"));
  }
  if (api->name == nullptr || api->version == nullptr || api->create == nullptr ||
      api->check_address == nullptr || api->deliver == nullptr || api->destroy == nullptr) {
    return refuse(
        InvalidArgumentError("plugin " + path.string() + ": its function table has a NULL member"));
  }
  if (!IsPluginName(api->name)) {
    return refuse(InvalidArgumentError("plugin " + path.string() + ": its name '" +
                                       std::string(api->name) +
                                       "' is not lowercase letters, digits and '_'"));
  }
  return std::shared_ptr<const PluginLibrary>(new PluginLibrary(path, handle, api));
}

std::filesystem::path PluginPath(const std::filesystem::path& dir, std::string_view plugin) {
  return dir / ("tandem-" + std::string(plugin) + ".so");
}

// ---- PluginSink

// What the plugin's instance is lent for its life: the log callback's context and the data
// directory's string. Heap-allocated so its address stays put.
struct PluginSink::Host {
  std::string prefix;
  std::string data_dir;
  std::shared_ptr<spdlog::logger> logger;
  tandem_plugin_host abi{};

  static void Log(void* context, int level, const char* message) {
    const Host& host = *static_cast<const Host*>(context);
    if (message == nullptr) return;
    spdlog::level::level_enum spd_level = spdlog::level::info;
    switch (level) {
      case TANDEM_PLUGIN_LOG_DEBUG:
        spd_level = spdlog::level::debug;
        break;
      case TANDEM_PLUGIN_LOG_INFO:
        spd_level = spdlog::level::info;
        break;
      case TANDEM_PLUGIN_LOG_WARN:
        spd_level = spdlog::level::warn;
        break;
      default:
        spd_level = spdlog::level::err;
        break;
    }
    host.logger->log(spd_level, "{}{}", host.prefix, message);
  }
};

PluginSink::PluginSink(std::shared_ptr<const PluginLibrary> library, std::string name,
                       std::unique_ptr<Host> host)
    : library_(std::move(library)), name_(std::move(name)), host_(std::move(host)) {}

PluginSink::~PluginSink() { library_->api().destroy(&instance_); }

Result<std::unique_ptr<PluginSink>> PluginSink::Create(std::shared_ptr<const PluginLibrary> library,
                                                       std::string name,
                                                       std::string_view config_json,
                                                       const std::filesystem::path& data_dir,
                                                       std::shared_ptr<spdlog::logger> logger) {
  TANDEM_CHECK(library != nullptr && logger != nullptr);  // the daemon's own objects
  auto host = std::make_unique<Host>();
  host->prefix = name + ": ";
  host->data_dir = std::filesystem::absolute(data_dir).lexically_normal().string();
  host->logger = std::move(logger);
  host->abi.context = host.get();
  host->abi.log = &Host::Log;
  host->abi.data_dir = host->data_dir.c_str();
  std::unique_ptr<PluginSink> sink(new PluginSink(library, name, std::move(host)));
  const std::string config(config_json);
  std::array<char, kErrorBytes> error{};
  void* instance = nullptr;
  if (library->api().create(sink->name_.c_str(), config.c_str(), &sink->host_->abi, &instance,
                            error.data(), error.size()) != 0) {
    library->api().destroy(&instance);
    error.back() = '\0';
    return InvalidArgumentError("channel instance '" + sink->name_ + "' (plugin " +
                                library->name() + "): " + error.data());
  }
  sink->instance_ = instance;
  return sink;
}

Status PluginSink::CheckAddress(std::string_view address) const {
  const std::string text(address);
  std::array<char, kErrorBytes> error{};
  if (library_->api().check_address(instance_, text.c_str(), error.data(), error.size()) != 0) {
    error.back() = '\0';
    // The address itself stays out of the message: a URL may carry a token.
    return InvalidArgumentError("channel instance '" + name_ + "' (plugin " + library_->name() +
                                "): address refused: " + error.data());
  }
  return OkStatus();
}

Status PluginSink::Deliver(const v1::OutboxRecord& record) {
  TANDEM_ASSIGN_OR_RETURN(const std::string json, NotificationJson(record));
  const v1::Notification& notification = record.effect().notification();
  tandem_plugin_delivery delivery{};
  delivery.notification_id = notification.notification_id().c_str();
  delivery.delivery_id = record.sequence();
  delivery.attempt = record.attempts() + 1;
  delivery.address = record.address().c_str();
  delivery.json = json.c_str();
  delivery.json_size = json.size();
  delivery.subject = notification.subject().c_str();
  delivery.body = notification.body().c_str();
  std::array<char, kErrorBytes> error{};
  const int result = library_->api().deliver(instance_, &delivery, error.data(), error.size());
  error.back() = '\0';
  switch (result) {
    case TANDEM_PLUGIN_DELIVERED:
      return OkStatus();
    case TANDEM_PLUGIN_RETRY:
      return UnavailableError(error.data());
    case TANDEM_PLUGIN_PERMANENT_FAILURE:
      return FailedPreconditionError(error.data());
    default:
      return InternalError("plugin " + library_->name() + " returned " + std::to_string(result) +
                           ", which is not a tandem_plugin_result");
  }
}

Result<std::string> NotificationJson(const v1::OutboxRecord& record) {
  const v1::Effect& effect = record.effect();
  const v1::Notification& n = effect.notification();
  nlohmann::ordered_json json;
  json["notification_id"] = n.notification_id();
  json["delivery_id"] = record.sequence();
  json["channel"] = record.channel();
  json["address"] = record.address();
  json["kind"] = std::string(engine::NotificationKindName(n.kind()));
  json["partnership"] = n.partnership();
  json["workflow"] = n.workflow();
  json["case_id"] = effect.case_id();
  json["roles"] = nlohmann::ordered_json::array();
  for (const std::string& role : n.roles()) json["roles"].push_back(role);
  if (!n.deadline().empty()) {
    json["deadline"] = n.deadline();
    json["due_on"] = n.due_on();
  }
  json["subject"] = n.subject();
  json["body"] = n.body();
  json["at"] = google::protobuf::util::TimeUtil::ToString(effect.at());
  json["cause"] = effect.cause();
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    // Strings come from the engine and the workflows, both UTF-8 checked; but a store written by
    // another version is not trusted blindly.
    return InternalError("outbox record " + std::to_string(record.sequence()) +
                         ": cannot convert to JSON: " + e.what());
  }
}

}  // namespace tandem::outbox
