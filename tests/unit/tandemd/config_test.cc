// tandemd's configuration: the embedded defaults (channels log and jsonl, one catch-all route to
// both, the compiled-in plugins directory), an operator's file replacing the channel and route
// lists as a whole, the checks of channels and routes (each error naming the file, the line and
// the field), a channel's free-form `config:` mapping reaching the proto Struct, and the
// start-up log of changed settings, which never shows a channel's settings.

#include "daemon/tandemd/config.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/tandem/v1/config.pb.h"
#include "tests/unit/tandemd/tandemd_test_util.h"

namespace tandem::tandemd {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directories(dir_.path()); }

  // Writes `yaml` to <dir>/tandem.yaml and returns its path.
  std::filesystem::path Write(std::string_view yaml) {
    const std::filesystem::path path = dir_.path() / "tandem.yaml";
    std::ofstream out(path, std::ios::trunc);
    out << yaml;
    out.close();
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  Result<v1::DaemonConfig> Load(std::string_view yaml) {
    DaemonOptions options;
    options.config_file = Write(yaml);
    return LoadConfig(options);
  }

  // Loads `yaml`, expects kInvalidArgument and returns its message.
  std::string LoadError(std::string_view yaml) {
    auto config = Load(yaml);
    EXPECT_FALSE(config.ok()) << "loaded:\n" << yaml;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument) << config.status().ToString();
    return std::string(config.status().message());
  }

  // "<file>:<line>: field '<field>'", how every load error starts.
  std::string At(int line, std::string_view field) const {
    return (dir_.path() / "tandem.yaml").string() + ":" + std::to_string(line) + ": field '" +
           std::string(field) + "'";
  }

  test::ScopedDir dir_;
};

// "channel=address" for each channel of `route`.
std::vector<std::string> Refs(const v1::Route& route) {
  std::vector<std::string> out;
  for (const auto& ref : route.channels()) out.push_back(ref.channel() + "=" + ref.address());
  return out;
}

std::vector<std::string> Names(const v1::DaemonConfig& config) {
  std::vector<std::string> out;
  for (const auto& channel : config.channels()) out.push_back(channel.name());
  return out;
}

// ---- The embedded defaults.

TEST_F(ConfigTest, DefaultsHaveTheLogAndJsonlChannels) {
  const v1::DaemonConfig& config = DefaultConfig();
  ASSERT_EQ(config.channels_size(), 2);
  EXPECT_EQ(config.channels(0).name(), "log");
  EXPECT_EQ(config.channels(0).plugin(), "log");
  EXPECT_TRUE(config.channels(0).config().fields().empty());
  EXPECT_EQ(config.channels(1).name(), "jsonl");
  EXPECT_EQ(config.channels(1).plugin(), "jsonl");
  const auto& jsonl = config.channels(1).config().fields();
  ASSERT_EQ(jsonl.size(), 1u);
  ASSERT_TRUE(jsonl.contains("path"));
  EXPECT_EQ(jsonl.at("path").string_value(), "notifications.jsonl");
}

TEST_F(ConfigTest, DefaultsRouteEveryNotificationToBothChannels) {
  const v1::DaemonConfig& config = DefaultConfig();
  ASSERT_EQ(config.routes_size(), 1);
  EXPECT_EQ(config.routes(0).partnership(), "");
  EXPECT_EQ(config.routes(0).role(), "");
  EXPECT_THAT(Refs(config.routes(0)), ElementsAre("log=", "jsonl="));
}

TEST_F(ConfigTest, DefaultPluginsDirIsTheCompiledInOne) {
  // TANDEM_PLUGIN_DIR's default: the build tree's plugins folder.
  EXPECT_EQ(DefaultConfig().plugins_dir(), std::string(TANDEM_BINARY_DIR) + "/plugins");
  EXPECT_TRUE(std::filesystem::path(DefaultConfig().plugins_dir()).is_absolute());
}

TEST_F(ConfigTest, WithoutAFileTheConfigIsTheDefaultsAndNothingIsReportedChanged) {
  auto config = LoadConfig({});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(*config, DefaultConfig()));
  EXPECT_EQ(ChangedSettings(*config), std::vector<std::string>{});
}

