#include "daemon/ingest/router.h"

#include <zmq.h>

#include <asio/post.hpp>
#include <cerrno>
#include <cstdint>
#include <set>
#include <system_error>
#include <thread>
#include <utility>

#include "daemon/ingest/internal/curve_keys.h"

namespace tandem::ingest {
namespace {

// The inproc endpoint where libzmq looks for the context's ZAP handler (RFC 27).
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// The ZAP domain the router's socket announces; the handler serves only this socket.
constexpr char kZapDomain[] = "tandem";
// ZMQ_ZAP_ENFORCE_DOMAIN. libzmq 4.3.4 accepts the option in every build, but its zmq.h
// declares the name only with the draft API, which Debian's build leaves off.
constexpr int kZapEnforceDomainOption = 93;

// Returns `e` as a Status with `what` in front, mapping the errors an operator can fix (a bad
// endpoint or option, an address in use) to their codes.
Status BindError(std::string_view what, const zmq::error_t& e) {
  std::string message = std::string(what) + ": " + e.what();
  switch (e.num()) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case ENODEV:
      return InvalidArgumentError(std::move(message));
    case EADDRINUSE:
    case EADDRNOTAVAIL:
    case EACCES:
    case ENOENT:
      return UnavailableError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

// Frees a reply body handed to libzmq without a copy; libzmq calls it from its I/O thread.
void FreeOwnedString(void* /*data*/, void* hint) { delete static_cast<std::string*>(hint); }

}  // namespace

// Answers ZAP requests (RFC 27) for the context on its own thread: a CURVE client is admitted
// when its public key is in the allow-list, refused otherwise; any other mechanism is refused.
// The allow-list is immutable after construction. Owned by the Router; destroying it stops and
// joins the thread.
class Router::ZapHandler {
 public:
  // Binds the ZAP endpoint in `context` and starts the thread. Returns kFailedPrecondition if
  // another handler is bound in the context, kInternal for other ZeroMQ errors.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                   std::set<std::string> allowed_keys) {
    auto handler = std::unique_ptr<ZapHandler>(new ZapHandler(std::move(allowed_keys)));
    try {
      handler->zap_ = zmq::socket_t(context, zmq::socket_type::rep);
      handler->zap_.set(zmq::sockopt::linger, 0);
      try {
        handler->zap_.bind(kZapEndpoint);
      } catch (const zmq::error_t& e) {
        if (e.num() == EADDRINUSE) {
          return FailedPreconditionError(
              "ingest: a ZAP handler is already bound in this ZeroMQ context (one CurveZMQ "
              "router per context)");
        }
        throw;
      }
      // The stop signal: a PAIR socket pair, so the thread can block in zmq::poll without a
      // timeout and still be told to leave.
      handler->stop_endpoint_ = "inproc://tandem.ingest.zap-stop." +
                                std::to_string(reinterpret_cast<uintptr_t>(handler.get()));
      handler->stop_receiver_ = zmq::socket_t(context, zmq::socket_type::pair);
      handler->stop_receiver_.set(zmq::sockopt::linger, 0);
      handler->stop_receiver_.bind(handler->stop_endpoint_);
      handler->stop_sender_ = zmq::socket_t(context, zmq::socket_type::pair);
      handler->stop_sender_.set(zmq::sockopt::linger, 0);
      handler->stop_sender_.connect(handler->stop_endpoint_);
    } catch (const zmq::error_t& e) {
      return InternalError(std::string("ingest: cannot start the ZAP handler: ") + e.what());
    }
    // The sockets are handed to the thread here; thread creation is the memory barrier
    // ZeroMQ asks for when a socket changes threads.
    handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
    return handler;
  }

  ~ZapHandler() {
    if (thread_.joinable()) {
      try {
        // A fresh PAIR pipe has room for this one message, so dontwait cannot drop it.
        static_cast<void>(stop_sender_.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait));
      } catch (const zmq::error_t&) {
        // The context is gone, so the thread's poll has failed with ETERM and it is leaving too.
      }
      thread_.join();
    }
    // Closing a socket frees its inproc endpoints only later, on libzmq's reaper thread;
    // unbinding frees them now, so a router bound right after this one finds them free.
    Unbind(zap_, kZapEndpoint);
    Unbind(stop_receiver_, stop_endpoint_);
  }

