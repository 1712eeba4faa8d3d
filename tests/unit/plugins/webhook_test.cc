// The webhook plugin (plugins/webhook), loaded from the build tree through the daemon's own
// plugin host and delivering to an HttpReceiver on loopback: what it sends, how it signs it, how
// it maps each answer onto an outcome, over HTTP and HTTPS, and what its configuration and
// addresses accept. Also the HttpReceiver itself, driven byte by byte, for what the plugin's
// requests do not exercise.

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/outbox/plugin.h"
#include "tests/unit/plugins/http_receiver.h"
#include "tests/unit/plugins/plugin_fixture.h"
#include "tests/unit/plugins/plugin_test_util.h"
#include "tests/unit/plugins/raw_client.h"
#include "tests/unit/plugins/tls_test_util.h"

namespace tandem::plugin_test {
namespace {

using std::chrono::milliseconds;

// Every wait here is bounded by this; none is expected to take more than a fraction of it.
constexpr milliseconds kWait{5000};

// The signing key of the tests' secret, and the secret: "whsec_" and the key's base64, written
// out rather than computed so the plugin's decoding is checked against an independent encoding.
constexpr std::string_view kKey = "tandem-webhook-test-key-32-bytes";
constexpr std::string_view kKeyBase64 = "dGFuZGVtLXdlYmhvb2stdGVzdC1rZXktMzItYnl0ZXM=";
const std::string kSecret = "whsec_" + std::string(kKeyBase64);
// A second key, given through secret_file.
constexpr std::string_view kFileKey = "another-key-for-the-file-secret";
const std::string kFileSecret = "whsec_YW5vdGhlci1rZXktZm9yLXRoZS1maWxlLXNlY3JldA==";
// A 15-byte key: one short of the least the plugin accepts.
const std::string kShortSecret = "whsec_c2hvcnQta2V5LTE1Ynl0";

// Returns the Standard Webhooks signature of a request, computed here with libsodium from `key`:
// "v1," and the base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>").
std::string ExpectedSignature(std::string_view key, const std::string& id,
                              const std::string& timestamp, const std::string& body) {
  const std::string signed_content = id + "." + timestamp + "." + body;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()),
                              key.size());
  crypto_auth_hmacsha256_update(
      &state, reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size());
  crypto_auth_hmacsha256_final(&state, mac);
  char base64[sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(base64, sizeof base64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
  return std::string("v1,") + base64;
}

// Returns whether `request` carries a valid signature for `body` under `key`, as a receiver
// would check it (from the received webhook-id and webhook-timestamp headers).
bool SignatureVerifies(const HttpRequest& request, std::string_view key, const std::string& body) {
  return request.Header("webhook-signature") ==
         ExpectedSignature(key, request.Header("webhook-id"), request.Header("webhook-timestamp"),
                           body);
}

class WebhookTest : public ShippedPluginTest {
 protected:
  WebhookTest() : ShippedPluginTest("webhook") {}

  // The tests' configuration: the secret plus `extra`.
  static nlohmann::json Config(nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json config = {{"secret", kSecret}};
    config.update(extra);
    return config;
  }

  // "http://127.0.0.1:<port>": what error messages may name of the receiver's URL.
  std::string Origin() const { return "http://127.0.0.1:" + std::to_string(receiver_.port()); }

  HttpReceiver receiver_;
};

TEST_F(WebhookTest, DeliversTheNotificationJsonSignedOn200) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(17, "case-7:timer:3:1", receiver_.url());

  ASSERT_TRUE(sink->Deliver(record).ok());

  ASSERT_TRUE(receiver_.WaitForRequests(1, kWait));
  const std::vector<HttpRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpRequest& request = requests[0];
  const Result<std::string> json = outbox::NotificationJson(record);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/hook");
  EXPECT_EQ(request.body, json.value());
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("webhook-id"), "case-7:timer:3:1");
  EXPECT_EQ(request.Header("tandem-delivery-id"), "17");
  EXPECT_EQ(request.Header("user-agent"), "tandem-webhook/1.0");
  const std::string timestamp = request.Header("webhook-timestamp");
  ASSERT_FALSE(timestamp.empty());
  ASSERT_TRUE(std::all_of(timestamp.begin(), timestamp.end(), [](char c) {
    return c >= '0' && c <= '9';
  })) << timestamp;
  // Standard Webhooks receivers refuse timestamps more than five minutes off their clock; the
  // plugin stamps the time of sending, so this is the one check against the wall clock.
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EXPECT_LE(std::llabs(std::stoll(timestamp) - now), 300);