TEST_F(ConfigTest, JsonlPathIsNoLongerAnOutboxSetting) {
  EXPECT_EQ(v1::OutboxConfig::descriptor()->FindFieldByName("jsonl_path"), nullptr);
  const std::string error = LoadError(
      "outbox:\n"
      "  jsonl_path: /var/log/tandem.jsonl\n");
  EXPECT_THAT(error, StartsWith(At(2, "jsonl_path")));
  EXPECT_THAT(error, HasSubstr("unknown field"));
}

// ---- A file's lists replace the defaults'.

TEST_F(ConfigTest, AFilesChannelsAndRoutesReplaceTheDefaults) {
  auto config = Load(R"(channels:
  - name: hook
    plugin: webhook
    config:
      timeout_seconds: 5
  - name: log
    plugin: log
routes:
  - channels:
      - channel: log
  - partnership: staffordshire
    role: dsl
    channels:
      - channel: hook
        address: https://receiver.example.org/in
      - channel: log
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_THAT(Names(*config), ElementsAre("hook", "log"));  // no jsonl
  EXPECT_EQ(config->channels(0).plugin(), "webhook");
  ASSERT_EQ(config->routes_size(), 2);
  EXPECT_THAT(Refs(config->routes(0)), ElementsAre("log="));
  EXPECT_EQ(config->routes(1).partnership(), "staffordshire");
  EXPECT_EQ(config->routes(1).role(), "dsl");
  EXPECT_THAT(Refs(config->routes(1)), ElementsAre("hook=https://receiver.example.org/in", "log="));
  // The rest is still the defaults'.
  EXPECT_EQ(config->plugins_dir(), DefaultConfig().plugins_dir());
  EXPECT_EQ(config->outbox().max_attempts(), 8u);
}

TEST_F(ConfigTest, AFilesRoutesAloneReplaceTheDefaultRouteAndKeepTheDefaultChannels) {
  auto config = Load(R"(routes:
  - channels:
      - channel: jsonl
  - role: dsl
    channels:
      - channel: log
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_THAT(Names(*config), ElementsAre("log", "jsonl"));
  ASSERT_EQ(config->routes_size(), 2);
  EXPECT_THAT(Refs(config->routes(0)), ElementsAre("jsonl="));
  EXPECT_EQ(config->routes(1).role(), "dsl");
}

TEST_F(ConfigTest, AFilesChannelsAloneKeepTheDefaultRouteWhenItsChannelsRemain) {
  auto config = Load(R"(channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
    config:
      path: /var/lib/tandem/out.jsonl
  - name: spare
    plugin: exec
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_THAT(Names(*config), ElementsAre("log", "jsonl", "spare"));
  EXPECT_EQ(config->channels(1).config().fields().at("path").string_value(),
            "/var/lib/tandem/out.jsonl");
  ASSERT_EQ(config->routes_size(), 1);
  EXPECT_THAT(Refs(config->routes(0)), ElementsAre("log=", "jsonl="));
}

TEST_F(ConfigTest, CommandLineOptionsStillWinOverTheFile) {
  const auto path = Write(R"(data_dir: /from/file
plugins_dir: /opt/tandem/plugins
)");
  DaemonOptions options;
  options.config_file = path;
  options.data_dir = "/from/cli";
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->data_dir(), "/from/cli");
  EXPECT_EQ(config->plugins_dir(), "/opt/tandem/plugins");
}

// ---- Checks of channels and routes: each names the file, the line and the field.

// A file the checks refuse: the error starts "<file>:<line>: field '<field>'" and says each
// of `says`.
struct RefusedFile {
  std::string name;  // what is wrong with the file, as a test name
  std::string yaml;
  int line = 0;
  std::string field;
  std::vector<std::string> says;
};

void PrintTo(const RefusedFile& file, std::ostream* os) { *os << file.name; }

const RefusedFile kRefusedFiles[] = {
    {.name = "AChannelNameMustBeLettersDigitsUnderscoreAndHyphen",
     .yaml = R"(channels:
  - name: log
    plugin: log
  - name: team mail
    plugin: email
routes:
  - channels:
      - channel: log
)",
     .line = 4,
     .field = "name",
     .says = {"letters, digits"}},
    {.name = "AChannelWithoutANameIsRefused",
     .yaml = R"(channels:
  - plugin: log
routes:
  - channels:
      - channel: log
)",
     .line = 2,
     .field = "name",
     .says = {}},
    {.name = "AChannelDefinedTwiceIsRefusedAtItsSecondDefinition",
     .yaml = R"(channels:
  - name: log
    plugin: log
  - name: hook
    plugin: webhook
  - name: log
    plugin: jsonl
routes:
  - channels:
      - channel: log
)",
     .line = 6,
     .field = "name",
     .says = {"'log' is defined twice"}},
    {.name = "AChannelWithoutAPluginIsRefused",
     .yaml = R"(channels:
  - name: log
    plugin: log
  - name: hook
    config:
      url: https://x
routes:
  - channels:
      - channel: log
)",
     .line = 4,
     .field = "channels",
     .says = {"names no plugin"}},
    {.name = "ARouteNamingAnUndefinedChannelIsRefused",
     .yaml = R"(routes:
  - channels:
      - channel: log
  - role: dsl
    channels:
      - channel: jsonl
      - channel: teams
)",
     .line = 7,
     .field = "channel",
     .says = {"no channel named 'teams'"}},
    {.name = "ARouteWithoutChannelsIsRefused",
     .yaml = R"(routes:
  - channels:
      - channel: log
  - partnership: staffordshire
    role: dsl
)",
     .line = 4,
     .field = "routes",
     .says = {"lists no channels"}},
    {.name = "ARouteWithAnEmptyChannelListIsRefused",
     .yaml = R"(routes:
  - channels:
      - channel: log
  - role: dsl
    channels: []
)",
     .line = 4,
     .field = "routes",
     .says = {"lists no channels"}},
    {.name = "TwoRoutesForOnePartnershipAndRoleAreRefused",
     .yaml = R"(routes:
  - channels:
      - channel: log
  - partnership: staffordshire
    role: dsl
    channels:
      - channel: log
  - role: dsl
    channels:
      - channel: jsonl
  - role: dsl
    partnership: staffordshire
    channels:
      - channel: jsonl
)",
     .line = 11,
     .field = "routes",
     .says = {"'staffordshire'", "'dsl'"}},
    {.name = "TwoCatchAllRoutesAreRefused",
     .yaml = R"(routes:
  - channels:
      - channel: log
  - channels:
      - channel: jsonl
)",
     .line = 4,
     .field = "routes",
     .says = {}},
    {.name = "RoutesWithoutACatchAllAreRefused",
     .yaml = R"(ingest:
  max_messages_per_turn: 10
routes:
  - role: dsl
    channels:
      - channel: log
  - partnership: staffordshire
    channels:
      - channel: jsonl
)",
     .line = 3,
     .field = "routes",
     .says = {"catch-all"}},
    {.name = "AFilesChannelsWithoutTheDefaultRoutesChannelsNeedRoutes",
     .yaml = R"(outbox:
  max_attempts: 3
channels:
  - name: log
    plugin: log
  - name: hook
    plugin: webhook
)",
     .line = 3,
     .field = "channels",
     .says = {"'jsonl'", "give routes too"}},
    {.name = "AChannelsConfigMustBeAMapping",
     .yaml = R"(channels:
  - name: log
    plugin: log
    config: verbose
)",
     .line = 4,
     .field = "config",
     .says = {"expected a mapping"}},
    {.name = "AKeyGivenTwiceInAChannelsConfigIsRefused",
     .yaml = R"(channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
    config:
      path: a.jsonl
      path: b.jsonl
)",
     .line = 8,
     .field = "path",
     .says = {"given twice"}},
    {.name = "MoreThanAHundredThousandMessagesPerTurnAreRefused",
     .yaml = R"(ingest:
  max_messages_per_turn: 100001
)",
     .line = 2,
     .field = "max_messages_per_turn",
     .says = {"must be at most 100000"}},
};

