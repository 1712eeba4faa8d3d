#include "daemon/engine/engine.h"

#include <algorithm>
#include <optional>
#include <set>

#include "daemon/engine/internal/facts.h"

namespace tandem::engine {
namespace {

using calendar::CivilDay;
using calendar::FormatCivilDay;
using calendar::Instant;

std::string PluralDays(uint32_t n, std::string_view kind) {
  return std::to_string(n) + " " + std::string(kind) + (n == 1 ? " day" : " days");
}

bool IsOpen(const v1::DeadlineInstance& d) {
  return d.status() == v1::DEADLINE_STATUS_OPEN || d.status() == v1::DEADLINE_STATUS_BREACHED;
}

// Replaces {name} placeholders (the workflow checker refused unknown ones).
std::string Render(const std::string& tmpl,
                   const std::vector<std::pair<std::string_view, std::string>>& vars) {
  std::string out;
  out.reserve(tmpl.size() + 32);
  for (std::size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '{') {
      const std::size_t close = tmpl.find('}', i);
      if (close != std::string::npos) {
        const std::string_view name(tmpl.data() + i + 1, close - i - 1);
        for (const auto& [k, v] : vars) {
          if (k == name) {
            out += v;
            break;
          }
        }
        i = close;
        continue;
      }
    }
    out += tmpl[i];
  }
  return out;
}

struct Computed {
  CivilDay due;
  v1::Explanation explanation;
};

// One change to one case: applying an event or firing a timer. Holds the new state being built
// and the effects emitted so far; discarded on error, so a rejection changes nothing.
class Change {
 public:
  Change(const Workflow& wf, const calendar::WorkingDayCalendar& cal, v1::CaseState state,
         Instant now, std::string cause)
      : wf_(wf), cal_(cal), now_(now), cause_(std::move(cause)) {
    out_.state = std::move(state);
  }

  v1::CaseState& state() { return out_.state; }
  const v1::CaseState& state() const { return out_.state; }

  // Records the facts of `event` as the latest of its type (latest last, so lookups that scan
  // backwards find the most recent value of a plain name first).
  void RecordFacts(const v1::Event& event) {
    auto* records = state().mutable_facts();
    for (int i = 0; i < records->size(); ++i) {
      if (records->Get(i).event_type() == event.type()) {
        records->DeleteSubrange(i, 1);
        break;
      }
    }
    v1::FactRecord* r = records->Add();
    r->set_event_type(event.type());
    r->set_event_id(event.event_id());
    *r->mutable_facts() = event.facts();
  }

  // Returns the value of a (possibly qualified) fact, or nullptr; sets `*qualified` to the
  // "event_type.fact" it was found as.
  const google::protobuf::Value* LookupFact(std::string_view name, std::string* qualified) const {
    const internal::FactName split = internal::SplitFactName(name);
    const auto& records = out_.state.facts();
    for (int i = records.size() - 1; i >= 0; --i) {
      const v1::FactRecord& r = records.Get(i);
      if (!split.event_type.empty() && r.event_type() != split.event_type) continue;
      auto it = r.facts().fields().find(split.fact);
      if (it == r.facts().fields().end()) continue;
      if (qualified != nullptr) *qualified = r.event_type() + "." + std::string(split.fact);
      return &it->second;
    }
    return nullptr;
  }

  std::optional<CivilDay> LookupDate(std::string_view name, std::string* qualified) const {
    const google::protobuf::Value* v = LookupFact(name, qualified);
    if (v == nullptr) return std::nullopt;
    auto day = calendar::ParseCivilDay(v->string_value());
    // Date facts were checked on the way in; a stored one that does not parse is not a date.
    if (!day.ok()) return std::nullopt;
    return *day;
  }

  bool Holds(const v1::Condition& c) const {
    switch (c.test_case()) {
      case v1::Condition::kFact: {
        const auto& f = c.fact();
        const google::protobuf::Value* v = LookupFact(f.name(), nullptr);
        switch (f.test_case()) {
          case v1::FactCondition::kEquals:
            return v != nullptr && internal::ValueText(*v) == f.equals();
          case v1::FactCondition::kIn: {
            if (v == nullptr) return false;
            const std::string text = internal::ValueText(*v);
            const auto& vals = f.in().values();
            return std::find(vals.begin(), vals.end(), text) != vals.end();
          }
          case v1::FactCondition::kPresent:
            return (v != nullptr) == f.present();
          case v1::FactCondition::TEST_NOT_SET:
            return false;
        }
        return false;
      }
      case v1::Condition::kAge: {
        const auto& a = c.age();
        const auto dob = LookupDate(a.dob(), nullptr);
        if (!dob) return false;
        for (const auto& on_name : a.on()) {
          if (const auto on = LookupDate(on_name, nullptr)) {
            return calendar::AgeOn(*dob, *on, wf_.leap_day_birthday()) <
                   static_cast<int>(a.below());
          }
        }
        return false;
      }
      case v1::Condition::kAll:
        return std::all_of(c.all().conditions().begin(), c.all().conditions().end(),
                           [this](const v1::Condition& x) { return Holds(x); });
      case v1::Condition::kAny:
        return std::any_of(c.any().conditions().begin(), c.any().conditions().end(),
                           [this](const v1::Condition& x) { return Holds(x); });
      case v1::Condition::kNot:
        return !Holds(c.not_());
      case v1::Condition::kParameter:
        return wf_.Parameter(c.parameter().name()) == c.parameter().equals();
      case v1::Condition::TEST_NOT_SET:
        return false;
    }
    return false;
  }

