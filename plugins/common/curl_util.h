#pragma once
// What the plugins that reach the network through libcurl share (webhook, email): the one-time
// set-up of libcurl and libsodium, the files they read (secrets, CA certificates), URLs taken
// apart with libcurl's own parser, ids made safe for header lines, and the handles, lists and
// options of libcurl. Linked statically into those plugins only (tandem_plugin_curl); nothing
// here is exported.

#include <curl/curl.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {

// Initialises libcurl and libsodium once per process, however many instances (and threads) ask.
// Returns "" on success, else what failed. Never cleans up: other instances, and other plugins
// in the same process, may go on using both libraries. Thread-safe.
const std::string& InitLibraries();

// Returns `file` resolved against `data_dir` when it is relative, lexically normalised.
std::filesystem::path ResolveDataPath(const std::string& file, const std::string& data_dir);

// Overwrites `secret` before it is freed, and leaves it empty.
void Wipe(std::string& secret);

// Returns the contents of the secret file `path` (a secret or a password) without trailing line
// breaks. When the file cannot be read or is larger than 4096 bytes, records why in `config`
// against `key` and returns nullopt. Never quotes the contents in a message.
std::optional<std::string> ReadSecretFile(const std::filesystem::path& path, const std::string& key,
                                          Config& config);

// Returns `ca_file` resolved against `data_dir` ("" when `ca_file` is ""). When the file is not
// a readable regular file, records that in `config` against "ca_file".
std::string ResolveCaFile(const std::string& ca_file, const std::string& data_dir, Config& config);

// Returns `text` with ASCII capitals made small, whatever the locale.
std::string ToLowerAscii(std::string_view text);

// Returns `bytes` with every byte for which `plain` is false written as "%XX".
std::string PercentEncode(std::string_view bytes, bool (*plain)(char));

// Returns `id` as a header value: as is when it is printable ASCII without blanks or '%', else
// with every other byte (and '%') percent-encoded, so that no id can break a header line and two
// different ids never share an encoding. tandemd's ids ("<case>:<cause>:<n>") pass as is.
std::string HeaderSafeId(std::string_view id);

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using UrlHandle = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

// Returns `url` parsed by libcurl's URL parser (the one transfers use). On failure returns a
// null handle and sets *error ("not a URL (<libcurl's reason>)", or "out of memory"). No I/O.
UrlHandle ParseUrl(const std::string& url, std::string* error);

// Returns the part `part` of `url` (curl_url_get with `flags`), or "" when it has none.
std::string UrlPart(CURLU* url, CURLUPart part, unsigned int flags = 0);

// Returns the scheme of `url` in lower case.
std::string UrlScheme(CURLU* url);

// Returns what messages may name of `url`: "<scheme>://<host>:<port>", the port the scheme's
// default when the URL gives none, never the credentials, path or query.
std::string UrlOrigin(CURLU* url);

// A curl_slist that frees itself. Owned by one call; not thread-safe.
class CurlList {
 public:
  CurlList() = default;
  ~CurlList() { curl_slist_free_all(list_); }
  CurlList(const CurlList&) = delete;
  CurlList& operator=(const CurlList&) = delete;

  // Appends a copy of `line`. Returns whether it could (false when out of memory).
  bool Add(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

// Sets the options of one easy handle, remembering the first one libcurl refused. Keeps `curl`
// but none of the values: libcurl copies strings, and other pointers must outlive the handle's
// use. Used on one thread.
class CurlOptions {
 public:
  // REQUIRES: `curl` is not null and outlives this object.
  explicit CurlOptions(CURL* curl) : curl_(curl) {}

  // Sets `option` to `value` unless an earlier option was refused. `name` is the option's name
  // for the message.
  template <typename Value>
  void Set(CURLoption option, Value value, const char* name) {
    if (!failed_.empty()) return;
    if (const CURLcode code = curl_easy_setopt(curl_, option, value); code != CURLE_OK) {
      failed_ = std::string("libcurl refused ") + name + ": " + curl_easy_strerror(code);
    }
  }

  // Returns "" if every option was set, else what libcurl refused first.
  const std::string& failed() const { return failed_; }

 private:
  CURL* curl_;
  std::string failed_;
};

// One libcurl easy handle and the error buffer libcurl fills when one of its transfers fails.
// Owned by one plugin instance, and used by one thread at a time (plugin.h, "Threading").
class CurlEasy {
 public:
  CurlEasy() = default;
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;

  // Creates the handle and sets what both plugins' handles share: no signals, only `protocols`
  // (a CURLOPT_PROTOCOLS_STR list), peer and host name verification against `ca_file` (the
  // system's CA store when it is ""), and the error buffer. Returns "" or what failed.
  std::string Open(const char* protocols, const std::string& ca_file);

  // Returns the handle (null before Open succeeded).
  CURL* get() const { return handle_.get(); }

  // Empties the error buffer; called before each transfer.
  void ClearError() { error_[0] = '\0'; }

  // Returns what libcurl wrote into the error buffer during the last transfer ("" if nothing).
  const char* error_detail() const { return error_; }

  // Returns why the last transfer failed with `code`: the error buffer's detailed message, or
  // libcurl's generic one for `code` when the buffer is empty.
  std::string ErrorText(CURLcode code) const;

 private:
  CurlHandle handle_{nullptr, &curl_easy_cleanup};
  char error_[CURL_ERROR_SIZE] = {};
};

}  // namespace tandem::plugins