class ConfigRefusesTest : public ConfigTest, public ::testing::WithParamInterface<RefusedFile> {};

TEST_P(ConfigRefusesTest, WithAnErrorNamingTheFileTheLineAndTheField) {
  const RefusedFile& file = GetParam();
  const std::string error = LoadError(file.yaml);
  EXPECT_THAT(error, StartsWith(At(file.line, file.field)));
  for (const std::string& part : file.says) EXPECT_THAT(error, HasSubstr(part));
}

INSTANTIATE_TEST_SUITE_P(ChannelsAndRoutes, ConfigRefusesTest, ::testing::ValuesIn(kRefusedFiles),
                         [](const ::testing::TestParamInfo<RefusedFile>& info) {
                           return info.param.name;
                         });

TEST_F(ConfigTest, AChannelNameMayMixCasesDigitsUnderscoreAndHyphen) {
  auto config = Load(R"(channels:
  - name: Team_Mail-2
    plugin: email
routes:
  - channels:
      - channel: Team_Mail-2
)");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
}

// ---- A channel's config: any YAML mapping, as a google.protobuf.Struct.

TEST_F(ConfigTest, AChannelsConfigReachesTheStructWithItsTypes) {
  auto config = Load(R"(channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
  - name: hook
    plugin: webhook
    config:
      url: https://receiver.example.org/in
      timeout_seconds: 2.5
      retries: 3
      negative: -40
      verify_tls: false
      follow_redirects: true
      port: "8443"
      flag_text: "true"
      nothing: null
      tilde: ~
      empty:
      headers:
        X-Team: safeguarding
        X-Depth:
          level: 2
      tags: [alpha, 7, "8", false]
      multi: |
        line one
        line two
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->channels_size(), 3);
  const auto& f = config->channels(2).config().fields();
  using google::protobuf::Value;
  auto kind = [&](const char* key) {
    EXPECT_TRUE(f.contains(key)) << key;
    return f.contains(key) ? f.at(key).kind_case() : Value::KIND_NOT_SET;
  };
  ASSERT_EQ(kind("url"), Value::kStringValue);
  EXPECT_EQ(f.at("url").string_value(), "https://receiver.example.org/in");
  ASSERT_EQ(kind("timeout_seconds"), Value::kNumberValue);
  EXPECT_EQ(f.at("timeout_seconds").number_value(), 2.5);
  ASSERT_EQ(kind("retries"), Value::kNumberValue);
  EXPECT_EQ(f.at("retries").number_value(), 3.0);
  ASSERT_EQ(kind("negative"), Value::kNumberValue);
  EXPECT_EQ(f.at("negative").number_value(), -40.0);
  ASSERT_EQ(kind("verify_tls"), Value::kBoolValue);
  EXPECT_FALSE(f.at("verify_tls").bool_value());
  ASSERT_EQ(kind("follow_redirects"), Value::kBoolValue);
  EXPECT_TRUE(f.at("follow_redirects").bool_value());
  // Quoted scalars stay strings, whatever they look like.
  ASSERT_EQ(kind("port"), Value::kStringValue);
  EXPECT_EQ(f.at("port").string_value(), "8443");
  ASSERT_EQ(kind("flag_text"), Value::kStringValue);
  EXPECT_EQ(f.at("flag_text").string_value(), "true");
  EXPECT_EQ(kind("nothing"), Value::kNullValue);
  EXPECT_EQ(kind("tilde"), Value::kNullValue);
  EXPECT_EQ(kind("empty"), Value::kNullValue);
  ASSERT_EQ(kind("headers"), Value::kStructValue);
  const auto& headers = f.at("headers").struct_value().fields();
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers.at("X-Team").string_value(), "safeguarding");
  ASSERT_EQ(headers.at("X-Depth").kind_case(), Value::kStructValue);
  EXPECT_EQ(headers.at("X-Depth").struct_value().fields().at("level").number_value(), 2.0);
  ASSERT_EQ(kind("tags"), Value::kListValue);
  const auto& tags = f.at("tags").list_value().values();
  ASSERT_EQ(tags.size(), 4);
  EXPECT_EQ(tags[0].string_value(), "alpha");
  ASSERT_EQ(tags[1].kind_case(), Value::kNumberValue);
  EXPECT_EQ(tags[1].number_value(), 7.0);
  ASSERT_EQ(tags[2].kind_case(), Value::kStringValue);
  EXPECT_EQ(tags[2].string_value(), "8");
  ASSERT_EQ(tags[3].kind_case(), Value::kBoolValue);
  EXPECT_FALSE(tags[3].bool_value());
  ASSERT_EQ(kind("multi"), Value::kStringValue);
  EXPECT_EQ(f.at("multi").string_value(), "line one\nline two\n");
  EXPECT_EQ(f.size(), 14u);
}

