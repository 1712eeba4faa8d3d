// The email plugin (plugins/email), loaded from the build tree through the daemon's own plugin
// host and sending to an SmtpReceiver on loopback: the envelope and the message it sends, how it
// maps the server's replies onto outcomes, TLS (smtps and STARTTLS) and logging in, and what its
// configuration and addresses accept. Also the SmtpReceiver itself, driven line by line, for what
// the plugin's sessions do not exercise.

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "daemon/outbox/plugin.h"
#include "tests/unit/plugins/plugin_fixture.h"
#include "tests/unit/plugins/plugin_test_util.h"
#include "tests/unit/plugins/raw_client.h"
#include "tests/unit/plugins/smtp_receiver.h"
#include "tests/unit/plugins/tls_test_util.h"

namespace tandem::plugin_test {
namespace {

using std::chrono::milliseconds;

// Every wait here is bounded by this; none is expected to take more than a fraction of it.
constexpr milliseconds kWait{5000};

constexpr char kFrom[] = "tandem@northshire.example";
constexpr char kTo[] = "dsp@northshire.example";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Returns `text` decoded from quoted-printable (RFC 2045 6.7): soft line breaks removed, "=XX"
// turned back into bytes. A malformed escape fails the calling test.
std::string DecodeQuotedPrintable(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') {
      out += text[i];
    } else if (text.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else if (i + 2 < text.size() && HexValue(text[i + 1]) >= 0 && HexValue(text[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      i += 2;
    } else {
      ADD_FAILURE() << "malformed quoted-printable at " << i << ": " << text;
      return out;
    }
  }
  return out;
}

// Returns `value` (an unfolded header value) with its RFC 2047 "=?UTF-8?B?...?=" words decoded;
// blanks between two encoded words are dropped, as RFC 2047 6.2 says.
std::string DecodeEncodedWords(const std::string& value) {
  constexpr std::string_view kOpen = "=?UTF-8?B?";
  std::string out;
  std::size_t pos = 0;
  bool after_word = false;
  while (pos <= value.size()) {
    const std::size_t open = value.find(kOpen, pos);
    const std::string between =
        value.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    const bool blank = between.find_first_not_of(" \t") == std::string::npos;
    if (!(after_word && blank && open != std::string::npos)) out += between;
    if (open == std::string::npos) break;
    const std::size_t start = open + kOpen.size();
    const std::size_t close = value.find("?=", start);
    if (close == std::string::npos) {
      ADD_FAILURE() << "unterminated encoded word: " << value;
      return out;
    }
    const std::string base64 = value.substr(start, close - start);
    std::string bytes(base64.size(), '\0');
    std::size_t size = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(),
                          base64.data(), base64.size(), nullptr, &size, nullptr,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
      ADD_FAILURE() << "bad base64 in encoded word: " << value;
      return out;
    }
    out.append(bytes, 0, size);
    pos = close + 2;
    after_word = true;
  }
  return out;
}

// Returns the verbs of `commands` that came over TLS (`tls`) or in clear (!`tls`), in order.
std::vector<std::string> Verbs(const std::vector<SmtpCommand>& commands, bool tls) {
  std::vector<std::string> verbs;
  for (const SmtpCommand& command : commands) {
    if (command.tls == tls) verbs.push_back(command.verb);
  }
  return verbs;
}

// Returns the lines of `data`, split at CRLF.
std::vector<std::string> Lines(const std::string& data) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::size_t eol = data.find("\r\n", pos);
    if (eol == std::string::npos) eol = data.size();
    lines.push_back(data.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return lines;
}

class EmailTest : public ShippedPluginTest {
 protected:
  EmailTest() : ShippedPluginTest("email") {}

  // The tests' configuration: the receiver as server, kFrom as sender, plus `extra`.
  nlohmann::json Config(nlohmann::json extra = nlohmann::json::object()) const {
    nlohmann::json config = {{"server", receiver_.url()}, {"from", kFrom}, {"timeout_ms", 5000}};
    config.update(extra);
    return config;
  }

  // A record to kTo whose notification has `subject` and `body`.
  static v1::OutboxRecord Record(const std::string& subject, const std::string& body) {
    v1::OutboxRecord record = MakeRecord(5, "case-7:timer:3:1", kTo);
    record.mutable_effect()->mutable_notification()->set_subject(subject);
    record.mutable_effect()->mutable_notification()->set_body(body);
    return record;
  }

