#include "plugins/common/plugin_util.h"

#include <exception>
#include <new>

namespace tandem::plugins {

// ---- Config

Config::Config(const nlohmann::json& json) : json_(json) {}

const nlohmann::json* Config::Find(const std::string& key) {
  known_.insert(key);
  if (!json_.is_object()) return nullptr;
  const auto it = json_.find(key);
  return it == json_.end() ? nullptr : &*it;
}

void Config::Fail(const std::string& key, const std::string& why) {
  if (error_.empty()) error_ = "config key '" + key + "': " + why;
}

std::string Config::String(const std::string& key, std::string fallback) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return fallback;
  if (!value->is_string()) {
    Fail(key, "expected a string");
    return fallback;
  }
  return value->get<std::string>();
}

std::string Config::RequiredString(const std::string& key) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) {
    Fail(key, "required");
    return "";
  }
  if (!value->is_string() || value->get_ref<const std::string&>().empty()) {
    Fail(key, "expected a non-empty string");
    return "";
  }
  return value->get<std::string>();
}

bool Config::Bool(const std::string& key, bool fallback) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) {
    Fail(key, "expected true or false");
    return fallback;
  }
  return value->get<bool>();
}

int64_t Config::Int(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer()) {
    Fail(key, "expected an integer");
    return fallback;
  }
  const int64_t n = value->get<int64_t>();
  if (n < min || n > max) {
    Fail(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return fallback;
  }
  return n;
}

std::chrono::milliseconds Config::Millis(const std::string& key,
                                         std::chrono::milliseconds fallback, int64_t max_ms) {
  return std::chrono::milliseconds(Int(key, fallback.count(), 1, max_ms));
}

std::vector<std::string> Config::Strings(const std::string& key) {
  std::vector<std::string> out;
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return out;
  if (!value->is_array()) {
    Fail(key, "expected a list of strings");
    return out;
  }
  for (const auto& item : *value) {
    if (!item.is_string()) {
      Fail(key, "expected a list of strings");
      return {};
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<int64_t> Config::Ints(const std::string& key, int64_t min, int64_t max) {
  std::vector<int64_t> out;
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return out;
  const std::string expected =
      "expected a list of integers from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value->is_array()) {
    Fail(key, expected);
    return out;
  }
  for (const auto& item : *value) {
    if (!item.is_number_integer() || item.get<int64_t>() < min || item.get<int64_t>() > max) {
      Fail(key, expected);
      return {};
    }
    out.push_back(item.get<int64_t>());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Config::StringMap(const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return out;
  if (!value->is_object()) {
    Fail(key, "expected a map of strings");
    return out;
  }
  for (const auto& [name, item] : value->items()) {
    if (!item.is_string()) {
      Fail(key + "." + name, "expected a string");
      return {};
    }
    out.emplace_back(name, item.get<std::string>());
  }
  return out;
}

std::string Config::Finish() const {
  if (!error_.empty()) return error_;
  if (!json_.is_object()) return "the configuration is not a JSON object";
  for (const auto& [key, value] : json_.items()) {
    if (!known_.contains(key)) return "unknown config key '" + key + "'";
  }
  return "";
}

// ---- Errors

void WriteError(std::string_view message, char* buffer, size_t size) {
  if (buffer == nullptr || size == 0) return;
  size_t n = std::min(message.size(), size - 1);
  // Do not cut a UTF-8 sequence in half: back off over continuation bytes.
  if (n < message.size()) {
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
  }
  message.copy(buffer, n);
  buffer[n] = '\0';
}

// ---- Trampolines: no exception leaves them.

namespace internal {

int Create(Factory factory, const char* name, const char* config_json,
           const tandem_plugin_host* host, void** instance, char* error, size_t error_size) {
  if (instance == nullptr) return 1;
  *instance = nullptr;
  if (name == nullptr || config_json == nullptr || host == nullptr) {
    WriteError("create: NULL argument", error, error_size);
    return 1;
  }
  try {
    nlohmann::json json = nlohmann::json::parse(config_json);
    Config config(json);
    std::string why;
    std::unique_ptr<Instance> made = factory(name, config, *host, &why);
    if (why.empty()) why = config.Finish();
    if (made == nullptr || !why.empty()) {
      WriteError(why.empty() ? "cannot create the instance" : why, error, error_size);
      return 1;
    }
    *instance = made.release();
    return 0;
  } catch (const nlohmann::json::exception& e) {
    WriteError(std::string("the configuration is not valid JSON: ") + e.what(), error,
               error_size);
  } catch (const std::exception& e) {
    WriteError(std::string("create failed: ") + e.what(), error, error_size);
  }
  return 1;
}

int CheckAddress(void* instance, const char* address, char* error, size_t error_size) {
  if (instance == nullptr || address == nullptr) {
    WriteError("check_address: NULL argument", error, error_size);
    return 1;
  }
  try {
    const std::string why = static_cast<const Instance*>(instance)->CheckAddress(address);
    if (why.empty()) return 0;
    WriteError(why, error, error_size);
  } catch (const std::exception& e) {
    WriteError(std::string("check_address failed: ") + e.what(), error, error_size);
  }
  return 1;
}

tandem_plugin_result Deliver(void* instance, const tandem_plugin_delivery* delivery, char* error,
                             size_t error_size) {
  if (instance == nullptr || delivery == nullptr) {
    WriteError("deliver: NULL argument", error, error_size);
    return TANDEM_PLUGIN_PERMANENT_FAILURE;
  }
  try {
    Outcome outcome = static_cast<Instance*>(instance)->Deliver(*delivery);
    if (outcome.result != TANDEM_PLUGIN_DELIVERED) WriteError(outcome.error, error, error_size);
    return outcome.result;
  } catch (const std::bad_alloc&) {
    WriteError("deliver: out of memory", error, error_size);
    return TANDEM_PLUGIN_RETRY;
  } catch (const std::exception& e) {
    // An exception is a bug in the plugin, not the receiver's answer; retrying keeps the
    // notification until an operator looks, and the attempts run out into dead_letter.
    WriteError(std::string("deliver failed: ") + e.what(), error, error_size);
    return TANDEM_PLUGIN_RETRY;
  }
}

void Destroy(void** instance) {
  if (instance == nullptr || *instance == nullptr) return;
  delete static_cast<Instance*>(*instance);
  *instance = nullptr;
}

}  // namespace internal
}  // namespace tandem::plugins
