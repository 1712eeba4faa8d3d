#include "daemon/config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "daemon/calendar/calendar.h"
#include "daemon/config/shipped.h"

namespace tandem::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A small valid workflow; tests write it (or variants of it) into their directory.
constexpr std::string_view kWorkflow = R"yaml(name: tiny
version: 1
edition:
  name: T1
  effective_from: "2020-01-01"
events:
  - type: tiny.opened
    starts_case: true
    facts:
      - {name: opened_on, type: date, required: true}
states:
  - name: open
transitions:
  - on: tiny.opened
    to: open
)yaml";

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at == std::string::npos) return text;
  return text.replace(at, from.size(), to);
}

// Gives each test its own empty directory under the system temporary directory, removed after.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("tandem_config_test_" + std::string(info->name()) + "_" +
            std::to_string(static_cast<long>(::getpid())));
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(std::filesystem::create_directories(dir_));
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path Write(std::string_view name, std::string_view text) {
    const std::filesystem::path path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
    EXPECT_TRUE(out.good()) << path;
    return path;
  }

  std::filesystem::path dir_;
};

TEST(LoadWorkflows, ShippedWorkflowsLoad) {
  auto set = LoadWorkflows("");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const engine::Workflow* wf = (*set)->Find("serious_incident", 1);
  ASSERT_NE(wf, nullptr);
  EXPECT_EQ(wf->origin(), "workflows/serious_incident.yaml");
  EXPECT_EQ(wf->edition_label(), "WT2023 (in force from 2023-12-15)");
  EXPECT_TRUE((*set)->KnowsEventType("incident.reported"));
  // Every shipped workflows/*.yaml is loaded.
  std::size_t shipped = 0;
  for (const auto& f : ShippedFiles()) {
    if (f.path.rfind("workflows/", 0) == 0 && f.path.find('/', 10) == std::string_view::npos &&
        f.path.size() > 5 && f.path.substr(f.path.size() - 5) == ".yaml") {
      ++shipped;
    }
  }
  EXPECT_EQ((*set)->workflows().size(), shipped);
}

TEST(LoadCalendar, ShippedCalendarLoads) {
  auto cal = LoadCalendar("");
  ASSERT_TRUE(cal.ok()) << cal.status().ToString();
  EXPECT_EQ((*cal)->origin(), kShippedCalendar);
  EXPECT_EQ(calendar::FormatCivilDay((*cal)->first_day()), "2018-01-01");
  // Christmas Day 2026 is a bank holiday in the shipped data.
  auto christmas = (*cal)->IsWorkingDay(*calendar::ParseCivilDay("2026-12-25"));
  ASSERT_TRUE(christmas.ok());
  EXPECT_FALSE(*christmas);
}

TEST_F(LoaderTest, DirectoryOverrideLoadsItsWorkflows) {
  Write("tiny.yaml", kWorkflow);
  Write("notes.txt", "not a workflow");
  Write("nested/other.yaml", "this: is not loaded");
  auto set = LoadWorkflows(dir_);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ((*set)->workflows().size(), 1u);
  const engine::Workflow* wf = (*set)->Find("tiny", 1);
  ASSERT_NE(wf, nullptr);
  EXPECT_EQ(wf->origin(), (dir_ / "tiny.yaml").string());
  // An override replaces the shipped workflows.
  EXPECT_EQ((*set)->Find("serious_incident", 1), nullptr);
}

TEST_F(LoaderTest, MissingDirectoryIsNotFound) {
  const auto missing = dir_ / "nope";
  auto set = LoadWorkflows(missing);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(set.status().message(), missing.string() + ": no such directory");
}

TEST_F(LoaderTest, EmptyDirectoryIsRefused) {
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set.status().message(), dir_.string() + ": no workflow (*.yaml) found");
}

TEST_F(LoaderTest, BrokenFileIsRefusedNamingFileAndLine) {
  Write("a.yaml", kWorkflow);
  const auto broken =
      Write("b.yaml", Replace(Replace(std::string(kWorkflow), "name: tiny\n", "name: other\n"),
                              "    to: open\n", "    to: closed\n"));
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), StartsWith(broken.string() + ":15: field 'to'"));
  EXPECT_THAT(set.status().message(), HasSubstr("unknown state 'closed'"));
}

TEST_F(LoaderTest, YamlSyntaxErrorNamesTheFile) {
  const auto broken = Write("a.yaml", "name: [tiny\n");
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(set.status().message(), StartsWith(broken.string() + ":"));
}

TEST_F(LoaderTest, SameNameAndVersionInTwoFilesIsRefused) {
  const auto first = Write("a.yaml", kWorkflow);
  const auto second = Write("b.yaml", kWorkflow);
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(
      set.status().message(),
      second.string() + ": workflow 'tiny' version 1 is already loaded from " + first.string());
}

