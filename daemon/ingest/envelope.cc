#include "daemon/ingest/envelope.h"

#include <limits>
#include <string>

namespace tandem::ingest {

Result<v1::Request> ParseRequest(std::string_view bytes) {
  v1::Request request;
  // ParseFromArray takes an int size; a body longer than INT_MAX cannot be a valid Request (the
  // router's maximum message size is far below it anyway).
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgumentError("message body (" + std::to_string(bytes.size()) +
                                " bytes) is not a tandem.v1.Request");
  }
  if (request.request_id().empty()) {
    return InvalidArgumentError("request: field 'request_id' is empty");
  }
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return InvalidArgumentError("request: field 'request_id' is longer than " +
                                std::to_string(kMaxRequestIdBytes) + " bytes");
  }
  return request;
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