  EXPECT_TRUE(request.Header("webhook-signature").starts_with("v1,"));
  EXPECT_TRUE(SignatureVerifies(request, kKey, request.body));
  std::string tampered = request.body;
  tampered[tampered.find("case-7")] = 'C';
  EXPECT_FALSE(SignatureVerifies(request, kKey, tampered));
  EXPECT_FALSE(SignatureVerifies(request, kFileKey, request.body));
}

TEST_F(WebhookTest, RetriesOn500AndSendsTheSameIdAgain) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  receiver_.RespondWith({500});
  const v1::OutboxRecord record = MakeRecord(3, "case-7:timer:3:1", receiver_.url());

  const Status first = sink->Deliver(record);
  EXPECT_EQ(first.code(), StatusCode::kUnavailable) << first.ToString();
  EXPECT_NE(first.message().find(Origin()), std::string::npos) << first.message();
  EXPECT_NE(first.message().find("500"), std::string::npos) << first.message();
  const Status second = sink->Deliver(record);
  EXPECT_TRUE(second.ok()) << second.ToString();

  const std::vector<HttpRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].Header("webhook-id"), "case-7:timer:3:1");
  EXPECT_EQ(requests[1].Header("webhook-id"), "case-7:timer:3:1");
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_TRUE(SignatureVerifies(requests[0], kKey, requests[0].body));
  EXPECT_TRUE(SignatureVerifies(requests[1], kKey, requests[1].body));
}

TEST_F(WebhookTest, AnswersMapOntoOutcomes) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  const std::vector<std::pair<int, StatusCode>> cases = {
      {200, StatusCode::kOk},
      {202, StatusCode::kOk},
      {204, StatusCode::kOk},
      {400, StatusCode::kFailedPrecondition},
      {401, StatusCode::kFailedPrecondition},
      {404, StatusCode::kFailedPrecondition},
      {408, StatusCode::kUnavailable},
      {429, StatusCode::kUnavailable},
      {500, StatusCode::kUnavailable},
      {503, StatusCode::kUnavailable},
      {600, StatusCode::kUnavailable},
  };
  for (const auto& [answer, expected] : cases) {
    receiver_.RespondWith({answer});
    const Status status = sink->Deliver(MakeRecord(1, "n-1", receiver_.url()));
    EXPECT_EQ(status.code(), expected) << "HTTP " << answer << ": " << status.ToString();
    if (!status.ok()) {
      EXPECT_NE(status.message().find(std::to_string(answer)), std::string::npos)
          << status.message();
    }
  }
  EXPECT_EQ(receiver_.requests().size(), cases.size());
}

TEST_F(WebhookTest, RefusesToFollowARedirect) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  receiver_.SetResponseHeader("Location", receiver_.url("/elsewhere"));
  receiver_.RespondWith({302});

  const Status status = sink->Deliver(MakeRecord(1, "n-1", receiver_.url()));

  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("redirect refused"), std::string::npos) << status.message();
  // Deliver returned, so a followed redirect would already have arrived.
  const std::vector<HttpRequest> requests = receiver_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/hook");
}

TEST_F(WebhookTest, RetriesWhenNothingListens) {
  uint16_t port = 0;
  {
    HttpReceiver gone;
    port = gone.port();
  }
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", origin + "/hook"));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find(origin), std::string::npos) << status.message();
}

TEST_F(WebhookTest, RetriesWhenTheReceiverDoesNotAnswerInTime) {
  auto sink = Sink(Config({{"timeout_ms", 300}}));
  ASSERT_NE(sink, nullptr);
  receiver_.Hold(true);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", receiver_.url()));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("curl error 28"), std::string::npos) << status.message();
  EXPECT_TRUE(receiver_.WaitForRequests(1, kWait));
}

