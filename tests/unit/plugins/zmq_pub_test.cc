// The zmq_pub plugin (plugins/zmq_pub), loaded through the daemon's own plugin host and read by
// a real SUB socket on loopback: [topic, notification JSON] per delivery, best effort.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "tests/unit/plugins/plugin_test_util.h"

namespace tandem::plugin_test {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// Bound to a port the system picks; the plugin logs the endpoint it bound.
constexpr char kWildcardConfig[] = R"({"endpoint":"tcp://127.0.0.1:*"})";

std::string Json(const v1::OutboxRecord& record) {
  auto json = outbox::NotificationJson(record);
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? *json : "";
}

// Returns the endpoint the plugin logged at create ("publishing on <endpoint>"), or "".
std::string BoundEndpoint(const CapturedLog& log) {
  constexpr std::string_view kMarker = "publishing on ";
  for (std::string line : log.lines()) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    const std::size_t at = line.find(kMarker);
    if (at != std::string::npos) return line.substr(at + kMarker.size());
  }
  return "";
}

// Receives one multipart message, waiting at most `wait`.
std::optional<std::vector<std::string>> Receive(zmq::socket_t& socket,
                                                std::chrono::milliseconds wait) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, wait) == 0) return std::nullopt;
  std::vector<std::string> frames;
  do {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    frames.push_back(frame.to_string());
  } while (socket.get(zmq::sockopt::rcvmore));
  return frames;
}

class ZmqPubTest : public ::testing::Test {
 protected:
  // Connects a SUB socket to `endpoint`, subscribed to `topic`.
  zmq::socket_t Subscribe(const std::string& endpoint, const std::string& topic) {
    zmq::socket_t sub(context_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, topic);
    sub.connect(endpoint);
    return sub;
  }

  // Delivers `record` until `sub` receives a message, for at most 5 s: a subscriber that has
  // just connected misses what is published before its subscription reaches the publisher (the
  // "slow joiner"). Returns the first message received.
  std::optional<std::vector<std::string>> DeliverUntilReceived(outbox::PluginSink& sink,
                                                               zmq::socket_t& sub,
                                                               const v1::OutboxRecord& record) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      const Status status = sink.Deliver(record);
      EXPECT_TRUE(status.ok()) << status.ToString();
      if (auto message = Receive(sub, std::chrono::milliseconds(50))) return message;
    }
    return std::nullopt;
  }

  zmq::context_t context_;
  CapturedLog log_;
};

TEST_F(ZmqPubTest, PublishesTheAddressAsTopicThenTheNotificationJson) {
  auto sink = MakeSink("zmq_pub", kWildcardConfig, ::testing::TempDir(), log_.logger);
  ASSERT_NE(sink, nullptr);
  const std::string endpoint = BoundEndpoint(log_);
  ASSERT_THAT(endpoint, HasSubstr("tcp://127.0.0.1:"));
  zmq::socket_t sub = Subscribe(endpoint, "la_dsp");
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "la_dsp");

  const auto message = DeliverUntilReceived(*sink, sub, record);
  ASSERT_TRUE(message.has_value()) << "nothing received in 5 s";
  EXPECT_EQ(*message, (std::vector<std::string>{"la_dsp", Json(record)}));
}

TEST_F(ZmqPubTest, SubscribersReceiveOnlyTheirTopics) {
  auto sink = MakeSink("zmq_pub", kWildcardConfig, ::testing::TempDir(), log_.logger);
  ASSERT_NE(sink, nullptr);
  zmq::socket_t sub = Subscribe(BoundEndpoint(log_), "la_dsp");
  ASSERT_TRUE(DeliverUntilReceived(*sink, sub, MakeRecord(1, "n-1", "la_dsp")).has_value());
  // Messages on one connection arrive in order: had the other topic got through, it would
  // arrive before the marker.
  const v1::OutboxRecord other = MakeRecord(2, "n-2", "police");
  const v1::OutboxRecord marker = MakeRecord(3, "n-3", "la_dsp");
  ASSERT_TRUE(sink->Deliver(other).ok());
  ASSERT_TRUE(sink->Deliver(marker).ok());
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  std::optional<std::vector<std::string>> next;
  // Skip what is left of the slow-joiner loop's copies of n-1.
  while (Clock::now() < deadline) {
    next = Receive(sub, std::chrono::milliseconds(100));
    if (next && next->size() == 2 && (*next)[1] != Json(MakeRecord(1, "n-1", "la_dsp"))) break;
  }
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, (std::vector<std::string>{"la_dsp", Json(marker)}));
}

TEST_F(ZmqPubTest, AnEmptyAddressSendsAnEmptyTopicFrame) {
  auto sink = MakeSink("zmq_pub", kWildcardConfig, ::testing::TempDir(), log_.logger);
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("").ok());
  zmq::socket_t sub = Subscribe(BoundEndpoint(log_), "");
  const v1::OutboxRecord record = MakeRecord(1, "n-1", "");
  const auto message = DeliverUntilReceived(*sink, sub, record);
  ASSERT_TRUE(message.has_value()) << "nothing received in 5 s";
  EXPECT_EQ(*message, (std::vector<std::string>{"", Json(record)}));
}

TEST_F(ZmqPubTest, ReportsDeliveredWithNoSubscriberBecausePubIsBestEffort) {
  auto sink = MakeSink("zmq_pub", R"({"endpoint":"tcp://127.0.0.1:*","send_hwm":1})",
                       ::testing::TempDir(), log_.logger);
  ASSERT_NE(sink, nullptr);
  for (uint64_t i = 1; i <= 5; ++i) {
    EXPECT_TRUE(sink->Deliver(MakeRecord(i, "n-" + std::to_string(i), "la_dsp")).ok());
  }
}

TEST_F(ZmqPubTest, ASecondInstanceOnTheSameEndpointFailsNamingIt) {
  auto first = MakeSink("zmq_pub", kWildcardConfig, ::testing::TempDir(), log_.logger, "first");
  ASSERT_NE(first, nullptr);
  const std::string endpoint = BoundEndpoint(log_);
  ASSERT_FALSE(endpoint.empty());
  auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "zmq_pub"));
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  auto second =
      outbox::PluginSink::Create(*library, "second", R"({"endpoint":")" + endpoint + R"("})",
                                 ::testing::TempDir(), log_.logger);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(second.status().message(), HasSubstr("cannot bind " + endpoint));
  EXPECT_THAT(second.status().message(), HasSubstr("config key 'endpoint'"));
}

TEST_F(ZmqPubTest, RefusesAMissingOrMalformedEndpointAndBadSettings) {
  auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "zmq_pub"));
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  const struct {
    std::string config;
    std::string expected;
  } cases[] = {
      {"{}", "config key 'endpoint': required"},
      {R"({"endpoint":"nowhere"})", "cannot bind nowhere"},
      {R"({"endpoint":"tcp://127.0.0.1:*","send_hwm":0})", "config key 'send_hwm'"},
      {R"({"endpoint":"tcp://127.0.0.1:*","linger_ms":-1})", "config key 'linger_ms'"},
      {R"({"endpoint":"tcp://127.0.0.1:*","hwm":5})", "unknown config key 'hwm'"},
  };
  for (const auto& c : cases) {
    auto sink =
        outbox::PluginSink::Create(*library, "pub", c.config, ::testing::TempDir(), log_.logger);
    ASSERT_FALSE(sink.ok()) << c.config;
    EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument) << c.config;
    EXPECT_THAT(sink.status().message(), HasSubstr(c.expected)) << c.config;
  }
}

}  // namespace
}  // namespace tandem::plugin_test