  // Delivers `record` through a default instance and returns the one message the receiver
  // accepted (failing the test if there is not exactly one).
  SmtpMessage DeliverOne(const v1::OutboxRecord& record) {
    return DeliverOneTo(receiver_, nlohmann::json::object(), record);
  }

  // Delivers `record` through an instance configured with Config(`extra`) and `server` as its
  // server, and returns the one message `server` accepted (failing the test if there is not
  // exactly one).
  SmtpMessage DeliverOneTo(SmtpReceiver& server, const nlohmann::json& extra,
                           const v1::OutboxRecord& record = MakeRecord(1, "n-1", kTo)) {
    nlohmann::json config = Config(extra);
    config["server"] = server.url();
    auto sink = Sink(config);
    if (sink == nullptr) return {};
    const Status status = sink->Deliver(record);
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_TRUE(server.WaitForMessages(1, kWait));
    const std::vector<SmtpMessage> messages = server.messages();
    EXPECT_EQ(messages.size(), 1u);
    return messages.empty() ? SmtpMessage{} : messages[0];
  }

  // Delivers through `sink` twice, after reply_with(`refusal`), a 5xx, then after
  // reply_with(`later`), a 4xx. Checks that the first is a permanent failure and the second a
  // retry, each naming its reply code. Returns both.
  static std::pair<Status, Status> DeliverRefusedThenLater(
      outbox::PluginSink& sink, const std::function<void(int)>& reply_with, int refusal,
      int later) {
    reply_with(refusal);
    Status refused = sink.Deliver(MakeRecord(1, "n-1", kTo));
    reply_with(later);
    Status retried = sink.Deliver(MakeRecord(1, "n-1", kTo));
    EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
    EXPECT_NE(refused.message().find(std::to_string(refusal)), std::string::npos)
        << refused.message();
    EXPECT_EQ(retried.code(), StatusCode::kUnavailable) << retried.ToString();
    EXPECT_NE(retried.message().find(std::to_string(later)), std::string::npos)
        << retried.message();
    return {std::move(refused), std::move(retried)};
  }

  // Returns the TLS a receiver serves with: a certificate signed by the tests' CA, whose
  // certificate is "ca.pem" in the data directory. Made on first use.
  std::shared_ptr<LoopbackTls> Tls() {
    if (tls_ == nullptr) tls_ = std::make_shared<ServerTls>(MakeTestCertificates(dir_.path()));
    return tls_;
  }

