#include "plugins/common/curl_util.h"

#include <sodium.h>

#include <fstream>
#include <iterator>
#include <system_error>

namespace tandem::plugins {
namespace {

// A secret file longer than this is not a secret file (and is not read into memory).
constexpr std::uintmax_t kMaxSecretFileBytes = 4096;

constexpr char kHex[] = "0123456789ABCDEF";

}  // namespace

const std::string& InitLibraries() {
  // A function-local static is initialised exactly once even when threads race to it; that also
  // orders the two calls. (curl_global_init is itself thread-safe from libcurl 7.84.)
  static const std::string error = []() -> std::string {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return "cannot initialise libcurl";
    if (sodium_init() < 0) return "cannot initialise libsodium";
    return "";
  }();
  return error;
}

std::filesystem::path ResolveDataPath(const std::string& file, const std::string& data_dir) {
  std::filesystem::path path(file);
  if (path.is_relative()) path = std::filesystem::path(data_dir) / path;
  return path.lexically_normal();
}

void Wipe(std::string& secret) {
  if (!secret.empty()) sodium_memzero(secret.data(), secret.size());
  secret.clear();
}

std::optional<std::string> ReadSecretFile(const std::filesystem::path& path, const std::string& key,
                                          Config& config) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    config.Fail(key, "cannot read " + path.string() + ": " + ec.message());
    return std::nullopt;
  }
  if (size > kMaxSecretFileBytes) {
    config.Fail(
        key, path.string() + " is larger than " + std::to_string(kMaxSecretFileBytes) + " bytes");
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    Wipe(contents);
    config.Fail(key, "cannot read " + path.string());
    return std::nullopt;
  }
  // Wiped byte by byte: pop_back alone would leave the bytes in the buffer.
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) {
    contents.back() = '\0';
    contents.pop_back();
  }
  return contents;
}

std::string ResolveCaFile(const std::string& ca_file, const std::string& data_dir, Config& config) {
  if (ca_file.empty()) return "";
  const std::string path = ResolveDataPath(ca_file, data_dir).string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec) || !std::ifstream(path).good()) {
    config.Fail("ca_file", "cannot read " + path);
  }
  return path;
}

std::string ToLowerAscii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string PercentEncode(std::string_view bytes, bool (*plain)(char)) {
  std::string out;
  for (const char c : bytes) {
    if (plain(c)) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::string HeaderSafeId(std::string_view id) {
  auto plain = [](char c) { return c > 0x20 && c < 0x7F && c != '%'; };
  bool all_plain = true;
  for (const char c : id) all_plain = all_plain && plain(c);
  if (all_plain) return std::string(id);
  return PercentEncode(id, plain);
}

UrlHandle ParseUrl(const std::string& url, std::string* error) {
  UrlHandle handle(curl_url(), &curl_url_cleanup);
  if (handle == nullptr) {
    *error = "out of memory";
    return handle;
  }
  if (const CURLUcode code = curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0);
      code != CURLUE_OK) {
    *error = std::string("not a URL (") + curl_url_strerror(code) + ")";
    handle.reset();
  }
  return handle;
}

std::string UrlPart(CURLU* url, CURLUPart part, unsigned int flags) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, flags) != CURLUE_OK || value == nullptr) return "";
  std::string out(value);
  curl_free(value);
  return out;
}

std::string UrlScheme(CURLU* url) { return ToLowerAscii(UrlPart(url, CURLUPART_SCHEME)); }

std::string UrlOrigin(CURLU* url) {
  return UrlScheme(url) + "://" + UrlPart(url, CURLUPART_HOST) + ":" +
         UrlPart(url, CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

bool CurlList::Add(const std::string& line) {
  curl_slist* grown = curl_slist_append(list_, line.c_str());
  if (grown == nullptr) return false;
  list_ = grown;
  return true;
}

std::string CurlEasy::Open(const char* protocols, const std::string& ca_file) {
  handle_.reset(curl_easy_init());
  if (handle_ == nullptr) return "cannot create a libcurl handle";
  CurlOptions options(handle_.get());
  // Signals are not ours to use (plugin.h); libcurl's threaded resolver needs none.
  options.Set(CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL");
  options.Set(CURLOPT_PROTOCOLS_STR, protocols, "CURLOPT_PROTOCOLS_STR");
  // libcurl's defaults, set all the same: no configuration can turn them off.
  options.Set(CURLOPT_SSL_VERIFYPEER, 1L, "CURLOPT_SSL_VERIFYPEER");
  options.Set(CURLOPT_SSL_VERIFYHOST, 2L, "CURLOPT_SSL_VERIFYHOST");
  if (!ca_file.empty()) options.Set(CURLOPT_CAINFO, ca_file.c_str(), "CURLOPT_CAINFO");
  options.Set(CURLOPT_ERRORBUFFER, error_, "CURLOPT_ERRORBUFFER");
  return options.failed();
}

std::string CurlEasy::ErrorText(CURLcode code) const {
  return error_[0] != '\0' ? std::string(error_) : std::string(curl_easy_strerror(code));
}

}  // namespace tandem::plugins