// YAML's floats are `.nan` and `.inf`; the plain words nan, inf and infinity are strings (and a
// Struct holding NaN or infinity cannot be written as the JSON a plugin is configured with).
TEST_F(ConfigTest, PlainWordsThatAreNotYamlNumbersStayStrings) {
  auto config = Load(R"(channels:
  - name: log
    plugin: log
    config:
      mode: nan
      limit: inf
      until: Infinity
  - name: jsonl
    plugin: jsonl
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const auto& f = config->channels(0).config().fields();
  for (const auto& [key, text] : std::vector<std::pair<std::string, std::string>>{
           {"mode", "nan"}, {"limit", "inf"}, {"until", "Infinity"}}) {
    ASSERT_TRUE(f.contains(key)) << key;
    EXPECT_EQ(f.at(key).kind_case(), google::protobuf::Value::kStringValue) << key;
    EXPECT_EQ(f.at(key).string_value(), text) << key;
  }
}

TEST_F(ConfigTest, AnEmptyChannelConfigMappingIsAnEmptyStruct) {
  auto config = Load(R"(channels:
  - name: log
    plugin: log
    config: {}
  - name: jsonl
    plugin: jsonl
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->channels(0).config().fields().empty());
  EXPECT_TRUE(config->channels(1).config().fields().empty());  // not the default's path
}

// ---- Changed settings: lists by size, never their content.

TEST_F(ConfigTest, ChangedSettingsGiveListsByTheirSizeOnly) {
  auto config = Load(R"(plugins_dir: /opt/tandem/plugins
channels:
  - name: log
    plugin: log
  - name: hook
    plugin: webhook
    config:
      url: https://receiver.example.org/in
      token: hunter2-very-secret
      auth:
        password: "s3cr3t-pa55"
routes:
  - channels:
      - channel: log
  - role: dsl
    channels:
      - channel: hook
        address: https://dsl.example.org/hook
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::vector<std::string> changed = ChangedSettings(*config);
  EXPECT_THAT(changed, ElementsAre("plugins_dir=/opt/tandem/plugins", "channels=2 entries",
                                   "routes=2 entries"));
  for (const std::string& setting : changed) {
    for (const char* secret :
         {"hunter2", "s3cr3t", "receiver.example.org", "dsl.example.org", "webhook", "hook"}) {
      EXPECT_THAT(setting, Not(HasSubstr(secret))) << setting;
    }
  }
}

TEST_F(ConfigTest, ChangedSettingsSeeAChangeInsideAChannelsConfig) {
  // Same names and count as the defaults; only the jsonl channel's path differs.
  auto config = Load(R"(channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
    config:
      path: secret-place.jsonl
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_THAT(ChangedSettings(*config), ElementsAre("channels=2 entries"));
}

TEST_F(ConfigTest, AFileRepeatingTheDefaultListsChangesNothing) {
  auto config = Load(R"(channels:
  - name: log
    plugin: log
  - name: jsonl
    plugin: jsonl
    config:
      path: notifications.jsonl
routes:
  - channels:
      - channel: log
      - channel: jsonl
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(ChangedSettings(*config), std::vector<std::string>{});
}

}  // namespace
}  // namespace tandem::tandemd
