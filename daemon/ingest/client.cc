#include "daemon/ingest/client.h"

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "daemon/ingest/envelope.h"
#include "daemon/ingest/internal/curve_keys.h"

namespace tandem::ingest {
namespace {

using Clock = std::chrono::steady_clock;

Status ClientError(std::string_view where, const zmq::error_t& e) {
  std::string message = "ingest client: " + std::string(where) + ": " + e.what();
  if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO) {
    return InvalidArgumentError(std::move(message));
  }
  return InternalError(std::move(message));
}

}  // namespace

Result<Client> Client::Connect(zmq::context_t& context, std::string_view endpoint,
                               const ClientOptions& options) {
  if (options.reply_timeout.count() <= 0 || options.max_attempts < 1 ||
      options.deadline.count() <= 0) {
    return InvalidArgumentError(
        "ingest client: reply_timeout and deadline must be positive, max_attempts at least 1");
  }
  if (options.curve.has_value()) {
    // Checked here so a bad key is reported by name rather than as a bare EINVAL.
    TANDEM_RETURN_IF_ERROR(
        internal::Z85DecodeKey(options.curve->server_public_key, "server_public_key").status());
    TANDEM_RETURN_IF_ERROR(
        internal::Z85DecodeKey(options.curve->public_key, "public_key").status());
    TANDEM_RETURN_IF_ERROR(
        internal::Z85DecodeKey(options.curve->secret_key, "secret_key").status());
  }
  Client client(context, std::string(endpoint), options);
  try {
    client.Reopen();
  } catch (const zmq::error_t& e) {
    return ClientError("endpoint '" + client.endpoint_ + "'", e);
  }
  return client;
}

void Client::Reopen() {
  if (socket_) socket_.close();
  zmq::socket_t socket(*context_, zmq::socket_type::dealer);
  // Closing must not wait for a daemon that is gone: what was not sent is resent anyway.
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::maxmsgsize, options_.max_reply_bytes);
  if (options_.curve.has_value()) {
    socket.set(zmq::sockopt::curve_serverkey, options_.curve->server_public_key);
    socket.set(zmq::sockopt::curve_publickey, options_.curve->public_key);
    socket.set(zmq::sockopt::curve_secretkey, options_.curve->secret_key);
  }
  socket.connect(endpoint_);
  socket_ = std::move(socket);
}

Result<v1::Reply> Client::Call(const v1::Request& request) {
  if (request.request_id().empty() || request.request_id().size() > kMaxRequestIdBytes) {
    return InvalidArgumentError("ingest client: request_id must be 1 to " +
                                std::to_string(kMaxRequestIdBytes) + " bytes");
  }
  const std::string bytes = request.SerializeAsString();
  const Clock::time_point deadline = Clock::now() + options_.deadline;
  int attempts = 0;
  try {
    while (attempts < options_.max_attempts && Clock::now() < deadline) {
      if (attempts > 0) Reopen();
      ++attempts;
      // A DEALER queues the message for the connection even before it is established; EAGAIN
      // means the queue is full, and this attempt then just waits out its timeout.
      static_cast<void>(socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait));
      std::optional<v1::Reply> reply = AwaitReply(
          request.request_id(), std::min(deadline, Clock::now() + options_.reply_timeout));
      if (reply.has_value()) return *std::move(reply);
    }
    // Drop the unanswered request and any late reply to it, so neither leaks into the next
    // Call.
    Reopen();
  } catch (const zmq::error_t& e) {
    return ClientError("request_id=" + request.request_id(), e);
  }
  return UnavailableError("ingest client: no reply from " + endpoint_ +
                          " to request_id=" + request.request_id() + " after " +
                          std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts"));
}

std::optional<v1::Reply> Client::AwaitReply(std::string_view request_id, Clock::time_point until) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    zmq::pollitem_t item = {socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, left) == 0) continue;  // timed out: `left` is now <= 0
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal; wait for what is left
      throw;
    }
    // Drain everything readable; the reply may sit behind stale ones.
    while (true) {
      zmq::message_t frame;
      if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
      if (frame.more()) {
        // Replies to a DEALER are one frame; skip the rest of anything else.
        while (frame.more()) {
          if (!socket_.recv(frame, zmq::recv_flags::dontwait)) break;
        }
        continue;
      }
      v1::Reply reply;
      if (frame.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) continue;
      if (!reply.ParseFromArray(frame.data(), static_cast<int>(frame.size()))) continue;
      if (reply.request_id() == request_id) return reply;
    }
  }
}

}  // namespace tandem::ingest
