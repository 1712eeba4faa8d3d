#pragma once
// A small HTTP/1.1 server on 127.0.0.1 for tests of anything that POSTs notifications (the
// webhook plugin, tandemd's integration tests): it records every request and answers with the
// statuses the test asks for, or holds its answers back to make the client time out. Plain HTTP,
// or HTTPS with the certificate a test gives it. Served by a LoopbackServer (loopback_server.h);
// header-only.

#include <algorithm>
#include <asio.hpp>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/unit/plugins/loopback_server.h"

namespace tandem::plugin_test {

// One request as the receiver parsed it. The body is the decoded body (Content-Length or
// chunked).
struct HttpRequest {
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> headers;

  // Returns the value of the first header called `name` (compared case-insensitively), or "" if
  // there is none.
  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (EqualsNoCase(key, name)) return value;
    }
    return "";
  }
};

// An HTTP/1.1 server bound to 127.0.0.1 on a port of the kernel's choosing, serving on its own
// thread from construction to destruction. Handles keep-alive connections (several requests per
// connection, answered in order), Content-Length and chunked bodies, "Expect: 100-continue", and
// clients that go away at any point. Every answer has an empty body. All public methods are
// thread-safe.
class HttpReceiver {
 public:
  // Binds and starts serving plain HTTP. Throws std::system_error if it cannot bind (a test
  // failure).
  HttpReceiver() : HttpReceiver(nullptr) {}

  // Binds and starts serving HTTPS with `tls`: every connection starts with the TLS handshake,
  // and one whose handshake fails is closed before any request is read. Keeps `tls`.
  // Throws std::system_error if it cannot bind.
  explicit HttpReceiver(std::shared_ptr<LoopbackTls> tls)
      : tls_(std::move(tls)), server_([this](asio::ip::tcp::socket socket) {
          return std::make_shared<Connection>(*this, std::move(socket));
        }) {}

  // Stops serving and closes every connection, including those whose answer is held.
  ~HttpReceiver() {
    server_.Stop([this] { held_.clear(); });
  }

  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  uint16_t port() const { return server_.port(); }

  // Returns "http://127.0.0.1:<port><path>" ("https://..." when serving HTTPS).
  std::string url(std::string_view path = "/hook") const {
    return std::string(tls_ != nullptr ? "https" : "http") +
           "://127.0.0.1:" + std::to_string(port()) + std::string(path);
  }

  // Sets the statuses of the next requests, in order of arrival: each request takes the next
  // one; when they run out, requests are answered 200. Replaces any statuses not yet used.
  void RespondWith(std::vector<int> statuses) {
    std::lock_guard lock(mutex_);
    statuses_.assign(statuses.begin(), statuses.end());
  }

  // Adds a header to every answer from now on (e.g. Location for a redirect).
  void SetResponseHeader(std::string name, std::string value) {
    std::lock_guard lock(mutex_);
    response_headers_.emplace_back(std::move(name), std::move(value));
  }

  // While held, requests are recorded on arrival but not answered; Hold(false) answers every
  // request held so far, in order of arrival.
  void Hold(bool hold) {
    {
      std::lock_guard lock(mutex_);
      hold_ = hold;
    }
    if (!hold) server_.Post([this] { ReleaseHeld(); });
  }

  // Returns how many connections clients opened so far.
  std::size_t connections() const { return server_.accepted(); }

  // Returns every request recorded so far, in order of arrival.
  std::vector<HttpRequest> requests() const { return requests_.Get(); }

  // Waits until at least `n` requests were recorded or `timeout` passed. Returns whether they
  // were.
  bool WaitForRequests(std::size_t n, std::chrono::milliseconds timeout) const {
    return requests_.WaitFor(n, timeout);
  }

 private:
  // The most a request's head (request line and headers) or body may take, so a broken client
  // cannot make the test run out of memory.
  static constexpr std::size_t kMaxHead = 64 * 1024;
  static constexpr std::size_t kMaxBody = 16 * 1024 * 1024;

  // What parsing the start of a connection's buffer found.
  struct Parsed {
    enum Kind { kIncomplete, kBad, kComplete } kind = kIncomplete;
    HttpRequest request;
    std::size_t consumed = 0;  // bytes of the buffer the request took (kComplete)
    bool head_complete = false;
    bool expects_continue = false;
    bool close_after = false;
  };