TEST_F(LoaderTest, TwoWorkflowsSharingAnEventTypeAreRefused) {
  Write("a.yaml", kWorkflow);
  const auto second =
      Write("b.yaml", Replace(std::string(kWorkflow), "name: tiny\n", "name: other\n"));
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(set.status().message(),
            second.string() + ": event type 'tiny.opened' already belongs to workflow 'tiny'");
}

// A workflow that opens cases of another is checked against it once every file is loaded.
TEST_F(LoaderTest, OpeningACaseOfAWorkflowThatIsNotLoadedIsRefused) {
  const auto opener =
      Write("a.yaml", Replace(std::string(kWorkflow), "    to: open\n", R"yaml(    to: open
    start_cases:
      - workflow: other
        event: other.opened
        case_id_suffix: "-o"
        facts:
          - {name: opened_on, from: opened_on}
        source: test
        confidence: v1
)yaml"));
  auto set = LoadWorkflows(dir_);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(set.status().message(), opener.string() +
                                        ":17: field 'start_cases': opens a case of workflow "
                                        "'other', which is not loaded");
  // With the other workflow beside it, the set loads.
  Write("b.yaml", Replace(Replace(Replace(std::string(kWorkflow), "name: tiny\n", "name: other\n"),
                                  "type: tiny.opened", "type: other.opened"),
                          "on: tiny.opened", "on: other.opened"));
  auto both = LoadWorkflows(dir_);
  EXPECT_TRUE(both.ok()) << both.status().ToString();
}

TEST_F(LoaderTest, PartnershipFilesGiveThatPartnershipItsOwnVersion) {
  Write("workflows/a.yaml", kWorkflow);
  Write("partnerships/notes.txt", "not a partnership file");
  Write("partnerships/p.yaml", R"yaml(partnership: p
workflows:
  - workflow: tiny
    roles:
      - {role: partnership_chair, to: [business_unit]}
)yaml");
  auto set = LoadWorkflows(dir_ / "workflows");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const Status st = LoadPartnerships(dir_ / "partnerships", set->get());
  ASSERT_TRUE(st.ok()) << st.ToString();
  const engine::Workflow* own = (*set)->Find("tiny", 1, "p");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->partnership(), "p");
  EXPECT_EQ((*set)->Find("tiny", 1, "q"), (*set)->Find("tiny", 1));
  EXPECT_TRUE(LoadPartnerships("", set->get()).ok());  // none given: nothing to add
  EXPECT_EQ(LoadPartnerships(dir_ / "missing", set->get()).code(), StatusCode::kNotFound);
}

TEST_F(LoaderTest, APartnershipFileForAnUnknownWorkflowNamesTheFile) {
  Write("workflows/a.yaml", kWorkflow);
  const auto file = Write("partnerships/p.yaml", "partnership: p\nworkflows:\n  - workflow: big\n");
  auto set = LoadWorkflows(dir_ / "workflows");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  const Status st = LoadPartnerships(dir_ / "partnerships", set->get());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), file.string() + ":3: field 'workflow': unknown workflow 'big'");
}

TEST_F(LoaderTest, TwoEditionsOfOneWorkflowLoadTogether) {
  Write("a.yaml", kWorkflow);
  Write("b.yaml", Replace(Replace(std::string(kWorkflow), "version: 1\n", "version: 2\n"),
                          "effective_from: \"2020-01-01\"", "effective_from: \"2024-01-01\""));
  auto set = LoadWorkflows(dir_);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ((*set)->workflows().size(), 2u);
}

TEST_F(LoaderTest, CalendarFileOverrideLoads) {
  const auto path =
      Write("holidays.json", R"json({"england-and-wales": {"division": "england-and-wales",
  "events": [{"title": "New Year's Day", "date": "2030-01-01", "notes": "", "bunting": true}]}})json");
  auto cal = LoadCalendar(path);
  ASSERT_TRUE(cal.ok()) << cal.status().ToString();
  EXPECT_EQ((*cal)->origin(), path.string());
  EXPECT_EQ(calendar::FormatCivilDay((*cal)->first_day()), "2030-01-01");
  EXPECT_EQ(calendar::FormatCivilDay((*cal)->last_day()), "2030-12-31");
}

TEST_F(LoaderTest, MissingCalendarFileIsNotFound) {
  auto cal = LoadCalendar(dir_ / "none.json");
  ASSERT_FALSE(cal.ok());
  EXPECT_EQ(cal.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(cal.status().message(), HasSubstr((dir_ / "none.json").string()));
}

TEST_F(LoaderTest, MalformedCalendarFileIsRefusedNamingIt) {
  const auto path = Write("holidays.json", "{not json");
  auto cal = LoadCalendar(path);
  ASSERT_FALSE(cal.ok());
  EXPECT_EQ(cal.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(cal.status().message(), StartsWith(path.string()));
}

}  // namespace
}  // namespace tandem::config