  v1::Effect* Emit() {
    v1::Effect& e = out_.effects.emplace_back();
    *e.mutable_at() = ToTimestamp(now_);
    e.set_case_id(out_.state.case_id());
    e.set_cause(cause_);
    return &e;
  }

  void Notify(v1::NotificationKind kind,
              const google::protobuf::RepeatedPtrField<std::string>& roles,
              const std::string& subject_tmpl, const std::string& body_tmpl,
              const v1::DeadlineInstance* deadline) {
    if (roles.empty()) return;
    const v1::DeadlineDefinition* def =
        deadline != nullptr ? wf_.FindDeadline(deadline->name()) : nullptr;
    const std::vector<std::pair<std::string_view, std::string>> vars = {
        {"case_id", state().case_id()},
        {"partnership", state().partnership()},
        {"workflow", wf_.name()},
        {"state", state().state()},
        {"event_type", event_type_},
        {"deadline", deadline != nullptr ? deadline->name() : ""},
        {"due_on", deadline != nullptr ? deadline->due_on() : ""},
        {"title", def != nullptr ? def->title() : ""},
        {"edition", wf_.edition_label()},
    };
    std::string subject_default;
    std::string body_default;
    switch (kind) {
      case v1::NOTIFICATION_KIND_DEADLINE_WARNING:
        subject_default = "Due {due_on}: {title} (case {case_id})";
        break;
      case v1::NOTIFICATION_KIND_DEADLINE_BREACHED:
        subject_default = "Overdue since the end of {due_on}: {title} (case {case_id})";
        break;
      case v1::NOTIFICATION_KIND_DEADLINE_ESCALATED:
        subject_default = "Still overdue since {due_on}: {title} (case {case_id})";
        break;
      case v1::NOTIFICATION_KIND_STATE_ENTERED:
        subject_default = "Case {case_id} is now {state}";
        break;
      default:
        subject_default = "Case {case_id}: {event_type}";
        break;
    }
    body_default = deadline != nullptr
                       ? "Partnership {partnership}, workflow {workflow}, case {case_id}: "
                         "deadline {deadline} ({title}) is due by the end of {due_on}. "
                         "Rules: {edition}."
                       : "Partnership {partnership}, workflow {workflow}, case {case_id} is now "
                         "in state {state}.";
    v1::Effect* e = Emit();
    v1::Notification* n = e->mutable_notification();
    n->set_notification_id(state().case_id() + ":" + cause_ + ":" + std::to_string(++notified_));
    n->set_kind(kind);
    *n->mutable_roles() = roles;
    n->set_subject(Render(subject_tmpl.empty() ? subject_default : subject_tmpl, vars));
    n->set_body(Render(body_tmpl.empty() ? body_default : body_tmpl, vars));
    n->set_workflow(wf_.name());
    n->set_partnership(state().partnership());
    if (deadline != nullptr) {
      n->set_deadline(deadline->name());
      n->set_due_on(deadline->due_on());
    }
  }