 private:
  explicit ZapHandler(std::set<std::string> allowed_keys)
      : allowed_keys_(std::move(allowed_keys)) {}

  static void Unbind(zmq::socket_t& socket, const std::string& endpoint) {
    if (!socket) return;
    try {
      socket.unbind(endpoint);
    } catch (const zmq::error_t&) {
      // Not bound (Start failed before binding it) or the context is gone: nothing to free.
    }
  }

  void Run() {
    zmq::pollitem_t items[] = {{zap_.handle(), 0, ZMQ_POLLIN, 0},
                               {stop_receiver_.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      while (true) {
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
        if (items[1].revents & ZMQ_POLLIN) return;
        if (items[0].revents & ZMQ_POLLIN) Answer();
      }
    } catch (const zmq::error_t&) {
      // ETERM: the context is being terminated; no client can connect any more. Any other
      // error leaves ZAP unanswered, and with ZMQ_ZAP_ENFORCE_DOMAIN on that refuses clients
      // rather than admitting them.
    }
  }

  // Reads one ZAP request and sends its reply. Throws zmq::error_t (caught in Run).
  void Answer() {
    // Request frames: version, request id, domain, address, routing id, mechanism,
    // credentials... (one frame, the 32-byte public key, for CURVE).
    std::vector<zmq::message_t> frames;
    bool more = true;
    while (more) {
      zmq::message_t frame;
      if (!zap_.recv(frame, zmq::recv_flags::none)) return;
      more = frame.more();
      frames.push_back(std::move(frame));
    }
    const bool well_formed = frames.size() >= 6 && frames[0].to_string_view() == "1.0";
    const std::string request_id = frames.size() >= 2 ? frames[1].to_string() : std::string();
    std::string_view code = "400";
    std::string_view text = "client key not allowed";
    std::string user_id;
    if (!well_formed) {
      code = "500";
      text = "malformed ZAP request";
    } else if (frames[2].to_string_view() != kZapDomain || frames[5].to_string_view() != "CURVE") {
      text = "only CURVE clients of the tandem domain are admitted";
    } else if (frames.size() == 7 && allowed_keys_.count(frames[6].to_string()) > 0) {
      code = "200";
      text = "OK";
      user_id = internal::Z85Encode(frames[6].to_string_view());
    }
    // Reply frames: version, request id, status code, status text, user id, metadata.
    zap_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    zap_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
    zap_.send(zmq::buffer(code), zmq::send_flags::sndmore);
    zap_.send(zmq::buffer(text), zmq::send_flags::sndmore);
    zap_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
    zap_.send(zmq::message_t(), zmq::send_flags::none);
  }

  // Binary (32-byte) public keys. Immutable.
  const std::set<std::string> allowed_keys_;
  zmq::socket_t zap_;            // used only on thread_ once it runs
  zmq::socket_t stop_receiver_;  // used only on thread_ once it runs
  zmq::socket_t stop_sender_;    // used only by the owner
  std::string stop_endpoint_;
  std::thread thread_;
};

Result<std::unique_ptr<Router>> Router::Bind(zmq::context_t& context,
                                             const asio::any_io_executor& executor,
                                             std::string_view endpoint,
                                             const RouterOptions& options) {
  const std::string where = "ingest: endpoint '" + std::string(endpoint) + "'";
  if (options.max_messages_per_turn <= 0) {
    return InvalidArgumentError(where + ": max_messages_per_turn must be positive");
  }

  // The ZAP handler is bound before the router's socket exists, so no client can ever
  // handshake while nobody answers for the allow-list.
  std::unique_ptr<ZapHandler> zap;
  std::string curve_secret_key;
  if (options.curve.has_value()) {
    TANDEM_ASSIGN_OR_RETURN(curve_secret_key,
                            internal::Z85DecodeKey(options.curve->secret_key, "secret_key"));
    std::set<std::string> allowed;
    for (std::size_t i = 0; i < options.curve->allowed_client_keys.size(); ++i) {
      TANDEM_ASSIGN_OR_RETURN(
          std::string key,
          internal::Z85DecodeKey(options.curve->allowed_client_keys[i],
                                 "allowed_client_keys[" + std::to_string(i) + "]"));
      allowed.insert(std::move(key));
    }
    TANDEM_ASSIGN_OR_RETURN(zap, ZapHandler::Start(context, std::move(allowed)));
  }

  zmq::socket_t socket;
  try {
    socket = zmq::socket_t(context, zmq::socket_type::router);
    // An unroutable reply fails loudly (EHOSTUNREACH) instead of vanishing.
    socket.set(zmq::sockopt::router_mandatory, true);
    socket.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
    socket.set(zmq::sockopt::sndhwm, options.send_high_water_mark);
    socket.set(zmq::sockopt::rcvhwm, options.receive_high_water_mark);
    socket.set(zmq::sockopt::linger, static_cast<int>(options.linger.count()));
    if (options.curve.has_value()) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, curve_secret_key);
      socket.set(zmq::sockopt::zap_domain, kZapDomain);
      const int on = 1;
      if (zmq_setsockopt(socket.handle(), kZapEnforceDomainOption, &on, sizeof on) != 0) {
        throw zmq::error_t();
      }
    }
  } catch (const zmq::error_t& e) {
    return BindError(where + ": socket option", e);
  }
  try {
    socket.bind(std::string(endpoint));
  } catch (const zmq::error_t& e) {
    return BindError(where + ": bind", e);
  }
  try {
    std::string bound = socket.get(zmq::sockopt::last_endpoint);
    const int fd = socket.get(zmq::sockopt::fd);
    return std::unique_ptr<Router>(new Router(std::move(socket), executor, fd, std::move(bound),
                                              options.max_messages_per_turn, std::move(zap)));
  } catch (const zmq::error_t& e) {
    return InternalError(where + ": " + e.what());
  } catch (const std::system_error& e) {
    // Registering the descriptor with the loop's reactor failed.
    return InternalError(where + ": cannot watch ZMQ_FD: " + e.what());
  }
}