  SmtpReceiver receiver_;
  std::shared_ptr<LoopbackTls> tls_;
};

TEST_F(EmailTest, SendsOneMessageWithTheEnvelopeAndHeaders) {
  auto sink = Sink(Config({{"helo", "tandem.northshire.example"}}));
  ASSERT_NE(sink, nullptr);
  const v1::OutboxRecord record = MakeRecord(17, "case-7:timer:3:1", kTo);

  const Status status = sink->Deliver(record);

  ASSERT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(receiver_.WaitForMessages(1, kWait));
  const SmtpMessage message = receiver_.messages()[0];
  EXPECT_EQ(message.helo, "tandem.northshire.example");
  EXPECT_EQ(message.mail_from, kFrom);
  EXPECT_EQ(message.rcpt_to, std::vector<std::string>{kTo});
  EXPECT_EQ(message.Header("From"), kFrom);
  EXPECT_EQ(message.Header("To"), kTo);
  EXPECT_EQ(message.Header("Subject"), "Serious incident notification due in 2 working days");
  EXPECT_EQ(message.Header("X-Tandem-Notification-Id"), "case-7:timer:3:1");
  EXPECT_EQ(message.Header("X-Tandem-Delivery-Id"), "17");
  // ':' may not stand in a Message-ID's left part, so the id is percent-encoded there.
  EXPECT_EQ(message.Header("Message-ID"), "<case-7%3Atimer%3A3%3A1@tandem>");
  EXPECT_EQ(message.Header("MIME-Version"), "1.0");
  EXPECT_EQ(message.Header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(message.Header("Content-Transfer-Encoding"), "quoted-printable");
  EXPECT_TRUE(std::regex_match(
      message.Header("Date"),
      std::regex(R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|)"
                 R"(Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000)")))
      << message.Header("Date");
  EXPECT_EQ(DecodeQuotedPrintable(message.Body()),
            "Case case-7: notify the Child Safeguarding Practice Review Panel by 2026-12-04.\r\n");
  for (const std::string& line : Lines(message.data)) {
    EXPECT_LE(line.size(), 78u) << line;
  }
}

TEST_F(EmailTest, KeepsBodyLinesThatStartWithADot) {
  // Unless the client dot-stuffs, a line of "." ends the message early and a leading "." is lost.
  const SmtpMessage message =
      DeliverOne(Record("Dots", "First line\n.\n.hidden line\r\n..two dots\rlast line"));

  EXPECT_EQ(DecodeQuotedPrintable(message.Body()),
            "First line\r\n.\r\n.hidden line\r\n..two dots\r\nlast line\r\n");
}

TEST_F(EmailTest, EncodesLongAndNonAsciiTextSoItRoundTrips) {
  const std::string subject =
      "Überprüfung fällig: Fall 7 — Frist „notify_panel“ läuft am 4. Dezember ab ✓ (Kinder- "
      "und Jugendhilfe, Rückmeldung an die Geschäftsstelle erbeten)";
  const std::string body =
      "Grüße aus Northshire — ✓\n" + std::string(200, 'x') + " = trailing blank \nend";

  const SmtpMessage message = DeliverOne(Record(subject, body));

  const std::string header = message.Header("Subject");
  EXPECT_TRUE(header.starts_with("=?UTF-8?B?")) << header;
  for (const char c : message.data) {
    EXPECT_LT(static_cast<unsigned char>(c), 0x80) << "the message is not 7-bit clean";
  }
  EXPECT_EQ(DecodeEncodedWords(header), subject);
  EXPECT_EQ(
      DecodeQuotedPrintable(message.Body()),
      "Grüße aus Northshire — ✓\r\n" + std::string(200, 'x') + " = trailing blank \r\nend\r\n");
  for (const std::string& line : Lines(message.data)) {
    EXPECT_LE(line.size(), 78u) << line;
  }
}

TEST_F(EmailTest, StripsLineBreaksFromTheSubjectSoNoHeaderCanBeInjected) {
  const SmtpMessage message =
      DeliverOne(Record("Deadline\r\nBcc: intruder@example.org\nX-Injected: yes", "Body"));

  EXPECT_EQ(DecodeEncodedWords(message.Header("Subject")),
            "Deadline Bcc: intruder@example.org X-Injected: yes");
  EXPECT_EQ(message.Header("Bcc"), "");
  EXPECT_EQ(message.Header("X-Injected"), "");
  EXPECT_EQ(message.rcpt_to, std::vector<std::string>{kTo});
}

TEST_F(EmailTest, EncodesIdsThatCannotStandInHeadersAsIs) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  ASSERT_TRUE(sink->Deliver(MakeRecord(1, "n-1.a", kTo)).ok());
  ASSERT_TRUE(sink->Deliver(MakeRecord(2, "case 7\r\nX-Injected: <x>", kTo)).ok());

  ASSERT_TRUE(receiver_.WaitForMessages(2, kWait));
  const std::vector<SmtpMessage> messages = receiver_.messages();
  EXPECT_EQ(messages[0].Header("Message-ID"), "<n-1.a@tandem>");
  EXPECT_EQ(messages[0].Header("X-Tandem-Notification-Id"), "n-1.a");
  EXPECT_EQ(messages[1].Header("Message-ID"), "<case%207%0D%0AX-Injected%3A%20%3Cx%3E@tandem>");
  EXPECT_EQ(messages[1].Header("X-Tandem-Notification-Id"), "case%207%0D%0AX-Injected:%20<x>");
  EXPECT_EQ(messages[1].Header("X-Injected"), "");
}

TEST_F(EmailTest, RefusedRecipientIsPermanentAndTryLaterIsRetriedThenDelivered) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  DeliverRefusedThenLater(
      *sink, [this](int code) { receiver_.ReplyToRcpt(code); }, 550, 451);
  EXPECT_TRUE(receiver_.messages().empty());
  receiver_.ReplyToRcpt(250);
  const Status delivered = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_TRUE(delivered.ok()) << delivered.ToString();
  ASSERT_TRUE(receiver_.WaitForMessages(1, kWait));
  EXPECT_EQ(receiver_.messages().size(), 1u);
}

