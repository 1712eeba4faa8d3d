#include "daemon/ingest/envelope.h"

#include <cstdint>
#include <limits>
#include <string>

namespace tandem::ingest {
namespace {

// Reads a base-128 varint at `*p` (before `end`), advancing `*p`; false when malformed.
bool ReadVarint(const char** p, const char* end, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    const auto byte = static_cast<unsigned char>(*(*p)++);
    *value |= uint64_t{byte & 0x7fu} << shift;
    if (byte < 0x80) return true;
  }
  return false;
}

// Returns the payload of the one occurrence of length-delimited field `field` in the message
// `bytes`; empty when it is absent or occurs more than once, or when `bytes` is malformed.
std::string_view OnlyField(std::string_view bytes, uint32_t field) {
  std::string_view found;
  bool seen = false;
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  while (p < end) {
    uint64_t tag = 0;
    uint64_t value = 0;
    if (!ReadVarint(&p, end, &tag)) return {};
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(&p, end, &value)) return {};
        break;
      case 1:  // 64-bit
        if (end - p < 8) return {};
        p += 8;
        break;
      case 2:  // length-delimited
        if (!ReadVarint(&p, end, &value) || value > static_cast<uint64_t>(end - p)) return {};
        if ((tag >> 3) == field) {
          if (seen) return {};
          seen = true;
          found = std::string_view(p, value);
        }
        p += value;
        break;
      case 5:  // 32-bit
        if (end - p < 4) return {};
        p += 4;
        break;
      default:  // groups: no tandem message has them
        return {};
    }
  }
  return found;
}

}  // namespace

std::string_view PublishedEventBytes(std::string_view request_bytes) {
  const std::string_view publish = OnlyField(request_bytes, v1::Request::kPublishFieldNumber);
  return publish.empty() ? publish : OnlyField(publish, v1::PublishEvent::kEventFieldNumber);
}

Result<v1::Request> ParseRequest(std::string_view bytes) {
  v1::Request request;
  TANDEM_RETURN_IF_ERROR(ParseRequest(bytes, &request));
  return request;
}

Status ParseRequest(std::string_view bytes, v1::Request* into) {
  // ParseFromArray takes an int size; a body longer than INT_MAX cannot be a valid Request (the
  // router's maximum message size is far below it anyway).
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !into->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("message body (" + std::to_string(bytes.size()) +
                                " bytes) is not a tandem.v1.Request");
  }
  if (into->request_id().empty()) {
    return InvalidArgumentError("request: field 'request_id' is empty");
  }
  if (into->request_id().size() > kMaxRequestIdBytes) {
    return InvalidArgumentError("request: field 'request_id' is longer than " +
                                std::to_string(kMaxRequestIdBytes) + " bytes");
  }
  return OkStatus();
}

v1::Reply AcceptedReply(std::string_view request_id, std::string_view event_id) {
  v1::Reply reply;
  reply.set_request_id(std::string(request_id));
  v1::Ack* ack = reply.mutable_ack();
  ack->set_event_id(std::string(event_id));
  ack->set_status(v1::ACK_STATUS_ACCEPTED);
  return reply;
}

v1::Reply DuplicateReply(std::string_view request_id, std::string_view event_id,
                         const Status& first_outcome) {
  v1::Reply reply;
  reply.set_request_id(std::string(request_id));
  v1::Ack* ack = reply.mutable_ack();
  ack->set_event_id(std::string(event_id));
  ack->set_status(v1::ACK_STATUS_DUPLICATE);
  if (first_outcome.ok()) {
    ack->set_first_status(v1::ACK_STATUS_ACCEPTED);
  } else {
    ack->set_first_status(v1::ACK_STATUS_REJECTED);
    ack->set_code(std::string(StatusCodeName(first_outcome.code())));
    ack->set_reason(first_outcome.message());
  }
  return reply;
}

v1::Reply RejectedReply(std::string_view request_id, std::string_view event_id, const Status& why) {
  // A rejection without a reason would leave the publisher unable to fix its event.
  TANDEM_CHECK(!why.ok());
  v1::Reply reply;
  reply.set_request_id(std::string(request_id));
  v1::Ack* ack = reply.mutable_ack();
  ack->set_event_id(std::string(event_id));
  ack->set_status(v1::ACK_STATUS_REJECTED);
  ack->set_code(std::string(StatusCodeName(why.code())));
  ack->set_reason(why.message());
  return reply;
}

v1::Reply ErrorReply(std::string_view request_id, const Status& why) {
  // An Error reply for a request that succeeded is a caller bug.
  TANDEM_CHECK(!why.ok());
  v1::Reply reply;
  reply.set_request_id(std::string(request_id));
  v1::Error* error = reply.mutable_error();
  error->set_code(std::string(StatusCodeName(why.code())));
  error->set_message(why.message());
  return reply;
}

}  // namespace tandem::ingest
