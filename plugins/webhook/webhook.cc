// The webhook plugin: POSTs each notification's JSON to the channel's address, an http:// or
// https:// URL, signed the Standard Webhooks way (webhook-id, webhook-timestamp and
// webhook-signature, an HMAC-SHA256 over "<id>.<timestamp>.<body>"), and maps the receiver's
// answer onto delivered, retry or permanent failure. Configuration, outcomes and what it trusts:
// README.md in this folder.

#include <curl/curl.h>
#include <sodium.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "plugins/common/curl_util.h"
#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";
// Standard Webhooks recommends 24 to 64 bytes of key; fewer than 16 is refused.
constexpr std::size_t kMinKeyBytes = 16;
constexpr std::string_view kDefaultUserAgent = "tandem-webhook/1.0";

// Headers the plugin sets itself, or that only libcurl may set; `headers` may not name them.
constexpr std::string_view kReservedHeaders[] = {
    "webhook-id",   "webhook-timestamp", "webhook-signature", "tandem-delivery-id",
    "content-type", "content-length",    "transfer-encoding", "host",
    "expect",       "connection"};

// Returns true if `name` is an HTTP field name (RFC 9110 token).
bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Returns true if `value` may be an HTTP field value as is: no control characters (so no CR or
// LF that would start another header), no leading or trailing blank.
bool IsFieldValue(std::string_view value) {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) return false;
  }
  return value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                           value.back() != '\t');
}

// The key of a Standard Webhooks secret. Owned by one instance, which only reads it; wiped from
// memory when destroyed or overwritten.
class SigningKey {
 public:
  explicit SigningKey(std::vector<unsigned char> bytes) : bytes_(std::move(bytes)) {}
  ~SigningKey() {
    if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
  }
  SigningKey(SigningKey&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
  }
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  SigningKey& operator=(SigningKey&& other) noexcept {
    if (this != &other) {
      if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
      bytes_ = std::move(other.bytes_);
      other.bytes_.clear();
    }
    return *this;
  }

  // Returns the webhook-signature value for one request: "v1," and the base64 of
  // HMAC-SHA256(key, "<id>.<timestamp>.<body>").
  std::string Sign(std::string_view id, std::string_view timestamp, std::string_view body) const {
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, bytes_.data(), bytes_.size());
    auto update = [&state](std::string_view part) {
      crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                                    part.size());
    };
    update(id);
    update(".");
    update(timestamp);
    update(".");
    update(body);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&state, mac);
    sodium_memzero(&state, sizeof state);
    char base64[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES,
                                          sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(base64, sizeof base64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return std::string("v1,") + base64;
  }

 private:
  std::vector<unsigned char> bytes_;
};

// Returns the key of the Standard Webhooks secret `secret` ("whsec_" and the key in base64,
// padded or not), or records in `config` why it is not one, against `key`. Never quotes the
// secret.
std::optional<SigningKey> DecodeSecret(std::string_view secret, const std::string& key,
                                       Config& config) {
  if (!secret.starts_with(kSecretPrefix)) {
    config.Fail(key, "expected a Standard Webhooks secret: whsec_ followed by base64");
    return std::nullopt;
  }
  const std::string_view base64 = secret.substr(kSecretPrefix.size());
  std::vector<unsigned char> bytes(base64.size());
  bool decoded = false;
  for (const int variant :
       {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING}) {
    std::size_t size = 0;
    if (sodium_base642bin(bytes.data(), bytes.size(), base64.data(), base64.size(), nullptr, &size,
                          nullptr, variant) == 0) {
      bytes.resize(size);
      decoded = true;
      break;
    }
  }
  if (!decoded) {
    sodium_memzero(bytes.data(), bytes.size());
    config.Fail(key, "the part after whsec_ is not valid base64");
    return std::nullopt;
  }
  if (bytes.size() < kMinKeyBytes) {
    sodium_memzero(bytes.data(), bytes.size());
    config.Fail(key,
                "the key is shorter than " + std::to_string(kMinKeyBytes) + " bytes once decoded");
    return std::nullopt;
  }
  return SigningKey(std::move(bytes));
}

// A webhook address taken apart: what messages may name (scheme, host and port) and what they
// must not (the path and query, which may carry access tokens).
struct Target {
  // Why the address cannot be used; "" if it can.
  std::string error;
  // "https://example.org:443".
  std::string origin;
  std::string path;
  std::string query;
};

// Parses `url` with libcurl's own URL parser (the one the request will use). Sets `error` unless
// it is an http:// or https:// URL with a host, https:// only when `require_https`. No I/O.
Target ParseTarget(const std::string& url, bool require_https) {
  Target target;
  const UrlHandle handle = ParseUrl(url, &target.error);
  if (handle == nullptr) return target;
  const std::string scheme = UrlScheme(handle.get());
  const std::string host = UrlPart(handle.get(), CURLUPART_HOST);
  if (scheme != "http" && scheme != "https") {
    target.error = "the scheme is not http or https";
    return target;
  }
  // libcurl reads "http:///x" as "http://x/"; an empty authority is a mistake, not a host.
  const std::size_t authority = url.find("://");
  if (host.empty() || authority == std::string::npos || url.size() == authority + 3 ||
      url[authority + 3] == '/') {
    target.error = "the URL has no host";
    return target;
  }
  target.origin = UrlOrigin(handle.get());
  if (require_https && scheme != "https") {
    target.error = "https is required (require_https) but the URL is http";
    return target;
  }
  target.path = UrlPart(handle.get(), CURLUPART_PATH);
  target.query = UrlPart(handle.get(), CURLUPART_QUERY);
  return target;
}