TEST_F(EmailTest, MessageRefusedAfterDataIsPermanentOn5xxAndRetriedOn4xx) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  DeliverRefusedThenLater(
      *sink, [this](int code) { receiver_.ReplyToData(code); }, 554, 452);

  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, RetriesWhenTheServerIsDown) {
  uint16_t port = 0;
  {
    SmtpReceiver gone;
    port = gone.port();
  }
  const std::string server = "smtp://127.0.0.1:" + std::to_string(port);
  auto sink = Sink(Config({{"server", server}}));
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find(server), std::string::npos) << status.message();
}

TEST_F(EmailTest, RetriesWhenTheServerDoesNotAnswerInTime) {
  // The TCP connection is made, but no greeting ever comes.
  SilentListener silent;
  ASSERT_TRUE(silent.listening());
  auto sink = Sink(Config(
      {{"server", "smtp://127.0.0.1:" + std::to_string(silent.port())}, {"timeout_ms", 300}}));
  ASSERT_NE(sink, nullptr);
  const auto start = std::chrono::steady_clock::now();

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("curl error 28"), std::string::npos) << status.message();
  // A bound, not a measurement: without timeout_ms libcurl would wait 120 s for the greeting.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
}

TEST_F(EmailTest, OpensAConnectionPerMessageAndIgnoresProxies) {
  // A proxy that refuses every connection: a message sent through it would be retried.
  uint16_t dead_port = 0;
  {
    SmtpReceiver gone;
    dead_port = gone.port();
  }
  const std::string proxy = "http://127.0.0.1:" + std::to_string(dead_port);
  const ScopedEnv all_proxy("all_proxy", proxy);
  const ScopedEnv all_proxy_upper("ALL_PROXY", proxy);
  const ScopedEnv no_proxy("no_proxy", std::nullopt);
  const ScopedEnv no_proxy_upper("NO_PROXY", std::nullopt);
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  const Status first = sink->Deliver(MakeRecord(1, "n-1", kTo));
  const Status second = sink->Deliver(MakeRecord(2, "n-2", kTo));

  EXPECT_TRUE(first.ok()) << first.ToString();
  EXPECT_TRUE(second.ok()) << second.ToString();
  ASSERT_TRUE(receiver_.WaitForMessages(2, kWait));
  EXPECT_EQ(receiver_.connections(), 2u);
  const std::vector<std::string> verbs = Verbs(receiver_.commands(), false);
  EXPECT_EQ(std::count(verbs.begin(), verbs.end(), "EHLO"), 2);
  EXPECT_EQ(std::count(verbs.begin(), verbs.end(), "QUIT"), 2);
}

TEST_F(EmailTest, RetriesWhenTheTlsHandshakeFails) {
  // The receiver greets in plain text, so an smtps:// connection to it fails in the handshake.
  const std::string server = "smtps://127.0.0.1:" + std::to_string(receiver_.port());
  auto sink = Sink(Config({{"server", server}}));
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find(server), std::string::npos) << status.message();
  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, RequiredStartTlsNotOfferedIsRetriedAndNothingIsSentInClear) {
  // The receiver offers no STARTTLS. Retrying (not failing for good) is the documented choice:
  // a server whose TLS is briefly broken, or an attacker stripping STARTTLS, should not park the
  // notification at once; the attempts still run out into dead_letter.
  auto sink = Sink(Config({{"starttls", "required"}}));
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  EXPECT_NE(status.message().find("STARTTLS"), std::string::npos) << status.message();
  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, OpportunisticStartTlsSendsInClearWhenNotOffered) {
  auto sink = Sink(Config({{"starttls", "opportunistic"}}));
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_TRUE(status.ok()) << status.ToString();
  ASSERT_TRUE(receiver_.WaitForMessages(1, kWait));
  EXPECT_FALSE(receiver_.messages()[0].tls);
}

