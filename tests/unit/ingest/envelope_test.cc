#include "daemon/ingest/envelope.h"

#include <gtest/gtest.h>

#include <string>

namespace tandem::ingest {
namespace {

TEST(ParseRequest, ReadsAPublishRequest) {
  v1::Request request;
  request.set_request_id("r-1");
  request.mutable_publish()->mutable_event()->set_event_id("e-1");
  Result<v1::Request> parsed = ParseRequest(request.SerializeAsString());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->request_id(), "r-1");
  EXPECT_EQ(parsed->publish().event().event_id(), "e-1");
}

TEST(ParseRequest, RejectsBytesThatAreNotARequest) {
  Result<v1::Request> parsed = ParseRequest("\xff\xff\xff\xff");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseRequest, RejectsAMissingOrOverlongRequestId) {
  v1::Request request;
  request.mutable_query_case()->set_case_id("SI-1");
  EXPECT_EQ(ParseRequest(request.SerializeAsString()).status().code(),
            StatusCode::kInvalidArgument);
  request.set_request_id(std::string(kMaxRequestIdBytes + 1, 'r'));
  EXPECT_EQ(ParseRequest(request.SerializeAsString()).status().code(),
            StatusCode::kInvalidArgument);
  request.set_request_id(std::string(kMaxRequestIdBytes, 'r'));
  EXPECT_TRUE(ParseRequest(request.SerializeAsString()).ok());
}

TEST(ParseRequest, LeavesARequestWithoutAKindToTheCaller) {
  v1::Request request;
  request.set_request_id("r-empty");
  Result<v1::Request> parsed = ParseRequest(request.SerializeAsString());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind_case(), v1::Request::KIND_NOT_SET);
}

TEST(Replies, RejectedCarriesTheCodeNameAndReason) {
  v1::Reply reply =
      RejectedReply("r-1", "e-1", FailedPreconditionError("event type not accepted in state"));
  EXPECT_EQ(reply.request_id(), "r-1");
  EXPECT_EQ(reply.ack().event_id(), "e-1");
  EXPECT_EQ(reply.ack().status(), v1::ACK_STATUS_REJECTED);
  EXPECT_EQ(reply.ack().code(), "failed_precondition");
  EXPECT_EQ(reply.ack().reason(), "event type not accepted in state");
}

TEST(Replies, DuplicateRepeatsTheFirstOutcome) {
  v1::Reply accepted = DuplicateReply("r-2", "e-1", OkStatus());
  EXPECT_EQ(accepted.ack().status(), v1::ACK_STATUS_DUPLICATE);
  EXPECT_EQ(accepted.ack().first_status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(accepted.ack().code(), "");

  v1::Reply rejected = DuplicateReply("r-3", "e-2", InvalidArgumentError("fact 'x' unknown"));
  EXPECT_EQ(rejected.ack().status(), v1::ACK_STATUS_DUPLICATE);
  EXPECT_EQ(rejected.ack().first_status(), v1::ACK_STATUS_REJECTED);
  EXPECT_EQ(rejected.ack().code(), "invalid_argument");
  EXPECT_EQ(rejected.ack().reason(), "fact 'x' unknown");
}

TEST(Replies, AcceptedAndError) {
  v1::Reply accepted = AcceptedReply("r-1", "e-1");
  EXPECT_EQ(accepted.ack().status(), v1::ACK_STATUS_ACCEPTED);
  EXPECT_EQ(accepted.ack().event_id(), "e-1");

  v1::Reply error = ErrorReply("r-4", NotFoundError("case_id=SI-9: no such case"));
  EXPECT_EQ(error.request_id(), "r-4");
  EXPECT_EQ(error.error().code(), "not_found");
  EXPECT_EQ(error.error().message(), "case_id=SI-9: no such case");
}

}  // namespace
}  // namespace tandem::ingest
