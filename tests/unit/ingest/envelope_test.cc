#include "daemon/ingest/envelope.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

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

// A publish request whose event has facts, a timestamp and an unknown field of a newer
// publisher, with the request's own fields before and after the publish.
v1::Request PublishRequest() {
  v1::Request request;
  request.set_request_id("r-1");
  v1::Event* event = request.mutable_publish()->mutable_event();
  event->set_event_id("e-1");
  event->set_case_id("SI-1");
  event->set_type("incident.reported");
  event->mutable_occurred_at()->set_seconds(1798106400);
  (*event->mutable_facts()->mutable_fields())["became_aware_on"].set_string_value("2026-12-24");
  (*event->mutable_facts()->mutable_fields())["count"].set_number_value(3);
  event->GetReflection()->MutableUnknownFields(event)->AddVarint(99, 7);
  return request;
}

TEST(PublishedEventBytes, AreTheEventAsItWasSerializedInTheRequest) {
  const v1::Request request = PublishRequest();
  const std::string bytes = request.SerializeAsString();
  const std::string_view event = PublishedEventBytes(bytes);
  EXPECT_EQ(event, request.publish().event().SerializeAsString());
  // A view into the request's own bytes, not a copy.
  EXPECT_GE(event.data(), bytes.data());
  EXPECT_LE(event.data() + event.size(), bytes.data() + bytes.size());
  v1::Event parsed;
  ASSERT_TRUE(parsed.ParseFromArray(event.data(), static_cast<int>(event.size())));
  EXPECT_EQ(parsed.facts().fields().at("became_aware_on").string_value(), "2026-12-24");
  EXPECT_EQ(parsed.GetReflection()->GetUnknownFields(parsed).field_count(), 1);
}

TEST(PublishedEventBytes, AreEmptyWhenNoSingleSpanIsTheEvent) {
  // No publish at all, and a publish without an event.
  v1::Request query;
  query.set_request_id("r-2");
  query.mutable_query_case()->set_case_id("SI-1");
  EXPECT_TRUE(PublishedEventBytes(query.SerializeAsString()).empty());
  v1::Request bare;
  bare.set_request_id("r-3");
  bare.mutable_publish();
  EXPECT_TRUE(PublishedEventBytes(bare.SerializeAsString()).empty());
  // The publish field twice: protobuf merges the two, so neither span alone is the event.
  v1::Request second;
  second.mutable_publish()->mutable_event()->set_case_id("SI-2");
  const std::string twice = PublishRequest().SerializeAsString() + second.SerializeAsString();
  Result<v1::Request> merged = ParseRequest(twice);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->publish().event().event_id(), "e-1");
  EXPECT_EQ(merged->publish().event().case_id(), "SI-2");
  EXPECT_TRUE(PublishedEventBytes(twice).empty());
  // Truncated bytes.
  const std::string whole = PublishRequest().SerializeAsString();
  EXPECT_TRUE(PublishedEventBytes(std::string_view(whole).substr(0, whole.size() - 3)).empty());
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
