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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "plugins/common/curl_util.h"
#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

// RFC 5321 4.5.3.1: the longest path and local part a server must accept.
constexpr std::size_t kMaxMailbox = 254;
constexpr std::size_t kMaxLocalPart = 64;
// The longest subject written as is; longer ones go into encoded words, which fold.
constexpr std::size_t kMaxPlainSubject = 900;
// Bytes of subject per RFC 2047 encoded word: 39 bytes are 52 base64 characters, so a word is 64
// characters and "Subject: " and a word fit the 76 RFC 2047 allows per line.
constexpr std::size_t kEncodedWordBytes = 39;
// RFC 2045 6.7: encoded lines are at most 76 characters, the soft line break's "=" included.
constexpr std::size_t kMaxQuotedPrintableLine = 75;

constexpr char kHex[] = "0123456789ABCDEF";

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
  const UrlHandle url = ParseUrl(server, &out.error);
  if (url == nullptr) return out;
  const std::string scheme = UrlScheme(url.get());
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
  out.origin = UrlOrigin(url.get());
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
  CurlEasy curl_;
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
    const std::filesystem::path path = ResolveDataPath(password_file, host.data_dir);
    if (std::optional<std::string> contents = ReadSecretFile(path, "password_file", config)) {
      if (contents->empty()) config.Fail("password_file", path.string() + " is empty");
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
  settings.ca_file = ResolveCaFile(ca_file, host.data_dir, config);
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
  long use_ssl = CURLUSESSL_NONE;
  if (settings.starttls == StartTls::kRequired) use_ssl = CURLUSESSL_ALL;
  if (settings.starttls == StartTls::kOpportunistic) use_ssl = CURLUSESSL_TRY;
  const std::string mail_from = "<" + settings.from + ">";
  if (std::string why = curl_.Open("smtp,smtps", settings.ca_file); !why.empty()) return why;
  CurlOptions options(curl_.get());
  options.Set(CURLOPT_URL, settings.server.url.c_str(), "CURLOPT_URL");
  // Straight to the server: an all_proxy meant for the web must not carry mail.
  options.Set(CURLOPT_PROXY, "", "CURLOPT_PROXY");
  options.Set(CURLOPT_USE_SSL, use_ssl, "CURLOPT_USE_SSL");
  if (!settings.username.empty()) {
    options.Set(CURLOPT_USERNAME, settings.username.c_str(), "CURLOPT_USERNAME");
    options.Set(CURLOPT_PASSWORD, settings.password.c_str(), "CURLOPT_PASSWORD");
  }
  options.Set(CURLOPT_MAIL_FROM, mail_from.c_str(), "CURLOPT_MAIL_FROM");
  options.Set(CURLOPT_TIMEOUT_MS, static_cast<long>(settings.timeout.count()),
              "CURLOPT_TIMEOUT_MS");
  // A fresh connection per message: notifications are rare, servers drop idle connections, and
  // libcurl does not retry an SMTP transaction on a connection that died while idle.
  options.Set(CURLOPT_FORBID_REUSE, 1L, "CURLOPT_FORBID_REUSE");
  options.Set(CURLOPT_UPLOAD, 1L, "CURLOPT_UPLOAD");
  options.Set(CURLOPT_READFUNCTION, &ReadMessage, "CURLOPT_READFUNCTION");
  return options.failed();
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
  CurlList recipients;
  if (!recipients.Add("<" + to + ">")) return Outcome::Retry(where + ": out of memory");

  CURL* curl = curl_.get();
  curl_.ClearError();
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
  std::string what = where + ": " + curl_.ErrorText(code) + " (curl error " +
                     std::to_string(static_cast<int>(code));
  if (reply != 0) what += ", last reply " + std::to_string(reply);
  what += ")";
  if (reply >= 500 && reply <= 599) return Outcome::Permanent(std::move(what));
  if (reply >= 400 && reply <= 499) return Outcome::Retry(std::move(what));
  if (code == CURLE_LOGIN_DENIED) return Outcome::Permanent(std::move(what));
  return Outcome::Retry(std::move(what));
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("email", "1.0.0", &::tandem::plugins::Email::Make)
