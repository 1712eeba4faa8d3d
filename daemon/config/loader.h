#pragma once
// Loading workflows and calendars, from the operator's files or from the copies shipped inside
// the binary. This is the I/O edge in front of the pure engine and calendar modules.

#include <filesystem>
#include <memory>
#include <string>

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/workflow.h"

namespace tandem::config {

// The shipped England & Wales bank-holiday file.
inline constexpr std::string_view kShippedCalendar = "workflows/calendars/england-and-wales.json";

// Returns every workflow of `dir` (each `*.yaml` directly in it, in name order); with an empty
// path, the shipped workflows.
// Returns kNotFound if `dir` does not exist, kInvalidArgument (naming file, line and field) if
// any file fails to load, kAlreadyExists if two files clash (same name and version, or an event
// type in two workflows).
Result<std::unique_ptr<engine::WorkflowSet>> LoadWorkflows(const std::filesystem::path& dir);

// Adds to `set` every partnership's own settings from `dir` (each `*.yaml` directly in it, in
// name order; PartnershipOverrides, proto/tandem/v1/partnership.proto). An empty path adds
// nothing. Returns kNotFound if `dir` does not exist, kInvalidArgument naming the file, the line
// and the field of the first problem, kAlreadyExists if one partnership changes a workflow twice.
Status LoadPartnerships(const std::filesystem::path& dir, engine::WorkflowSet* set);

// Returns the calendar in `file` (GOV.UK bank-holidays.json shape); with an empty path, the
// shipped one. Returns kNotFound or kInvalidArgument naming the file.
Result<std::unique_ptr<calendar::WorkingDayCalendar>> LoadCalendar(
    const std::filesystem::path& file);

}  // namespace tandem::config
