#pragma once
// The engines the daemon runs: one per loaded generation of workflows (the start-up set, then
// one per successful SIGHUP reload), all over one calendar. New cases go to the newest
// generation; a running case goes to the newest generation that still holds its workflow
// version, so a reload never changes the rules of a case already started (DESIGN, "Workflows
// are data").

#include <memory>
#include <vector>

#include "daemon/calendar/calendar.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/workflow.h"
#include "proto/tandem/v1/case.pb.h"

namespace tandem::tandemd {

// Lives on the writer thread: Add and the lookups run there, and references returned stay
// valid until the next Add (which may drop generations no case can need any more). Owns the
// calendar and every workflow set.
class Engines {
 public:
  Engines(std::unique_ptr<calendar::WorkingDayCalendar> calendar,
          std::unique_ptr<engine::WorkflowSet> workflows);
  Engines(const Engines&) = delete;
  Engines& operator=(const Engines&) = delete;

  // Makes `workflows` the newest generation. Drops every older generation whose workflow
  // versions all appear in a newer one.
  void Add(std::unique_ptr<engine::WorkflowSet> workflows);

  // The engine for new cases.
  const engine::Engine& Newest() const { return generations_.back()->engine; }
  // The engine for `state`: the newest generation holding its workflow and version, else the
  // newest (which then refuses the change: the version is not loaded).
  const engine::Engine& For(const v1::CaseState& state) const;

  const calendar::WorkingDayCalendar& calendar() const { return *calendar_; }
  std::size_t generations() const { return generations_.size(); }

 private:
  struct Generation {
    explicit Generation(std::unique_ptr<engine::WorkflowSet> w,
                        const calendar::WorkingDayCalendar& calendar)
        : workflows(std::move(w)), engine(*workflows, calendar) {}
    std::unique_ptr<engine::WorkflowSet> workflows;
    engine::Engine engine;
  };

  std::unique_ptr<calendar::WorkingDayCalendar> calendar_;
  // Oldest first; never empty.
  std::vector<std::unique_ptr<Generation>> generations_;
};

}  // namespace tandem::tandemd
