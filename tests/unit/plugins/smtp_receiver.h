#pragma once
// A small SMTP server on 127.0.0.1 for tests of anything that sends mail (the email plugin): it
// speaks enough ESMTP for libcurl, records every message it accepts, and refuses recipients,
// messages or logins with the reply codes the test asks for. Plain SMTP, or with the certificate
// a test gives it STARTTLS or TLS from the start (smtps), and then AUTH PLAIN. Served by a
// LoopbackServer (loopback_server.h); header-only.

#include <asio.hpp>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/unit/plugins/loopback_server.h"

namespace tandem::plugin_test {

// One message as the receiver accepted it.
struct SmtpMessage {
  // The EHLO or HELO argument, and the envelope's addresses without their angle brackets.
  std::string helo, mail_from;
  std::vector<std::string> rcpt_to;
  // What came after DATA, as received (CRLF line ends), up to but not including the final ".",
  // with the dot-stuffing removed (a leading ".." is ".").
  std::string data;
  // Whether the message came over TLS.
  bool tls = false;
  // The user and password the session logged in with (AUTH PLAIN); both "" if it did not.
  std::string auth_user, auth_password;

  // Returns the value of the first header called `name` (compared case-insensitively), unfolded
  // (the CRLF before each continuation line removed) and without the blanks after the colon, or
  // "" if there is none.
  std::string Header(std::string_view name) const {
    const std::size_t end = data.find("\r\n\r\n");
    const std::string_view head =
        std::string_view(data).substr(0, end == std::string::npos ? data.size() : end + 2);
    std::vector<std::string> fields;
    std::size_t pos = 0;
    while (pos < head.size()) {
      std::size_t eol = head.find("\r\n", pos);
      if (eol == std::string_view::npos) eol = head.size();
      const std::string_view line = head.substr(pos, eol - pos);
      if (!fields.empty() && !line.empty() && (line.front() == ' ' || line.front() == '\t')) {
        fields.back() += line;
      } else {
        fields.emplace_back(line);
      }
      pos = eol + 2;
    }
    for (const std::string& field : fields) {
      const std::size_t colon = field.find(':');
      if (colon == std::string::npos || !EqualsNoCase(field.substr(0, colon), name)) continue;
      std::size_t start = colon + 1;
      while (start < field.size() && (field[start] == ' ' || field[start] == '\t')) ++start;
      return field.substr(start);
    }
    return "";
  }

  // Returns what follows the blank line that ends the headers ("" if there is none).
  std::string Body() const {
    const std::size_t end = data.find("\r\n\r\n");
    return end == std::string::npos ? "" : data.substr(end + 4);
  }
};

// One command a SmtpReceiver received: its verb in capitals ("EHLO", "STARTTLS", "AUTH", ...),
// and whether it came over TLS. The lines of AUTH's exchange and of DATA are not commands.
struct SmtpCommand {
  std::string verb;
  bool tls = false;
};

// How an SmtpReceiver offers TLS.
enum class SmtpTls {
  // In clear at first; EHLO offers STARTTLS (until TLS is on) and AUTH PLAIN. AUTH is offered in
  // clear too, as a lax server would, so that a test sees whether the client waits for TLS.
  kStartTls,
  // TLS from the first byte (smtps://); EHLO offers AUTH PLAIN.
  kSmtps,
};

// An SMTP server bound to 127.0.0.1 on a port of the kernel's choosing, serving on its own thread
// from construction to destruction. Speaks: the 220 greeting, EHLO and HELO, MAIL FROM, RCPT TO,
// DATA with 354, the final ".", RSET, NOOP and QUIT; with TLS also STARTTLS (SmtpTls::kStartTls)
// and AUTH PLAIN; anything else is answered 502. Without TLS, EHLO advertises no extensions (in
// particular no STARTTLS and no AUTH). STARTTLS discards what the client sent after it in clear,
// and the client must EHLO again (RFC 3207). Several transactions may share a connection.
// Records only the messages it accepted (a 2xx reply after the final "."). All public methods
// are thread-safe.
class SmtpReceiver {
 public:
  // Binds and starts serving plain SMTP. Throws std::system_error if it cannot bind (a test
  // failure).
  SmtpReceiver() : SmtpReceiver(std::nullopt, nullptr) {}

  // Binds and starts serving SMTP with TLS as `mode` says, with `tls`. Keeps `tls`. Throws
  // std::system_error if it cannot bind.
  // REQUIRES: `tls` is not null.
  SmtpReceiver(SmtpTls mode, std::shared_ptr<LoopbackTls> tls)
      : SmtpReceiver(std::optional<SmtpTls>(mode), std::move(tls)) {}

