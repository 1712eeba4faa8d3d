#pragma once
// A small SMTP server on 127.0.0.1 for tests of anything that sends mail (the email plugin): it
// speaks enough ESMTP for libcurl, records every message it accepts, and refuses recipients or
// messages with the reply codes the test asks for. Served by standalone Asio on a thread of its
// own; header-only.

#include <array>
#include <asio.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tandem::plugin_test {

// One message as the receiver accepted it.
struct SmtpMessage {
  // The EHLO or HELO argument, and the envelope's addresses without their angle brackets.
  std::string helo, mail_from;
  std::vector<std::string> rcpt_to;
  // What came after DATA, as received (CRLF line ends), up to but not including the final ".",
  // with the dot-stuffing removed (a leading ".." is ".").
  std::string data;

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
      if (colon != name.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < colon && same; ++i) {
        same = std::tolower(static_cast<unsigned char>(field[i])) ==
               std::tolower(static_cast<unsigned char>(name[i]));
      }
      if (!same) continue;
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

// An SMTP server bound to 127.0.0.1 on a port of the kernel's choosing, serving on its own thread
// from construction to destruction. Speaks: the 220 greeting, EHLO and HELO (advertising no
// extensions, in particular no STARTTLS and no AUTH), MAIL FROM, RCPT TO, DATA with 354, the
// final ".", RSET, NOOP and QUIT; anything else is answered 502. Several transactions may share a
// connection. Records only the messages it accepted (a 2xx reply after the final "."). All
// public methods are thread-safe.
class SmtpReceiver {
 public:
  // Binds and starts serving. Throws std::system_error if it cannot bind (a test failure).
  SmtpReceiver()
      : acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        port_(acceptor_.local_endpoint().port()) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Stops serving and closes every connection.
  ~SmtpReceiver() {
    asio::post(io_, [this] {
      std::error_code ignored;
      acceptor_.close(ignored);
      for (const std::weak_ptr<Session>& weak : sessions_) {
        if (auto session = weak.lock()) session->Close();
      }
      sessions_.clear();
      io_.stop();
    });
    thread_.join();
  }

  SmtpReceiver(const SmtpReceiver&) = delete;
  SmtpReceiver& operator=(const SmtpReceiver&) = delete;

  uint16_t port() const { return port_; }