TEST_F(EmailTest, OpportunisticStartTlsSendsOverTlsWhenOffered) {
  SmtpReceiver server(SmtpTls::kStartTls, Tls());

  const SmtpMessage message =
      DeliverOneTo(server, {{"starttls", "opportunistic"}, {"ca_file", "ca.pem"}});

  EXPECT_TRUE(message.tls);
  EXPECT_EQ(Verbs(server.commands(), false), (std::vector<std::string>{"EHLO", "STARTTLS"}));
}

TEST_F(EmailTest, RequiredStartTlsSendsOverTlsWhenOffered) {
  SmtpReceiver server(SmtpTls::kStartTls, Tls());

  const SmtpMessage message =
      DeliverOneTo(server, {{"starttls", "required"}, {"ca_file", "ca.pem"}},
                   MakeRecord(4, "case-7:timer:3:1", kTo));

  EXPECT_TRUE(message.tls);
  EXPECT_EQ(message.mail_from, kFrom);
  EXPECT_EQ(message.rcpt_to, std::vector<std::string>{kTo});
  EXPECT_EQ(message.Header("X-Tandem-Notification-Id"), "case-7:timer:3:1");
  // In clear only the greeting's EHLO and STARTTLS; the client starts over once TLS is on.
  const std::vector<SmtpCommand> commands = server.commands();
  EXPECT_EQ(Verbs(commands, false), (std::vector<std::string>{"EHLO", "STARTTLS"}));
  const std::vector<std::string> over_tls = Verbs(commands, true);
  ASSERT_FALSE(over_tls.empty());
  EXPECT_EQ(over_tls.front(), "EHLO");
  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, SendsThePasswordOnlyOverTls) {
  // The server offers AUTH before STARTTLS too, as a lax server would: the client must still
  // wait for TLS before it logs in.
  SmtpReceiver server(SmtpTls::kStartTls, Tls());
  {
    std::ofstream file(dir_.path() / "smtp.password");
    file << "pw-from-file\n";
  }

  const SmtpMessage message = DeliverOneTo(server, {{"starttls", "required"},
                                                    {"ca_file", "ca.pem"},
                                                    {"username", "tandem"},
                                                    {"password_file", "smtp.password"}});

  EXPECT_TRUE(message.tls);
  EXPECT_EQ(message.auth_user, "tandem");
  EXPECT_EQ(message.auth_password, "pw-from-file");
  const std::vector<SmtpCommand> commands = server.commands();
  EXPECT_EQ(Verbs(commands, false), (std::vector<std::string>{"EHLO", "STARTTLS"}));
  const std::vector<std::string> over_tls = Verbs(commands, true);
  EXPECT_NE(std::find(over_tls.begin(), over_tls.end(), "AUTH"), over_tls.end());
}

TEST_F(EmailTest, SendsOverSmtpsAndLogsIn) {
  SmtpReceiver server(SmtpTls::kSmtps, Tls());

  // ca_file as an absolute path this time.
  const SmtpMessage message = DeliverOneTo(server, {{"ca_file", (dir_.path() / "ca.pem").string()},
                                                    {"username", "tandem"},
                                                    {"password", "pw-inline"}});

  EXPECT_TRUE(message.tls);
  EXPECT_EQ(message.auth_user, "tandem");
  EXPECT_EQ(message.auth_password, "pw-inline");
  EXPECT_EQ(message.rcpt_to, std::vector<std::string>{kTo});
  EXPECT_TRUE(Verbs(server.commands(), false).empty());
  EXPECT_TRUE(server.url().starts_with("smtps://")) << server.url();
}

