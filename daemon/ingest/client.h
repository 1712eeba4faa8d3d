#pragma once
// The publisher's side of the ingest transport: a blocking request/reply client over a ZeroMQ
// DEALER socket that retries until it gets an answer (the Lazy Pirate pattern). Used by
// `tandemctl publish` and `tandemctl case show`, and usable by any integrator written in C++.
// Retrying is safe because a retry resends the same request, with the same event_id, and the
// daemon answers a repeated event_id with DUPLICATE instead of applying it twice.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "daemon/base/status.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::ingest {

// CurveZMQ client keys; all three are 40 Z85 characters.
struct CurveClientOptions {
  // The daemon's public key.
  std::string server_public_key;
  // This client's key pair; the public key must be in the daemon's allow-list.
  std::string public_key;
  // SECRET: never logged.
  std::string secret_key;
};

// How a Client waits and retries. Read once by Connect.
struct ClientOptions {
  // How long one attempt waits for its reply before the socket is reopened and the request
  // resent. REQUIRES: > 0.
  std::chrono::milliseconds reply_timeout{2500};
  // The most times one request is sent (the first send included). REQUIRES: >= 1.
  int max_attempts = 3;
  // The most one Call may take in total, whatever max_attempts says. REQUIRES: > 0.
  std::chrono::milliseconds deadline{10000};
  // The largest reply frame accepted, in bytes (ZMQ_MAXMSGSIZE; a case view can be large);
  // -1 for no limit.
  int64_t max_reply_bytes = 64 << 20;
  // When set, the connection is CurveZMQ-encrypted and authenticated.
  std::optional<CurveClientOptions> curve;
};

// A connection to one tandem ingest endpoint. Not thread-safe: use it from one thread at a time.
// Keeps a reference to the zmq::context_t, which must outlive it. Movable.
class Client {
 public:
  // Opens a DEALER socket in `context` and connects it to `endpoint`. Connecting is
  // asynchronous: a daemon that is not up yet is not an error here, only a Call without a reply.
  // Returns kInvalidArgument for a malformed endpoint, option or key; kInternal for other
  // ZeroMQ errors. Does not keep references to its arguments other than `context`.
  static Result<Client> Connect(zmq::context_t& context, std::string_view endpoint,
                                const ClientOptions& options);

  // Sends `request` and returns the Reply carrying its request_id. Replies with any other
  // request_id (stale answers to earlier requests) and bodies that are not Replies are
  // ignored. When no reply comes within reply_timeout the socket is closed, reopened, and the
  // same bytes are sent again, up to max_attempts sends or until the deadline passes.
  // Returns kUnavailable when no reply came; kInvalidArgument when request_id is empty or
  // longer than kMaxRequestIdBytes (the daemon could not echo it); kInternal for ZeroMQ errors.
  // A reply that rejects the request is a successful Call: look at the Reply.
  Result<v1::Reply> Call(const v1::Request& request);

  const std::string& endpoint() const { return endpoint_; }

 private:
  Client(zmq::context_t& context, std::string endpoint, const ClientOptions& options)
      : context_(&context), endpoint_(std::move(endpoint)), options_(options) {}

  // Closes the socket, dropping anything unsent or unread, and opens a new connected one.
  // Throws zmq::error_t.
  void Reopen();
  // Waits until `until` for the reply to `request_id`. Returns it, or nullopt on timeout.
  // Throws zmq::error_t.
  std::optional<v1::Reply> AwaitReply(std::string_view request_id,
                                      std::chrono::steady_clock::time_point until);

  zmq::context_t* context_;
  std::string endpoint_;
  ClientOptions options_;
  zmq::socket_t socket_;
};

}  // namespace tandem::ingest
