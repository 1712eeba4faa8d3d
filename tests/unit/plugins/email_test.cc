// The email plugin (plugins/email), loaded from the build tree through the daemon's own plugin
// host and sending to an SmtpReceiver on loopback: the envelope and the message it sends, how it
// maps the server's replies onto outcomes, and what its configuration and addresses accept. Also
// the SmtpReceiver itself, driven line by line, for what the plugin's sessions do not exercise.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "daemon/outbox/plugin.h"
#include "tests/unit/plugins/plugin_test_util.h"
#include "tests/unit/plugins/smtp_receiver.h"

namespace tandem::plugin_test {
namespace {

using std::chrono::milliseconds;

// Every wait here is bounded by this; none is expected to take more than a fraction of it.
constexpr milliseconds kWait{5000};

constexpr char kFrom[] = "tandem@northshire.example";
constexpr char kTo[] = "dsp@northshire.example";

// A fresh directory under testing::TempDir() named after the running test and the process,
// removed before and after the test: the instance's data directory.
class ScopedDir {
 public:
  ScopedDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("tandem_email_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A plain blocking TCP client on 127.0.0.1, for driving the receiver line by line. Every read
// gives up after kWait, so a receiver that never answers fails the test instead of hanging it.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    timeval timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kWait).count();
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  // Sends `command`, then returns the reply up to and including its last line (the one with a
  // blank after the code), or what came before the peer closed or a read timed out.
  std::string Exchange(std::string_view command) {
    while (!command.empty()) {
      const ssize_t n = ::send(fd_, command.data(), command.size(), MSG_NOSIGNAL);
      if (n <= 0) return "";
      command.remove_prefix(static_cast<std::size_t>(n));
    }
    return ReadReply();
  }

  // Returns the next reply, as Exchange does.
  std::string ReadReply() {
    std::string reply;
    char c = 0;
    std::size_t line_start = 0;
    while (::recv(fd_, &c, 1, 0) == 1) {
      reply += c;
      if (c != '\n') continue;
      if (reply.size() - line_start > 4 && reply[line_start + 3] == ' ') break;
      line_start = reply.size();
    }
    return reply;
  }

 private:
  int fd_;
  bool connected_ = false;
};

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

class EmailTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_GE(sodium_init(), 0); }

  // The tests' configuration: the receiver as server, kFrom as sender, plus `extra`.
  nlohmann::json Config(nlohmann::json extra = nlohmann::json::object()) const {
    nlohmann::json config = {{"server", receiver_.url()}, {"from", kFrom}, {"timeout_ms", 5000}};
    config.update(extra);
    return config;
  }

  std::unique_ptr<outbox::PluginSink> Sink(const nlohmann::json& config) {
    return MakeSink("email", config.dump(), dir_.path(), log_.logger);
  }

  // Creates an instance expected to be refused; returns the refusal.
  Status CreateError(const nlohmann::json& config) {
    auto library = outbox::PluginLibrary::Load(outbox::PluginPath(ShippedPluginDir(), "email"));
    EXPECT_TRUE(library.ok()) << library.status().ToString();
    if (!library.ok()) return library.status();
    auto sink = outbox::PluginSink::Create(std::move(library).value(), "test", config.dump(),
                                           dir_.path(), log_.logger);
    EXPECT_FALSE(sink.ok()) << "the configuration was accepted: " << config.dump();
    return sink.ok() ? OkStatus() : sink.status();
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
    auto sink = Sink(Config());
    if (sink == nullptr) return {};
    const Status status = sink->Deliver(record);
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_TRUE(receiver_.WaitForMessages(1, kWait));
    const std::vector<SmtpMessage> messages = receiver_.messages();
    EXPECT_EQ(messages.size(), 1u);
    return messages.empty() ? SmtpMessage{} : messages[0];
  }

  ScopedDir dir_;
  CapturedLog log_;
  SmtpReceiver receiver_;
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

TEST_F(EmailTest, RefusedRecipientIsPermanent) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  receiver_.ReplyToRcpt(550);

  const Status status = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
  EXPECT_NE(status.message().find("550"), std::string::npos) << status.message();
  EXPECT_TRUE(receiver_.messages().empty());
}

TEST_F(EmailTest, RecipientToTryLaterIsRetriedAndThenDelivered) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);
  receiver_.ReplyToRcpt(451);

  const Status first = sink->Deliver(MakeRecord(1, "n-1", kTo));
  EXPECT_EQ(first.code(), StatusCode::kUnavailable) << first.ToString();
  EXPECT_NE(first.message().find("451"), std::string::npos) << first.message();
  receiver_.ReplyToRcpt(250);
  const Status second = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_TRUE(second.ok()) << second.ToString();
  ASSERT_TRUE(receiver_.WaitForMessages(1, kWait));
  EXPECT_EQ(receiver_.messages().size(), 1u);
}

TEST_F(EmailTest, MessageRefusedAfterDataIsPermanentOn5xxAndRetriedOn4xx) {
  auto sink = Sink(Config());
  ASSERT_NE(sink, nullptr);

  receiver_.ReplyToData(554);
  const Status refused = sink->Deliver(MakeRecord(1, "n-1", kTo));
  receiver_.ReplyToData(452);
  const Status later = sink->Deliver(MakeRecord(1, "n-1", kTo));

  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("554"), std::string::npos) << refused.message();
  EXPECT_EQ(later.code(), StatusCode::kUnavailable) << later.ToString();
  EXPECT_NE(later.message().find("452"), std::string::npos) << later.message();
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
  EXPECT_TRUE(receiver_.WaitForMessages(1, kWait));
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
}

}  // namespace
}  // namespace tandem::plugin_test