  // Computes a deadline's due day. `entered_override` replaces the state-entry day (used when
  // recomputing a deadline that counted from an earlier state entry).
  Result<Computed> Compute(const v1::DeadlineDefinition& def,
                           std::optional<CivilDay> entered_override) const {
    const v1::Anchor* anchor = &def.from();
    const v1::Offset* offset = &def.offset();
    std::string variant;
    for (const auto& v : def.variants()) {
      if (!Holds(v.when())) continue;
      if (v.has_from()) anchor = &v.from();
      if (v.has_offset()) offset = &v.offset();
      variant = v.note().empty() ? "variant" : v.note();
      break;
    }
    Computed c;
    v1::Explanation& x = c.explanation;
    CivilDay start{};
    std::string anchor_words;
    if (anchor->has_state_entered()) {
      if (entered_override) {
        start = *entered_override;
      } else {
        TANDEM_ASSIGN_OR_RETURN(start, calendar::ParseCivilDay(state().state_entered_on()));
      }
      x.set_anchor("state_entered");
      anchor_words = "the day the case entered state " + state().state();
    } else {
      std::string qualified;
      std::optional<CivilDay> day;
      for (const auto& name : anchor->facts().values()) {
        day = LookupDate(name, &qualified);
        if (day) break;
      }
      if (!day) {
        std::string names;
        for (const auto& name : anchor->facts().values())
          names += (names.empty() ? "" : " or ") + name;
        return FailedPreconditionError("deadline '" + def.name() + "' counts from " + names +
                                       ", which no event of the case has given");
      }
      start = *day;
      x.set_anchor(qualified);
      anchor_words = qualified;
    }
    x.set_anchor_on(FormatCivilDay(start));
    const bool before = offset->direction() == v1::DIRECTION_BEFORE;
    std::string amount;
    switch (offset->amount_case()) {
      case v1::Offset::kWorkingDays: {
        const int n = static_cast<int>(offset->working_days());
        auto counted = before ? cal_.SubtractWorkingDays(start, n) : cal_.AddWorkingDays(start, n);
        if (!counted.ok()) {
          if (counted.status().code() != StatusCode::kOutOfRange) return counted.status();
          return BeyondData(def, PluralDays(offset->working_days(), "working") +
                                     (before ? " before " : " after ") + anchor_words);
        }
        c.due = counted->day;
        x.mutable_skipped_days()->Reserve(static_cast<int>(counted->skipped.size()));
        for (const auto& s : counted->skipped) {
          const int32_t day = static_cast<int32_t>(s.day.time_since_epoch().count());
          x.add_skipped_days(day);
          // The calendar names a weekend day by its weekday and a bank holiday by its title.
          if (s.reason != calendar::WeekdayName(s.day)) {
            auto* h = x.add_skipped_holidays();
            h->set_day(day);
            h->set_title(s.reason);
          }
        }
        amount = PluralDays(offset->working_days(), "working");
        break;
      }
      case v1::Offset::kCalendarDays: {
        const int n = static_cast<int>(offset->calendar_days());
        c.due = start + std::chrono::days(before ? -n : n);
        amount = PluralDays(offset->calendar_days(), "calendar");
        break;
      }
      case v1::Offset::kMonths: {
        const int n = static_cast<int>(offset->months());
        const calendar::MonthResult m = calendar::AddMonths(start, before ? -n : n);
        c.due = m.day;
        x.set_clamped(m.clamped);
        amount = std::to_string(n) + (n == 1 ? " calendar month" : " calendar months");
        break;
      }
      case v1::Offset::AMOUNT_NOT_SET:
        // The workflow checker refuses an offset without an amount.
        return InternalError("deadline '" + def.name() + "' has no offset");
    }
    std::string rule = amount + (before ? " before " : " after ") + anchor_words;
    // Calendar-day and month counts do not walk the data, but their due day must lie inside it
    // too (DESIGN: a deadline past the calendar's data is an error, not a guess).
    if (c.due < cal_.first_day() || c.due > cal_.last_day()) return BeyondData(def, rule);
    if (before) rule += " (that day not counted)";
    if (x.clamped()) rule += ", clamped to the end of the month";
    x.set_rule(rule);
    x.set_source(def.source());
    x.set_confidence(def.confidence());
    x.set_edition(wf_.edition_label());
    x.set_variant(variant);
    x.set_calendar(cal_.origin());
    return c;
  }

  // A deadline that cannot be counted inside the bank-holiday data. The calendar's own message
  // quotes the anchor day, which is a fact value; a rejection names the rule and the extent of
  // the data instead.
  Status BeyondData(const v1::DeadlineDefinition& def, const std::string& rule) const {
    return OutOfRangeError("deadline '" + def.name() + "' (" + rule +
                           ") falls outside the bank-holiday data, which covers " +
                           FormatCivilDay(cal_.first_day()) + " to " +
                           FormatCivilDay(cal_.last_day()) + " (" + cal_.origin() + ")");
  }

  v1::Timer* AddTimer(v1::DeadlineInstance* d, v1::TimerKind kind, uint32_t index, Instant at) {
    v1::Timer* t = d->add_timers();
    state().set_next_timer_id(state().next_timer_id() + 1);
    t->set_id(state().next_timer_id());
    t->set_deadline(d->name());
    t->set_kind(kind);
    t->set_index(index);
    *t->mutable_due_at() = ToTimestamp(at);
    return t;
  }

