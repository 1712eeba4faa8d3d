// The email plugin: sends each notification as one plain-text message (its rendered subject and
// body) to the channel's address, a mailbox, through the configured SMTP server with libcurl,
// and maps the server's replies onto delivered, retry or permanent failure. Configuration, the
// message's form, outcomes and what it trusts: README.md in this folder.

#include <curl/curl.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

// RFC 5321 4.5.3.1: the longest path and local part a server must accept.
constexpr std::size_t kMaxMailbox = 254;
constexpr std::size_t kMaxLocalPart = 64;
// A password file longer than this is not a password file (and is not read into memory).
constexpr std::uintmax_t kMaxPasswordFileBytes = 4096;
// The longest subject written as is; longer ones go into encoded words, which fold.
constexpr std::size_t kMaxPlainSubject = 900;
// Bytes of subject per RFC 2047 encoded word: 39 bytes are 52 base64 characters, so a word is 64
// characters and "Subject: " and a word fit the 76 RFC 2047 allows per line.
constexpr std::size_t kEncodedWordBytes = 39;
// RFC 2045 6.7: encoded lines are at most 76 characters, the soft line break's "=" included.
constexpr std::size_t kMaxQuotedPrintableLine = 75;

constexpr char kHex[] = "0123456789ABCDEF";

// Initialises libcurl and libsodium once per process, however many instances (and threads)
// ask. Returns "" on success, else what failed. Never cleans up: other instances, and other
// plugins in the same process, may go on using both libraries.
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

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5322 atext: what a dot-atom is made of, besides its dots.
bool IsAtext(char c) {
  return IsAlnum(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// Returns true if `text` is an RFC 5322 dot-atom: atext runs separated by single dots.
bool IsDotAtom(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  char previous = '\0';
  for (const char c : text) {
    if (c == '.' ? previous == '.' : !IsAtext(c)) return false;
    previous = c;
  }
  return true;
}

// Returns true if `text` is a host name: letters, digits and '-' in dot-separated labels, no
// label starting or ending with '-'.
bool IsHostName(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text.find('.', start);
    const std::string_view label =
        text.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Returns "" if `address` is a mailbox this plugin sends to: one plain local@domain address in
// ASCII, the local part a dot-atom and the domain a host name (so no blanks, CR, LF, angle
// brackets, commas, quotes or display names). Else why not, without quoting it.
std::string MailboxError(std::string_view address) {
  if (address.empty()) return "the mailbox is empty";
  if (address.size() > kMaxMailbox) {
    return "the mailbox is longer than " + std::to_string(kMaxMailbox) + " characters";
  }
  for (const char c : address) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F) {
      return "the mailbox has a blank, a control character or a non-ASCII character";
    }
  }
  const std::size_t at = address.find('@');
  if (at == std::string_view::npos || address.find('@', at + 1) != std::string_view::npos) {
    return "expected one local@domain mailbox";
  }
  const std::string_view local = address.substr(0, at);
  const std::string_view domain = address.substr(at + 1);
  if (local.size() > kMaxLocalPart || !IsDotAtom(local)) {
    return "the part before @ is not a plain local part (letters, digits, dots and "
           "!#$%&'*+-/=?^_`{|}~)";
  }
  if (!IsHostName(domain)) return "the part after @ is not a host name";
  return "";
}

// Returns true if `name` may follow EHLO: a host name, or an address literal in brackets.
bool IsHeloName(std::string_view name) {
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    std::string_view literal = name.substr(1, name.size() - 2);
    if (literal.starts_with("IPv6:")) literal.remove_prefix(5);
    return !literal.empty() && std::all_of(literal.begin(), literal.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
    });
  }
  return IsHostName(name);
}

