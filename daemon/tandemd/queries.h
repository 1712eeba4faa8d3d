#pragma once
// The daemon's read-only requests, answered from committed state: query_case (the case, its
// events and its timeline), list_deadlines (open and breached deadlines of open cases) and
// list_outbox (deliveries pending and parked).
// They read the store's snapshots and never touch the writer's state, so they run on a reader
// thread and never delay an acknowledgement (DESIGN, "One writer").

#include "daemon/base/status.h"
#include "daemon/calendar/calendar.h"
#include "daemon/store/store.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::tandemd {

// Returns the view of case `query.case_id()`: its state, its accepted events in order, and its
// timeline (the effects of its events and fired timers, from the audit log, in commit order).
// Returns kNotFound naming the case when there is none; kDataLoss or kInternal for store read
// errors. Thread-safe (reads only).
Result<v1::CaseView> QueryCase(const store::Store& store, const v1::QueryCase& query);

// Returns the deadlines `query` asks for, earliest due first, as of `now`: open or breached
// deadlines of open cases (of query.partnership() when set); within_working_days N keeps the
// breached ones and those due by the end of the Nth working day after today (Europe/London);
// overdue_only keeps the breached ones and the open ones whose due instant has passed.
// Returns kOutOfRange if N working days run past the calendar's data; store errors as
// QueryCase. Thread-safe.
Result<v1::DeadlineList> ListDeadlines(const store::Store& store,
                                       const calendar::WorkingDayCalendar& calendar,
                                       const v1::ListDeadlines& query, calendar::Instant now);

// Returns the deliveries not yet delivered, in delivery id order: up to query.limit() (1000
// when 0) pending in the outbox, unless query.parked_only(), and as many parked in
// dead_letter; `truncated` when either had more. Store errors as QueryCase. Thread-safe.
Result<v1::OutboxList> ListOutbox(const store::Store& store, const v1::ListOutbox& query);

}  // namespace tandem::tandemd
