#pragma once
// The daemon's side of the ingest transport: a ZeroMQ ROUTER socket driven by the caller's Asio
// loop. It hands every message body to the daemon as bytes, tells it when a burst of messages
// has been drained (the point for one group commit before the acks go out), and sends replies
// back to the peer that asked, in the peer's framing. What the bytes mean is the daemon's
// business (daemon/ingest/envelope.h); this module never parses or logs them.

#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "daemon/base/status.h"

namespace tandem::ingest {

// One client connection as the ROUTER sees it: who sent a message and how it was framed.
// A plain value: copy it into the list of acks waiting for the commit and Send to it later.
//
// Framing on the wire (after the routing-id frame that the ROUTER adds and strips):
//   DEALER peer:  [body]        -> replies are [body]
//   REQ peer:     ["", body]    -> replies are ["", body]
// A DEALER that sends an empty delimiter frame itself is treated like a REQ peer. Any other
// shape (more frames, or two frames whose first is not empty) is dropped and counted.
struct Peer {
  // The routing id libzmq gave the connection: opaque bytes, unique while it is connected.
  std::string routing_id;
  // True when the peer's messages carry an empty delimiter frame before the body (REQ
  // peers); replies to it carry one too.
  bool delimited = false;
};

// CurveZMQ server mode: encryption plus an allow-list of client keys.
struct CurveServerOptions {
  // The server's long-term secret key, 40 Z85 characters. SECRET: never logged.
  std::string secret_key;
  // Z85 public keys (40 characters each) of the clients allowed to connect. A client with any
  // other key fails the handshake and never reaches the handler. Empty refuses everyone.
  std::vector<std::string> allowed_client_keys;
};

// How the router's socket is set up. Read once by Bind.
struct RouterOptions {
  // The largest frame libzmq accepts from a peer, in bytes (ZMQ_MAXMSGSIZE); -1 for no limit.
  // A peer that sends a bigger one is disconnected by libzmq and the message is discarded
  // unseen: the peer gets no reply (its retry will meet the same fate) and other peers are
  // not affected. Ignored on inproc:// endpoints, which do no decoding.
  int64_t max_message_bytes = 1 << 20;
  // Messages queued per peer before libzmq pushes back (ZMQ_SNDHWM, ZMQ_RCVHWM); 0 means
  // unlimited. A reply to a peer whose queue is full fails with kUnavailable.
  int send_high_water_mark = 1000;
  int receive_high_water_mark = 1000;
  // How long closing the socket may spend flushing replies still queued (ZMQ_LINGER).
  std::chrono::milliseconds linger{1000};
  // The most messages handed to on_request before on_turn_end is called and other work on the
  // loop gets a turn; the rest are drained in the next turn. Bounds one group commit.
  // REQUIRES: > 0.
  int max_messages_per_turn = 1000;
  // When set, the socket is a CurveZMQ server (see CurveServerOptions); otherwise plain TCP.
  std::optional<CurveServerOptions> curve;
};

// What the router has done since Bind; for metrics.
struct RouterStats {
  uint64_t messages_received = 0;   // handed to on_request
  uint64_t messages_malformed = 0;  // dropped for their framing
  uint64_t turns = 0;               // on_turn_end calls
  uint64_t replies_sent = 0;
  uint64_t replies_failed = 0;  // Send returned an error
};

// What the router calls. Handlers run on the router's executor, one at a time, and must not
// throw. They may call Send and Close, but must not destroy the router.
struct RouterHandlers {
  // Called once per received message with its sender and body. The body view is valid only
  // during the call.
  std::function<void(const Peer& peer, std::string_view body)> on_request;
  // Called once after each burst of on_request calls (at least one per burst; at most
  // RouterOptions::max_messages_per_turn). The daemon commits here and then sends the acks.
  std::function<void()> on_turn_end;
  // Optional. Called once if the socket fails while serving (e.g. the ZeroMQ context was
  // terminated); the router is then closed. Bind-time failures are returned by Bind instead.
  std::function<void(const Status& status)> on_failure;
};

// A ZeroMQ ROUTER socket bound to one endpoint and served on an Asio executor through the
// socket's ZMQ_FD (edge-triggered: ZMQ_EVENTS is re-checked after every receive and send).
//
// Thread safety: not thread-safe. Every method, and the destructor, must run on the executor
// given to Bind (one thread, or one strand), or before that executor runs anything; pass
// io.get_executor() for a single-threaded loop, or the writer strand when the io_context runs on
// several threads. Destroy it before the io_context. Keeps a reference to the zmq::context_t,
// which must outlive it. With CurveZMQ on, the router also
// owns a ZAP handler thread (see Bind).
class Router {
 public:
  // Creates a ROUTER socket in `context`, configures it from `options`, and binds it to
  // `endpoint` ("tcp://127.0.0.1:7450", "tcp://127.0.0.1:*", "ipc:///run/tandem/ingest").
  // The router does not receive until Start.
  // With options.curve set, first binds a ZAP handler at inproc://zeromq.zap.01 in `context`
  // that admits only the listed client keys, and turns ZMQ_ZAP_ENFORCE_DOMAIN on, so a
  // missing handler refuses clients rather than admitting every key.
  // Returns kInvalidArgument for a malformed endpoint, option or key; kUnavailable when the
  // address is taken or cannot be bound (port in use, missing directory, no such interface);
  // kFailedPrecondition when options.curve is set and another ZAP handler is already bound in
  // `context` (libzmq allows one per context); kInternal for other ZeroMQ errors.
  // Does not keep references to its arguments other than `context`.
  static Result<std::unique_ptr<Router>> Bind(zmq::context_t& context,
                                              const asio::any_io_executor& executor,
                                              std::string_view endpoint,
                                              const RouterOptions& options);

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;
  // Closes the router (see Close).
  ~Router();

