#include "daemon/config/loader.h"

#include <algorithm>
#include <vector>

#include "daemon/base/file.h"
#include "daemon/config/shipped.h"

namespace tandem::config {
namespace {

bool IsWorkflowPath(std::string_view path) {
  return path.rfind("workflows/", 0) == 0 && path.find('/', 10) == std::string_view::npos &&
         path.size() > 5 && path.substr(path.size() - 5) == ".yaml";
}

// Returns (path, text) of every `*.yaml` file directly in `dir`, in name order.
// Returns kNotFound if `dir` is not a directory, kInvalidArgument if it cannot be listed.
Result<std::vector<std::pair<std::string, std::string>>> ReadYamlFiles(
    const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFoundError(dir.string() + ": no such directory");
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      paths.push_back(entry.path());
    }
  }
  if (ec) return InvalidArgumentError(dir.string() + ": cannot list: " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& p : paths) {
    TANDEM_ASSIGN_OR_RETURN(std::string text, ReadFile(p));
    files.emplace_back(p.string(), std::move(text));
  }
  return files;
}

}  // namespace

Result<std::unique_ptr<engine::WorkflowSet>> LoadWorkflows(const std::filesystem::path& dir) {
  std::vector<std::pair<std::string, std::string>> files;  // origin, text
  if (dir.empty()) {
    for (const auto& f : ShippedFiles()) {
      if (IsWorkflowPath(f.path)) files.emplace_back(std::string(f.path), std::string(f.text));
    }
  } else {
    TANDEM_ASSIGN_OR_RETURN(files, ReadYamlFiles(dir));
  }
  if (files.empty()) {
    return InvalidArgumentError((dir.empty() ? std::string("shipped workflows") : dir.string()) +
                                ": no workflow (*.yaml) found");
  }
  auto set = std::make_unique<engine::WorkflowSet>();
  for (const auto& [origin, text] : files) {
    TANDEM_ASSIGN_OR_RETURN(auto wf, engine::Workflow::FromYaml(text, origin));
    TANDEM_RETURN_IF_ERROR(set->Add(std::move(wf)));
  }
  TANDEM_RETURN_IF_ERROR(set->CheckStartCases());
  return set;
}

Status LoadPartnerships(const std::filesystem::path& dir, engine::WorkflowSet* set) {
  if (dir.empty()) return OkStatus();
  TANDEM_ASSIGN_OR_RETURN(const auto files, ReadYamlFiles(dir));
  for (const auto& [origin, text] : files) {
    TANDEM_RETURN_IF_ERROR(set->AddPartnership(text, origin));
  }
  return OkStatus();
}

Result<std::unique_ptr<calendar::WorkingDayCalendar>> LoadCalendar(
    const std::filesystem::path& file) {
  std::string text;
  std::string origin;
  if (file.empty()) {
    for (const auto& f : ShippedFiles()) {
      if (f.path == kShippedCalendar) text = std::string(f.text);
    }
    origin = std::string(kShippedCalendar);
  } else {
    TANDEM_ASSIGN_OR_RETURN(text, ReadFile(file));
    origin = file.string();
  }
  TANDEM_ASSIGN_OR_RETURN(auto cal, calendar::WorkingDayCalendar::FromGovUkJson(text, origin));
  return std::make_unique<calendar::WorkingDayCalendar>(std::move(cal));
}

}  // namespace tandem::config