// Returns `bytes` percent-encoded: every byte for which `plain` is false as "%XX".
template <typename Plain>
std::string PercentEncode(std::string_view bytes, Plain plain) {
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

// Returns `id` as a header value: as is when it is printable ASCII without blanks or '%', else
// percent-encoded, so that no id can break a header line and two ids never share an encoding.
std::string HeaderSafeId(std::string_view id) {
  auto plain = [](char c) { return c > 0x20 && c < 0x7F && c != '%'; };
  if (std::all_of(id.begin(), id.end(), plain)) return std::string(id);
  return PercentEncode(id, plain);
}

// Returns the Message-ID's part before "@tandem" for notification `id`: the id itself when it is
// a dot-atom without '%' (RFC 5322 3.6.4), else the id with every byte but atext (and '%')
// percent-encoded. The encoded forms always hold a '%' and the plain ones never do, so two ids
// never share a Message-ID. tandemd's ids ("<case>:<cause>:<n>") are encoded (':').
std::string MessageIdLeft(std::string_view id) {
  if (id.empty()) return "%";
  if (IsDotAtom(id) && id.find('%') == std::string_view::npos) return std::string(id);
  return PercentEncode(id, [](char c) { return IsAtext(c) && c != '%'; });
}

// Returns `time` as an RFC 5322 date in UTC, e.g. "Fri, 04 Dec 2026 09:30:00 +0000", in English
// whatever the locale.
std::string MailDate(std::time_t time) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&time, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return text;
}

// Returns `bytes` in base64 (RFC 4648, padded).
std::string Base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// Returns `subject` as the Subject header's value. Each run of CR and LF becomes one space and
// any other control character a space, so the subject cannot end the header and start another.
// Printable ASCII is written as is; anything else (and text that would read as an encoded word)
// as RFC 2047 encoded words in UTF-8 and base64, never splitting a character, folded one word
// per line.
std::string EncodeSubject(std::string_view subject) {
  std::string clean;
  bool plain = subject.size() <= kMaxPlainSubject;
  for (std::size_t i = 0; i < subject.size(); ++i) {
    const char c = subject[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') {
      if (i == 0 || (subject[i - 1] != '\r' && subject[i - 1] != '\n')) clean += ' ';
    } else if (u < 0x20 || u == 0x7F) {
      clean += ' ';
    } else {
      plain = plain && u < 0x80;
      clean += c;
    }
  }
  if (plain && clean.find("=?") == std::string::npos) return clean;
  std::string out;
  std::size_t start = 0;
  while (start < clean.size()) {
    std::size_t end = std::min(clean.size(), start + kEncodedWordBytes);
    // Back off to the start of a UTF-8 character (not past a run too long to be one).
    std::size_t cut = end;
    while (cut > start && cut < clean.size() &&
           (static_cast<unsigned char>(clean[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    if (cut > start) end = cut;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(std::string_view(clean).substr(start, end - start)) + "?=";
    start = end;
  }
  return out;
}

// Returns `text` quoted-printable encoded (RFC 2045 6.7) with CRLF line ends: each CRLF, lone CR
// or lone LF of `text` becomes a line break, '=' and bytes outside printable ASCII become "=XX",
// a blank ending a line is encoded, and longer lines are broken with soft line breaks. '.' is
// left as is: a line starting with one is dot-stuffed by libcurl while sending.
std::string QuotedPrintable(std::string_view text) {
  std::string out;
  std::size_t length = 0;
  auto emit = [&out, &length](std::string_view token) {
    if (length + token.size() > kMaxQuotedPrintableLine) {
      out += "=\r\n";
      length = 0;
    }
    out += token;
    length += token.size();
  };
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) end = text.size();
    for (std::size_t i = start; i < end; ++i) {
      const char c = text[i];
      const auto u = static_cast<unsigned char>(c);
      const bool blank = c == ' ' || c == '\t';
      if ((u >= 33 && u <= 126 && c != '=') || (blank && i + 1 < end)) {
        emit(std::string_view(&text[i], 1));
      } else {
        const char encoded[3] = {'=', kHex[u >> 4], kHex[u & 0xF]};
        emit(std::string_view(encoded, 3));
      }
    }
    if (end == text.size()) break;
    out += "\r\n";
    length = 0;
    start = end + (text.compare(end, 2, "\r\n") == 0 ? 2 : 1);
  }
  return out;
}

// Returns the message for `delivery` to `to`, ready to upload: headers, a blank line, the body
// quoted-printable, CRLF line ends throughout. Not dot-stuffed: libcurl does that while sending.
std::string ComposeMessage(const std::string& from, const std::string& to,
                           const tandem_plugin_delivery& delivery, std::time_t now) {
  const std::string_view id(delivery.notification_id);
  std::string message;
  message += "Date: " + MailDate(now) + "\r\n";
  message += "From: " + from + "\r\n";
  message += "To: " + to + "\r\n";
  message += "Subject: " + EncodeSubject(delivery.subject) + "\r\n";
  message += "Message-ID: <" + MessageIdLeft(id) + "@tandem>\r\n";
  message += "X-Tandem-Notification-Id: " + HeaderSafeId(id) + "\r\n";
  message += "X-Tandem-Delivery-Id: " + std::to_string(delivery.delivery_id) + "\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=utf-8\r\n";
  message += "Content-Transfer-Encoding: quoted-printable\r\n";
  message += "\r\n";
  message += QuotedPrintable(delivery.body);
  message += "\r\n";
  return message;
}

// Returns `file` resolved against `data_dir` when it is relative.
std::filesystem::path Resolve(const std::string& file, const std::string& data_dir) {
  std::filesystem::path path(file);
  if (path.is_relative()) path = std::filesystem::path(data_dir) / path;
  return path.lexically_normal();
}

// Overwrites `secret` before it is freed.
void Wipe(std::string& secret) {
  if (!secret.empty()) sodium_memzero(secret.data(), secret.size());
  secret.clear();
}

// Returns the contents of the password file `path` without trailing line breaks, or records in
// `config` why it cannot be read. Never quotes the contents.
std::optional<std::string> ReadPasswordFile(const std::filesystem::path& path, Config& config) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    config.Fail("password_file", "cannot read " + path.string() + ": " + ec.message());
    return std::nullopt;
  }
  if (size > kMaxPasswordFileBytes) {
    config.Fail("password_file", path.string() + " is larger than " +
                                     std::to_string(kMaxPasswordFileBytes) + " bytes");
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    Wipe(contents);
    config.Fail("password_file", "cannot read " + path.string());
    return std::nullopt;
  }
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) {
    contents.back() = '\0';
    contents.pop_back();
  }
  if (contents.empty()) config.Fail("password_file", path.string() + " is empty");
  return contents;
}

