#include "daemon/ingest/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/ingest/envelope.h"
#include "tests/unit/ingest/test_server.h"

namespace tandem::ingest {
namespace {

using test::kWait;
using test::Publish;
using test::TestServer;
using Clock = std::chrono::steady_clock;

// An endpoint nobody listens on.
std::string Nowhere() {
  return "ipc://" + (std::filesystem::temp_directory_path() / "tandem-ingest-nobody.sock").string();
}

ClientOptions Quick(int max_attempts) {
  ClientOptions options;
  options.reply_timeout = std::chrono::milliseconds(200);
  options.max_attempts = max_attempts;
  options.deadline = kWait;
  return options;
}

class ClientTest : public ::testing::Test {
 protected:
  zmq::context_t context_;
  TestServer server_{context_};
};

TEST_F(ClientTest, ResendsTheSameRequestWhenTheFirstGoesUnanswered) {
  // Answers a request only the second time its request_id arrives, like a daemon whose first
  // ack was lost.
  std::vector<std::string> seen;
  ASSERT_TRUE(server_
                  .Start("tcp://127.0.0.1:*", {},
                         [&seen](const Peer& peer, std::string_view body) {
                           seen.emplace_back(body);
                           if (seen.size() == 1) return std::vector<std::string>{};
                           return test::EchoAck(peer, body);
                         })
                  .ok());
  Result<Client> client = Client::Connect(context_, server_.endpoint(), Quick(3));
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const v1::Request request = Publish("r-retry", "e-retry");
  Result<v1::Reply> reply = client->Call(request);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->request_id(), "r-retry");
  EXPECT_EQ(reply->ack().event_id(), "e-retry");
  EXPECT_EQ(reply->ack().status(), v1::ACK_STATUS_ACCEPTED);
  // The server saw the same request, byte for byte (same request_id, same event_id), twice,
  // from two different connections (the socket was reopened).
  std::vector<std::string> bodies = server_.Bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0], request.SerializeAsString());
  EXPECT_EQ(bodies[1], request.SerializeAsString());
  std::vector<Peer> peers = server_.Peers();
  EXPECT_NE(peers[0].routing_id, peers[1].routing_id);
}

TEST_F(ClientTest, IgnoresRepliesToOtherRequests) {
  ASSERT_TRUE(server_
                  .Start("tcp://127.0.0.1:*", {},
                         [](const Peer& peer, std::string_view body) {
                           // A stale reply, garbage, then the real answer.
                           std::vector<std::string> replies = {
                               AcceptedReply("r-old", "e-old").SerializeAsString(), "garbage \xff"};
                           for (std::string& r : test::EchoAck(peer, body))
                             replies.push_back(std::move(r));
                           return replies;
                         })
                  .ok());
  Result<Client> client = Client::Connect(context_, server_.endpoint(), Quick(1));
  ASSERT_TRUE(client.ok());
  Result<v1::Reply> reply = client->Call(Publish("r-new", "e-new"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->request_id(), "r-new");
  EXPECT_EQ(reply->ack().event_id(), "e-new");
  EXPECT_EQ(server_.Bodies().size(), 1u);
}

TEST_F(ClientTest, ReturnsQueryErrorsAsReplies) {
  ASSERT_TRUE(server_.Start("tcp://127.0.0.1:*").ok());
  Result<Client> client = Client::Connect(context_, server_.endpoint(), Quick(1));
  ASSERT_TRUE(client.ok());
  v1::Request query;
  query.set_request_id("r-query");
  query.mutable_query_case()->set_case_id("SI-404");
  Result<v1::Reply> reply = client->Call(query);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_TRUE(reply->has_error());
  EXPECT_EQ(reply->error().code(), "not_found");
}

TEST(Client, GivesUpWithUnavailableWhenNoServerAnswers) {
  zmq::context_t context;
  const std::string endpoint = Nowhere();
  ClientOptions options = Quick(3);
  options.reply_timeout = std::chrono::milliseconds(100);
  Result<Client> client = Client::Connect(context, endpoint, options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const Clock::time_point start = Clock::now();
  Result<v1::Reply> reply = client->Call(Publish("r-lost", "e-lost"));
  const auto elapsed = Clock::now() - start;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(reply.status().message().find("3 attempts"), std::string::npos)
      << reply.status().message();
  EXPECT_GE(elapsed, 3 * options.reply_timeout);  // it waited out every attempt
  EXPECT_LT(elapsed, options.deadline);
}

TEST(Client, StopsAtItsOverallDeadline) {
  zmq::context_t context;
  const std::string endpoint = Nowhere();
  ClientOptions options;
  options.reply_timeout = std::chrono::milliseconds(100);
  options.max_attempts = 1000;
  options.deadline = std::chrono::milliseconds(350);
  Result<Client> client = Client::Connect(context, endpoint, options);
  ASSERT_TRUE(client.ok());

  const Clock::time_point start = Clock::now();
  Result<v1::Reply> reply = client->Call(Publish("r-lost", "e-lost"));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(elapsed, options.deadline);
  EXPECT_LT(elapsed, kWait);
}

TEST(Client, RefusesARequestWithoutAUsableRequestId) {
  zmq::context_t context;
  Result<Client> client = Client::Connect(context, Nowhere(), Quick(1));
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->Call(Publish("", "e")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client->Call(Publish(std::string(kMaxRequestIdBytes + 1, 'r'), "e")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Client, RefusesAMalformedEndpointOrOptions) {
  zmq::context_t context;
  EXPECT_EQ(Client::Connect(context, "nonsense://x", Quick(1)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Client::Connect(context, Nowhere(), Quick(0)).status().code(),
            StatusCode::kInvalidArgument);
  ClientOptions curve = Quick(1);
  curve.curve = CurveClientOptions{"short", "short", "short"};
  EXPECT_EQ(Client::Connect(context, Nowhere(), curve).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tandem::ingest