  // Stops serving and closes every connection.
  ~SmtpReceiver() { server_.Stop(); }

  SmtpReceiver(const SmtpReceiver&) = delete;
  SmtpReceiver& operator=(const SmtpReceiver&) = delete;

  uint16_t port() const { return server_.port(); }

  // Returns "smtp://127.0.0.1:<port>" ("smtps://..." for SmtpTls::kSmtps).
  std::string url() const {
    return std::string(mode_ == SmtpTls::kSmtps ? "smtps" : "smtp") +
           "://127.0.0.1:" + std::to_string(port());
  }

  // Answers every RCPT TO from now on with `code` (250 until changed; e.g. 550 or 451).
  void ReplyToRcpt(int code) {
    std::lock_guard lock(mutex_);
    rcpt_code_ = code;
  }

  // Answers the final "." of every message from now on with `code` (250 until changed).
  void ReplyToData(int code) {
    std::lock_guard lock(mutex_);
    data_code_ = code;
  }

  // Answers every AUTH from now on with `code` (235 until changed; e.g. 535 or 454).
  void ReplyToAuth(int code) {
    std::lock_guard lock(mutex_);
    auth_code_ = code;
  }

  // Offers `mechanisms` after AUTH in EHLO from now on ("PLAIN" until changed). AUTH itself
  // still accepts PLAIN only.
  void OfferAuth(std::string mechanisms) {
    std::lock_guard lock(mutex_);
    auth_mechanisms_ = std::move(mechanisms);
  }

  // Returns how many connections clients opened so far.
  std::size_t connections() const { return server_.accepted(); }

  // Returns every command received so far, on any connection, in order.
  std::vector<SmtpCommand> commands() const { return commands_.Get(); }

  // Returns every message accepted so far, in order.
  std::vector<SmtpMessage> messages() const { return messages_.Get(); }

  // Waits until at least `n` messages were accepted or `timeout` passed. Returns whether they
  // were.
  bool WaitForMessages(std::size_t n, std::chrono::milliseconds timeout) const {
    return messages_.WaitFor(n, timeout);
  }

 private:
  SmtpReceiver(std::optional<SmtpTls> mode, std::shared_ptr<LoopbackTls> tls)
      : mode_(mode), tls_(std::move(tls)), server_([this](asio::ip::tcp::socket socket) {
          return std::make_shared<Session>(*this, std::move(socket));
        }) {}

  // The longest line (command or data) a client may send, so a broken client cannot make the test
  // run out of memory.
  static constexpr std::size_t kMaxLine = 64 * 1024;

  static std::string Reply(int code) {
    std::string text;
    switch (code) {
      case 235:
        text = "2.7.0 authentication successful";
        break;
      case 250:
        text = "2.0.0 OK";
        break;
      case 421:
        text = "4.3.2 service not available";
        break;
      case 450:
        text = "4.2.1 mailbox busy";
        break;
      case 451:
        text = "4.3.0 try again later";
        break;
      case 452:
        text = "4.3.1 insufficient system storage";
        break;
      case 454:
        text = "4.7.0 temporary authentication failure";
        break;
      case 535:
        text = "5.7.8 authentication credentials invalid";
        break;
      case 550:
        text = "5.1.1 mailbox unavailable";
        break;
      case 552:
        text = "5.3.4 message too big";
        break;
      case 554:
        text = "5.6.0 transaction failed";
        break;
      default:
        text = "test reply";
        break;
    }
    return std::to_string(code) + " " + text + "\r\n";
  }

  // Returns whether `text` starts with `prefix`, compared case-insensitively.
  static bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
    return EqualsNoCase(text.substr(0, prefix.size()), prefix);
  }

  // Returns the address between the first '<' and the next '>' of `argument`.
  static std::string Address(std::string_view argument) {
    const std::size_t open = argument.find('<');
    const std::size_t close = argument.find('>', open);
    if (open == std::string_view::npos || close == std::string_view::npos) return "";
    return std::string(argument.substr(open + 1, close - open - 1));
  }

