#pragma once
// The skeleton of the tests' receivers (HttpReceiver, SmtpReceiver): a server on 127.0.0.1 at a
// port of the kernel's choosing, served by standalone Asio on a thread of its own, whose
// connections read into a buffer, write answers, and may speak TLS from the start or switch to
// it mid-connection. TLS comes in through the LoopbackTls interface, so this header (and a test
// that serves no TLS) needs no OpenSSL; tls_test_util.h has the OpenSSL side. Header-only.

#include <array>
#include <asio.hpp>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace tandem::plugin_test {

// Returns whether `a` and `b` are equal, ASCII letters compared case-insensitively.
inline bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// What a receiver recorded (requests, messages, commands), in order: added on the server's
// thread, read and waited for on the test's. Thread-safe.
template <typename T>
class Recorded {
 public:
  void Add(T item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
    added_.notify_all();
  }

  // Returns everything recorded so far.
  std::vector<T> Get() const {
    std::lock_guard lock(mutex_);
    return items_;
  }

  // Waits until at least `n` items were recorded or `timeout` passed. Returns whether they were.
  bool WaitFor(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return added_.wait_for(lock, timeout, [&] { return items_.size() >= n; });
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable added_;
  std::vector<T> items_;  // guarded by mutex_
};

// TLS over one connection's TCP socket, as the server end. Lives on the server's thread; owned by
// its connection, and keeps a reference to the connection's socket.
class TlsLayer {
 public:
  using IoHandler = std::function<void(std::error_code, std::size_t)>;
  virtual ~TlsLayer() = default;
  // Runs the server side of the handshake, then calls `done` with its result.
  virtual void Handshake(std::function<void(std::error_code)> done) = 0;
  // Reads some decrypted bytes into `buffer`, then calls `done`.
  virtual void ReadSome(asio::mutable_buffer buffer, IoHandler done) = 0;
  // Encrypts and sends all of `buffer`, then calls `done`. REQUIRES: `buffer` stays valid until
  // then.
  virtual void Write(asio::const_buffer buffer, IoHandler done) = 0;
};

// What a receiver serves TLS with: its certificate and key. Shared by the receivers a test runs;
// Wrap is called on their threads, so implementations must be thread-safe.
class LoopbackTls {
 public:
  virtual ~LoopbackTls() = default;
  // Returns a TLS layer over `socket`, its handshake not yet run. Keeps a reference to `socket`.
  virtual std::unique_ptr<TlsLayer> Wrap(asio::ip::tcp::socket& socket) = 0;
};

// One client connection of a LoopbackServer: a TCP socket, TLS over it once StartTls succeeded,
// and the bytes read but not yet used. Lives on the server's thread; owned by the handlers in
// flight (and by whatever the receiver keeps it in). A subclass answers the peer in Process().
class LoopbackConnection : public std::enable_shared_from_this<LoopbackConnection> {
 public:
  explicit LoopbackConnection(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  virtual ~LoopbackConnection() = default;
  LoopbackConnection(const LoopbackConnection&) = delete;
  LoopbackConnection& operator=(const LoopbackConnection&) = delete;

  // Starts serving the peer; called once, right after the connection was accepted.
  virtual void Start() = 0;

  // Closes the connection; pending reads and writes end with an error and go no further.
  // Idempotent.
  void Close() {
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // Returns whether the connection speaks TLS (its handshake succeeded).
  bool tls() const { return tls_ != nullptr && handshake_done_; }

 protected:
  // Handles what buffer_ holds: answers, or calls Read() for more. Called after every read.
  virtual void Process() = 0;

  // Reads what the peer sends next onto buffer_, then calls Process(). A peer that goes away
  // (mid-message or not), or any other error, just ends the connection.
  void Read() {
    auto self = shared_from_this();
    auto done = [self](std::error_code ec, std::size_t n) {
      if (ec) return;
      self->buffer_.append(self->chunk_.data(), n);
      self->Process();
    };
    if (tls_ != nullptr) {
      tls_->ReadSome(asio::buffer(chunk_), std::move(done));
    } else {
      socket_.async_read_some(asio::buffer(chunk_), std::move(done));
    }
  }

  // Sends `data`, then calls `then`; a failed write ends the connection.
  void Write(std::string data, std::function<void()> then) {
    auto owned = std::make_shared<std::string>(std::move(data));
    auto done = [self = shared_from_this(), owned, then = std::move(then)](std::error_code ec,
                                                                           std::size_t) {
      if (ec) return;
      then();
    };
    if (tls_ != nullptr) {
      tls_->Write(asio::buffer(*owned), std::move(done));
    } else {
      asio::async_write(socket_, asio::buffer(*owned), std::move(done));
    }
  }

  // Switches the connection to TLS with `tls`, as the server: discards what buffer_ holds (bytes
  // sent in clear before the handshake must not be taken as sent over TLS), runs the handshake,
  // then calls `then`. A failed handshake closes the connection.
  // REQUIRES: no read or write is in flight.
  void StartTls(LoopbackTls& tls, std::function<void()> then) {
    buffer_.clear();
    tls_ = tls.Wrap(socket_);
    tls_->Handshake([self = shared_from_this(), then = std::move(then)](std::error_code ec) {
      if (ec) {
        self->Close();
        return;
      }
      self->handshake_done_ = true;
      then();
    });
  }

  // Bytes read and not yet consumed by Process().
  std::string buffer_;

 private:
  // Declared before tls_, which keeps a reference to it, so that it is destroyed after.
  asio::ip::tcp::socket socket_;
  std::unique_ptr<TlsLayer> tls_;
  bool handshake_done_ = false;
  std::array<char, 16 * 1024> chunk_{};
};

// A TCP server bound to 127.0.0.1 on a port of the kernel's choosing, accepting and serving on
// its own thread from construction until Stop() (or destruction). Public methods are called from
// the owner's thread; `make` and everything posted run on the server's thread.
class LoopbackServer {
 public:
  using MakeConnection = std::function<std::shared_ptr<LoopbackConnection>(asio::ip::tcp::socket)>;

  // Binds and starts serving: every accepted socket becomes make(socket), then Start()ed. Keeps
  // `make`. Throws std::system_error if it cannot bind (a test failure).
  explicit LoopbackServer(MakeConnection make)
      : make_(std::move(make)),
        acceptor_(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        port_(acceptor_.local_endpoint().port()) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~LoopbackServer() { Stop(); }

  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  uint16_t port() const { return port_; }

  // Returns how many connections were accepted so far.
  std::size_t accepted() const { return accepted_.load(); }

  // Runs `work` on the server's thread. REQUIRES: not stopped.
  void Post(std::function<void()> work) { asio::post(io_, std::move(work)); }

  // Stops serving: closes the acceptor and every connection, runs `also` on the server's thread
  // (to drop what the owner keeps of its connections), and joins the thread. Handlers that never
  // ran, and the connections they own, are destroyed with the io_context. Idempotent; `also` is
  // run by the first call only.
  void Stop(std::function<void()> also = nullptr) {
    if (!thread_.joinable()) return;
    asio::post(io_, [this, also = std::move(also)] {
      std::error_code ignored;
      acceptor_.close(ignored);
      for (const std::weak_ptr<LoopbackConnection>& weak : connections_) {
        if (auto connection = weak.lock()) connection->Close();
      }
      connections_.clear();
      if (also) also();
      io_.stop();
    });
    thread_.join();
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      } else {
        accepted_.fetch_add(1);
        std::shared_ptr<LoopbackConnection> connection = make_(std::move(socket));
        std::erase_if(connections_, [](const auto& weak) { return weak.expired(); });
        connections_.push_back(connection);
        connection->Start();
      }
      Accept();
    });
  }

  const MakeConnection make_;
  std::atomic<std::size_t> accepted_{0};
  // The server's thread only.
  std::vector<std::weak_ptr<LoopbackConnection>> connections_;
  // The acceptor is declared after the io_context so that it is destroyed first; the thread is
  // joined before any member is destroyed.
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  const uint16_t port_;
  std::thread thread_;
};

}  // namespace tandem::plugin_test
