#pragma once
// A Router served on its own Asio loop thread, for the ingest tests, plus small helpers to build
// requests and talk to a router with raw ZeroMQ sockets.

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "daemon/base/status.h"
#include "daemon/ingest/envelope.h"
#include "daemon/ingest/router.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::ingest::test {

// Every wait in these tests is bounded by this; none is expected to take more than a fraction.
inline constexpr std::chrono::milliseconds kWait{2000};

// Returns a publish request for a minimal event.
inline v1::Request Publish(std::string request_id, std::string event_id) {
  v1::Request request;
  request.set_request_id(std::move(request_id));
  v1::Event* event = request.mutable_publish()->mutable_event();
  event->set_event_id(std::move(event_id));
  event->set_case_id("SI-1");
  event->set_partnership("testshire");
  event->set_type("incident.reported");
  return request;
}

// Answers a publish with ACCEPTED, a body that is not a Request with REJECTED, and any other
// request with an Error, as the daemon would (without a store).
inline std::vector<std::string> EchoAck(const Peer& /*peer*/, std::string_view body) {
  Result<v1::Request> request = ParseRequest(body);
  if (!request.ok()) return {RejectedReply("", "", request.status()).SerializeAsString()};
  if (request->has_publish()) {
    return {AcceptedReply(request->request_id(), request->publish().event().event_id())
                .SerializeAsString()};
  }
  return {ErrorReply(request->request_id(), NotFoundError("test server: no such case"))
              .SerializeAsString()};
}

// A Router bound to an endpoint and served on a loop thread owned by this object. Replies are
// collected during a turn and sent at its end, as the daemon does after its group commit.
// Records what it saw; read the records through Run (they live on the loop thread).
class TestServer {
 public:
  // Returns the replies to send for one request, at the end of its turn.
  using Responder = std::function<std::vector<std::string>(const Peer&, std::string_view)>;

  explicit TestServer(zmq::context_t& context)
      : context_(context), guard_(asio::make_work_guard(io_)) {}
  ~TestServer() { Stop(); }

  // Binds and starts the router, then the loop thread.
  Status Start(std::string_view endpoint, const RouterOptions& options = {},
               Responder responder = EchoAck) {
    Result<std::unique_ptr<Router>> router =
        Router::Bind(context_, io_.get_executor(), endpoint, options);
    if (!router.ok()) return router.status();
    router_ = std::move(router).value();
    responder_ = std::move(responder);
    RouterHandlers handlers;
    handlers.on_request = [this](const Peer& peer, std::string_view body) {
      bodies_.emplace_back(body);
      peers_.push_back(peer);
      log_.push_back('R');
      ++in_turn_;
      for (std::string& reply : responder_(peer, body))
        pending_.emplace_back(peer, std::move(reply));
    };
    handlers.on_turn_end = [this] {
      log_.push_back('T');
      turn_sizes_.push_back(in_turn_);
      in_turn_ = 0;
      for (auto& [peer, reply] : pending_)
        send_results_.push_back(router_->Send(peer, std::move(reply)));
      pending_.clear();
    };
    router_->Start(std::move(handlers));
    thread_ = std::thread([this] { io_.run(); });
    return OkStatus();
  }

  // Destroys the router on the loop thread and stops the loop. Idempotent.
  void Stop() {
    if (!thread_.joinable()) return;
    Run([this] { router_.reset(); });
    guard_.reset();
    thread_.join();
  }

  // Runs `fn` on the loop thread and returns its result.
  template <typename F>
  std::invoke_result_t<F> Run(F fn) {
    // Shared, so the loop thread may still be leaving task() when the result is read.
    auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(fn));
    auto result = task->get_future();
    asio::post(io_, [task] { (*task)(); });
    return result.get();
  }

  // Blocks the loop thread until the returned promise is set; returns once it is blocked.
  std::promise<void> BlockLoop() {
    std::promise<void> release;
    std::promise<void> blocked;
    std::future<void> is_blocked = blocked.get_future();
    asio::post(io_, [blocked = std::move(blocked), done = release.get_future()]() mutable {
      blocked.set_value();
      done.wait();
    });
    is_blocked.wait();
    return release;
  }

  const std::string& endpoint() const { return router_->endpoint(); }
  Router& router() { return *router_; }
  std::vector<std::string> Bodies() {
    return Run([this] { return bodies_; });
  }
  std::vector<Peer> Peers() {
    return Run([this] { return peers_; });
  }
  // 'R' per delivered request, 'T' per turn end, in the order the router called them.
  std::string Log() {
    return Run([this] { return log_; });
  }
  std::vector<int> TurnSizes() {
    return Run([this] { return turn_sizes_; });
  }
  std::vector<Status> SendResults() {
    return Run([this] { return send_results_; });
  }

 private:
  zmq::context_t& context_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<Router> router_;
  Responder responder_;
  std::vector<std::pair<Peer, std::string>> pending_;
  std::vector<std::string> bodies_;
  std::vector<Peer> peers_;
  std::string log_;
  std::vector<int> turn_sizes_;
  int in_turn_ = 0;
  std::vector<Status> send_results_;
};

// Returns a DEALER (or REQ) socket connected to `endpoint` that waits at most kWait to receive.
inline zmq::socket_t ConnectRaw(zmq::context_t& context, const std::string& endpoint,
                                zmq::socket_type type = zmq::socket_type::dealer) {
  zmq::socket_t socket(context, type);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(kWait.count()));
  socket.connect(endpoint);
  return socket;
}

// Receives one single-frame message and parses it as a Reply; nullopt on timeout or garbage.
inline std::optional<v1::Reply> ReceiveReply(zmq::socket_t& socket) {
  zmq::message_t frame;
  if (!socket.recv(frame, zmq::recv_flags::none)) return std::nullopt;
  v1::Reply reply;
  if (frame.more() || !reply.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return std::nullopt;
  }
  return reply;
}

}  // namespace tandem::ingest::test