TEST_F(EmailTest, RetriesAndSendsNothingWhenTheCertificateIsNotTrusted) {
  SmtpReceiver smtps(SmtpTls::kSmtps, Tls());
  SmtpReceiver starttls(SmtpTls::kStartTls, Tls());
  MakeTestCertificates(dir_.path(), "other-");
  // The system's CA store, which does not hold the tests' CA; and a ca_file of another CA.
  const std::vector<nlohmann::json> configs = {
      Config({{"server", smtps.url()}}),
      Config({{"server", smtps.url()}, {"ca_file", "other-ca.pem"}}),
      Config({{"server", starttls.url()}, {"starttls", "required"}}),
      Config({{"server", starttls.url()},
              {"starttls", "required"},
              {"ca_file", "other-ca.pem"},
              {"username", "tandem"},
              {"password", "pw-never-sent"}}),
  };
  for (const nlohmann::json& config : configs) {
    auto sink = Sink(config);
    ASSERT_NE(sink, nullptr);

    const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

    EXPECT_EQ(status.code(), StatusCode::kUnavailable) << config.dump() << status.ToString();
    EXPECT_NE(status.message().find(config["server"].get<std::string>()), std::string::npos)
        << status.message();
  }
  EXPECT_TRUE(smtps.messages().empty());
  EXPECT_TRUE(smtps.commands().empty());
  EXPECT_TRUE(starttls.messages().empty());
  // Nothing but the EHLO and STARTTLS before each failed handshake.
  EXPECT_EQ(Verbs(starttls.commands(), false),
            (std::vector<std::string>{"EHLO", "STARTTLS", "EHLO", "STARTTLS"}));
  EXPECT_TRUE(Verbs(starttls.commands(), true).empty());
}

TEST_F(EmailTest, RefusedLoginIsPermanentAndTryLaterIsRetried) {
  SmtpReceiver server(SmtpTls::kSmtps, Tls());
  auto sink = Sink(Config({{"server", server.url()},
                           {"ca_file", "ca.pem"},
                           {"username", "tandem"},
                           {"password", "pw-refused"}}));
  ASSERT_NE(sink, nullptr);

  const auto [refused, later] = DeliverRefusedThenLater(
      *sink, [&server](int code) { server.ReplyToAuth(code); }, 535, 454);

  for (const Status& status : {refused, later}) {
    EXPECT_EQ(status.message().find("pw-refused"), std::string::npos) << status.message();
  }
  EXPECT_TRUE(server.messages().empty());
}

TEST_F(EmailTest, LoginWithNoMechanismInCommonIsPermanent) {
  // libcurl refuses to log in (CURLE_LOGIN_DENIED) with the server's last reply a 250 to EHLO.
  SmtpReceiver server(SmtpTls::kSmtps, Tls());
  server.OfferAuth("X-TANDEM-UNKNOWN");
  auto sink = Sink(Config({{"server", server.url()},
                           {"ca_file", "ca.pem"},
                           {"username", "tandem"},
                           {"password", "pw-unused"}}));
  ASSERT_NE(sink, nullptr);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("curl error 67"), std::string::npos) << status.message();
  const std::vector<std::string> verbs = Verbs(server.commands(), true);
  EXPECT_EQ(std::count(verbs.begin(), verbs.end(), "MAIL"), 0);
  EXPECT_TRUE(server.messages().empty());
}

TEST_F(EmailTest, ChecksAddresses) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  for (const std::string good :
       {"dsp@northshire.example", "first.last+tandem@mail.northshire.example", "a@b"}) {
    EXPECT_TRUE(sink->CheckAddress(good).ok()) << good;
  }
  for (const std::string bad :
       {"", "dsp", "dsp@", "@northshire.example", "a b@northshire.example",
        "dsp@northshire.example\r\nBcc: intruder@example.org", "<dsp@northshire.example>",
        "dsp@northshire.example,other@northshire.example", "dsp@a@b", "\"dsp\"@northshire.example",
        "Dsp <dsp@northshire.example>", "dsp@-bad-.example", "dsp..x@northshire.example",
        "düsseldorf@northshire.example"}) {
    const Status status = sink->CheckAddress(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST_F(EmailTest, NeverSendsToAnAddressItRefuses) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  const Status status =
      sink->Deliver(MakeRecord(1, "n-1", "dsp@northshire.example>\r\nRCPT TO:<intruder@x.org"));

  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, RefusesBadConfigurationNamingTheKey) {
  const std::string password = "pw-never-shown-4711";
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"from", kFrom}}, "'server'"},
      {{{"server", receiver_.url()}}, "'from'"},
      {Config({{"server", "http://127.0.0.1:25"}}), "'server'"},
      {Config({{"server", "smtp://"}}), "'server'"},
      {Config({{"server", "smtp://mail.northshire.example/relay"}}), "'server'"},
      {Config({{"server", "smtp://user:pass@mail.northshire.example"}}), "'server'"},
      {Config({{"from", "Tandem <tandem@northshire.example>"}}), "'from'"},
      {Config({{"starttls", "always"}}), "'starttls'"},
      {Config({{"server", "smtps://mail.northshire.example"}, {"starttls", "required"}}),
       "'starttls'"},
      {Config({{"username", "tandem"}}), "'password'"},
      {Config({{"password", password}, {"starttls", "required"}}), "'username'"},
      {Config({{"username", "tandem"}, {"password", password}}), "'starttls'"},
      {Config({{"username", "tandem"}, {"password", password}, {"starttls", "opportunistic"}}),
       "'starttls'"},
      {Config({{"username", "tandem"},
               {"password", password},
               {"password_file", "smtp.password"},
               {"starttls", "required"}}),
       "'password_file'"},
      {Config({{"username", "tandem"}, {"password_file", "missing"}, {"starttls", "required"}}),
       "'password_file'"},
      {Config({{"helo", "bad helo/x"}}), "'helo'"},
      {Config({{"timeout_ms", 0}}), "'timeout_ms'"},
      {Config({{"timeout_ms", "30s"}}), "'timeout_ms'"},
      {Config({{"ca_file", "no-such-ca.pem"}}), "'ca_file'"},
      {Config({{"tls", true}}), "unknown config key 'tls'"},
  };
  for (const auto& [config, key] : cases) {
    const Status status = CreateError(config);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << config.dump();
    EXPECT_NE(status.message().find(key), std::string::npos)
        << config.dump() << " -> " << status.message();
    EXPECT_EQ(status.message().find(password), std::string::npos) << status.message();
  }
}

