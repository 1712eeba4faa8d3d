#pragma once
// The ingest envelope (proto/tandem/v1/envelope.proto) at the edge of the wire: reading a Request
// from a message body, and building the Replies the daemon sends. This is the one place where
// StatusCodes become REJECTED acks and Error replies (CONVENTIONS C4). Pure functions: no I/O.

#include <cstddef>
#include <string_view>

#include "daemon/base/status.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::ingest {

// The longest request_id a Request may carry (the same bound as event_id and case_id).
inline constexpr std::size_t kMaxRequestIdBytes = 128;

// Parses one message body as a v1::Request.
// Returns kInvalidArgument when the bytes are not a serialized Request, or when its request_id
// is empty or longer than kMaxRequestIdBytes; answer those with RejectedReply("", "", status).
// A Request whose `kind` is not set (or is a kind this build does not know) parses OK: the
// caller answers it with a REJECTED ack carrying its request_id, so the client can match it.
// Does not keep a reference to `bytes`.
Result<v1::Request> ParseRequest(std::string_view bytes);
// As ParseRequest, into `*into` (which may live on an arena, as the daemon's requests do: they
// are freed with the batch they went into). `*into` is unspecified after an error.
Status ParseRequest(std::string_view bytes, v1::Request* into);

// Returns the bytes of the event a serialized publish Request carries, as they are in
// `request_bytes` (so that the daemon stores the event as received without serializing it
// again), or an empty view when the request carries no event, or carries the publish or its
// event field more than once (protobuf merges repeated occurrences of a message field, so no
// single span of bytes is the event it parses), or is malformed.
std::string_view PublishedEventBytes(std::string_view request_bytes);

// Returns a Reply to `request_id` acknowledging `event_id` as ACCEPTED.
v1::Reply AcceptedReply(std::string_view request_id, std::string_view event_id);

// Returns a Reply to `request_id` saying `event_id` was seen before, and how its first delivery
// ended: `first_outcome` OK means it was accepted, any other status means it was rejected for
// that reason.
v1::Reply DuplicateReply(std::string_view request_id, std::string_view event_id,
                         const Status& first_outcome);

// Returns a Reply to `request_id` rejecting `event_id` with `why`'s code name and message.
// Both ids may be empty (bytes that were not a Request).
// REQUIRES: !why.ok().
v1::Reply RejectedReply(std::string_view request_id, std::string_view event_id, const Status& why);

// Returns a Reply to `request_id` carrying `why` as an Error (for queries that failed).
// REQUIRES: !why.ok().
v1::Reply ErrorReply(std::string_view request_id, const Status& why);

}  // namespace tandem::ingest