// Returns why a transfer failed: libcurl's detailed message from `detail` (its error buffer),
// or its generic one for `code` when the detail is empty or quotes the URL's path or query.
std::string CurlFailure(CURLcode code, const char* detail, const Target& target) {
  std::string text = detail;
  auto quotes = [&text](const std::string& part) {
    return part.size() > 1 && text.find(part) != std::string::npos;
  };
  if (text.empty() || quotes(target.path) || quotes(target.query)) {
    text = curl_easy_strerror(code);
  }
  return text + " (curl error " + std::to_string(static_cast<int>(code)) + ")";
}

// Maps the receiver's final HTTP status onto an outcome (README.md, "Outcomes"). `where` names
// the request ("POST https://example.org:443").
Outcome Classify(long status, const std::string& where) {
  const std::string what = where + ": HTTP " + std::to_string(status);
  if (status >= 200 && status <= 299) return Outcome::Delivered();
  // Following a redirect would send the signed notification somewhere the operator did not
  // configure; the receiver's owner must update the route instead.
  if (status >= 300 && status <= 399) return Outcome::Permanent(what + ": redirect refused");
  if (status == 408 || status == 429) return Outcome::Retry(what);
  if (status >= 400 && status <= 499) return Outcome::Permanent(what);
  if (status >= 500 && status <= 599) return Outcome::Retry(what);
  return Outcome::Retry(what + ": not a final HTTP status");
}

// libcurl's write callback: the response body is never read, only its status.
size_t DiscardBody(char* /*data*/, size_t size, size_t count, void* /*context*/) {
  return size * count;
}

// One webhook channel instance: its settings, its signing key, and its own CURL handle, whose
// connection cache keeps connections to receivers open between deliveries. Created and destroyed
// on the daemon's main thread; Deliver runs on one thread at a time (plugin.h, "Threading").
class Webhook final : public Instance {
 public:
  // Returns the instance `config` describes, or nullptr when the configuration is refused (the
  // reason recorded in `config`) or libcurl cannot be set up (the reason in *error).
  static std::unique_ptr<Instance> Make(std::string_view name, Config& config,
                                        const tandem_plugin_host& host, std::string* error);

  std::string CheckAddress(std::string_view address) const override;
  Outcome Deliver(const tandem_plugin_delivery& delivery) override;

 private:
  Webhook(SigningKey key, bool require_https, std::vector<std::string> extra_headers)
      : key_(std::move(key)),
        require_https_(require_https),
        extra_headers_(std::move(extra_headers)) {}

  // Sets the options every request of this instance shares. Returns "" or what libcurl refused.
  std::string SetUp(std::chrono::milliseconds timeout, std::chrono::milliseconds connect_timeout,
                    const std::string& user_agent, const std::string& ca_file);

  const SigningKey key_;
  const bool require_https_;
  // "Name: value" lines from `headers`.
  const std::vector<std::string> extra_headers_;
  CurlEasy curl_;
};