TEST_F(WebhookTest, RetriesWhenConnectingTakesLongerThanTheConnectTimeout) {
  // The TCP connection is made, but the TLS handshake is never answered: connecting (TCP and
  // TLS) is bounded by connect_timeout_ms, well before timeout_ms.
  SilentListener silent;
  ASSERT_TRUE(silent.listening());
  auto sink = Sink(Config({{"connect_timeout_ms", 200}, {"timeout_ms", 30000}}));
  ASSERT_NE(sink, nullptr);
  const auto start = std::chrono::steady_clock::now();

  const Status status = sink->Deliver(
      MakeRecord(1, "n-1", "https://127.0.0.1:" + std::to_string(silent.port()) + "/hook"));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("curl error 28"), std::string::npos) << status.message();
  // A bound, not a measurement: the connect timeout is 200 ms, the overall one 30 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST_F(WebhookTest, DeliversAgainOnceAHeldReceiverAnswers) {
  auto sink = Sink(Config({{"timeout_ms", 300}}));
  ASSERT_NE(sink, nullptr);
  receiver_.Hold(true);
  EXPECT_EQ(sink->Deliver(MakeRecord(1, "n-1", receiver_.url())).code(), StatusCode::kUnavailable);
  receiver_.Hold(false);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", receiver_.url()));

  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(receiver_.requests().size(), 2u);
}

TEST_F(WebhookTest, RetriesWhenTheTlsHandshakeFails) {
  // The receiver speaks plain HTTP, so an https:// request to it fails in the handshake.
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  const std::string origin = "https://127.0.0.1:" + std::to_string(receiver_.port());

  const Status status = sink->Deliver(MakeRecord(1, "n-1", origin + "/hook"));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find(origin), std::string::npos) << status.message();
  EXPECT_TRUE(receiver_.requests().empty());
}

TEST_F(WebhookTest, ErrorsNameSchemeHostAndPortButNotPathOrQuery) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  receiver_.RespondWith({500, 403});
  const std::string address = receiver_.url("/hooks/path-token-1234?key=query-token-5678");

  for (int i = 0; i < 2; ++i) {
    const Status status = sink->Deliver(MakeRecord(1, "n-1", address));
    ASSERT_FALSE(status.ok());
    EXPECT_NE(status.message().find(Origin()), std::string::npos) << status.message();
    EXPECT_EQ(status.message().find("path-token-1234"), std::string::npos) << status.message();
    EXPECT_EQ(status.message().find("query-token-5678"), std::string::npos) << status.message();
  }
  ASSERT_EQ(receiver_.requests().size(), 2u);
  EXPECT_EQ(receiver_.requests()[0].target, "/hooks/path-token-1234?key=query-token-5678");
}

TEST_F(WebhookTest, SendsConfiguredHeadersAndUserAgent) {
  auto sink =
      Sink(Config({{"headers", {{"Authorization", "Bearer receiver-token"}, {"X-Empty", ""}}},
                   {"user_agent", "northshire-tandem/2"}}));
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1", receiver_.url())).ok());

  ASSERT_EQ(receiver_.requests().size(), 1u);
  EXPECT_EQ(receiver_.requests()[0].Header("authorization"), "Bearer receiver-token");
  EXPECT_EQ(receiver_.requests()[0].Header("user-agent"), "northshire-tandem/2");
  const std::vector<std::pair<std::string, std::string>> headers = receiver_.requests()[0].headers;
  EXPECT_TRUE(std::any_of(headers.begin(), headers.end(),
                          [](const auto& header) { return header.first == "X-Empty"; }));
}

TEST_F(WebhookTest, PostsThroughTheProxyOfTheEnvironment) {
  // The receiver plays the proxy: a request through an HTTP proxy names the absolute URL.
  const ScopedEnv proxy("http_proxy", receiver_.url(""));
  const ScopedEnv no_proxy("no_proxy", std::nullopt);
  const ScopedEnv no_proxy_upper("NO_PROXY", std::nullopt);
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", "http://webhook.invalid/hook"));

  EXPECT_TRUE(status.ok()) << status.ToString();
  ASSERT_EQ(receiver_.requests().size(), 1u);
  EXPECT_EQ(receiver_.requests()[0].target, "http://webhook.invalid/hook");
  EXPECT_TRUE(SignatureVerifies(receiver_.requests()[0], kKey, receiver_.requests()[0].body));
}

TEST_F(WebhookTest, ReadsTheSecretFromAFileRelativeToTheDataDir) {
  {
    std::ofstream file(dir_.path() / "webhook.secret");
    file << kFileSecret << "\n";
  }
  auto sink = Sink({{"secret_file", "webhook.secret"}});
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1", receiver_.url())).ok());

  ASSERT_EQ(receiver_.requests().size(), 1u);
  const HttpRequest request = receiver_.requests()[0];
  EXPECT_TRUE(SignatureVerifies(request, kFileKey, request.body));
  EXPECT_FALSE(SignatureVerifies(request, kKey, request.body));
}

