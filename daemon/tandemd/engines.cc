#include "daemon/tandemd/engines.h"

#include <algorithm>
#include <utility>

namespace tandem::tandemd {
namespace {

// Returns whether every workflow version of `older` is also in `newer`.
bool Covers(const engine::WorkflowSet& newer, const engine::WorkflowSet& older) {
  return std::all_of(older.workflows().begin(), older.workflows().end(), [&](const auto& wf) {
    return newer.Find(wf->name(), wf->version()) != nullptr;
  });
}

}  // namespace

Engines::Engines(std::unique_ptr<calendar::WorkingDayCalendar> calendar,
                 std::unique_ptr<engine::WorkflowSet> workflows)
    : calendar_(std::move(calendar)) {
  generations_.push_back(std::make_unique<Generation>(std::move(workflows), *calendar_));
}

void Engines::Add(std::unique_ptr<engine::WorkflowSet> workflows) {
  auto newest = std::make_unique<Generation>(std::move(workflows), *calendar_);
  // An older generation is still needed while it holds a version no newer one has: a running
  // case may have started with it.
  std::vector<std::unique_ptr<Generation>> kept;
  for (std::size_t i = 0; i < generations_.size(); ++i) {
    bool covered = Covers(*newest->workflows, *generations_[i]->workflows);
    for (std::size_t j = i + 1; j < generations_.size() && !covered; ++j) {
      covered = Covers(*generations_[j]->workflows, *generations_[i]->workflows);
    }
    if (!covered) kept.push_back(std::move(generations_[i]));
  }
  kept.push_back(std::move(newest));
  generations_ = std::move(kept);
}

const engine::Engine& Engines::For(const v1::CaseState& state) const {
  for (auto it = generations_.rbegin(); it != generations_.rend(); ++it) {
    if ((*it)->workflows->Find(state.workflow(), state.workflow_version()) != nullptr) {
      return (*it)->engine;
    }
  }
  return Newest();
}

}  // namespace tandem::tandemd