std::unique_ptr<Instance> Webhook::Make(std::string_view /*name*/, Config& config,
                                        const tandem_plugin_host& host, std::string* error) {
  if (const std::string& why = InitLibraries(); !why.empty()) {
    *error = why;
    return nullptr;
  }
  // Read every key first, so that a misspelt key is reported as unknown rather than hidden
  // behind a later check.
  std::string secret = config.String("secret");
  const std::string secret_file = config.String("secret_file");
  const bool require_https = config.Bool("require_https", false);
  const std::chrono::milliseconds timeout =
      config.Millis("timeout_ms", std::chrono::milliseconds(10000));
  const std::chrono::milliseconds connect_timeout =
      config.Millis("connect_timeout_ms", std::chrono::milliseconds(5000));
  const auto headers = config.StringMap("headers");
  const std::string ca_file = config.String("ca_file");
  const std::string user_agent = config.String("user_agent", std::string(kDefaultUserAgent));
  if (!config.Finish().empty()) {
    Wipe(secret);
    return nullptr;
  }

  std::optional<SigningKey> key;
  if (secret.empty() == secret_file.empty()) {
    config.Fail(secret.empty() ? "secret" : "secret_file",
                secret.empty() ? "required: set exactly one of secret and secret_file"
                               : "set exactly one of secret and secret_file, not both");
  } else if (!secret.empty()) {
    key = DecodeSecret(secret, "secret", config);
  } else if (std::optional<std::string> contents = ReadSecretFile(
                 ResolveDataPath(secret_file, host.data_dir), "secret_file", config)) {
    key = DecodeSecret(*contents, "secret_file", config);
    Wipe(*contents);
  }
  Wipe(secret);

  std::vector<std::string> extra_headers;
  for (const auto& [header, value] : headers) {
    const std::string where = "headers." + header;
    const std::string lower = ToLowerAscii(header);
    bool reserved = false;
    for (const std::string_view name : kReservedHeaders) reserved = reserved || lower == name;
    if (!IsToken(header)) {
      config.Fail(where, "not a valid header name");
    } else if (reserved) {
      config.Fail(where, "set by the plugin itself; cannot be configured");
    } else if (!IsFieldValue(value)) {
      config.Fail(where, "the value has control characters or leading or trailing blanks");
    } else {
      // libcurl drops a "Name:" line with no value; "Name;" is its spelling of an empty one.
      extra_headers.push_back(value.empty() ? header + ";" : header + ": " + value);
    }
  }
  if (!IsFieldValue(user_agent)) {
    config.Fail("user_agent", "has control characters or leading or trailing blanks");
  }
  const std::string ca_path = ResolveCaFile(ca_file, host.data_dir, config);
  if (!config.Finish().empty() || !key.has_value()) return nullptr;

  std::unique_ptr<Webhook> webhook(
      new Webhook(std::move(*key), require_https, std::move(extra_headers)));
  if (std::string why = webhook->SetUp(timeout, connect_timeout, user_agent, ca_path);
      !why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  HostLog(&host).Info(std::string("POSTs to ") + (require_https ? "https" : "http and https") +
                      " URLs; timeout " + std::to_string(timeout.count()) +
                      " ms, connect timeout " + std::to_string(connect_timeout.count()) +
                      " ms; signing key from " + (secret_file.empty() ? "secret" : "secret_file"));
  return webhook;
}

std::string Webhook::SetUp(std::chrono::milliseconds timeout,
                           std::chrono::milliseconds connect_timeout, const std::string& user_agent,
                           const std::string& ca_file) {
  const char* protocols = require_https_ ? "https" : "http,https";
  if (std::string why = curl_.Open(protocols, ca_file); !why.empty()) return why;
  CurlOptions options(curl_.get());
  // Never follow a redirect (Classify explains why); the protocol list guards it twice.
  options.Set(CURLOPT_FOLLOWLOCATION, 0L, "CURLOPT_FOLLOWLOCATION");
  options.Set(CURLOPT_REDIR_PROTOCOLS_STR, protocols, "CURLOPT_REDIR_PROTOCOLS_STR");
  options.Set(CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()), "CURLOPT_TIMEOUT_MS");
  options.Set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()),
              "CURLOPT_CONNECTTIMEOUT_MS");
  options.Set(CURLOPT_USERAGENT, user_agent.c_str(), "CURLOPT_USERAGENT");
  options.Set(CURLOPT_TCP_KEEPALIVE, 1L, "CURLOPT_TCP_KEEPALIVE");
  options.Set(CURLOPT_WRITEFUNCTION, &DiscardBody, "CURLOPT_WRITEFUNCTION");
  return options.failed();
}

std::string Webhook::CheckAddress(std::string_view address) const {
  return ParseTarget(std::string(address), require_https_).error;
}

Outcome Webhook::Deliver(const tandem_plugin_delivery& delivery) {
  const Target target = ParseTarget(delivery.address, require_https_);
  if (!target.error.empty()) return Outcome::Permanent("webhook address: " + target.error);
  const std::string where = "POST " + target.origin;

  const std::string id = HeaderSafeId(delivery.notification_id);
  const std::string timestamp =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count());
  const std::string_view body(delivery.json, delivery.json_size);
  CurlList headers;
  bool built = headers.Add("content-type: application/json") && headers.Add("webhook-id: " + id) &&
               headers.Add("webhook-timestamp: " + timestamp) &&
               headers.Add("webhook-signature: " + key_.Sign(id, timestamp, body)) &&
               headers.Add("tandem-delivery-id: " + std::to_string(delivery.delivery_id)) &&
               // Without this libcurl may wait for a "100 Continue" before sending a large body.
               headers.Add("Expect:");
  for (const std::string& line : extra_headers_) built = built && headers.Add(line);
  if (!built) return Outcome::Retry(where + ": out of memory building the request");

  CURL* curl = curl_.get();
  curl_.ClearError();
  CURLcode code = curl_easy_setopt(curl, CURLOPT_URL, delivery.address);
  if (code == CURLE_OK) code = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  if (code == CURLE_OK) {
    code = curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                            static_cast<curl_off_t>(delivery.json_size));
  }
  if (code == CURLE_OK) code = curl_easy_setopt(curl, CURLOPT_POSTFIELDS, delivery.json);
  if (code == CURLE_OK) code = curl_easy_perform(curl);
  // The handle must not keep pointers to this call's headers and body past it.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, static_cast<const char*>(nullptr));
  if (code != CURLE_OK)
    return Outcome::Retry(where + ": " + CurlFailure(code, curl_.error_detail(), target));

  long status = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) {
    return Outcome::Retry(where + ": no HTTP status");
  }
  return Classify(status, where);
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("webhook", "1.0.0", &::tandem::plugins::Webhook::Make)