TEST_F(WebhookTest, DeliversOverHttpsSignedWhenTheCaFileTrustsTheReceiver) {
  const TestCertificates certificates = MakeTestCertificates(dir_.path());
  HttpReceiver https(std::make_shared<ServerTls>(certificates));
  // ca_file relative to the data directory, where the certificates were written.
  auto sink = Sink(
      Config({{"ca_file", certificates.ca_file.filename().string()}, {"require_https", true}}));
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(9, "case-7:timer:3:1", https.url());

  // Twice: the second request goes over the connection the first one left open.
  const Status first = sink->Deliver(record);
  const Status second = sink->Deliver(record);

  EXPECT_TRUE(first.ok()) << first.ToString();
  EXPECT_TRUE(second.ok()) << second.ToString();
  ASSERT_TRUE(https.WaitForRequests(2, kWait));
  const std::vector<HttpRequest> requests = https.requests();
  ASSERT_EQ(requests.size(), 2u);
  const Result<std::string> json = outbox::NotificationJson(record);
  ASSERT_TRUE(json.ok());
  for (const HttpRequest& request : requests) {
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.target, "/hook");
    EXPECT_EQ(request.body, json.value());
    EXPECT_EQ(request.Header("webhook-id"), "case-7:timer:3:1");
    EXPECT_TRUE(SignatureVerifies(request, kKey, request.body));
  }
  EXPECT_EQ(https.connections(), 1u);
  EXPECT_TRUE(receiver_.requests().empty());
}

TEST_F(WebhookTest, RetriesAndDeliversNothingWhenTheCertificateIsNotTrusted) {
  const TestCertificates certificates = MakeTestCertificates(dir_.path());
  const TestCertificates other = MakeTestCertificates(dir_.path(), "other-");
  HttpReceiver https(std::make_shared<ServerTls>(certificates));
  const std::string origin = "https://127.0.0.1:" + std::to_string(https.port());
  // The system's CA store, which does not hold the tests' CA; and a ca_file of another CA, which
  // is trusted instead of the store, not as well as it.
  for (const nlohmann::json& config : {Config(), Config({{"ca_file", other.ca_file.string()}})}) {
    auto sink = Sink(config);
    ASSERT_NE(sink, nullptr);

    const Status status = sink->Deliver(MakeRecord(1, "n-1", https.url("/hook-path-token")));

    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << config.dump() << status.ToString();
    EXPECT_NE(status.message().find(origin), std::string::npos) << status.message();
    EXPECT_EQ(status.message().find("hook-path-token"), std::string::npos) << status.message();
  }
  EXPECT_TRUE(https.requests().empty());
}

TEST_F(WebhookTest, AcceptsAnUnpaddedSecret) {
  std::string unpadded = kSecret;
  while (unpadded.back() == '=') unpadded.pop_back();
  auto sink = Sink({{"secret", unpadded}});
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1", receiver_.url())).ok());

  ASSERT_EQ(receiver_.requests().size(), 1u);
  EXPECT_TRUE(SignatureVerifies(receiver_.requests()[0], kKey, receiver_.requests()[0].body));
}

TEST_F(WebhookTest, EncodesAnIdThatCouldBreakTheHeader) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "id 1\r\nX-Injected: yes", receiver_.url())).ok());

  ASSERT_EQ(receiver_.requests().size(), 1u);
  const HttpRequest request = receiver_.requests()[0];
  EXPECT_EQ(request.Header("webhook-id"), "id%201%0D%0AX-Injected:%20yes");
  EXPECT_EQ(request.Header("x-injected"), "");
  EXPECT_TRUE(SignatureVerifies(request, kKey, request.body));
}