using UrlHandle = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

// Returns the part `part` of `url`, or "" when it has none.
std::string UrlPart(CURLU* url, CURLUPart part, unsigned int flags = 0) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, flags) != CURLUE_OK || value == nullptr) return "";
  std::string out(value);
  curl_free(value);
  return out;
}

// The configured SMTP server.
struct Server {
  // Why `server` (or `helo`) cannot be used; "" if it can.
  std::string error;
  // The URL libcurl connects to; its path is the EHLO name, when one is configured.
  std::string url;
  // "smtp://mail.example.org:25", for messages.
  std::string origin;
  bool smtps = false;
};

// Parses `server`, which must be smtp://host[:port] or smtps://host[:port] with no credentials,
// path or query, with libcurl's URL parser, and puts `helo` (when not empty) into its path, where
// libcurl takes the EHLO name from. No I/O.
Server ParseServer(const std::string& server, const std::string& helo) {
  Server out;
  UrlHandle url(curl_url(), &curl_url_cleanup);
  if (url == nullptr) {
    out.error = "out of memory";
    return out;
  }
  if (const CURLUcode code = curl_url_set(url.get(), CURLUPART_URL, server.c_str(), 0);
      code != CURLUE_OK) {
    out.error = std::string("not a URL (") + curl_url_strerror(code) + ")";
    return out;
  }
  std::string scheme = UrlPart(url.get(), CURLUPART_SCHEME);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string host = UrlPart(url.get(), CURLUPART_HOST);
  const std::string path = UrlPart(url.get(), CURLUPART_PATH);
  if (scheme != "smtp" && scheme != "smtps") {
    out.error = "expected smtp://host:port or smtps://host:port";
  } else if (host.empty()) {
    out.error = "the URL has no host";
  } else if (!UrlPart(url.get(), CURLUPART_USER).empty() ||
             !UrlPart(url.get(), CURLUPART_PASSWORD).empty()) {
    out.error = "credentials belong in username and password, not in the URL";
  } else if (!(path.empty() || path == "/") || !UrlPart(url.get(), CURLUPART_QUERY).empty() ||
             !UrlPart(url.get(), CURLUPART_FRAGMENT).empty()) {
    out.error = "expected no path or query (the EHLO name is set with helo)";
  }
  if (!out.error.empty()) return out;
  out.smtps = scheme == "smtps";
  out.origin = scheme + "://" + host + ":" + UrlPart(url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!helo.empty() &&
      curl_url_set(url.get(), CURLUPART_PATH, ("/" + helo).c_str(), 0) != CURLUE_OK) {
    out.error = "cannot put the EHLO name into the URL";
    return out;
  }
  out.url = UrlPart(url.get(), CURLUPART_URL);
  if (out.url.empty()) out.error = "cannot build the URL";
  return out;
}