  // Starts serving: from now on every message is passed to handlers.on_request, and each
  // drained burst is followed by handlers.on_turn_end.
  // REQUIRES: on_request and on_turn_end are set; Start has not been called before.
  void Start(RouterHandlers handlers);

  // Sends `bytes` as one reply to `peer`, framed as the peer's requests were. Never blocks.
  // Returns kNotFound when the peer is no longer connected (ZMQ_ROUTER_MANDATORY), kUnavailable
  // when its send queue is full, kFailedPrecondition after Close, kInternal for other ZeroMQ
  // errors; the reply is then discarded and the router carries on. Takes ownership of `bytes`
  // (large replies are handed to libzmq without a copy).
  Status Send(const Peer& peer, std::string bytes);

  // Stops receiving after the message being handled (the turn ends there) until Resume; replies
  // still go out. Requests queue in libzmq meanwhile, up to the receive high-water mark per
  // peer, then push back on their publishers. For a consumer that cannot keep up.
  void Pause();
  // Receives again (at once, in a turn of its own, if input is waiting). Idempotent.
  void Resume();

  // Stops serving and closes the socket: queued replies get up to RouterOptions::linger to
  // leave, then are dropped. Handlers are never called again, and a pending wait on the
  // descriptor completes as cancelled. The ZMQ_FD is released to ZeroMQ, which owns it, not
  // closed. Stops the ZAP handler thread, if any. Idempotent.
  void Close();

  // The bound endpoint with any wildcard resolved, e.g. "tcp://127.0.0.1:41235".
  const std::string& endpoint() const { return endpoint_; }
  const RouterStats& stats() const { return stats_; }

 private:
  class ZapHandler;

  Router(zmq::socket_t socket, const asio::any_io_executor& executor, int fd, std::string endpoint,
         int max_messages_per_turn, std::unique_ptr<ZapHandler> zap);

  // Receives and delivers up to max_messages_per_turn messages, calls on_turn_end, then
  // schedules the next drain or wait.
  void Drain();
  // Receives one message. Returns false when none is waiting.
  bool ReceiveOne();
  // Posts a drain when input is waiting, else waits for the descriptor to become readable.
  void ScheduleNext();
  // Reports a failure of the socket and closes.
  void Fail(const Status& status);

  zmq::socket_t socket_;
  asio::posix::stream_descriptor descriptor_;
  std::string endpoint_;
  int max_messages_per_turn_;
  std::unique_ptr<ZapHandler> zap_;
  RouterHandlers handlers_;
  RouterStats stats_;
  bool started_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool wait_pending_ = false;
  bool drain_posted_ = false;
  bool paused_ = false;
  // Completion handlers hold a weak_ptr to this and do nothing once it has expired, so one
  // that runs after Close or destruction never touches the router.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace tandem::ingest