TEST_F(WebhookTest, RefusesBadConfigurationNamingTheKey) {
  {
    std::ofstream file(dir_.path() / "short.secret");
    file << kShortSecret << "\n";
  }
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {nlohmann::json::object(), "'secret'"},
      {{{"secret", kSecret}, {"secret_file", "webhook.secret"}}, "'secret_file'"},
      {Config({{"timout_ms", 300}}), "unknown config key 'timout_ms'"},
      {{{"secret", kShortSecret}}, "'secret'"},
      {{{"secret", std::string(kKeyBase64)}}, "'secret'"},
      {{{"secret", "whsec_not*base64"}}, "'secret'"},
      {{{"secret", 42}}, "'secret'"},
      {{{"secret_file", "missing.secret"}}, "'secret_file'"},
      {{{"secret_file", "short.secret"}}, "'secret_file'"},
      {Config({{"timeout_ms", 0}}), "'timeout_ms'"},
      {Config({{"timeout_ms", "fast"}}), "'timeout_ms'"},
      {Config({{"connect_timeout_ms", -5}}), "'connect_timeout_ms'"},
      {Config({{"require_https", "yes"}}), "'require_https'"},
      {Config({{"headers", {{"webhook-signature", "v1,forged"}}}}), "'headers.webhook-signature'"},
      {Config({{"headers", {{"X-Split", "a\r\nX-Injected: b"}}}}), "'headers.X-Split'"},
      {Config({{"headers", {{"Bad Name", "a"}}}}), "'headers.Bad Name'"},
      {Config({{"ca_file", "no-such-ca.pem"}}), "'ca_file'"},
  };
  for (const auto& [config, key] : cases) {
    const Status status = CreateError(config);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << config.dump();
    EXPECT_NE(status.message().find(key), std::string::npos)
        << config.dump() << " -> " << status.message();
  }
}

TEST_F(WebhookTest, ChecksAddresses) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  EXPECT_TRUE(sink->CheckAddress("https://example.org/hooks/tandem").ok());
  EXPECT_TRUE(sink->CheckAddress("http://example.org:8080/hooks/tandem?x=1").ok());
  EXPECT_TRUE(sink->CheckAddress("http://[::1]:8080/hook").ok());
  for (const std::string bad :
       {"ftp://example.org/hook", "http:///hook", "http://", "http://:8080/hook",
        "example.org/hook", "", "mailto:dsp@example.org", "https://exa mple.org/hook"}) {
    const Status status = sink->CheckAddress(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }

  auto https_only = Sink(Config({{"require_https", true}}));
  ASSERT_NE(https_only, nullptr);
  EXPECT_TRUE(https_only->CheckAddress("https://example.org/hooks/tandem").ok());
  const Status http = https_only->CheckAddress("http://example.org/hooks/tandem");
  EXPECT_EQ(http.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(http.message().find("require_https"), std::string::npos) << http.message();
}

TEST_F(WebhookTest, NeverSendsToAnAddressItRefuses) {
  auto https_only = Sink(Config({{"require_https", true}}));
  ASSERT_NE(https_only, nullptr);
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  const Status http = https_only->Deliver(MakeRecord(1, "n-1", receiver_.url()));
  const Status ftp = sink->Deliver(
      MakeRecord(1, "n-1", "ftp://127.0.0.1:" + std::to_string(receiver_.port()) + "/hook"));

  EXPECT_EQ(http.code(), StatusCode::kFailedPrecondition) << http.ToString();
  EXPECT_EQ(ftp.code(), StatusCode::kFailedPrecondition) << ftp.ToString();
  EXPECT_TRUE(receiver_.requests().empty());
}

TEST_F(WebhookTest, NeverWritesTheSecretIntoErrorsOrLogs) {
  std::vector<std::string> texts;
  // Configurations refused for a reason unrelated to the secret, and for the secret itself.
  for (const nlohmann::json& config :
       {Config({{"timeout_ms", 0}}), Config({{"nope", 1}}),
        nlohmann::json{{"secret", kSecret}, {"secret_file", "x"}},
        nlohmann::json{{"secret", kShortSecret}}, nlohmann::json{{"secret", kSecret + "*"}}}) {
    texts.push_back(CreateError(config).message());
  }
  // Deliveries that fail in each way.
  auto sink = Sink(Config({{"timeout_ms", 300}}));
  ASSERT_NE(sink, nullptr);
  receiver_.RespondWith({500, 400, 302});
  for (int i = 0; i < 3; ++i) {
    texts.push_back(sink->Deliver(MakeRecord(1, "n-1", receiver_.url())).message());
  }
  uint16_t port = 0;
  {
    HttpReceiver gone;
    port = gone.port();
  }
  texts.push_back(
      sink->Deliver(MakeRecord(1, "n-1", "http://127.0.0.1:" + std::to_string(port))).message());
  const std::vector<std::string> lines = log_.lines();
  ASSERT_FALSE(lines.empty());  // the instances' start-up lines
  texts.insert(texts.end(), lines.begin(), lines.end());

  for (const std::string& text : texts) {
    EXPECT_FALSE(text.empty());
    for (const std::string_view secret :
         {std::string_view(kSecret), kKeyBase64, kKey, std::string_view(kShortSecret)}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << text;
    }
  }
}

TEST(HttpReceiver, AnswersSeveralRequestsOnOneConnectionInOrder) {
  HttpReceiver receiver;
  receiver.RespondWith({201, 503});
  RawClient client(receiver.port());
  ASSERT_TRUE(client.connected());

  // Two requests in one write: the second waits until the first is answered.
  ASSERT_TRUE(
      client.Send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                  "POST /b HTTP/1.1\r\nHost: x\r\ncontent-length: 6\r\n\r\nsecond"));
  const std::string answers = client.ReadUntil("\r\n\r\n", 2);

  EXPECT_TRUE(answers.starts_with("HTTP/1.1 201 ")) << answers;
  EXPECT_NE(answers.find("HTTP/1.1 503 "), std::string::npos) << answers;
  ASSERT_TRUE(receiver.WaitForRequests(2, kWait));
  const std::vector<HttpRequest> requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/a");
  EXPECT_EQ(requests[0].body, "first");
  EXPECT_EQ(requests[1].target, "/b");
  EXPECT_EQ(requests[1].body, "second");
  EXPECT_EQ(requests[1].Header("CONTENT-LENGTH"), "6");
}