TEST_F(EmailTest, AcceptsCredentialsOnlyOverTls) {
  {
    std::ofstream file(dir_.path() / "smtp.password");
    file << "pw-from-file\n";
  }
  EXPECT_NE(
      Sink(Config(
          {{"username", "tandem"}, {"password_file", "smtp.password"}, {"starttls", "required"}})),
      nullptr);
  EXPECT_NE(Sink(Config({{"server", "smtps://mail.northshire.example"},
                         {"username", "tandem"},
                         {"password", "pw"}})),
            nullptr);
  for (const std::string& line : log_.lines()) {
    EXPECT_EQ(line.find("pw-from-file"), std::string::npos) << line;
  }
}

TEST(SmtpReceiver, AcceptsSeveralMessagesOnOneConnection) {
  SmtpReceiver receiver;
  RawClient client(receiver.port());
  ASSERT_TRUE(client.connected());

  EXPECT_TRUE(client.ReadReply().starts_with("220 "));
  EXPECT_TRUE(client.Exchange("DATA\r\n").starts_with("503 "));
  const std::string ehlo = client.Exchange("EHLO client.example\r\n");
  EXPECT_TRUE(ehlo.starts_with("250-")) << ehlo;
  EXPECT_EQ(ehlo.find("STARTTLS"), std::string::npos) << ehlo;
  EXPECT_TRUE(client.Exchange("STARTTLS\r\n").starts_with("502 "));
  EXPECT_TRUE(client.Exchange("MAIL FROM:<a@x.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("RCPT TO:<b@y.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("DATA\r\n").starts_with("354 "));
  EXPECT_TRUE(client.Exchange("Subject: one\r\n\r\n..dot\r\nbody\r\n.\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("NOOP\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("MAIL FROM:<c@x.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("RSET\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("RCPT TO:<d@y.example>\r\n").starts_with("503 "));
  EXPECT_TRUE(client.Exchange("MAIL FROM:<e@x.example>\r\n").starts_with("250 "));
  receiver.ReplyToRcpt(550);
  EXPECT_TRUE(client.Exchange("RCPT TO:<refused@y.example>\r\n").starts_with("550 "));
  receiver.ReplyToRcpt(250);
  EXPECT_TRUE(client.Exchange("RCPT TO:<f@y.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("DATA\r\n").starts_with("354 "));
  EXPECT_TRUE(client.Exchange("Subject: two\r\n\r\n.\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("QUIT\r\n").starts_with("221 "));

  ASSERT_TRUE(receiver.WaitForMessages(2, kWait));
  const std::vector<SmtpMessage> messages = receiver.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].helo, "client.example");
  EXPECT_EQ(messages[0].mail_from, "a@x.example");
  EXPECT_EQ(messages[0].rcpt_to, std::vector<std::string>{"b@y.example"});
  EXPECT_EQ(messages[0].data, "Subject: one\r\n\r\n.dot\r\nbody\r\n");
  EXPECT_EQ(messages[0].Header("subject"), "one");
  EXPECT_EQ(messages[0].Body(), ".dot\r\nbody\r\n");
  EXPECT_EQ(messages[1].mail_from, "e@x.example");
  EXPECT_EQ(messages[1].rcpt_to, std::vector<std::string>{"f@y.example"});
  EXPECT_EQ(messages[1].Header("Subject"), "two");
  EXPECT_EQ(messages[1].Body(), "");
  EXPECT_FALSE(messages[0].tls);
  EXPECT_EQ(messages[0].auth_user, "");
}

TEST(SmtpReceiver, OffersStartTlsAndAuthAndRecordsTheLogin) {
  TempDir dir;
  SmtpReceiver receiver(SmtpTls::kStartTls,
                        std::make_shared<ServerTls>(MakeTestCertificates(dir.path())));
  RawClient client(receiver.port());
  ASSERT_TRUE(client.connected());

  EXPECT_TRUE(client.ReadReply().starts_with("220 "));
  // base64 of "\0tandem\0secret", and of "tandem\0secret" (no second NUL).
  const std::string credentials = "AHRhbmRlbQBzZWNyZXQ=";
  EXPECT_TRUE(client.Exchange("AUTH PLAIN " + credentials + "\r\n").starts_with("503 "));
  const std::string ehlo = client.Exchange("EHLO client.example\r\n");
  EXPECT_NE(ehlo.find("250-STARTTLS\r\n"), std::string::npos) << ehlo;
  EXPECT_NE(ehlo.find("250-AUTH PLAIN\r\n"), std::string::npos) << ehlo;
  EXPECT_TRUE(client.Exchange("AUTH LOGIN\r\n").starts_with("504 "));
  EXPECT_TRUE(client.Exchange("AUTH PLAIN dGFuZGVtAHNlY3JldA==\r\n").starts_with("501 "));
  EXPECT_TRUE(client.Exchange("AUTH PLAIN not*base64\r\n").starts_with("501 "));
  receiver.ReplyToAuth(535);
  EXPECT_TRUE(client.Exchange("AUTH PLAIN " + credentials + "\r\n").starts_with("535 "));
  receiver.ReplyToAuth(235);
  // Without an initial response: the server asks with an empty 334, the credentials follow.
  EXPECT_EQ(client.Exchange("AUTH PLAIN\r\n"), "334 \r\n");
  EXPECT_TRUE(client.Exchange(credentials + "\r\n").starts_with("235 "));
  EXPECT_TRUE(client.Exchange("AUTH PLAIN " + credentials + "\r\n").starts_with("503 "));
  EXPECT_TRUE(client.Exchange("MAIL FROM:<a@x.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("RCPT TO:<b@y.example>\r\n").starts_with("250 "));
  EXPECT_TRUE(client.Exchange("DATA\r\n").starts_with("354 "));
  EXPECT_TRUE(client.Exchange("Subject: s\r\n\r\nbody\r\n.\r\n").starts_with("250 "));
  // STARTTLS is answered, then the server waits for a TLS handshake: plain text ends it.
  EXPECT_TRUE(client.Exchange("STARTTLS\r\n").starts_with("220 "));
  EXPECT_EQ(client.Exchange("QUIT\r\n").find("221"), std::string::npos);

  ASSERT_TRUE(receiver.WaitForMessages(1, kWait));
  const SmtpMessage message = receiver.messages()[0];
  EXPECT_EQ(message.auth_user, "tandem");
  EXPECT_EQ(message.auth_password, "secret");
  EXPECT_FALSE(message.tls);
  const std::vector<SmtpCommand> commands = receiver.commands();
  ASSERT_FALSE(commands.empty());
  EXPECT_EQ(commands.front().verb, "AUTH");
  EXPECT_EQ(commands.back().verb, "STARTTLS");
  EXPECT_TRUE(Verbs(commands, true).empty());
}

}  // namespace
}  // namespace tandem::plugin_test