  // Schedules the deadline's warnings, breach and escalations. With `only_after_now`, only
  // timers still in the future (a recomputed deadline that stays breached).
  Status ScheduleTimers(const v1::DeadlineDefinition& def, v1::DeadlineInstance* d, CivilDay due,
                        bool only_after_now) {
    TANDEM_ASSIGN_OR_RETURN(const Instant due_at, calendar::EndOfLondonDay(due));
    if (!only_after_now) {
      for (int i = 0; i < def.warnings_size(); ++i) {
        auto day =
            cal_.SubtractWorkingDays(due, static_cast<int>(def.warnings(i).working_days_before()));
        if (!day.ok()) return day.status().WithPrefix("warning of deadline '" + def.name() + "'");
        TANDEM_ASSIGN_OR_RETURN(const Instant at, calendar::StartOfLondonDay(day->day));
        // A warning whose day and deadline have both passed says nothing the breach won't.
        if (at <= now_ && due_at <= now_) continue;
        AddTimer(d, v1::TIMER_KIND_WARNING, static_cast<uint32_t>(i), at);
      }
      AddTimer(d, v1::TIMER_KIND_BREACH, 0, due_at);
    }
    for (int i = 0; i < def.escalations_size(); ++i) {
      auto day =
          cal_.AddWorkingDays(due, static_cast<int>(def.escalations(i).working_days_after()));
      if (!day.ok()) return day.status().WithPrefix("escalation of deadline '" + def.name() + "'");
      TANDEM_ASSIGN_OR_RETURN(const Instant at, calendar::EndOfLondonDay(day->day));
      if (only_after_now && at <= now_) continue;
      AddTimer(d, v1::TIMER_KIND_ESCALATION, static_cast<uint32_t>(i), at);
    }
    return OkStatus();
  }

  // Cancels an open deadline, breached or not: it no longer accepts the event that meets it and
  // is no longer recomputed. A breach stays in the timeline.
  // Removes every pending timer of `d`, remembering them for Finish's timer diff. Every removal
  // other than the firing timer's goes through here.
  void DropTimers(v1::DeadlineInstance* d) {
    for (auto& t : *d->mutable_timers()) dropped_.push_back(std::move(t));
    d->clear_timers();
  }

  void CancelDeadline(v1::DeadlineInstance* d, const std::string& reason) {
    DropTimers(d);
    d->set_status(v1::DEADLINE_STATUS_CANCELLED);
    auto* c = Emit()->mutable_cancelled();
    c->set_name(d->name());
    c->set_due_on(d->due_on());
    c->set_reason(reason);
  }

  v1::DeadlineInstance* FindOpen(std::string_view name) {
    for (auto& d : *state().mutable_deadlines()) {
      if (d.name() == name && IsOpen(d)) return &d;
    }
    return nullptr;
  }

  Status StartDeadline(const std::string& name) {
    const v1::DeadlineDefinition* def = wf_.FindDeadline(name);
    // The workflow checker resolved every deadline name a state or transition starts.
    TANDEM_CHECK(def != nullptr);
    TANDEM_ASSIGN_OR_RETURN(Computed c, Compute(*def, std::nullopt));
    if (v1::DeadlineInstance* old = FindOpen(name)) {
      CancelDeadline(old, "restarted by " + cause_);
    }
    v1::DeadlineInstance* d = state().add_deadlines();
    d->set_name(name);
    d->set_status(v1::DEADLINE_STATUS_OPEN);
    d->set_due_on(FormatCivilDay(c.due));
    TANDEM_ASSIGN_OR_RETURN(const Instant due_at, calendar::EndOfLondonDay(c.due));
    *d->mutable_due_at() = ToTimestamp(due_at);
    *d->mutable_explanation() = c.explanation;  // the effect below takes the original
    d->set_started_in_state(state().state());
    d->set_started_by(cause_);
    TANDEM_RETURN_IF_ERROR(ScheduleTimers(*def, d, c.due, false));
    auto* e = Emit()->mutable_deadline();
    e->set_name(name);
    e->set_due_on(d->due_on());
    *e->mutable_due_at() = d->due_at();
    *e->mutable_explanation() = std::move(c.explanation);
    return OkStatus();
  }

  Status StartDeadlines(const google::protobuf::RepeatedPtrField<std::string>& names) {
    for (const auto& name : names) TANDEM_RETURN_IF_ERROR(StartDeadline(name));
    return OkStatus();
  }

  void NotifyAll(v1::NotificationKind kind,
                 const google::protobuf::RepeatedPtrField<v1::NotifyDefinition>& list) {
    for (const auto& n : list) Notify(kind, n.roles(), n.subject(), n.body(), nullptr);
  }

  // Moves the case to `to` on `day`. Leaving a state cancels the deadlines scoped to it;
  // entering a final state closes the case and cancels every open deadline.
  Status EnterState(const std::string& to, CivilDay day) {
    const std::string from = state().state();
    if (to == from) return OkStatus();
    for (auto& d : *state().mutable_deadlines()) {
      const v1::DeadlineDefinition* def = wf_.FindDeadline(d.name());
      if (IsOpen(d) && def != nullptr && def->scope() == v1::DEADLINE_SCOPE_STATE &&
          d.started_in_state() == from) {
        CancelDeadline(&d, "left state " + from);
      }
    }
    const v1::StateDefinition* s = wf_.FindState(to);
    // Target states were resolved by the workflow checker (or are the built-in 'withdrawn').
    TANDEM_CHECK(s != nullptr);
    state().set_state(to);
    state().set_state_entered_on(FormatCivilDay(day));
    auto* e = Emit()->mutable_state();
    e->set_workflow(wf_.name());
    e->set_from(from);
    e->set_to(to);
    e->set_final(s->final());
    if (s->final()) {
      state().set_closed(true);
      for (auto& d : *state().mutable_deadlines()) {
        if (IsOpen(d)) CancelDeadline(&d, "case closed in state " + to);
      }
    }
    // A state's notifications go out whenever the case enters it, final or not.
    NotifyAll(v1::NOTIFICATION_KIND_STATE_ENTERED, s->notify());
    if (s->final()) return OkStatus();
    return StartDeadlines(s->start_deadlines());
  }