TEST(HttpReceiver, DecodesChunkedBodiesAndAnswersExpectContinue) {
  HttpReceiver receiver;
  RawClient client(receiver.port());
  ASSERT_TRUE(client.connected());

  ASSERT_TRUE(client.Send(
      "POST /hook HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(client.ReadUntil("\r\n\r\n", 1).starts_with("HTTP/1.1 100 Continue"));
  ASSERT_TRUE(client.Send("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"));

  EXPECT_TRUE(client.ReadUntil("\r\n\r\n", 1).starts_with("HTTP/1.1 200 "));
  ASSERT_TRUE(receiver.WaitForRequests(1, kWait));
  EXPECT_EQ(receiver.requests()[0].body, "hello, world");
}

TEST(HttpReceiver, SurvivesClientsThatLeaveMidRequest) {
  HttpReceiver receiver;
  {
    RawClient head_only(receiver.port());
    ASSERT_TRUE(head_only.Send("POST /hook HTTP/1.1\r\nContent-Le"));
  }
  {
    RawClient half_body(receiver.port());
    ASSERT_TRUE(half_body.Send("POST /hook HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial"));
  }
  RawClient client(receiver.port());
  ASSERT_TRUE(client.Send("GET /after HTTP/1.1\r\nConnection: close\r\n\r\n"));

  const std::string answer = client.ReadUntil("\r\n\r\n", 1);

  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 ")) << answer;
  ASSERT_TRUE(receiver.WaitForRequests(1, kWait));
  const std::vector<HttpRequest> requests = receiver.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/after");
}

TEST(HttpReceiver, ServingHttpsClosesAClientThatSpeaksPlainHttp) {
  TempDir dir;
  HttpReceiver https(std::make_shared<ServerTls>(MakeTestCertificates(dir.path())));
  RawClient client(https.port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("POST /hook HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"));

  const std::string answer = client.ReadUntil("\r\n\r\n", 1);

  // No HTTP answer: at most a TLS alert, then the connection closes (before the read timeout).
  EXPECT_EQ(answer.find("HTTP/1.1"), std::string::npos) << answer;
  EXPECT_TRUE(https.requests().empty());
  EXPECT_TRUE(https.url().starts_with("https://127.0.0.1:")) << https.url();
}

TEST(HttpReceiver, StopsWhileAnswersAreHeld) {
  auto receiver = std::make_unique<HttpReceiver>();
  receiver->Hold(true);
  RawClient client(receiver->port());
  ASSERT_TRUE(client.Send("POST /hook HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"));
  ASSERT_TRUE(receiver->WaitForRequests(1, kWait));

  receiver.reset();

  // The held request is never answered: the connection just closes.
  EXPECT_EQ(client.ReadUntil("\r\n\r\n", 1), "");
}

}  // namespace
}  // namespace tandem::plugin_test