// The message being uploaded, for libcurl's read callback.
struct Upload {
  std::string_view data;
  std::size_t sent = 0;
};

// libcurl's read callback: hands over the next part of the message; 0 at its end.
size_t ReadMessage(char* buffer, size_t size, size_t count, void* context) {
  auto* upload = static_cast<Upload*>(context);
  const std::size_t n = std::min(size * count, upload->data.size() - upload->sent);
  std::memcpy(buffer, upload->data.data() + upload->sent, n);
  upload->sent += n;
  return n;
}

// A curl_slist that frees itself. Add reports whether the line was added.
class StringList {
 public:
  StringList() = default;
  ~StringList() { curl_slist_free_all(list_); }
  StringList(const StringList&) = delete;
  StringList& operator=(const StringList&) = delete;

  bool Add(const std::string& line) {
    curl_slist* grown = curl_slist_append(list_, line.c_str());
    if (grown == nullptr) return false;
    list_ = grown;
    return true;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

// How the STARTTLS setting maps onto libcurl's CURLOPT_USE_SSL.
enum class StartTls { kOff, kRequired, kOpportunistic };

// The settings of one instance, read from its configuration.
struct Settings {
  Server server;
  std::string from;
  StartTls starttls = StartTls::kOff;
  std::string username;
  std::string password;  // wiped once handed to libcurl
  std::chrono::milliseconds timeout{30000};
  std::string ca_file;  // resolved; "" for the system's CA store
};

// One email channel instance: its settings and its own CURL handle (which keeps the DNS cache and
// TLS sessions between deliveries). Created and destroyed on the daemon's main thread; Deliver
// runs on one thread at a time (plugin.h, "Threading").
class Email final : public Instance {
 public:
  // Returns the instance `config` describes, or nullptr when the configuration is refused (the
  // reason recorded in `config`) or libcurl cannot be set up (the reason in *error).
  static std::unique_ptr<Instance> Make(std::string_view name, Config& config,
                                        const tandem_plugin_host& host, std::string* error);

  std::string CheckAddress(std::string_view address) const override {
    return MailboxError(address);
  }
  Outcome Deliver(const tandem_plugin_delivery& delivery) override;

 private:
  Email(std::string origin, std::string from)
      : origin_(std::move(origin)), from_(std::move(from)) {}

  // Sets the options every message of this instance shares. Returns "" or what libcurl refused.
  std::string SetUp(const Settings& settings);

  const std::string origin_;
  const std::string from_;
  CurlHandle curl_{nullptr, &curl_easy_cleanup};
  char curl_error_[CURL_ERROR_SIZE] = {};
};

std::unique_ptr<Instance> Email::Make(std::string_view /*name*/, Config& config,
                                      const tandem_plugin_host& host, std::string* error) {
  if (const std::string& why = InitLibraries(); !why.empty()) {
    *error = why;
    return nullptr;
  }
  // Read every key first, so that a misspelt key is reported as unknown rather than hidden
  // behind a later check.
  Settings settings;
  const std::string server = config.RequiredString("server");
  settings.from = config.RequiredString("from");
  const std::string starttls = config.String("starttls", "off");
  settings.username = config.String("username");
  settings.password = config.String("password");
  const std::string password_file = config.String("password_file");
  settings.timeout = config.Millis("timeout_ms", std::chrono::milliseconds(30000));
  const std::string ca_file = config.String("ca_file");
  const std::string helo = config.String("helo");
  if (!config.Finish().empty()) {
    Wipe(settings.password);
    return nullptr;
  }

  if (!helo.empty() && !IsHeloName(helo)) {
    config.Fail("helo", "expected a host name or an address literal in brackets");
  }
  settings.server = ParseServer(server, helo);
  if (!settings.server.error.empty()) config.Fail("server", settings.server.error);
  if (const std::string why = MailboxError(settings.from); !why.empty()) config.Fail("from", why);
  if (starttls == "off") {
    settings.starttls = StartTls::kOff;
  } else if (starttls == "required") {
    settings.starttls = StartTls::kRequired;
  } else if (starttls == "opportunistic") {
    settings.starttls = StartTls::kOpportunistic;
  } else {
    config.Fail("starttls", "expected off, required or opportunistic");
  }
  if (settings.server.smtps && settings.starttls != StartTls::kOff) {
    config.Fail("starttls", "only for smtp:// servers; smtps:// is TLS from the start");
  }
  if (!settings.password.empty() && !password_file.empty()) {
    config.Fail("password_file", "set at most one of password and password_file");
  } else if (!password_file.empty()) {
    if (std::optional<std::string> contents =
            ReadPasswordFile(Resolve(password_file, host.data_dir), config)) {
      settings.password = std::move(*contents);
    }
  }
  const bool has_password = !settings.password.empty() || !password_file.empty();
  if (has_password && settings.username.empty()) {
    config.Fail("username", "required with password or password_file");
  } else if (!settings.username.empty() && !has_password) {
    config.Fail("password", "required with username (or password_file)");
  } else if (has_password && !settings.server.smtps && settings.starttls != StartTls::kRequired) {
    // The password would cross the network in clear, or could be made to by anyone able to
    // strip STARTTLS from the server's reply.
    config.Fail("starttls", "must be required when a password is set for an smtp:// server");
  }
  if (std::any_of(settings.username.begin(), settings.username.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7F; })) {
    config.Fail("username", "has control characters");
  }
  if (!ca_file.empty()) {
    settings.ca_file = Resolve(ca_file, host.data_dir).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(settings.ca_file, ec) ||
        !std::ifstream(settings.ca_file).good()) {
      config.Fail("ca_file", "cannot read " + settings.ca_file);
    }
  }
  if (!config.Finish().empty()) {
    Wipe(settings.password);
    return nullptr;
  }