  // Returns `text` decoded from base64 (RFC 4648, padded), or nullopt if it is not base64.
  static std::optional<std::string> DecodeBase64(std::string_view text) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '=') {
        // Padding: only at the end, at most two.
        if (i + 2 < text.size() || text.find_first_not_of('=', i) != std::string_view::npos) {
          return std::nullopt;
        }
        break;
      }
      const std::size_t value = kAlphabet.find(text[i]);
      if (value == std::string_view::npos) return std::nullopt;
      bits = (bits << 6) | static_cast<uint32_t>(value);
      count += 6;
      if (count >= 8) {
        count -= 8;
        out += static_cast<char>((bits >> count) & 0xFF);
      }
    }
    return out;
  }

  // One client connection. Lives on the receiver's thread; owned by the handlers in flight.
  class Session : public LoopbackConnection {
   public:
    Session(SmtpReceiver& owner, asio::ip::tcp::socket socket)
        : LoopbackConnection(std::move(socket)), owner_(owner) {}

    void Start() override {
      auto greet = [this] { Send("220 127.0.0.1 tandem test receiver ESMTP\r\n"); };
      if (owner_.mode_ == SmtpTls::kSmtps) {
        StartTls(*owner_.tls_, greet);
      } else {
        greet();
      }
    }

   private:
    // Handles every complete line in the buffer, one reply at a time, reading more when it needs
    // to.
    void Process() override {
      while (true) {
        const std::size_t eol = buffer_.find('\n');
        if (eol == std::string::npos) {
          if (buffer_.size() > kMaxLine) {
            Close();
          } else {
            Read();
          }
          return;
        }
        std::string line = buffer_.substr(0, eol);
        buffer_.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (in_auth_) {
          in_auth_ = false;
          Authenticate(line);
          return;
        }
        if (in_data_) {
          if (line == ".") {
            in_data_ = false;
            const int code = owner_.DataCode();
            if (code >= 200 && code <= 299) {
              message_.helo = helo_;
              message_.tls = tls();
              message_.auth_user = auth_user_;
              message_.auth_password = auth_password_;
              owner_.messages_.Add(std::move(message_));
            }
            message_ = SmtpMessage{};
            Send(Reply(code));
            return;
          }
          if (!line.empty() && line.front() == '.') line.erase(0, 1);
          message_.data += line;
          message_.data += "\r\n";
          continue;
        }
        Command(line);
        return;
      }
    }

    // Returns whether EHLO offers AUTH, and AUTH is served.
    bool OffersAuth() const { return owner_.mode_.has_value(); }

    // Returns whether EHLO offers STARTTLS, and STARTTLS is served.
    bool OffersStartTls() const { return owner_.mode_ == SmtpTls::kStartTls && !tls(); }

    // Answers one command line.
    void Command(std::string_view line) {
      const std::string_view verb = line.substr(0, line.find(' '));
      const std::string_view argument =
          line.size() > verb.size() ? line.substr(verb.size() + 1) : std::string_view();
      owner_.Received(verb, tls());
      if (EqualsNoCase(verb, "EHLO")) {
        helo_ = std::string(argument);
        message_ = SmtpMessage{};
        std::string reply = "250-127.0.0.1 greets " + helo_ + "\r\n";
        if (OffersStartTls()) reply += "250-STARTTLS\r\n";
        if (OffersAuth()) reply += "250-AUTH " + owner_.AuthMechanisms() + "\r\n";
        Send(reply + "250 HELP\r\n");
      } else if (EqualsNoCase(verb, "HELO")) {
        helo_ = std::string(argument);
        message_ = SmtpMessage{};
        Send("250 127.0.0.1\r\n");
      } else if (EqualsNoCase(verb, "STARTTLS") && OffersStartTls()) {
        Write("220 2.0.0 ready to start TLS\r\n", [this] {
          StartTls(*owner_.tls_, [this] {
            // RFC 3207 4.2: the client starts over, as after the greeting.
            helo_.clear();
            message_ = SmtpMessage{};
            in_transaction_ = false;
            Process();
          });
        });
      } else if (EqualsNoCase(verb, "AUTH") && OffersAuth()) {
        const std::string_view mechanism = argument.substr(0, argument.find(' '));
        if (helo_.empty()) {
          Send("503 5.5.1 EHLO first\r\n");
        } else if (!auth_user_.empty()) {
          Send("503 5.5.1 already authenticated\r\n");
        } else if (!EqualsNoCase(mechanism, "PLAIN")) {
          Send("504 5.5.4 mechanism not supported\r\n");
        } else if (argument.size() > mechanism.size()) {
          Authenticate(argument.substr(mechanism.size() + 1));
        } else {
          in_auth_ = true;
          Send("334 \r\n");
        }
      } else if (EqualsNoCase(verb, "MAIL")) {
        if (helo_.empty()) {
          Send("503 5.5.1 EHLO or HELO first\r\n");
        } else if (!StartsWithNoCase(argument, "FROM:")) {
          Send("501 5.5.4 syntax: MAIL FROM:<address>\r\n");
        } else {
          message_ = SmtpMessage{};
          message_.mail_from = Address(argument);
          in_transaction_ = true;
          Send(Reply(250));
        }
      } else if (EqualsNoCase(verb, "RCPT")) {
        if (!in_transaction_) {
          Send("503 5.5.1 MAIL first\r\n");
        } else if (!StartsWithNoCase(argument, "TO:")) {
          Send("501 5.5.4 syntax: RCPT TO:<address>\r\n");
        } else {
          const int code = owner_.RcptCode();
          if (code >= 200 && code <= 299) message_.rcpt_to.push_back(Address(argument));
          Send(Reply(code));
        }
      } else if (EqualsNoCase(verb, "DATA")) {
        if (!in_transaction_ || message_.rcpt_to.empty()) {
          Send("503 5.5.1 no valid recipients\r\n");
        } else {
          in_data_ = true;
          in_transaction_ = false;
          Send("354 End data with <CR><LF>.<CR><LF>\r\n");
        }
      } else if (EqualsNoCase(verb, "RSET")) {
        message_ = SmtpMessage{};
        in_transaction_ = false;
        Send(Reply(250));
      } else if (EqualsNoCase(verb, "NOOP")) {
        Send(Reply(250));
      } else if (EqualsNoCase(verb, "QUIT")) {
        Send("221 2.0.0 bye\r\n", true);
      } else {
        Send("502 5.5.1 command not implemented\r\n");
      }
    }

    // Checks AUTH PLAIN's response, base64 of "<authzid>\0<user>\0<password>", and answers it.
    void Authenticate(std::string_view response) {
      if (response == "*") {
        Send("501 5.7.0 authentication cancelled\r\n");
        return;
      }
      const std::optional<std::string> decoded = DecodeBase64(response);
      const std::size_t first = decoded ? decoded->find('\0') : std::string::npos;
      const std::size_t second =
          first == std::string::npos ? std::string::npos : decoded->find('\0', first + 1);
      if (second == std::string::npos) {
        Send("501 5.5.2 cannot decode the response\r\n");
        return;
      }
      const int code = owner_.AuthCode();
      if (code >= 200 && code <= 299) {
        auth_user_ = decoded->substr(first + 1, second - first - 1);
        auth_password_ = decoded->substr(second + 1);
      }
      Send(Reply(code));
    }

    // Sends `reply`, then closes the connection (`close`) or goes on with the buffer.
    void Send(std::string reply, bool close = false) {
      Write(std::move(reply), [this, close] {
        if (close) {
          Close();
        } else {
          Process();
        }
      });
    }

    SmtpReceiver& owner_;
    std::string helo_;
    std::string auth_user_, auth_password_;
    bool in_transaction_ = false;
    bool in_data_ = false;
    bool in_auth_ = false;
    SmtpMessage message_;
  };

  void Received(std::string_view verb, bool tls) {
    SmtpCommand command{std::string(verb), tls};
    for (char& c : command.verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    commands_.Add(std::move(command));
  }

  std::string AuthMechanisms() const {
    std::lock_guard lock(mutex_);
    return auth_mechanisms_;
  }

  int AuthCode() const {
    std::lock_guard lock(mutex_);
    return auth_code_;
  }

  int RcptCode() const {
    std::lock_guard lock(mutex_);
    return rcpt_code_;
  }

  int DataCode() const {
    std::lock_guard lock(mutex_);
    return data_code_;
  }

  Recorded<SmtpMessage> messages_;
  Recorded<SmtpCommand> commands_;
  mutable std::mutex mutex_;
  int rcpt_code_ = 250;                    // guarded by mutex_
  int data_code_ = 250;                    // guarded by mutex_
  int auth_code_ = 235;                    // guarded by mutex_
  std::string auth_mechanisms_ = "PLAIN";  // guarded by mutex_

  // Set before the server starts and constant after: sessions read them on the server's thread.
  const std::optional<SmtpTls> mode_;
  const std::shared_ptr<LoopbackTls> tls_;
  // Declared last: it starts serving once everything above is constructed, and is stopped (its
  // destructor) before anything above is destroyed.
  LoopbackServer server_;
};

}  // namespace tandem::plugin_test