Router::Router(zmq::socket_t socket, const asio::any_io_executor& executor, int fd,
               std::string endpoint, int max_messages_per_turn, std::unique_ptr<ZapHandler> zap)
    : socket_(std::move(socket)),
      descriptor_(executor, fd),
      endpoint_(std::move(endpoint)),
      max_messages_per_turn_(max_messages_per_turn),
      zap_(std::move(zap)) {}

Router::~Router() { Close(); }

void Router::Start(RouterHandlers handlers) {
  // Start is called once, by the code that bound the router, with both handlers: a caller bug
  // otherwise.
  TANDEM_CHECK(!started_);
  TANDEM_CHECK(handlers.on_request && handlers.on_turn_end);
  handlers_ = std::move(handlers);
  started_ = true;
  ScheduleNext();
}

void Router::Close() {
  if (closed_) return;
  closed_ = true;
  alive_.reset();
  // ZeroMQ owns the fd: release() cancels the pending wait and forgets the fd without closing
  // it; closing the socket below lets ZeroMQ close it.
  if (descriptor_.is_open()) descriptor_.release();
  socket_.close();
  zap_.reset();
}

Status Router::Send(const Peer& peer, std::string bytes) {
  if (closed_) return FailedPreconditionError("ingest: router is closed");
  Status status;
  try {
    if (!socket_.send(zmq::buffer(peer.routing_id),
                      zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      status = UnavailableError("ingest: reply dropped: the peer's send queue is full");
    } else {
      // Once the routing-id frame is accepted the ROUTER has picked the peer's pipe, and libzmq
      // writes the remaining frames without a high-water-mark check, so they cannot return
      // EAGAIN; a failure here would be a libzmq error, reported as kInternal below.
      bool sent = true;
      if (peer.delimited) {
        sent = socket_.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait)
                   .has_value();
      }
      if (sent) {
        auto owned = std::make_unique<std::string>(std::move(bytes));
        zmq::message_t body(owned->data(), owned->size(), FreeOwnedString, owned.get());
        owned.release();  // now owned by `body`, freed by FreeOwnedString
        sent = socket_.send(body, zmq::send_flags::dontwait).has_value();
      }
      if (!sent) status = InternalError("ingest: reply frame refused after its routing id");
    }
  } catch (const zmq::error_t& e) {
    status = e.num() == EHOSTUNREACH
                 ? NotFoundError("ingest: reply dropped: the peer is no longer connected")
                 : InternalError(std::string("ingest: reply failed: ") + e.what());
  }
  if (status.ok()) {
    ++stats_.replies_sent;
  } else {
    ++stats_.replies_failed;
  }
  // ZMQ_FD is edge-triggered and a send processes the socket's pending commands, which can
  // swallow the edge that announced new input: look again unless a drain will do so anyway.
  if (!draining_) ScheduleNext();
  return status;
}