  // Returns "smtp://127.0.0.1:<port>".
  std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port()); }

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

  // Returns every message accepted so far, in order.
  std::vector<SmtpMessage> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }

  // Waits until at least `n` messages were accepted or `timeout` passed. Returns whether they
  // were.
  bool WaitForMessages(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return accepted_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
  }

 private:
  // The longest line (command or data) a client may send, so a broken client cannot make the test
  // run out of memory.
  static constexpr std::size_t kMaxLine = 64 * 1024;

  static std::string Reply(int code) {
    std::string text;
    switch (code) {
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
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::toupper(static_cast<unsigned char>(text[i])) !=
          std::toupper(static_cast<unsigned char>(prefix[i]))) {
        return false;
      }
    }
    return true;
  }

  // Returns the address between the first '<' and the next '>' of `argument`.
  static std::string Address(std::string_view argument) {
    const std::size_t open = argument.find('<');
    const std::size_t close = argument.find('>', open);
    if (open == std::string_view::npos || close == std::string_view::npos) return "";
    return std::string(argument.substr(open + 1, close - open - 1));
  }

  // One client connection. Lives on the receiver's thread; owned by the handlers in flight.
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(SmtpReceiver& owner, asio::ip::tcp::socket socket)
        : owner_(owner), socket_(std::move(socket)) {}

    void Start() { Write("220 127.0.0.1 tandem test receiver ESMTP\r\n", false); }

    void Close() {
      std::error_code ignored;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      socket_.close(ignored);
    }

   private:
    // Handles every complete line in the buffer, one reply at a time, reading more when it needs
    // to.
    void Process() {
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
        if (in_data_) {
          if (line == ".") {
            in_data_ = false;
            const int code = owner_.DataCode();
            if (code >= 200 && code <= 299) {
              message_.helo = helo_;
              owner_.Record(std::move(message_));
            }
            message_ = SmtpMessage{};
            Write(Reply(code), false);
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

    // Answers one command line.
    void Command(std::string_view line) {
      const std::string_view verb = line.substr(0, line.find(' '));
      const std::string_view argument =
          line.size() > verb.size() ? line.substr(verb.size() + 1) : std::string_view();
      if (StartsWithNoCase(verb, "EHLO") && verb.size() == 4) {
        helo_ = std::string(argument);
        message_ = SmtpMessage{};
        Write("250-127.0.0.1 greets " + helo_ + "\r\n250 HELP\r\n", false);
      } else if (StartsWithNoCase(verb, "HELO") && verb.size() == 4) {
        helo_ = std::string(argument);
        message_ = SmtpMessage{};
        Write("250 127.0.0.1\r\n", false);
      } else if (StartsWithNoCase(verb, "MAIL") && verb.size() == 4) {
        if (helo_.empty()) {
          Write("503 5.5.1 EHLO or HELO first\r\n", false);
        } else if (!StartsWithNoCase(argument, "FROM:")) {
          Write("501 5.5.4 syntax: MAIL FROM:<address>\r\n", false);
        } else {
          message_ = SmtpMessage{};
          message_.mail_from = Address(argument);
          in_transaction_ = true;
          Write(Reply(250), false);
        }
      } else if (StartsWithNoCase(verb, "RCPT") && verb.size() == 4) {
        if (!in_transaction_) {
          Write("503 5.5.1 MAIL first\r\n", false);
        } else if (!StartsWithNoCase(argument, "TO:")) {
          Write("501 5.5.4 syntax: RCPT TO:<address>\r\n", false);
        } else {
          const int code = owner_.RcptCode();
          if (code >= 200 && code <= 299) message_.rcpt_to.push_back(Address(argument));
          Write(Reply(code), false);
        }
      } else if (StartsWithNoCase(verb, "DATA") && verb.size() == 4) {
        if (!in_transaction_ || message_.rcpt_to.empty()) {
          Write("503 5.5.1 no valid recipients\r\n", false);
        } else {
          in_data_ = true;
          in_transaction_ = false;
          Write("354 End data with <CR><LF>.<CR><LF>\r\n", false);
        }
      } else if (StartsWithNoCase(verb, "RSET") && verb.size() == 4) {
        message_ = SmtpMessage{};
        in_transaction_ = false;
        Write(Reply(250), false);
      } else if (StartsWithNoCase(verb, "NOOP") && verb.size() == 4) {
        Write(Reply(250), false);
      } else if (StartsWithNoCase(verb, "QUIT") && verb.size() == 4) {
        Write("221 2.0.0 bye\r\n", true);
      } else {
        Write("502 5.5.1 command not implemented\r\n", false);
      }
    }

    void Read() {
      socket_.async_read_some(asio::buffer(chunk_),
                              [self = shared_from_this()](std::error_code ec, std::size_t n) {
                                // A client that goes away, mid-command or not, just ends the
                                // session.
                                if (ec) return;
                                self->buffer_.append(self->chunk_.data(), n);
                                self->Process();
                              });
    }

    // Sends `reply`, then closes the connection (`close`) or goes on with the buffer.
    void Write(std::string reply, bool close) {
      auto owned = std::make_shared<std::string>(std::move(reply));
      asio::async_write(socket_, asio::buffer(*owned),
                        [self = shared_from_this(), owned, close](std::error_code ec, std::size_t) {
                          if (ec) return;
                          if (close) {
                            self->Close();
                          } else {
                            self->Process();
                          }
                        });
    }

    SmtpReceiver& owner_;
    asio::ip::tcp::socket socket_;
    std::array<char, 16 * 1024> chunk_{};
    std::string buffer_;
    std::string helo_;
    bool in_transaction_ = false;
    bool in_data_ = false;
    SmtpMessage message_;
  };

  void Accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      } else {
        auto session = std::make_shared<Session>(*this, std::move(socket));
        std::erase_if(sessions_, [](const auto& weak) { return weak.expired(); });
        sessions_.push_back(session);
        session->Start();
      }
      Accept();
    });
  }

  int RcptCode() const {
    std::lock_guard lock(mutex_);
    return rcpt_code_;
  }

  int DataCode() const {
    std::lock_guard lock(mutex_);
    return data_code_;
  }

  void Record(SmtpMessage message) {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
    accepted_.notify_all();
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable accepted_;
  std::vector<SmtpMessage> messages_;  // guarded by mutex_
  int rcpt_code_ = 250;                // guarded by mutex_
  int data_code_ = 250;                // guarded by mutex_

  // The receiver's thread only.
  std::vector<std::weak_ptr<Session>> sessions_;

  // The acceptor is declared after the io_context so that it is destroyed first; the thread is
  // joined in the destructor, before any member is destroyed. Sessions owned by handlers that
  // never ran are destroyed with the io_context.
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  const uint16_t port_;
  std::thread thread_;
};

}  // namespace tandem::plugin_test
