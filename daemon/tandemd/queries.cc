#include "daemon/tandemd/queries.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/engine/engine.h"

namespace tandem::tandemd {
Result<v1::CaseView> QueryCase(const store::Store& store, const v1::QueryCase& query) {
  TANDEM_ASSIGN_OR_RETURN(std::optional<v1::CaseState> state, store.GetCase(query.case_id()));
  if (!state.has_value()) return NotFoundError("no case '" + query.case_id() + "'");
  v1::CaseView view;
  *view.mutable_state() = std::move(*state);
  TANDEM_ASSIGN_OR_RETURN(std::vector<v1::Event> events, store.CaseEvents(query.case_id()));
  for (v1::Event& e : events) *view.add_events() = std::move(e);
  TANDEM_ASSIGN_OR_RETURN(std::vector<v1::AuditRecord> audit,
                          store.CaseAuditRecords(query.case_id()));
  for (v1::AuditRecord& r : audit) {
    for (v1::Effect& e : *r.mutable_effects()) *view.add_effects() = std::move(e);
  }
  return view;
}

Result<v1::DeadlineList> ListDeadlines(const store::Store& store,
                                       const calendar::WorkingDayCalendar& calendar,
                                       const v1::ListDeadlines& query, calendar::Instant now) {
  std::optional<calendar::Instant> due_by;
  if (query.window_case() == v1::ListDeadlines::kWithinWorkingDays) {
    TANDEM_ASSIGN_OR_RETURN(const calendar::CivilDay today, calendar::LondonDay(now));
    TANDEM_ASSIGN_OR_RETURN(
        const calendar::CountedDay last,
        calendar.AddWorkingDays(today, static_cast<int>(query.within_working_days())));
    TANDEM_ASSIGN_OR_RETURN(due_by, calendar::EndOfLondonDay(last.day));
  }
  const bool overdue_only =
      query.window_case() == v1::ListDeadlines::kOverdueOnly && query.overdue_only();

  v1::DeadlineList list;
  *list.mutable_as_of() = engine::ToTimestamp(now);
  std::vector<v1::DeadlineEntry> entries;
  TANDEM_RETURN_IF_ERROR(store.ForEachCase([&](const v1::CaseState& state) {
    if (state.closed()) return true;
    if (!query.partnership().empty() && state.partnership() != query.partnership()) return true;
    for (const v1::DeadlineInstance& d : state.deadlines()) {
      const bool breached = d.status() == v1::DEADLINE_STATUS_BREACHED;
      if (!breached && d.status() != v1::DEADLINE_STATUS_OPEN) continue;
      const calendar::Instant due = engine::ToInstant(d.due_at());
      if (overdue_only && !breached && due >= now) continue;
      if (due_by.has_value() && !breached && due > *due_by) continue;
      v1::DeadlineEntry entry;
      entry.set_case_id(state.case_id());
      entry.set_partnership(state.partnership());
      entry.set_workflow(state.workflow());
      entry.set_state(state.state());
      *entry.mutable_deadline() = d;
      entries.push_back(std::move(entry));
    }
    return true;
  }));
  std::stable_sort(
      entries.begin(), entries.end(), [](const v1::DeadlineEntry& a, const v1::DeadlineEntry& b) {
        return engine::ToInstant(a.deadline().due_at()) < engine::ToInstant(b.deadline().due_at());
      });
  for (v1::DeadlineEntry& e : entries) *list.add_deadlines() = std::move(e);
  return list;
}

Result<v1::OutboxList> ListOutbox(const store::Store& store, const v1::ListOutbox& query) {
  const std::size_t limit = query.limit() == 0 ? 1000 : query.limit();
  v1::OutboxList list;
  // One more than asked tells whether there were more.
  if (!query.parked_only()) {
    TANDEM_ASSIGN_OR_RETURN(std::vector<v1::OutboxRecord> pending, store.Outbox(limit + 1));
    if (pending.size() > limit) {
      pending.resize(limit);
      list.set_truncated(true);
    }
    for (v1::OutboxRecord& record : pending) *list.add_pending() = std::move(record);
  }
  TANDEM_ASSIGN_OR_RETURN(std::vector<v1::OutboxRecord> parked, store.DeadLetters(limit + 1));
  if (parked.size() > limit) {
    parked.resize(limit);
    list.set_truncated(true);
  }
  for (v1::OutboxRecord& record : parked) *list.add_parked() = std::move(record);
  return list;
}

}  // namespace tandem::tandemd