  static std::string Lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  static std::string_view Trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
  }

  // Parses a chunked body starting at `at` in `buffer`. Returns the bytes it takes (up to the
  // end of the trailers), 0 if it is not all there yet, or nullopt if it is malformed.
  static std::optional<std::size_t> ParseChunked(const std::string& buffer, std::size_t at,
                                                 std::string* body) {
    body->clear();
    std::size_t pos = at;
    while (true) {
      const std::size_t eol = buffer.find("\r\n", pos);
      if (eol == std::string::npos) return 0;
      std::string_view size_text(buffer.data() + pos, eol - pos);
      size_text = Trim(size_text.substr(0, size_text.find(';')));
      std::size_t size = 0;
      if (size_text.empty() || size_text.size() > 8) return std::nullopt;
      for (const char c : size_text) {
        const int digit = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                          : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                          : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                                      : -1;
        if (digit < 0) return std::nullopt;
        size = size * 16 + static_cast<std::size_t>(digit);
      }
      pos = eol + 2;
      if (size == 0) {
        // Trailers, if any, end with an empty line.
        if (buffer.size() < pos + 2) return 0;
        if (buffer.compare(pos, 2, "\r\n") == 0) return pos + 2 - at;
        const std::size_t end = buffer.find("\r\n\r\n", pos);
        return end == std::string::npos ? 0 : end + 4 - at;
      }
      if (body->size() + size > kMaxBody) return std::nullopt;
      if (buffer.size() < pos + size + 2) return 0;
      body->append(buffer, pos, size);
      if (buffer.compare(pos + size, 2, "\r\n") != 0) return std::nullopt;
      pos += size + 2;
    }
  }

  // Parses one request from the start of `buffer`.
  static Parsed Parse(const std::string& buffer) {
    Parsed parsed;
    // A request starts with its method, in capitals. Anything else (a TLS ClientHello, say) is
    // refused at once, so the client fails fast rather than waiting for an answer.
    for (const char c : buffer) {
      if (c == ' ') break;
      if (c < 'A' || c > 'Z') {
        parsed.kind = Parsed::kBad;
        return parsed;
      }
    }
    const std::size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      if (buffer.size() > kMaxHead) parsed.kind = Parsed::kBad;
      return parsed;
    }
    parsed.head_complete = true;
    std::string_view head(buffer.data(), head_end);
    const std::size_t line_end = head.find("\r\n");
    const std::string_view request_line = head.substr(0, line_end);
    const std::size_t sp1 = request_line.find(' ');
    const std::size_t sp2 = request_line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) {
      parsed.kind = Parsed::kBad;
      return parsed;
    }
    HttpRequest& request = parsed.request;
    request.method = std::string(request_line.substr(0, sp1));
    request.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
    const std::string_view version = request_line.substr(sp2 + 1);
    head.remove_prefix(line_end == std::string_view::npos ? head.size() : line_end + 2);
    while (!head.empty()) {
      const std::size_t eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) {
        parsed.kind = Parsed::kBad;
        return parsed;
      }
      request.headers.emplace_back(std::string(line.substr(0, colon)),
                                   std::string(Trim(line.substr(colon + 1))));
    }
    const std::string connection = Lower(request.Header("Connection"));
    parsed.close_after =
        connection == "close" || (version == "HTTP/1.0" && connection != "keep-alive");
    parsed.expects_continue = Lower(request.Header("Expect")) == "100-continue";
    const std::size_t body_start = head_end + 4;
    if (Lower(request.Header("Transfer-Encoding")).find("chunked") != std::string::npos) {
      const std::optional<std::size_t> taken = ParseChunked(buffer, body_start, &request.body);
      if (!taken.has_value()) {
        parsed.kind = Parsed::kBad;
      } else if (*taken > 0) {
        parsed.kind = Parsed::kComplete;
        parsed.consumed = body_start + *taken;
      }
      return parsed;
    }
    std::size_t length = 0;
    const std::string length_text = request.Header("Content-Length");
    if (!length_text.empty()) {
      if (length_text.size() > 9 ||
          !std::all_of(length_text.begin(), length_text.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        parsed.kind = Parsed::kBad;
        return parsed;
      }
      length = std::stoul(length_text);
      if (length > kMaxBody) {
        parsed.kind = Parsed::kBad;
        return parsed;
      }
    }
    if (buffer.size() < body_start + length) return parsed;
    request.body = buffer.substr(body_start, length);
    parsed.kind = Parsed::kComplete;
    parsed.consumed = body_start + length;
    return parsed;
  }

  static std::string_view Reason(int status) {
    switch (status) {
      case 100:
        return "Continue";
      case 200:
        return "OK";
      case 201:
        return "Created";
      case 202:
        return "Accepted";
      case 204:
        return "No Content";
      case 301:
        return "Moved Permanently";
      case 302:
        return "Found";
      case 307:
        return "Temporary Redirect";
      case 308:
        return "Permanent Redirect";
      case 400:
        return "Bad Request";
      case 401:
        return "Unauthorized";
      case 403:
        return "Forbidden";
      case 404:
        return "Not Found";
      case 408:
        return "Request Timeout";
      case 429:
        return "Too Many Requests";
      case 500:
        return "Internal Server Error";
      case 502:
        return "Bad Gateway";
      case 503:
        return "Service Unavailable";
      default:
        return "Status";
    }
  }

  // One client connection. Lives on the receiver's thread; owned by the handlers in flight (and
  // by held_ while its answer is held).
  class Connection : public LoopbackConnection {
   public:
    Connection(HttpReceiver& owner, asio::ip::tcp::socket socket)
        : LoopbackConnection(std::move(socket)), owner_(owner) {}

    void Start() override {
      if (owner_.tls_ != nullptr) {
        StartTls(*owner_.tls_, [this] { Process(); });
      } else {
        Process();
      }
    }

    // Answers the request that was held with `status`.
    void Answer(int status) {
      std::string response = "HTTP/1.1 " + std::to_string(status) + " " +
                             std::string(Reason(status)) + "\r\nContent-Length: 0\r\n";
      for (const auto& [name, value] : owner_.ResponseHeaders()) {
        response += name + ": " + value + "\r\n";
      }
      if (close_after_) response += "Connection: close\r\n";
      response += "\r\n";
      Write(std::move(response), [this] {
        if (close_after_) {
          Close();
        } else {
          Process();
        }
      });
    }

   private:
    // Answers what the buffer holds, one request at a time, reading more when it needs to.
    void Process() override {
      Parsed parsed = Parse(buffer_);
      if (parsed.kind == Parsed::kBad) {
        Close();
        return;
      }
      if (parsed.kind == Parsed::kIncomplete) {
        if (parsed.head_complete && parsed.expects_continue && !continue_sent_) {
          continue_sent_ = true;
          Write("HTTP/1.1 100 Continue\r\n\r\n", [this] { Read(); });
        } else {
          Read();
        }
        return;
      }
      buffer_.erase(0, parsed.consumed);
      continue_sent_ = false;
      close_after_ = parsed.close_after;
      const std::optional<int> status = owner_.Arrived(std::move(parsed.request));
      if (!status.has_value()) {
        owner_.held_.emplace_back(std::static_pointer_cast<Connection>(shared_from_this()));
        return;
      }
      Answer(*status);
    }

    HttpReceiver& owner_;
    bool continue_sent_ = false;
    bool close_after_ = false;
  };

  // Records `request` and returns the status to answer it with, or nullopt while held.
  std::optional<int> Arrived(HttpRequest request) {
    std::lock_guard lock(mutex_);
    int status = 200;
    if (!statuses_.empty()) {
      status = statuses_.front();
      statuses_.pop_front();
    }
    requests_.Add(std::move(request));
    if (hold_) {
      held_statuses_.push_back(status);
      return std::nullopt;
    }
    return status;
  }

  std::vector<std::pair<std::string, std::string>> ResponseHeaders() const {
    std::lock_guard lock(mutex_);
    return response_headers_;
  }

  // Runs on the receiver's thread, after Hold(false).
  void ReleaseHeld() {
    std::vector<std::shared_ptr<Connection>> held;
    std::deque<int> statuses;
    {
      std::lock_guard lock(mutex_);
      if (hold_) return;  // held again before this ran
      statuses.swap(held_statuses_);
    }
    held.swap(held_);
    for (std::size_t i = 0; i < held.size() && i < statuses.size(); ++i)
      held[i]->Answer(statuses[i]);
  }

  Recorded<HttpRequest> requests_;
  mutable std::mutex mutex_;
  std::deque<int> statuses_;                                           // guarded by mutex_
  std::vector<std::pair<std::string, std::string>> response_headers_;  // guarded by mutex_
  bool hold_ = false;                                                  // guarded by mutex_
  std::deque<int> held_statuses_;  // guarded by mutex_; parallel to held_

  // The receiver's thread only.
  std::vector<std::shared_ptr<Connection>> held_;

  // Set before the server starts and constant after: connections read it on the server's thread.
  const std::shared_ptr<LoopbackTls> tls_;
  // Declared last: it starts serving once everything above is constructed, and the destructor
  // stops it before anything above is destroyed.
  LoopbackServer server_;
};

}  // namespace tandem::plugin_test