  // Meets every open deadline that `event` meets: on the day its date fact gives, else the
  // London day it occurred.
  Status MeetDeadlines(const v1::Event& event, CivilDay occurred_on) {
    for (auto& d : *state().mutable_deadlines()) {
      if (!IsOpen(d)) continue;
      const v1::DeadlineDefinition* def = wf_.FindDeadline(d.name());
      if (def == nullptr) continue;
      for (const auto& m : def->met_by()) {
        if (m.event() != event.type()) continue;
        CivilDay met_on = occurred_on;
        if (!m.date_fact().empty()) {
          auto it = event.facts().fields().find(m.date_fact());
          if (it != event.facts().fields().end()) {
            TANDEM_ASSIGN_OR_RETURN(met_on, calendar::ParseCivilDay(it->second.string_value()));
          }
        }
        TANDEM_ASSIGN_OR_RETURN(const CivilDay due, calendar::ParseCivilDay(d.due_on()));
        const bool late = met_on > due;
        d.set_status(late ? v1::DEADLINE_STATUS_MET_LATE : v1::DEADLINE_STATUS_MET);
        d.set_met_on(FormatCivilDay(met_on));
        d.set_met_by(event.event_id());
        DropTimers(&d);
        auto* e = Emit()->mutable_met();
        e->set_name(d.name());
        e->set_due_on(d.due_on());
        e->set_met_on(d.met_on());
        e->set_late(late);
        break;
      }
    }
    return OkStatus();
  }

  // Recomputes every open deadline from the case's facts as they now stand.
  Status RecomputeDeadlines() {
    for (auto& d : *state().mutable_deadlines()) {
      if (!IsOpen(d)) continue;
      const v1::DeadlineDefinition* def = wf_.FindDeadline(d.name());
      if (def == nullptr) continue;
      std::optional<CivilDay> entered;
      if (d.explanation().anchor() == "state_entered") {
        TANDEM_ASSIGN_OR_RETURN(entered, calendar::ParseCivilDay(d.explanation().anchor_on()));
      }
      TANDEM_ASSIGN_OR_RETURN(Computed c, Compute(*def, entered));
      if (FormatCivilDay(c.due) == d.due_on()) continue;
      TANDEM_ASSIGN_OR_RETURN(const Instant due_at, calendar::EndOfLondonDay(c.due));
      DropTimers(&d);
      d.set_due_on(FormatCivilDay(c.due));
      *d.mutable_due_at() = ToTimestamp(due_at);
      *d.mutable_explanation() = c.explanation;
      // A breached deadline whose corrected due day is still ahead is open again.
      if (d.status() == v1::DEADLINE_STATUS_BREACHED && due_at > now_) {
        d.set_status(v1::DEADLINE_STATUS_OPEN);
      }
      TANDEM_RETURN_IF_ERROR(
          ScheduleTimers(*def, &d, c.due, d.status() == v1::DEADLINE_STATUS_BREACHED));
      auto* e = Emit()->mutable_deadline();
      e->set_name(d.name());
      e->set_due_on(d.due_on());
      *e->mutable_due_at() = d.due_at();
      *e->mutable_explanation() = std::move(c.explanation);
      e->set_recomputed(true);
    }
    return OkStatus();
  }

  // Records each assessment whose value is new or changed.
  void Assess() {
    for (const auto& a : wf_.definition().assessments()) {
      const bool value = Holds(a.when());
      v1::AssessmentValue* slot = nullptr;
      for (auto& v : *state().mutable_assessments()) {
        if (v.name() == a.name()) slot = &v;
      }
      if (slot != nullptr && slot->value() == value) continue;
      if (slot == nullptr) {
        slot = state().add_assessments();
        slot->set_name(a.name());
      }
      slot->set_value(value);
      auto* e = Emit()->mutable_assessment();
      e->set_name(a.name());
      e->set_value(value);
    }
  }

  void set_event_type(std::string type) { event_type_ = std::move(type); }

  // Completes the change with its timer diff. Timer ids are never reused, so a pending timer is
  // new exactly when its id is above the case's old counter (`old_next_id`), and an old timer is
  // gone exactly when DropTimers removed it; the timer that fired is in neither list.
  Outcome Finish(uint64_t old_next_id, uint64_t fired_timer) {
    *out_.state.mutable_updated_at() = ToTimestamp(now_);
    for (const auto& d : out_.state.deadlines()) {
      for (const auto& t : d.timers()) {
        if (t.id() > old_next_id) out_.timers_set.push_back(t);
      }
    }
    for (auto& t : dropped_) {
      if (t.id() <= old_next_id && t.id() != fired_timer) {
        out_.timers_cancelled.push_back(std::move(t));
      }
    }
    return std::move(out_);
  }