  std::unique_ptr<Email> email(new Email(settings.server.origin, settings.from));
  std::string why = email->SetUp(settings);
  Wipe(settings.password);
  if (!why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  const char* tls = settings.server.smtps                           ? "TLS (smtps)"
                    : settings.starttls == StartTls::kRequired      ? "STARTTLS required"
                    : settings.starttls == StartTls::kOpportunistic ? "STARTTLS if offered"
                                                                    : "no TLS";
  HostLog(&host).Info("sends mail through " + settings.server.origin + " with " + tls +
                      (settings.username.empty() ? "" : ", authenticating") + "; timeout " +
                      std::to_string(settings.timeout.count()) + " ms");
  return email;
}

std::string Email::SetUp(const Settings& settings) {
  curl_.reset(curl_easy_init());
  if (curl_ == nullptr) return "cannot create a libcurl handle";
  std::string failed;
  auto set = [this, &failed](CURLoption option, auto value, const char* option_name) {
    if (!failed.empty()) return;
    if (const CURLcode code = curl_easy_setopt(curl_.get(), option, value); code != CURLE_OK) {
      failed = std::string("libcurl refused ") + option_name + ": " + curl_easy_strerror(code);
    }
  };
  long use_ssl = CURLUSESSL_NONE;
  if (settings.starttls == StartTls::kRequired) use_ssl = CURLUSESSL_ALL;
  if (settings.starttls == StartTls::kOpportunistic) use_ssl = CURLUSESSL_TRY;
  const std::string mail_from = "<" + settings.from + ">";
  // Signals are not ours to use (plugin.h); libcurl's threaded resolver needs none.
  set(CURLOPT_NOSIGNAL, 1L, "CURLOPT_NOSIGNAL");
  set(CURLOPT_PROTOCOLS_STR, "smtp,smtps", "CURLOPT_PROTOCOLS_STR");
  set(CURLOPT_URL, settings.server.url.c_str(), "CURLOPT_URL");
  // Straight to the server: an all_proxy meant for the web must not carry mail.
  set(CURLOPT_PROXY, "", "CURLOPT_PROXY");
  set(CURLOPT_USE_SSL, use_ssl, "CURLOPT_USE_SSL");
  set(CURLOPT_SSL_VERIFYPEER, 1L, "CURLOPT_SSL_VERIFYPEER");
  set(CURLOPT_SSL_VERIFYHOST, 2L, "CURLOPT_SSL_VERIFYHOST");
  if (!settings.ca_file.empty()) set(CURLOPT_CAINFO, settings.ca_file.c_str(), "CURLOPT_CAINFO");
  if (!settings.username.empty()) {
    set(CURLOPT_USERNAME, settings.username.c_str(), "CURLOPT_USERNAME");
    set(CURLOPT_PASSWORD, settings.password.c_str(), "CURLOPT_PASSWORD");
  }
  set(CURLOPT_MAIL_FROM, mail_from.c_str(), "CURLOPT_MAIL_FROM");
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(settings.timeout.count()), "CURLOPT_TIMEOUT_MS");
  // A fresh connection per message: notifications are rare, servers drop idle connections, and
  // libcurl does not retry an SMTP transaction on a connection that died while idle.
  set(CURLOPT_FORBID_REUSE, 1L, "CURLOPT_FORBID_REUSE");
  set(CURLOPT_UPLOAD, 1L, "CURLOPT_UPLOAD");
  set(CURLOPT_READFUNCTION, &ReadMessage, "CURLOPT_READFUNCTION");
  set(CURLOPT_ERRORBUFFER, curl_error_, "CURLOPT_ERRORBUFFER");
  return failed;
}

