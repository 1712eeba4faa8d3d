#include "daemon/ingest/router.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zmq.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "daemon/ingest/client.h"
#include "daemon/ingest/envelope.h"
#include "tests/unit/ingest/test_server.h"

namespace tandem::ingest {
namespace {

using test::ConnectRaw;
using test::kWait;
using test::Publish;
using test::ReceiveReply;
using test::TestServer;

constexpr char kLoopback[] = "tcp://127.0.0.1:*";

void SendRequest(zmq::socket_t& socket, const v1::Request& request) {
  ASSERT_TRUE(socket.send(zmq::buffer(request.SerializeAsString()), zmq::send_flags::none));
}

class RouterTest : public ::testing::Test {
 protected:
  // Declared first, destroyed last: every socket must be closed before the context ends.
  zmq::context_t context_;
  TestServer server_{context_};
};

TEST_F(RouterTest, RoundTripWithDealerPeer) {
  ASSERT_TRUE(server_.Start(kLoopback).ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  SendRequest(dealer, Publish("r-1", "e-1"));

  std::optional<v1::Reply> reply = ReceiveReply(dealer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-1");
  ASSERT_TRUE(reply->has_ack());
  EXPECT_EQ(reply->ack().event_id(), "e-1");
  EXPECT_EQ(reply->ack().status(), v1::ACK_STATUS_ACCEPTED);
  ASSERT_EQ(server_.Peers().size(), 1u);
  EXPECT_FALSE(server_.Peers()[0].delimited);
  EXPECT_EQ(server_.Bodies()[0], Publish("r-1", "e-1").SerializeAsString());
}

TEST_F(RouterTest, RoundTripWithReqPeerKeepsTheDelimiter) {
  ASSERT_TRUE(server_.Start(kLoopback).ok());
  // A REQ socket adds an empty delimiter frame and drops any reply that lacks one, so the
  // reply arriving at all shows the router framed it the REQ way.
  zmq::socket_t req = ConnectRaw(context_, server_.endpoint(), zmq::socket_type::req);
  SendRequest(req, Publish("r-req", "e-req"));

  std::optional<v1::Reply> reply = ReceiveReply(req);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-req");
  EXPECT_EQ(reply->ack().status(), v1::ACK_STATUS_ACCEPTED);
  ASSERT_EQ(server_.Peers().size(), 1u);
  EXPECT_TRUE(server_.Peers()[0].delimited);
  EXPECT_EQ(server_.Bodies()[0], Publish("r-req", "e-req").SerializeAsString());
}

TEST_F(RouterTest, RoundTripOverIpc) {
  std::string dir = (std::filesystem::temp_directory_path() / "tandem-ingest-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  ASSERT_TRUE(server_.Start("ipc://" + dir + "/ingest.sock").ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  SendRequest(dealer, Publish("r-ipc", "e-ipc"));

  std::optional<v1::Reply> reply = ReceiveReply(dealer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-ipc");
  dealer.close();
  server_.Stop();
  std::filesystem::remove_all(dir);
}

TEST_F(RouterTest, DeliversABurstMessageByMessageThenEndsTheTurn) {
  RouterOptions options;
  options.max_messages_per_turn = 64;
  // inproc: a message is in the router's queue as soon as send() returns, so every message
  // sent while the loop is blocked is waiting when it resumes.
  ASSERT_TRUE(server_.Start("inproc://burst", options).ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  constexpr int kMessages = 200;
  {
    std::promise<void> release = server_.BlockLoop();
    for (int i = 0; i < kMessages; ++i) {
      SendRequest(dealer, Publish("r-" + std::to_string(i), "e-" + std::to_string(i)));
    }
    release.set_value();
  }
  for (int i = 0; i < kMessages; ++i) {
    std::optional<v1::Reply> reply = ReceiveReply(dealer);
    ASSERT_TRUE(reply.has_value()) << "reply " << i;
    EXPECT_EQ(reply->request_id(), "r-" + std::to_string(i));  // one peer: order is kept
  }

  std::vector<int> turns = server_.TurnSizes();
  EXPECT_EQ(std::accumulate(turns.begin(), turns.end(), 0), kMessages);
  EXPECT_GT(*std::max_element(turns.begin(), turns.end()), 1);   // a burst shares a turn
  EXPECT_LE(*std::max_element(turns.begin(), turns.end()), 64);  // and is capped
  // Every turn end follows its turn's requests: the log is runs of R, each closed by one T.
  std::string log = server_.Log();
  std::string expected;
  for (int size : turns) expected += std::string(size, 'R') + "T";
  EXPECT_EQ(log, expected);
  EXPECT_EQ(server_.router().stats().messages_received, static_cast<uint64_t>(kMessages));
}

// Pause (the writer's back-pressure while a full batch waits for a commit): the turn ends after
// the request that paused, nothing more is received, replies still go out; Resume picks up the
// requests that waited, in order.
TEST_F(RouterTest, PauseStopsReceivingUntilResumeAndLosesNothing) {
  int handled = 0;
  ASSERT_TRUE(server_
                  .Start("inproc://pause", {},
                         [&](const Peer& peer, std::string_view body) {
                           if (++handled == 3) server_.router().Pause();
                           return test::EchoAck(peer, body);
                         })
                  .ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  constexpr int kMessages = 10;
  {
    std::promise<void> release = server_.BlockLoop();
    for (int i = 0; i < kMessages; ++i) {
      SendRequest(dealer, Publish("r-" + std::to_string(i), "e-" + std::to_string(i)));
    }
    release.set_value();
  }
  for (int i = 0; i < 3; ++i) {
    std::optional<v1::Reply> reply = ReceiveReply(dealer);
    ASSERT_TRUE(reply.has_value()) << "reply " << i;
    EXPECT_EQ(reply->request_id(), "r-" + std::to_string(i));
  }
  dealer.set(zmq::sockopt::rcvtimeo, 200);
  EXPECT_FALSE(ReceiveReply(dealer).has_value());  // paused: the rest wait in libzmq
  EXPECT_EQ(server_.Run([&] { return handled; }), 3);
  EXPECT_EQ(server_.TurnSizes(), std::vector<int>{3});

  dealer.set(zmq::sockopt::rcvtimeo, static_cast<int>(kWait.count()));
  server_.Run([&] { server_.router().Resume(); });
  for (int i = 3; i < kMessages; ++i) {
    std::optional<v1::Reply> reply = ReceiveReply(dealer);
    ASSERT_TRUE(reply.has_value()) << "reply " << i;
    EXPECT_EQ(reply->request_id(), "r-" + std::to_string(i));
  }
  EXPECT_EQ(server_.router().stats().messages_received, static_cast<uint64_t>(kMessages));
}

TEST_F(RouterTest, HandsAnInvalidBodyToTheHandlerWhichCanRejectIt) {
  ASSERT_TRUE(server_.Start(kLoopback).ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  const std::string garbage = "\xff\xff\xff not a protobuf";
  ASSERT_TRUE(dealer.send(zmq::buffer(garbage), zmq::send_flags::none));

  std::optional<v1::Reply> reply = ReceiveReply(dealer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "");
  ASSERT_TRUE(reply->has_ack());
  EXPECT_EQ(reply->ack().status(), v1::ACK_STATUS_REJECTED);
  EXPECT_EQ(reply->ack().code(), "invalid_argument");
  EXPECT_NE(reply->ack().reason(), "");
  EXPECT_EQ(server_.Bodies(), std::vector<std::string>{garbage});
}

TEST_F(RouterTest, DropsMessagesWithUnknownFramingAndKeepsServing) {
  ASSERT_TRUE(server_.Start(kLoopback).ok());
  zmq::socket_t dealer = ConnectRaw(context_, server_.endpoint());
  // Two frames whose first is not an empty delimiter: neither DEALER nor REQ framing.
  ASSERT_TRUE(dealer.send(zmq::str_buffer("x"), zmq::send_flags::sndmore));
  ASSERT_TRUE(dealer.send(zmq::str_buffer("y"), zmq::send_flags::none));
  SendRequest(dealer, Publish("r-after", "e-after"));

  std::optional<v1::Reply> reply = ReceiveReply(dealer);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-after");
  EXPECT_EQ(server_.Bodies().size(), 1u);
  EXPECT_EQ(server_.Run([&] { return server_.router().stats().messages_malformed; }), 1u);
}

// Records the connection drop libzmq makes when it refuses an oversized message.
class DisconnectMonitor : public zmq::monitor_t {
 public:
  void on_event_disconnected(const zmq_event_t&, const char*) override { disconnected = true; }
  bool disconnected = false;
};

TEST_F(RouterTest, DropsAnOversizedMessageUnseenAndKeepsServingOthers) {
  RouterOptions options;
  options.max_message_bytes = 1024;
  ASSERT_TRUE(server_.Start(kLoopback, options).ok());

  zmq::socket_t big = ConnectRaw(context_, server_.endpoint());
  DisconnectMonitor monitor;
  monitor.init(big, "inproc://big-monitor", ZMQ_EVENT_DISCONNECTED);
  ASSERT_TRUE(big.send(zmq::buffer(std::string(4096, 'x')), zmq::send_flags::none));
  // The router's libzmq refuses the frame while decoding it and drops the connection.
  const auto until = std::chrono::steady_clock::now() + kWait;
  while (!monitor.disconnected && std::chrono::steady_clock::now() < until) {
    monitor.check_event(50);
  }
  EXPECT_TRUE(monitor.disconnected);

  zmq::socket_t next = ConnectRaw(context_, server_.endpoint());
  SendRequest(next, Publish("r-next", "e-next"));
  std::optional<v1::Reply> reply = ReceiveReply(next);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-next");
  EXPECT_EQ(server_.Bodies(),
            std::vector<std::string>{Publish("r-next", "e-next").SerializeAsString()});
}

TEST_F(RouterTest, ReplyToAnUnknownPeerIsNotFound) {
  ASSERT_TRUE(server_.Start(kLoopback).ok());
  Status status = server_.Run([&] { return server_.router().Send({"no-such-peer", false}, "x"); });
  EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();
}

TEST_F(RouterTest, ReplyToADisconnectedPeerFailsAndTheRouterCarriesOn) {
  // Keep the request unanswered, so the test replies itself once the peer is gone.
  ASSERT_TRUE(server_
                  .Start(kLoopback, {},
                         [](const Peer&, std::string_view body) {
                           return body == "hold" ? std::vector<std::string>{}
                                                 : test::EchoAck({}, body);
                         })
                  .ok());
  {
    zmq::socket_t gone = ConnectRaw(context_, server_.endpoint());
    ASSERT_TRUE(gone.send(zmq::str_buffer("hold"), zmq::send_flags::none));
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (server_.Peers().empty() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(server_.Peers().size(), 1u);
  }  // closed with linger 0
  const Peer peer = server_.Peers()[0];
  // The router learns of the disconnect asynchronously; until then a reply is queued and lost.
  Status status;
  const auto until = std::chrono::steady_clock::now() + kWait;
  do {
    status = server_.Run([&] { return server_.router().Send(peer, "late reply"); });
    if (!status.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < until);
  EXPECT_EQ(status.code(), StatusCode::kNotFound) << status.ToString();

  zmq::socket_t next = ConnectRaw(context_, server_.endpoint());
  SendRequest(next, Publish("r-next", "e-next"));
  std::optional<v1::Reply> reply = ReceiveReply(next);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->request_id(), "r-next");
  EXPECT_GE(server_.Run([&] { return server_.router().stats().replies_failed; }), 1u);
}

TEST_F(RouterTest, ReplyToAPeerWithAFullQueueIsUnavailable) {
  RouterOptions options;
  options.send_high_water_mark = 1;
  // inproc: the pipe holds the router's send HWM plus the peer's receive HWM, no more.
  ASSERT_TRUE(server_
                  .Start("inproc://full", options,
                         [](const Peer&, std::string_view) { return std::vector<std::string>{}; })
                  .ok());
  zmq::socket_t slow(context_, zmq::socket_type::dealer);
  slow.set(zmq::sockopt::linger, 0);
  slow.set(zmq::sockopt::rcvhwm, 1);
  slow.connect(server_.endpoint());
  ASSERT_TRUE(slow.send(zmq::str_buffer("hello"), zmq::send_flags::none));
  const auto until = std::chrono::steady_clock::now() + kWait;
  while (server_.Peers().empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(server_.Peers().size(), 1u);
  const Peer peer = server_.Peers()[0];

  std::vector<Status> results = server_.Run([&] {
    std::vector<Status> out;
    for (int i = 0; i < 10; ++i) out.push_back(server_.router().Send(peer, "reply"));
    return out;
  });
  EXPECT_TRUE(results[0].ok()) << results[0].ToString();
  EXPECT_EQ(results.back().code(), StatusCode::kUnavailable) << results.back().ToString();
}

TEST(RouterBind, FailsWhenThePortIsInUse) {
  zmq::context_t context;
  asio::io_context io;
  Result<std::unique_ptr<Router>> first = Router::Bind(context, io.get_executor(), kLoopback, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<std::unique_ptr<Router>> second =
      Router::Bind(context, io.get_executor(), (*first)->endpoint(), {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().ToString();
}

TEST(RouterBind, FailsOnAMalformedEndpoint) {
  zmq::context_t context;
  asio::io_context io;
  for (const char* endpoint : {"tcp://127.0.0.1", "nonsense://x", "tcp://127.0.0.1:notaport"}) {
    Result<std::unique_ptr<Router>> router = Router::Bind(context, io.get_executor(), endpoint, {});
    ASSERT_FALSE(router.ok()) << endpoint;
    EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument) << router.status().ToString();
  }
}

TEST(RouterBind, CloseIsIdempotentAndRefusesLaterReplies) {
  zmq::context_t context;
  asio::io_context io;
  Result<std::unique_ptr<Router>> router = Router::Bind(context, io.get_executor(), kLoopback, {});
  ASSERT_TRUE(router.ok());
  (*router)->Close();
  (*router)->Close();
  EXPECT_EQ((*router)->Send({"peer", false}, "x").code(), StatusCode::kFailedPrecondition);
}

struct KeyPair {
  std::string public_key;
  std::string secret_key;
};

KeyPair NewKeyPair() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {public_key, secret_key};
}

ClientOptions QuickClient() {
  ClientOptions options;
  options.reply_timeout = std::chrono::milliseconds(250);
  options.max_attempts = 2;
  options.deadline = kWait;
  return options;
}

TEST_F(RouterTest, CurveAdmitsOnlyListedClientKeys) {
  const KeyPair server_keys = NewKeyPair();
  const KeyPair allowed = NewKeyPair();
  const KeyPair stranger = NewKeyPair();
  RouterOptions options;
  options.curve = CurveServerOptions{server_keys.secret_key, {allowed.public_key}};
  ASSERT_TRUE(server_.Start(kLoopback, options).ok());

  ClientOptions allowed_options = QuickClient();
  allowed_options.curve =
      CurveClientOptions{server_keys.public_key, allowed.public_key, allowed.secret_key};
  Result<Client> client = Client::Connect(context_, server_.endpoint(), allowed_options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<v1::Reply> reply = client->Call(Publish("r-curve", "e-curve"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->ack().status(), v1::ACK_STATUS_ACCEPTED);

  ClientOptions stranger_options = QuickClient();
  stranger_options.curve =
      CurveClientOptions{server_keys.public_key, stranger.public_key, stranger.secret_key};
  Result<Client> refused = Client::Connect(context_, server_.endpoint(), stranger_options);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->Call(Publish("r-stranger", "e-stranger")).status().code(),
            StatusCode::kUnavailable);

  Result<Client> plain = Client::Connect(context_, server_.endpoint(), QuickClient());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->Call(Publish("r-plain", "e-plain")).status().code(), StatusCode::kUnavailable);

  EXPECT_EQ(server_.Bodies().size(), 1u);  // only the listed client got through
}

TEST(RouterBind, CurveRejectsAMalformedKey) {
  zmq::context_t context;
  asio::io_context io;
  const KeyPair good = NewKeyPair();
  RouterOptions options;
  options.curve = CurveServerOptions{"too short", {good.public_key}};
  Result<std::unique_ptr<Router>> router =
      Router::Bind(context, io.get_executor(), kLoopback, options);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);

  options.curve = CurveServerOptions{good.secret_key, {std::string(40, ' ')}};
  router = Router::Bind(context, io.get_executor(), kLoopback, options);
  ASSERT_FALSE(router.ok());
  EXPECT_EQ(router.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(router.status().message().find(good.secret_key), std::string::npos);
}

TEST(RouterBind, OneCurveRouterPerContextAndItsZapHandlerLeavesWithIt) {
  zmq::context_t context;
  asio::io_context io;
  const KeyPair keys = NewKeyPair();
  RouterOptions options;
  options.curve = CurveServerOptions{keys.secret_key, {}};
  Result<std::unique_ptr<Router>> first =
      Router::Bind(context, io.get_executor(), kLoopback, options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<std::unique_ptr<Router>> second =
      Router::Bind(context, io.get_executor(), kLoopback, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);

  first->reset();
  Result<std::unique_ptr<Router>> third =
      Router::Bind(context, io.get_executor(), kLoopback, options);
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

}  // namespace
}  // namespace tandem::ingest