 private:
  const Workflow& wf_;
  const calendar::WorkingDayCalendar& cal_;
  const Instant now_;
  const std::string cause_;
  std::string event_type_;
  int notified_ = 0;
  Outcome out_;
  // Timers removed by DropTimers, for Finish's diff.
  std::vector<v1::Timer> dropped_;
};

// Returns the workflow version `state` runs, or kFailedPrecondition if it is not loaded.
Result<const Workflow*> CaseWorkflow(const WorkflowSet& workflows, const v1::CaseState& state) {
  const Workflow* wf = workflows.Find(state.workflow(), state.workflow_version());
  if (wf == nullptr) {
    return FailedPreconditionError(
        "case '" + state.case_id() + "' runs workflow '" + state.workflow() + "' version " +
        std::to_string(state.workflow_version()) + ", which is not loaded");
  }
  return wf;
}

Status CheckEnvelope(const v1::Event& e) {
  auto id = [](std::string_view field, const std::string& v) -> Status {
    if (v.empty()) return InvalidArgumentError(std::string(field) + " is required");
    if (v.size() > kMaxIdBytes) {
      return InvalidArgumentError(std::string(field) + " is longer than " +
                                  std::to_string(kMaxIdBytes) + " bytes");
    }
    return OkStatus();
  };
  TANDEM_RETURN_IF_ERROR(id("event_id", e.event_id()));
  TANDEM_RETURN_IF_ERROR(id("case_id", e.case_id()));
  TANDEM_RETURN_IF_ERROR(id("partnership", e.partnership()));
  TANDEM_RETURN_IF_ERROR(id("type", e.type()));
  if (!e.has_occurred_at()) return InvalidArgumentError("occurred_at is required");
  return OkStatus();
}

// Corrects the recorded facts named in `event` (plain, or qualified by event type).
Result<std::vector<std::string>> CorrectFacts(const Workflow& wf, const v1::Event& event,
                                              v1::CaseState* state) {
  if (event.facts().fields().empty()) {
    return InvalidArgumentError("case.facts_corrected carries no fact");
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : event.facts().fields()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<v1::FactRecord*, std::string>> targets;
  std::vector<std::string> corrected;
  for (const auto& key : keys) {
    const internal::FactName split = internal::SplitFactName(key);
    std::vector<v1::FactRecord*> matches;
    const v1::FactDefinition* def = nullptr;
    for (auto& r : *state->mutable_facts()) {
      if (!split.event_type.empty() && r.event_type() != split.event_type) continue;
      const v1::EventTypeDefinition* e = wf.FindEvent(r.event_type());
      const v1::FactDefinition* f =
          e != nullptr ? internal::FindFactDefinition(*e, split.fact) : nullptr;
      if (f == nullptr) continue;
      matches.push_back(&r);
      def = f;
    }
    if (matches.empty()) {
      if (internal::ResolveFactName(wf.definition(), key).empty()) {
        return InvalidArgumentError("unknown fact '" + key + "' for workflow '" + wf.name() + "'");
      }
      return FailedPreconditionError("fact '" + key +
                                     "' belongs to an event type this case has not recorded");
    }
    if (matches.size() > 1) {
      std::string types;
      for (const auto* r : matches) types += (types.empty() ? "" : " and ") + r->event_type();
      return InvalidArgumentError("fact '" + key + "' is recorded for " + types +
                                  "; name it as <event type>." + std::string(split.fact));
    }
    TANDEM_RETURN_IF_ERROR(internal::CheckFactValue(*def, event.facts().fields().at(key)));
    targets.emplace_back(matches.front(), key);
    corrected.push_back(matches.front()->event_type() + "." + std::string(split.fact));
  }
  for (const auto& [record, key] : targets) {
    (*record->mutable_facts()->mutable_fields())[std::string(internal::SplitFactName(key).fact)] =
        event.facts().fields().at(key);
  }
  return corrected;
}

}  // namespace

Instant ToInstant(const google::protobuf::Timestamp& ts) {
  return Instant(std::chrono::seconds(ts.seconds()));
}

google::protobuf::Timestamp ToTimestamp(Instant instant) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(instant.time_since_epoch().count());
  return ts;
}

std::vector<calendar::SkippedDay> SkippedDays(const v1::Explanation& explanation) {
  std::vector<calendar::SkippedDay> out;
  out.reserve(explanation.skipped_days_size());
  for (const int32_t n : explanation.skipped_days()) {
    const CivilDay day{std::chrono::days(n)};
    std::string reason(calendar::WeekdayName(day));
    for (const auto& h : explanation.skipped_holidays()) {
      if (h.day() == n) reason = h.title();
    }
    out.push_back({day, std::move(reason)});
  }
  return out;
}