void Router::Pause() { paused_ = true; }

void Router::Resume() {
  if (!paused_) return;
  paused_ = false;
  // Input left waiting while paused announced itself once, if at all: look again.
  if (!draining_) ScheduleNext();
}

void Router::ScheduleNext() {
  if (closed_ || !started_ || paused_) return;
  int events = 0;
  try {
    events = socket_.get(zmq::sockopt::events);
  } catch (const zmq::error_t& e) {
    Fail(InternalError(std::string("ingest: ZMQ_EVENTS failed: ") + e.what()));
    return;
  }
  if (events & ZMQ_POLLIN) {
    // Input is already waiting, and the descriptor may never signal it again: drain in a new
    // turn of the loop rather than here, so other work on the loop gets in between bursts.
    if (!drain_posted_) {
      drain_posted_ = true;
      asio::post(descriptor_.get_executor(), [this, alive = std::weak_ptr<int>(alive_)] {
        if (alive.expired()) return;
        drain_posted_ = false;
        Drain();
      });
    }
    return;
  }
  if (!wait_pending_) {
    wait_pending_ = true;
    descriptor_.async_wait(
        asio::posix::stream_descriptor::wait_read,
        [this, alive = std::weak_ptr<int>(alive_)](const std::error_code& ec) {
          if (alive.expired()) return;
          wait_pending_ = false;
          if (ec) {
            Fail(InternalError("ingest: waiting on ZMQ_FD failed: " + ec.message()));
            return;
          }
          Drain();
        });
  }
}

void Router::Drain() {
  if (closed_) return;
  draining_ = true;
  int received = 0;
  int delivered = 0;
  try {
    while (received < max_messages_per_turn_ && !closed_ && !paused_) {
      if (!(socket_.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
      // A multipart message arrives whole, so once its first frame is readable so are the
      // rest. Frames: routing id, then [body] from a DEALER or ["", body] from a REQ.
      zmq::message_t routing_id;
      if (!socket_.recv(routing_id, zmq::recv_flags::dontwait)) break;
      ++received;
      std::vector<zmq::message_t> frames;
      bool more = routing_id.more();
      bool too_many = false;
      while (more) {
        zmq::message_t frame;
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
        more = frame.more();
        if (frames.size() < 2) {
          frames.push_back(std::move(frame));
        } else {
          too_many = true;
        }
      }
      Peer peer{routing_id.to_string(), false};
      const zmq::message_t* body = nullptr;
      if (!too_many && frames.size() == 1) {
        body = &frames[0];
      } else if (!too_many && frames.size() == 2 && frames[0].size() == 0) {
        peer.delimited = true;
        body = &frames[1];
      }
      if (body == nullptr) {
        ++stats_.messages_malformed;
        continue;
      }
      ++delivered;
      ++stats_.messages_received;
      handlers_.on_request(peer, body->to_string_view());
    }
  } catch (const zmq::error_t& e) {
    draining_ = false;
    Fail(InternalError(std::string("ingest: receive failed: ") + e.what()));
    return;
  }
  if (delivered > 0 && !closed_) {
    ++stats_.turns;
    handlers_.on_turn_end();
  }
  draining_ = false;
  ScheduleNext();
}

void Router::Fail(const Status& status) {
  if (closed_) return;
  // Close first, so on_failure sees a router that already serves no more.
  auto on_failure = std::move(handlers_.on_failure);
  Close();
  if (on_failure) on_failure(status);
}

}  // namespace tandem::ingest