Outcome Email::Deliver(const tandem_plugin_delivery& delivery) {
  const std::string to(delivery.address);
  if (const std::string why = MailboxError(to); !why.empty()) {
    return Outcome::Permanent("email address: " + why);
  }
  const std::string where = "mail to " + to + " via " + origin_;
  const std::string message = ComposeMessage(
      from_, to, delivery, std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
  Upload upload{message};
  StringList recipients;
  if (!recipients.Add("<" + to + ">")) return Outcome::Retry(where + ": out of memory");

  CURL* curl = curl_.get();
  curl_error_[0] = '\0';
  CURLcode code = curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, recipients.get());
  if (code == CURLE_OK) code = curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
  if (code == CURLE_OK) {
    code =
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  }
  if (code == CURLE_OK) code = curl_easy_perform(curl);
  // The handle must not keep pointers to this call's recipients and message past it.
  curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, static_cast<curl_slist*>(nullptr));
  curl_easy_setopt(curl, CURLOPT_READDATA, static_cast<void*>(nullptr));
  if (code == CURLE_OK) return Outcome::Delivered();

  // libcurl keeps the server's last reply code even when the transfer failed, which tells a
  // refusal (5xx: permanent) from a "try again later" (4xx) and from a broken connection (none).
  long reply = 0;
  if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply) != CURLE_OK) reply = 0;
  std::string what = where + ": " +
                     (curl_error_[0] != '\0' ? curl_error_ : curl_easy_strerror(code)) +
                     " (curl error " + std::to_string(static_cast<int>(code));
  if (reply != 0) what += ", last reply " + std::to_string(reply);
  what += ")";
  if (reply >= 500 && reply <= 599) return Outcome::Permanent(std::move(what));
  if (reply >= 400 && reply <= 499) return Outcome::Retry(std::move(what));
  if (code == CURLE_LOGIN_DENIED) return Outcome::Permanent(std::move(what));
  return Outcome::Retry(std::move(what));
}

std::unique_ptr<Instance> MakeEmail(std::string_view name, Config& config,
                                    const tandem_plugin_host& host, std::string* error) {
  return Email::Make(name, config, host, error);
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("email", "1.0.0", &::tandem::plugins::MakeEmail)