std::vector<v1::Timer> PendingTimers(const v1::CaseState& state) {
  std::vector<v1::Timer> out;
  for (const auto& d : state.deadlines()) {
    for (const auto& t : d.timers()) out.push_back(t);
  }
  return out;
}

v1::Effect RejectionEffect(const v1::Event& event, const Status& status, Instant now) {
  v1::Effect e;
  *e.mutable_at() = ToTimestamp(now);
  e.set_case_id(event.case_id());
  e.set_cause(event.event_id());
  auto* r = e.mutable_rejected();
  r->set_event_id(event.event_id());
  r->set_event_type(event.type());
  r->set_code(std::string(StatusCodeName(status.code())));
  r->set_reason(status.message());
  return e;
}

Result<Outcome> Engine::Apply(const v1::CaseState* current, const v1::Event& event,
                              Instant now) const {
  TANDEM_RETURN_IF_ERROR(CheckEnvelope(event));
  if (!workflows_.KnowsEventType(event.type())) {
    return InvalidArgumentError("unknown event type '" + event.type() + "'");
  }
  const Workflow* wf = nullptr;
  if (current == nullptr) {
    auto found = workflows_.ForNewCase(event);
    if (!found.ok()) {
      if (found.status().code() != StatusCode::kNotFound) return found.status();
      return NotFoundError("case '" + event.case_id() + "' does not exist and '" + event.type() +
                           "' does not start a case");
    }
    wf = *found;
  } else {
    TANDEM_ASSIGN_OR_RETURN(wf, CaseWorkflow(workflows_, *current));
    if (event.partnership() != current->partnership()) {
      return InvalidArgumentError("case '" + current->case_id() + "' belongs to partnership '" +
                                  current->partnership() + "', not '" + event.partnership() + "'");
    }
    // A closed case still takes corrections of its recorded facts (workflow.proto, "final").
    if (current->closed() && event.type() != kFactsCorrected) {
      return FailedPreconditionError("case '" + current->case_id() + "' is closed (state '" +
                                     current->state() + "')");
    }
  }
  const v1::EventTypeDefinition* type = wf->FindEvent(event.type());
  if (type == nullptr) {
    return InvalidArgumentError("event type '" + event.type() + "' is not part of workflow '" +
                                wf->name() + "'");
  }
  if (current != nullptr && type->starts_case()) {
    return AlreadyExistsError("case '" + event.case_id() + "' already exists; '" + event.type() +
                              "' only starts a case");
  }
  TANDEM_ASSIGN_OR_RETURN(const CivilDay occurred_on,
                          calendar::LondonDay(ToInstant(event.occurred_at())));

  v1::CaseState start;
  if (current != nullptr) {
    start = *current;
  } else {
    start.set_case_id(event.case_id());
    start.set_partnership(event.partnership());
    start.set_workflow(wf->name());
    start.set_workflow_version(wf->version());
    start.set_edition(wf->edition_label());
    *start.mutable_opened_at() = ToTimestamp(now);
  }
  const uint64_t old_next_id = start.next_timer_id();
  start.set_events_applied(start.events_applied() + 1);
  Change change(*wf, calendar_, std::move(start), now, event.event_id());
  change.set_event_type(event.type());

  if (event.type() == kFactsCorrected) {
    TANDEM_ASSIGN_OR_RETURN(auto corrected, CorrectFacts(*wf, event, &change.state()));
    auto* e = change.Emit()->mutable_corrected();
    for (const auto& name : corrected) e->add_facts(name);
    TANDEM_RETURN_IF_ERROR(change.RecomputeDeadlines());
    change.Assess();
    return change.Finish(old_next_id, 0);
  }
  TANDEM_RETURN_IF_ERROR(internal::CheckFacts(*type, event.facts()));
  change.RecordFacts(event);
  if (event.type() == kWithdrawn) {
    TANDEM_RETURN_IF_ERROR(change.EnterState(std::string(kWithdrawnState), occurred_on));
    return change.Finish(old_next_id, 0);
  }

  const v1::TransitionDefinition* taken = nullptr;
  bool from_matched = false;
  for (const v1::TransitionDefinition* t : wf->TransitionsOn(event.type())) {
    if (current != nullptr && !t->from().empty() &&
        std::find(t->from().begin(), t->from().end(), current->state()) == t->from().end()) {
      continue;
    }
    from_matched = true;
    if (t->has_when() && !change.Holds(t->when())) continue;
    taken = t;
    break;
  }
  if (taken == nullptr) {
    const std::string where = current != nullptr ? "in state '" + current->state() + "'" : "here";
    return FailedPreconditionError(
        "event type '" + event.type() + "' is not accepted " + where +
        (from_matched ? ": no transition's conditions hold for its facts" : ""));
  }
  TANDEM_RETURN_IF_ERROR(change.MeetDeadlines(event, occurred_on));
  for (const auto& name : taken->cancel_deadlines()) {
    for (auto& d : *change.state().mutable_deadlines()) {
      if (d.name() == name && IsOpen(d)) change.CancelDeadline(&d, "cancelled by " + event.type());
    }
  }
  if (!taken->to().empty()) TANDEM_RETURN_IF_ERROR(change.EnterState(taken->to(), occurred_on));
  if (!change.state().closed()) {
    TANDEM_RETURN_IF_ERROR(change.StartDeadlines(taken->start_deadlines()));
  }
  change.NotifyAll(v1::NOTIFICATION_KIND_TRANSITION, taken->notify());
  change.Assess();
  return change.Finish(old_next_id, 0);
}

