// The zmq_pub plugin: publishes each delivery as a two-frame message [topic, notification JSON]
// on a ZeroMQ PUB socket the instance binds at create; the topic is the channel's address.
// Best effort by nature: PUB drops a message when no subscriber is connected, when a
// subscriber's queue is full (send_hwm), and when a subscriber is slow to join, and the plugin
// cannot tell. A delivery is reported delivered once ZeroMQ accepted the message.

#include <memory>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "plugins/common/plugin_util.h"

namespace tandem::plugins {
namespace {

// zmq::error_t's message names the failure, e.g. "Address already in use".
std::string ZmqError(const zmq::error_t& e) { return e.what(); }

// Owns its own ZeroMQ context, so instances share nothing and destroying one never waits on
// another's sockets. Deliver runs on one outbox thread at a time (plugin.h); ZeroMQ allows a
// socket to move between threads with a full memory barrier between uses, which the host's
// hand-over from create (main thread) to deliver (outbox thread) to destroy provides.
class ZmqPubInstance final : public Instance {
 public:
  ZmqPubInstance(zmq::context_t context, zmq::socket_t socket, std::string endpoint)
      : context_(std::move(context)), socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}
  // The socket closes before the context (members are destroyed in reverse order), as
  // terminating a context requires; that then waits at most linger_ms for messages still queued.
  ~ZmqPubInstance() override = default;

  // The address is the topic, sent as the first frame: any string ("" = no topic prefix). A C
  // string cannot carry a NUL, so there is nothing to refuse.
  std::string CheckAddress(std::string_view) const override { return ""; }

  Outcome Deliver(const tandem_plugin_delivery& delivery) override {
    const std::string_view topic(delivery.address);
    try {
      // On a PUB socket a send never blocks: at the high-water mark ZeroMQ drops the message and
      // still reports it sent. ZMQ_DONTWAIT makes sure of it, and the "would block" answers
      // below are there only because cppzmq's send can give one. The second frame of a
      // multipart message is always accepted once the first was.
      if (!socket_.send(zmq::const_buffer(topic.data(), topic.size()),
                        zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return Outcome::Retry("publish on " + endpoint_ + ": not accepted (would block)");
      }
      if (!socket_.send(zmq::const_buffer(delivery.json, delivery.json_size),
                        zmq::send_flags::dontwait)) {
        return Outcome::Retry("publish on " + endpoint_ + ": not accepted (would block)");
      }
    } catch (const zmq::error_t& e) {
      return Outcome::Retry("publish on " + endpoint_ + ": " + ZmqError(e));
    }
    return Outcome::Delivered();
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
  const std::string endpoint_;
};

std::unique_ptr<Instance> MakeZmqPub(std::string_view, Config& config,
                                     const tandem_plugin_host& host, std::string* error) {
  const std::string endpoint = config.RequiredString("endpoint");
  const int send_hwm = static_cast<int>(config.Int("send_hwm", 10000, 1, 10000000));
  const int linger_ms = static_cast<int>(config.Int("linger_ms", 0, 0, 60000));
  if (std::string why = config.Finish(); !why.empty()) {
    *error = std::move(why);
    return nullptr;
  }
  try {
    zmq::context_t context(1);
    zmq::socket_t socket(context, zmq::socket_type::pub);
    socket.set(zmq::sockopt::sndhwm, send_hwm);
    socket.set(zmq::sockopt::linger, linger_ms);
    try {
      socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
      *error = "config key 'endpoint': cannot bind " + endpoint + ": " + ZmqError(e);
      return nullptr;
    }
    // The endpoint as bound: with a wildcard port ("tcp://127.0.0.1:*") this is where
    // subscribers connect. Logged once, at create.
    const std::string bound = socket.get(zmq::sockopt::last_endpoint);
    HostLog(&host).Info("publishing on " + bound);
    return std::make_unique<ZmqPubInstance>(std::move(context), std::move(socket), bound);
  } catch (const zmq::error_t& e) {
    *error = "endpoint " + endpoint + ": " + ZmqError(e);
    return nullptr;
  }
}

}  // namespace
}  // namespace tandem::plugins

TANDEM_DEFINE_PLUGIN("zmq_pub", "1.0.0", &::tandem::plugins::MakeZmqPub)
