#pragma once
// Raw sockets on 127.0.0.1 for the plugin tests: a plain blocking TCP client, for driving the
// tests' receivers (HttpReceiver, SmtpReceiver) byte by byte or line by line where the plugins'
// own requests do not reach, and a listener that never answers, for timeouts. Header-only.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::plugin_test {

// One connection to 127.0.0.1:<port>. Every read gives up after the timeout given at
// construction, so a receiver that never answers fails the test instead of hanging it. Used by
// one thread.
class RawClient {
 public:
  // Connects to 127.0.0.1:`port`; connected() tells whether it could.
  explicit RawClient(uint16_t port,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(5000))
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval read_timeout{};
    read_timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
    read_timeout.tv_usec = static_cast<suseconds_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(timeout % std::chrono::seconds(1))
            .count());
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &read_timeout, sizeof read_timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  // Sends all of `data`. Returns whether it could.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads until what was read holds `marker` `count` times, the peer closes, or a read times
  // out. Returns everything read.
  std::string ReadUntil(std::string_view marker, int count) {
    std::string received;
    auto seen = [&] {
      int found = 0;
      for (std::size_t at = received.find(marker); at != std::string::npos;
           at = received.find(marker, at + marker.size())) {
        ++found;
      }
      return found;
    };
    char chunk[4096];
    while (seen() < count) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<std::size_t>(n));
    }
    return received;
  }

  // Returns the next SMTP reply up to and including its last line (the one with a blank after
  // the code), or what came before the peer closed or a read timed out. Reads byte by byte, so
  // nothing after the reply is consumed.
  std::string ReadReply() {
    std::string reply;
    char c = 0;
    std::size_t line_start = 0;
    while (::recv(fd_, &c, 1, 0) == 1) {
      reply += c;
      if (c != '\n') continue;
      if (reply.size() - line_start > 4 && reply[line_start + 3] == ' ') break;
      line_start = reply.size();
    }
    return reply;
  }

  // Sends `command`, then returns the reply as ReadReply does ("" if it could not send).
  std::string Exchange(std::string_view command) { return Send(command) ? ReadReply() : ""; }

  // Closes the connection. Idempotent.
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// A TCP port on 127.0.0.1 that takes connections (the kernel completes the handshake) but never
// reads or answers: a client waits on it until its own timeout. Closed at destruction. Used by
// one thread.
class SilentListener {
 public:
  SilentListener() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    listening_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
                 ::listen(fd_, 8) == 0 &&
                 ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) == 0;
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  bool listening() const { return listening_; }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  bool listening_ = false;
  uint16_t port_ = 0;
};

}  // namespace tandem::plugin_test