bool Engine::FiringMayFail(const v1::CaseState& current, uint64_t timer_id) const {
  const Workflow* wf = workflows_.Find(current.workflow(), current.workflow_version());
  if (wf == nullptr) return true;
  for (const auto& d : current.deadlines()) {
    for (const auto& t : d.timers()) {
      if (t.id() != timer_id) continue;
      const v1::DeadlineDefinition* def = wf->FindDeadline(d.name());
      return def == nullptr ||
             (t.kind() == v1::TIMER_KIND_BREACH && !def->on_breach().move_to().empty());
    }
  }
  return true;
}

Result<Outcome> Engine::Fire(v1::CaseState current, uint64_t timer_id, Instant now) const {
  TANDEM_ASSIGN_OR_RETURN(const Workflow* wf, CaseWorkflow(workflows_, current));
  // The timer diff needs only the old timer counter (Change records what it removes); keep it
  // and hand the state itself to the change without copying it.
  const uint64_t old_next_id = current.next_timer_id();
  const std::string case_id = current.case_id();
  const std::string state_name = current.state();
  Change change(*wf, calendar_, std::move(current), now, "timer:" + std::to_string(timer_id));
  v1::DeadlineInstance* deadline = nullptr;
  v1::Timer timer;
  for (auto& d : *change.state().mutable_deadlines()) {
    for (int i = 0; i < d.timers_size(); ++i) {
      if (d.timers(i).id() != timer_id) continue;
      timer = d.timers(i);
      d.mutable_timers()->DeleteSubrange(i, 1);
      deadline = &d;
      break;
    }
    if (deadline != nullptr) break;
  }
  if (deadline == nullptr) {
    return NotFoundError("case '" + case_id + "' has no pending timer " + std::to_string(timer_id));
  }
  const v1::DeadlineDefinition* def = wf->FindDeadline(deadline->name());
  if (def == nullptr) {
    return FailedPreconditionError("deadline '" + deadline->name() + "' is not in workflow '" +
                                   wf->name() + "'");
  }
  const Instant due = ToInstant(timer.due_at());
  const bool late = now > due;
  const auto& suppressed_in = def->suppressed_in_states();
  const bool suppressed =
      std::find(suppressed_in.begin(), suppressed_in.end(), state_name) != suppressed_in.end();
  switch (timer.kind()) {
    case v1::TIMER_KIND_WARNING: {
      const auto& w = def->warnings(static_cast<int>(timer.index()));
      auto* e = change.Emit()->mutable_warning();
      e->set_name(deadline->name());
      e->set_due_on(deadline->due_on());
      e->set_working_days_before(w.working_days_before());
      e->set_late(late);
      change.Notify(v1::NOTIFICATION_KIND_DEADLINE_WARNING, w.notify(), w.subject(), "", deadline);
      break;
    }
    case v1::TIMER_KIND_BREACH: {
      deadline->set_status(v1::DEADLINE_STATUS_BREACHED);
      auto* e = change.Emit()->mutable_breach();
      e->set_name(deadline->name());
      e->set_due_on(deadline->due_on());
      e->set_suppressed(suppressed);
      e->set_late(late);
      if (!suppressed) {
        change.Notify(v1::NOTIFICATION_KIND_DEADLINE_BREACHED, def->on_breach().notify(),
                      def->on_breach().subject(), "", deadline);
        if (!def->on_breach().move_to().empty()) {
          // The case moves on the day the deadline passed, however late the timer fired.
          TANDEM_ASSIGN_OR_RETURN(const CivilDay day, calendar::LondonDay(due));
          TANDEM_RETURN_IF_ERROR(change.EnterState(def->on_breach().move_to(), day));
        }
      }
      break;
    }
    case v1::TIMER_KIND_ESCALATION: {
      if (deadline->status() == v1::DEADLINE_STATUS_BREACHED && !suppressed) {
        const auto& esc = def->escalations(static_cast<int>(timer.index()));
        change.Notify(v1::NOTIFICATION_KIND_DEADLINE_ESCALATED, esc.notify(), esc.subject(), "",
                      deadline);
      }
      break;
    }
    default:
      return InternalError("timer " + std::to_string(timer_id) + " has no kind");
  }
  return change.Finish(old_next_id, timer_id);
}

}  // namespace tandem::engine
