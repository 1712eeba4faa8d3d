#include "daemon/engine/engine.h"

#include <algorithm>
#include <array>
#include <memory>
#include <optional>

#include "daemon/engine/internal/facts.h"

// How a change is made. Every change (an event applied, a timer fired) runs in two phases:
//   1. Plan, on the case as it is (const): every check that can reject, and every computation
//      that can fail (deadline anchors, counts against the calendar's data, Europe/London
//      instants), in the order the change will need them.
//   2. Change, on the case itself: infallible; it consumes the plan.
// So a rejection never leaves a half-made change behind, and a caller may move its only copy
// of the case in (ApplyTaking, FireTaking) without copying it first: the copy was most of the
// cost of a change.

namespace tandem::engine {
namespace {

using calendar::CivilDay;
using calendar::FormatCivilDay;
using calendar::Instant;

std::string PluralDays(uint32_t n, std::string_view kind) {
  std::string out = std::to_string(n);
  out.append(" ").append(kind).append(n == 1 ? " day" : " days");
  return out;
}

// Sets `ts` in place (building a Timestamp and copying it in costs an allocation and a copy).
void SetTimestamp(google::protobuf::Timestamp* ts, Instant instant) {
  ts->set_seconds(instant.time_since_epoch().count());
}

bool IsOpen(const v1::DeadlineInstance& d) {
  return d.status() == v1::DEADLINE_STATUS_OPEN || d.status() == v1::DEADLINE_STATUS_BREACHED;
}

// Parses a civil day the engine itself wrote (due_on, anchor_on, state_entered_on) or a date
// fact the event checks accepted: neither can be malformed.
CivilDay ParseTrusted(const std::string& text) {
  auto day = calendar::ParseCivilDay(text);
  TANDEM_CHECK(day.ok());  // written by FormatCivilDay, or checked by CheckFacts
  return *day;
}

// A template's placeholder values, in the order of kTemplatePlaceholders.
using TemplateVars = std::array<std::string_view, kTemplatePlaceholders.size()>;

// Returns the slot of placeholder `name` in TemplateVars, or -1. Length and first letter rule
// out most names before a comparison: comparing each placeholder with every name was most of
// the cost of rendering a template.
int PlaceholderSlot(std::string_view name) {
  for (std::size_t i = 0; i < kTemplatePlaceholders.size(); ++i) {
    const std::string_view p = kTemplatePlaceholders[i];
    if (p.size() == name.size() && p.front() == name.front() && p == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// Replaces {name} placeholders (the workflow checker refused unknown ones), copying the text
// between them in runs.
std::string Render(std::string_view tmpl, const TemplateVars& vars) {
  std::size_t size = tmpl.size();
  for (const std::string_view v : vars) size += v.size();
  std::string out;
  out.reserve(size);  // an upper bound when each placeholder appears once, as they mostly do
  std::size_t done = 0;
  while (done < tmpl.size()) {
    const std::size_t open = tmpl.find('{', done);
    const std::size_t close = open == std::string_view::npos ? open : tmpl.find('}', open);
    if (close == std::string_view::npos) break;
    out.append(tmpl.substr(done, open - done));
    const int slot = PlaceholderSlot(tmpl.substr(open + 1, close - open - 1));
    if (slot >= 0) out.append(vars[static_cast<std::size_t>(slot)]);
    done = close + 1;
  }
  out.append(tmpl.substr(done));
  return out;
}

// A fact correction waiting to be made: the record's event type, the fact, the new value.
struct Correction {
  std::string event_type;
  std::string fact;
  const google::protobuf::Value* value;
};

// The facts of a case as a change will see them: its records, with the facts of the event
// being applied laid over them (that event's record replaces the old one of its type and becomes
// the latest) and pending corrections taking the place of the values they correct. Keeps
// references to everything it is given.
class FactView {
 public:
  explicit FactView(const google::protobuf::RepeatedPtrField<v1::FactRecord>& records)
      : records_(records) {}
  FactView WithEvent(const v1::Event& event) const {
    FactView v = *this;
    v.overlay_type_ = event.type();
    v.overlay_ = &event.facts();
    return v;
  }
  FactView WithCorrections(const std::vector<Correction>& corrections) const {
    FactView v = *this;
    v.corrections_ = &corrections;
    return v;
  }

  // Returns the value of a (possibly qualified) fact, most recent record first, or nullptr;
  // sets `*qualified` to the "event_type.fact" it was found as.
  const google::protobuf::Value* Lookup(std::string_view name, std::string* qualified) const {
    const internal::FactName split = internal::SplitFactName(name);
    if (overlay_ != nullptr && (split.event_type.empty() || split.event_type == overlay_type_)) {
      auto it = overlay_->fields().find(split.fact);
      if (it != overlay_->fields().end())
        return Found(overlay_type_, split.fact, &it->second, qualified);
    }
    for (int i = records_.size() - 1; i >= 0; --i) {
      const v1::FactRecord& r = records_.Get(i);
      if (!split.event_type.empty() && r.event_type() != split.event_type) continue;
      if (overlay_ != nullptr && r.event_type() == overlay_type_) continue;  // replaced
      if (corrections_ != nullptr) {
        for (const Correction& c : *corrections_) {
          if (c.event_type == r.event_type() && c.fact == split.fact) {
            return Found(r.event_type(), split.fact, c.value, qualified);
          }
        }
      }
      auto it = r.facts().fields().find(split.fact);
      if (it != r.facts().fields().end())
        return Found(r.event_type(), split.fact, &it->second, qualified);
    }
    return nullptr;
  }

  std::optional<CivilDay> LookupDate(std::string_view name, std::string* qualified) const {
    const google::protobuf::Value* v = Lookup(name, qualified);
    if (v == nullptr) return std::nullopt;
    return ParseTrusted(v->string_value());
  }

 private:
  static const google::protobuf::Value* Found(std::string_view type, std::string_view fact,
                                              const google::protobuf::Value* v,
                                              std::string* qualified) {
    if (qualified != nullptr) {
      qualified->assign(type);
      qualified->append(".").append(fact);
    }
    return v;
  }

  const google::protobuf::RepeatedPtrField<v1::FactRecord>& records_;
  std::string_view overlay_type_;
  const google::protobuf::Struct* overlay_ = nullptr;
  const std::vector<Correction>* corrections_ = nullptr;
};

// A deadline computed in the plan: its due day and everything its timers need, so that
// starting it in the change cannot fail.
struct Computed {
  std::string name;
  CivilDay due;
  Instant due_at;
  // On the arena of the timeline the change appends to, when it has one (the deadline-set
  // effect then takes it without a copy), else owned here.
  v1::Explanation* explanation = nullptr;
  std::unique_ptr<v1::Explanation> owned;
  // The start (Europe/London) of each warning's day, by the definition's index.
  std::vector<Instant> warnings;
  // The end of each escalation's day, by the definition's index.
  std::vector<Instant> escalations;
};

// The workflow's rules read against a view of the facts. Immutable; keeps references.
class Rules {
 public:
  // Explanations are made on `arena` (may be null: the heap).
  Rules(const Workflow& wf, const calendar::WorkingDayCalendar& cal, FactView facts,
        google::protobuf::Arena* arena = nullptr)
      : wf_(wf), cal_(cal), facts_(facts), arena_(arena) {}

  const FactView& facts() const { return facts_; }

  bool Holds(const v1::Condition& c) const {
    switch (c.test_case()) {
      case v1::Condition::kFact: {
        const auto& f = c.fact();
        const google::protobuf::Value* v = facts_.Lookup(f.name(), nullptr);
        switch (f.test_case()) {
          case v1::FactCondition::kEquals:
            return v != nullptr && internal::ValueTextIs(*v, f.equals());
          case v1::FactCondition::kIn: {
            if (v == nullptr) return false;
            const auto& vals = f.in().values();
            return std::any_of(vals.begin(), vals.end(), [v](const std::string& text) {
              return internal::ValueTextIs(*v, text);
            });
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
        const auto dob = facts_.LookupDate(a.dob(), nullptr);
        if (!dob) return false;
        for (const auto& on_name : a.on()) {
          if (const auto on = facts_.LookupDate(on_name, nullptr)) {
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

  // Computes the deadline `def` as it would start while the case is in `state`, which it
  // entered on `entered`.
  Result<Computed> Compute(const v1::DeadlineDefinition& def, std::string_view state,
                           CivilDay entered) const {
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
    c.name = def.name();
    if (arena_ != nullptr) {
      c.explanation = google::protobuf::Arena::CreateMessage<v1::Explanation>(arena_);
    } else {
      c.owned = std::make_unique<v1::Explanation>();
      c.explanation = c.owned.get();
    }
    v1::Explanation& x = *c.explanation;
    CivilDay start{};
    std::string anchor_words;
    if (anchor->has_state_entered()) {
      start = entered;
      x.set_anchor("state_entered");
      anchor_words = "the day the case entered state " + std::string(state);
    } else {
      std::string qualified;
      std::optional<CivilDay> day;
      for (const auto& name : anchor->facts().values()) {
        day = facts_.LookupDate(name, &qualified);
        if (day) break;
      }
      if (!day) {
        std::string names;
        for (const auto& name : anchor->facts().values()) {
          names += (names.empty() ? "" : " or ") + name;
        }
        return FailedPreconditionError("deadline '" + def.name() + "' counts from " + names +
                                       ", which no event of the case has given");
      }
      start = *day;
      anchor_words = qualified;
      x.set_anchor(std::move(qualified));
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
            h->set_title(std::string(s.reason));
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
    std::string rule = std::move(amount);
    rule.reserve(rule.size() + anchor_words.size() + 48);
    rule.append(before ? " before " : " after ").append(anchor_words);
    // Calendar-day and month counts do not walk the data, but their due day must lie inside it
    // too (DESIGN: a deadline past the calendar's data is an error, not a guess).
    if (c.due < cal_.first_day() || c.due > cal_.last_day()) return BeyondData(def, rule);
    if (before) rule += " (that day not counted)";
    if (x.clamped()) rule += ", clamped to the end of the month";
    x.set_rule(std::move(rule));
    x.set_source(def.source());
    x.set_confidence(def.confidence());
    x.set_edition(wf_.edition_label());
    x.set_variant(std::move(variant));
    x.set_calendar(cal_.origin());
    if (!wf_.partnership().empty()) {
      for (auto& note : wf_.OverridesOf(def.name())) x.add_overrides(std::move(note));
    }
    TANDEM_ASSIGN_OR_RETURN(c.due_at, calendar::EndOfLondonDay(c.due));
    for (const auto& w : def.warnings()) {
      auto day = cal_.SubtractWorkingDays(c.due, static_cast<int>(w.working_days_before()));
      if (!day.ok()) return day.status().WithPrefix("warning of deadline '" + def.name() + "'");
      TANDEM_ASSIGN_OR_RETURN(const Instant at, calendar::StartOfLondonDay(day->day));
      c.warnings.push_back(at);
    }
    for (const auto& e : def.escalations()) {
      auto day = cal_.AddWorkingDays(c.due, static_cast<int>(e.working_days_after()));
      if (!day.ok()) return day.status().WithPrefix("escalation of deadline '" + def.name() + "'");
      TANDEM_ASSIGN_OR_RETURN(const Instant at, calendar::EndOfLondonDay(day->day));
      c.escalations.push_back(at);
    }
    return c;
  }

 private:
  // A deadline that cannot be counted inside the bank-holiday data. The calendar's own message
  // quotes the anchor day, which is a fact value; a rejection names the rule and the extent of
  // the data instead.
  Status BeyondData(const v1::DeadlineDefinition& def, const std::string& rule) const {
    return OutOfRangeError("deadline '" + def.name() + "' (" + rule +
                           ") falls outside the bank-holiday data, which covers " +
                           FormatCivilDay(cal_.first_day()) + " to " +
                           FormatCivilDay(cal_.last_day()) + " (" + cal_.origin() + ")");
  }

  const Workflow& wf_;
  const calendar::WorkingDayCalendar& cal_;
  FactView facts_;
  google::protobuf::Arena* const arena_;
};

// Plans the starts of `names`, in order, as they would start in `state` entered on `entered`.
Status PlanStarts(const Workflow& wf, const Rules& rules,
                  const google::protobuf::RepeatedPtrField<std::string>& names,
                  std::string_view state, CivilDay entered, std::vector<Computed>* plan) {
  for (const auto& name : names) {
    const v1::DeadlineDefinition* def = wf.FindDeadline(name);
    // The workflow checker resolved every deadline name a state or transition starts.
    TANDEM_CHECK(def != nullptr);
    TANDEM_ASSIGN_OR_RETURN(Computed c, rules.Compute(*def, state, entered));
    plan->push_back(std::move(c));
  }
  return OkStatus();
}

// Plans entering `to` on `day` from `from`: the deadlines the state starts, unless it is final
// (or the case is already in it).
Status PlanEntry(const Workflow& wf, const Rules& rules, const std::string& from,
                 const std::string& to, CivilDay day, std::vector<Computed>* plan) {
  if (to == from) return OkStatus();
  const v1::StateDefinition* s = wf.FindState(to);
  // Target states were resolved by the workflow checker (or are the built-in 'withdrawn').
  TANDEM_CHECK(s != nullptr);
  if (s->final()) return OkStatus();
  return PlanStarts(wf, rules, s->start_deadlines(), to, day, plan);
}

// The second phase: one change to one case, made to `*state` in place, applying what the plan
// computed. Nothing here can fail; the effects are emitted in the order the change happens.
// Finish reports the timer diff to `outcome` (whose `state` is then `*state`, and whose
// `effects` take the effects when `into` is null) or, when `outcome` is null, to `diff`.
class Change {
 public:
  Change(const Workflow& wf, v1::CaseState* state, Instant now, std::string cause,
         std::string event_type, std::vector<Computed> plan, v1::Timeline* into, Outcome* outcome,
         TimerDiff* diff)
      : wf_(wf),
        state_(state),
        into_(into),
        outcome_(outcome),
        diff_(diff),
        now_(now),
        cause_(std::move(cause)),
        event_type_(std::move(event_type)),
        plan_(std::move(plan)) {
    // Effects go somewhere, and so does the timer diff.
    TANDEM_CHECK(outcome != nullptr || (into != nullptr && diff != nullptr));
  }

  v1::CaseState& state() { return *state_; }
  const v1::CaseState& state() const { return *state_; }

  // Records the facts of `event` as the latest of its type (latest last, so lookups that scan
  // backwards find the most recent value of a plain name first), taking them from `take` when
  // it is not null (it is then `event` itself, which must not be read for facts afterwards).
  void RecordFacts(const v1::Event& event, v1::Event* take) {
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
    // A swap between messages of different arenas would copy both ways: copy once instead.
    if (take != nullptr && take->GetArena() == r->GetArena()) {
      r->mutable_facts()->Swap(take->mutable_facts());
    } else {
      *r->mutable_facts() = event.facts();
    }
  }

  void Correct(const std::vector<Correction>& corrections) {
    auto* e = Emit()->mutable_corrected();
    for (const Correction& c : corrections) {
      for (auto& r : *state().mutable_facts()) {
        if (r.event_type() == c.event_type)
          (*r.mutable_facts()->mutable_fields())[c.fact] = *c.value;
      }
      e->add_facts(c.event_type + "." + c.fact);
    }
  }

  v1::Effect* Emit() {
    v1::Effect* e = into_ != nullptr ? into_->add_effects() : &outcome_->effects.emplace_back();
    SetTimestamp(e->mutable_at(), now_);
    e->set_case_id(state_->case_id());
    e->set_cause(cause_);
    return e;
  }

  void Notify(v1::NotificationKind kind,
              const google::protobuf::RepeatedPtrField<std::string>& roles,
              const std::string& subject_tmpl, const std::string& body_tmpl,
              const v1::DeadlineInstance* deadline) {
    if (roles.empty()) return;
    const v1::DeadlineDefinition* def =
        deadline != nullptr ? wf_.FindDeadline(deadline->name()) : nullptr;
    // Views, not copies: every value outlives the rendering below.
    const TemplateVars vars = {
        state().case_id(),
        state().partnership(),
        wf_.name(),
        state().state(),
        event_type_,
        deadline != nullptr ? std::string_view(deadline->name()) : std::string_view(),
        deadline != nullptr ? std::string_view(deadline->due_on()) : std::string_view(),
        def != nullptr ? std::string_view(def->title()) : std::string_view(),
        wf_.edition_label(),
    };
    std::string_view subject_default;
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
    const std::string_view body_default =
        deadline != nullptr
            ? "Partnership {partnership}, workflow {workflow}, case {case_id}: "
              "deadline {deadline} ({title}) is due by the end of {due_on}. "
              "Rules: {edition}."
            : "Partnership {partnership}, workflow {workflow}, case {case_id} is now "
              "in state {state}.";
    v1::Effect* e = Emit();
    v1::Notification* n = e->mutable_notification();
    std::string id;
    id.reserve(state().case_id().size() + cause_.size() + 8);
    id.append(state().case_id()).append(":").append(cause_).append(":");
    id.append(std::to_string(++notified_));
    n->set_notification_id(std::move(id));
    n->set_kind(kind);
    *n->mutable_roles() = roles;
    n->set_subject(
        Render(subject_tmpl.empty() ? subject_default : std::string_view(subject_tmpl), vars));
    n->set_body(Render(body_tmpl.empty() ? body_default : std::string_view(body_tmpl), vars));
    n->set_workflow(wf_.name());
    n->set_partnership(state().partnership());
    if (deadline != nullptr) {
      n->set_deadline(deadline->name());
      n->set_due_on(deadline->due_on());
    }
  }

  // Removes every pending timer of `d`, remembering them for Finish's timer diff (as messages
  // for an Outcome, else as due instants and ids). Every removal other than the firing timer's
  // goes through here.
  void DropTimers(v1::DeadlineInstance* d) {
    if (outcome_ != nullptr) {
      for (auto& t : *d->mutable_timers()) dropped_.push_back(std::move(t));
    } else {
      for (const auto& t : d->timers()) dropped_refs_.push_back({ToInstant(t.due_at()), t.id()});
    }
    d->clear_timers();
  }

  // Cancels an open deadline, breached or not: it no longer accepts the event that meets it and
  // is no longer recomputed. A breach stays in the timeline.
  void CancelDeadline(v1::DeadlineInstance* d, const std::string& reason) {
    DropTimers(d);
    d->set_status(v1::DEADLINE_STATUS_CANCELLED);
    auto* c = Emit()->mutable_cancelled();
    c->set_name(d->name());
    c->set_due_on(d->due_on());
    c->set_reason(reason);
  }

  void CancelNamed(const google::protobuf::RepeatedPtrField<std::string>& names,
                   const std::string& reason) {
    for (const auto& name : names) {
      for (auto& d : *state().mutable_deadlines()) {
        if (d.name() == name && IsOpen(d)) CancelDeadline(&d, reason);
      }
    }
  }

  // Starts the next planned deadline, which must be `name` (the plan lists the starts in the
  // order the change makes them).
  void StartDeadline(const std::string& name) {
    TANDEM_CHECK(next_ < plan_.size() && plan_[next_].name == name);  // planned in this order
    Computed& c = plan_[next_++];
    for (auto& old : *state().mutable_deadlines()) {
      if (old.name() == name && IsOpen(old)) CancelDeadline(&old, "restarted by " + cause_);
    }
    v1::DeadlineInstance* d = state().add_deadlines();
    d->set_name(name);
    d->set_status(v1::DEADLINE_STATUS_OPEN);
    d->set_due_on(FormatCivilDay(c.due));
    SetTimestamp(d->mutable_due_at(), c.due_at);
    *d->mutable_explanation() = *c.explanation;  // the effect below takes the original
    d->set_started_in_state(state().state());
    d->set_started_by(cause_);
    ScheduleTimers(c, d, /*only_after_now=*/false);
    auto* e = Emit()->mutable_deadline();
    e->set_name(name);
    e->set_due_on(d->due_on());
    *e->mutable_due_at() = d->due_at();
    *e->mutable_explanation() = std::move(*c.explanation);
  }

  void StartDeadlines(const google::protobuf::RepeatedPtrField<std::string>& names) {
    for (const auto& name : names) StartDeadline(name);
  }

  void NotifyAll(v1::NotificationKind kind,
                 const google::protobuf::RepeatedPtrField<v1::NotifyDefinition>& list) {
    for (const auto& n : list) Notify(kind, n.roles(), n.subject(), n.body(), nullptr);
  }

  // Moves the case to `to` on `day`. Leaving a state cancels the deadlines scoped to it;
  // entering a final state closes the case and cancels every open deadline.
  void EnterState(const std::string& to, CivilDay day) {
    const std::string from = state().state();
    if (to == from) return;
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
    if (!s->final()) StartDeadlines(s->start_deadlines());
  }

  // Meets every open deadline that `event` meets: on the day its date fact gives, else the
  // London day it occurred.
  void MeetDeadlines(const v1::Event& event, CivilDay occurred_on) {
    for (auto& d : *state().mutable_deadlines()) {
      if (!IsOpen(d)) continue;
      const v1::DeadlineDefinition* def = wf_.FindDeadline(d.name());
      if (def == nullptr) continue;
      for (const auto& m : def->met_by()) {
        if (m.event() != event.type()) continue;
        CivilDay met_on = occurred_on;
        if (!m.date_fact().empty()) {
          auto it = event.facts().fields().find(m.date_fact());
          if (it != event.facts().fields().end()) met_on = ParseTrusted(it->second.string_value());
        }
        const bool late = met_on > ParseTrusted(d.due_on());
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
  }

  // Applies the plan's recomputations of open deadlines, in the case's deadline order; a
  // recomputation whose due day is unchanged changes nothing.
  void RecomputeDeadlines() {
    for (auto& d : *state().mutable_deadlines()) {
      if (next_ == plan_.size()) break;
      if (!IsOpen(d) || plan_[next_].name != d.name()) continue;
      Computed& c = plan_[next_++];
      if (FormatCivilDay(c.due) == d.due_on()) continue;
      DropTimers(&d);
      d.set_due_on(FormatCivilDay(c.due));
      SetTimestamp(d.mutable_due_at(), c.due_at);
      *d.mutable_explanation() = *c.explanation;
      // A breached deadline whose corrected due day is still ahead is open again.
      if (d.status() == v1::DEADLINE_STATUS_BREACHED && c.due_at > now_) {
        d.set_status(v1::DEADLINE_STATUS_OPEN);
      }
      ScheduleTimers(c, &d, d.status() == v1::DEADLINE_STATUS_BREACHED);
      auto* e = Emit()->mutable_deadline();
      e->set_name(d.name());
      e->set_due_on(d.due_on());
      *e->mutable_due_at() = d.due_at();
      *e->mutable_explanation() = std::move(*c.explanation);
      e->set_recomputed(true);
    }
  }

  // Emits a case_started effect for each planned starting event (`starts`, made from the
  // `definitions` whose conditions held, in order) and links this case to each new case.
  void StartCases(const google::protobuf::RepeatedPtrField<v1::StartCaseDefinition>& definitions,
                  std::vector<v1::Event> starts) {
    for (v1::Event& e : starts) {
      std::string workflow;
      for (const auto& sc : definitions) {
        if (sc.event() == e.type()) workflow = sc.workflow();
      }
      auto* link = state().add_linked_cases();
      link->set_case_id(e.case_id());
      link->set_workflow(workflow);
      link->set_relation(v1::LinkedCase::RELATION_OPENED);
      auto* started = Emit()->mutable_case_started();
      started->set_workflow(std::move(workflow));
      started->set_case_id(e.case_id());
      *started->mutable_event() = std::move(e);
    }
  }

  // Records each assessment whose value is new or changed; `rules` read the case's facts as
  // the change left them.
  void Assess(const Rules& rules) {
    for (const auto& a : wf_.definition().assessments()) {
      const bool value = rules.Holds(a.when());
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

  // Completes the change with its timer diff. Timer ids are never reused, so a pending timer is
  // new exactly when its id is above the case's old counter (`old_next_id`), and an old timer is
  // gone exactly when DropTimers removed it; the timer that fired is in neither list.
  void Finish(uint64_t old_next_id, uint64_t fired_timer) {
    // Every planned computation was used: the plan and the change agree step for step.
    TANDEM_CHECK(next_ == plan_.size());
    SetTimestamp(state_->mutable_updated_at(), now_);
    if (outcome_ != nullptr) {
      for (const auto& d : state_->deadlines()) {
        for (const auto& t : d.timers()) {
          if (t.id() > old_next_id) outcome_->timers_set.push_back(t);
        }
      }
      for (auto& t : dropped_) {
        if (t.id() <= old_next_id && t.id() != fired_timer) {
          outcome_->timers_cancelled.push_back(std::move(t));
        }
      }
      return;
    }
    diff_->set.clear();
    diff_->cancelled.clear();
    for (const auto& d : state_->deadlines()) {
      for (const auto& t : d.timers()) {
        if (t.id() > old_next_id) diff_->set.push_back({ToInstant(t.due_at()), t.id()});
      }
    }
    for (const TimerRef& t : dropped_refs_) {
      if (t.id <= old_next_id && t.id != fired_timer) diff_->cancelled.push_back(t);
    }
  }

 private:
  void AddTimer(v1::DeadlineInstance* d, v1::TimerKind kind, uint32_t index, Instant at) {
    v1::Timer* t = d->add_timers();
    state().set_next_timer_id(state().next_timer_id() + 1);
    t->set_id(state().next_timer_id());
    t->set_deadline(d->name());
    t->set_kind(kind);
    t->set_index(index);
    SetTimestamp(t->mutable_due_at(), at);
  }

  // Schedules the deadline's warnings, breach and escalations. With `only_after_now`, only
  // escalations still in the future (a recomputed deadline that stays breached).
  void ScheduleTimers(const Computed& c, v1::DeadlineInstance* d, bool only_after_now) {
    if (!only_after_now) {
      for (std::size_t i = 0; i < c.warnings.size(); ++i) {
        // A warning whose day and deadline have both passed says nothing the breach won't.
        if (c.warnings[i] <= now_ && c.due_at <= now_) continue;
        AddTimer(d, v1::TIMER_KIND_WARNING, static_cast<uint32_t>(i), c.warnings[i]);
      }
      AddTimer(d, v1::TIMER_KIND_BREACH, 0, c.due_at);
    }
    for (std::size_t i = 0; i < c.escalations.size(); ++i) {
      if (only_after_now && c.escalations[i] <= now_) continue;
      AddTimer(d, v1::TIMER_KIND_ESCALATION, static_cast<uint32_t>(i), c.escalations[i]);
    }
  }

  const Workflow& wf_;
  v1::CaseState* const state_;
  // Where the effects go: the caller's timeline, else outcome_->effects.
  v1::Timeline* const into_;
  Outcome* const outcome_;
  TimerDiff* const diff_;
  const Instant now_;
  const std::string cause_;
  const std::string event_type_;
  std::vector<Computed> plan_;
  std::size_t next_ = 0;
  int notified_ = 0;
  // Timers removed by DropTimers, for Finish's diff: for an Outcome, else for `diff_`.
  std::vector<v1::Timer> dropped_;
  std::vector<TimerRef> dropped_refs_;
};

// Returns the workflow version `state` runs, or kFailedPrecondition if it is not loaded.
Result<const Workflow*> CaseWorkflow(const WorkflowSet& workflows, const v1::CaseState& state) {
  const Workflow* wf =
      workflows.Find(state.workflow(), state.workflow_version(), state.partnership());
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
  if (e.opened_by_case().size() > kMaxIdBytes) {
    return InvalidArgumentError("opened_by_case is longer than " + std::to_string(kMaxIdBytes) +
                                " bytes");
  }
  return OkStatus();
}

// Returns `text` (a fixed value of a StartCaseDefinition) as the JSON value `fact` takes: a
// bool or a number for those types, else a string. The checker made sure it fits.
google::protobuf::Value TypedValue(const v1::FactDefinition& fact, const std::string& text) {
  google::protobuf::Value v;
  switch (fact.type()) {
    case v1::FACT_TYPE_BOOL:
      v.set_bool_value(text == "true");
      break;
    case v1::FACT_TYPE_INT:
      v.set_number_value(static_cast<double>(std::stoll(text)));
      break;
    default:
      v.set_string_value(text);
      break;
  }
  return v;
}

// Plans the cases `t` opens: for each whose condition holds, the starting event of the new
// case, with its facts taken from `rules`' view of this case (the event being applied
// included). Returns kFailedPrecondition when the workflow or event it names is not loaded
// (WorkflowSet::CheckStartCases refuses such files at load).
Status PlanCaseStarts(const WorkflowSet& workflows, const Workflow& wf, const Rules& rules,
                      const v1::TransitionDefinition& t, const v1::Event& event,
                      std::vector<v1::Event>* starts) {
  for (const v1::StartCaseDefinition& sc : t.start_cases()) {
    if (sc.has_when() && !rules.Holds(sc.when())) continue;
    const v1::EventTypeDefinition* target = nullptr;
    for (const auto& other : workflows.workflows()) {
      if (other->name() != sc.workflow()) continue;
      if (const auto* e = other->FindEvent(sc.event()); e != nullptr && e->starts_case()) {
        target = e;
      }
    }
    if (target == nullptr) {
      return FailedPreconditionError("workflow '" + wf.name() + "' opens a case of '" +
                                     sc.workflow() + "' with '" + sc.event() +
                                     "', which is not loaded");
    }
    v1::Event& e = starts->emplace_back();
    e.set_event_id(event.event_id() + sc.case_id_suffix());
    e.set_case_id(event.case_id() + sc.case_id_suffix());
    e.set_partnership(event.partnership());
    e.set_type(sc.event());
    *e.mutable_occurred_at() = event.occurred_at();
    e.set_source("tandem:" + wf.name());
    e.set_actor(event.actor());
    e.set_opened_by_case(event.case_id());
    auto& facts = *e.mutable_facts()->mutable_fields();
    for (const v1::FactMapping& m : sc.facts()) {
      if (m.value_case() == v1::FactMapping::kFrom) {
        if (const auto* v = rules.facts().Lookup(m.from(), nullptr)) facts[m.name()] = *v;
      } else if (const auto* f = internal::FindFactDefinition(*target, m.name())) {
        facts[m.name()] = TypedValue(*f, m.text());
      }
    }
  }
  return OkStatus();
}

// Resolves the facts named in a case.facts_corrected event (plain, or qualified by event type)
// against the case's records, checking each new value; the case is not touched.
Result<std::vector<Correction>> PlanCorrections(const Workflow& wf, const v1::Event& event,
                                                const v1::CaseState& state) {
  if (event.facts().fields().empty()) {
    return InvalidArgumentError("case.facts_corrected carries no fact");
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : event.facts().fields()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  std::vector<Correction> corrections;
  for (const auto& key : keys) {
    const internal::FactName split = internal::SplitFactName(key);
    std::vector<const v1::FactRecord*> matches;
    const v1::FactDefinition* def = nullptr;
    for (const auto& r : state.facts()) {
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
    const google::protobuf::Value& value = event.facts().fields().at(key);
    TANDEM_RETURN_IF_ERROR(internal::CheckFactValue(*def, value));
    corrections.push_back({matches.front()->event_type(), std::string(split.fact), &value});
  }
  return corrections;
}

}  // namespace

Instant ToInstant(const google::protobuf::Timestamp& ts) {
  return Instant(std::chrono::seconds(ts.seconds()));
}

std::string_view NotificationKindName(v1::NotificationKind k) {
  switch (k) {
    case v1::NOTIFICATION_KIND_DEADLINE_WARNING:
      return "deadline_warning";
    case v1::NOTIFICATION_KIND_DEADLINE_BREACHED:
      return "deadline_breached";
    case v1::NOTIFICATION_KIND_DEADLINE_ESCALATED:
      return "deadline_escalated";
    case v1::NOTIFICATION_KIND_STATE_ENTERED:
      return "state_entered";
    case v1::NOTIFICATION_KIND_TRANSITION:
      return "transition";
    default:
      return "";
  }
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
    std::string_view reason = calendar::WeekdayName(day);
    for (const auto& h : explanation.skipped_holidays()) {
      if (h.day() == n) reason = h.title();
    }
    out.push_back({day, reason});
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

std::vector<OpenedCase> CasesOpened(const v1::Timeline& timeline, int first_effect, int depth) {
  std::vector<OpenedCase> opened;
  for (int i = first_effect; i < timeline.effects_size(); ++i) {
    const v1::Effect& e = timeline.effects(i);
    if (!e.has_case_started()) continue;
    OpenedCase& o = opened.emplace_back();
    o.event = e.case_started().event();
    if (depth >= kMaxOpenedDepth) {
      o.refused = FailedPreconditionError("more than " + std::to_string(kMaxOpenedDepth) +
                                          " cases in a row opened one another");
    }
  }
  return opened;
}

v1::Effect RejectionEffect(const v1::Event& event, const Status& status, Instant now) {
  v1::Effect e;
  SetTimestamp(e.mutable_at(), now);
  e.set_case_id(event.case_id());
  e.set_cause(event.event_id());
  auto* r = e.mutable_rejected();
  r->set_event_id(event.event_id());
  r->set_event_type(event.type());
  r->set_code(std::string(StatusCodeName(status.code())));
  r->set_reason(status.message());
  return e;
}

Result<Outcome> Engine::Apply(const v1::CaseState* current, const v1::Event& event, Instant now,
                              v1::Timeline* into) const {
  if (current == nullptr) return ApplyTo(nullptr, event, nullptr, now, into);
  v1::CaseState copy = *current;
  return ApplyTo(&copy, event, nullptr, now, into);
}

Result<Outcome> Engine::ApplyTaking(v1::CaseState* current, const v1::Event& event, Instant now,
                                    v1::Timeline* into) const {
  TANDEM_CHECK(current != nullptr);  // REQUIRES in the header
  return ApplyTo(current, event, nullptr, now, into);
}

Result<Outcome> Engine::Apply(const v1::CaseState* current, v1::Event&& event, Instant now,
                              v1::Timeline* into) const {
  if (current == nullptr) return ApplyTo(nullptr, event, &event, now, into);
  v1::CaseState copy = *current;
  return ApplyTo(&copy, event, &event, now, into);
}

Result<Outcome> Engine::ApplyTaking(v1::CaseState* current, v1::Event&& event, Instant now,
                                    v1::Timeline* into) const {
  TANDEM_CHECK(current != nullptr);  // REQUIRES in the header
  return ApplyTo(current, event, &event, now, into);
}

Result<Outcome> Engine::ApplyTo(v1::CaseState* current, const v1::Event& event, v1::Event* take,
                                Instant now, v1::Timeline* into) const {
  Outcome out;
  TANDEM_RETURN_IF_ERROR(ApplyChange(current, event, take, now, into, {&out.state, &out, nullptr}));
  return out;
}

Status Engine::ApplyInPlace(v1::CaseState* current, v1::CaseState* fresh, const v1::Event& event,
                            v1::Event* take, Instant now, v1::Timeline* into,
                            TimerDiff* diff) const {
  return ApplyChange(current, event, take, now, into,
                     {current != nullptr ? current : fresh, nullptr, diff});
}

Status Engine::ApplyChange(v1::CaseState* current, const v1::Event& event, v1::Event* take,
                           Instant now, v1::Timeline* into, const Target& target) const {
  // Phase 1: every check and every fallible computation, on the case as it is.
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
  if (current != nullptr && !event.opened_by_case().empty()) {
    return InvalidArgumentError("opened_by_case is set only on the event that opens a case");
  }
  TANDEM_ASSIGN_OR_RETURN(const CivilDay occurred_on,
                          calendar::LondonDay(ToInstant(event.occurred_at())));

  static const v1::CaseState kNoCase;
  const v1::CaseState& before = current != nullptr ? *current : kNoCase;
  const std::string& state_now = before.state();
  // Planned explanations go where the effects will: a refused change leaves them unused on the
  // caller's arena, which frees them with the rest.
  google::protobuf::Arena* const arena = into != nullptr ? into->GetArena() : nullptr;
  std::vector<Computed> plan;
  std::vector<Correction> corrections;
  std::vector<v1::Event> case_starts;
  const v1::TransitionDefinition* taken = nullptr;
  if (event.type() == kFactsCorrected) {
    TANDEM_ASSIGN_OR_RETURN(corrections, PlanCorrections(*wf, event, before));
    const Rules rules(*wf, calendar_, FactView(before.facts()).WithCorrections(corrections), arena);
    for (const auto& d : before.deadlines()) {
      const v1::DeadlineDefinition* def = wf->FindDeadline(d.name());
      if (!IsOpen(d) || def == nullptr) continue;
      // A deadline that counted from a state entry keeps that day.
      const CivilDay entered =
          ParseTrusted(d.explanation().anchor() == "state_entered" ? d.explanation().anchor_on()
                                                                   : before.state_entered_on());
      TANDEM_ASSIGN_OR_RETURN(Computed c, rules.Compute(*def, state_now, entered));
      plan.push_back(std::move(c));
    }
  } else {
    TANDEM_RETURN_IF_ERROR(internal::CheckFacts(*type, event.facts()));
    if (event.type() != kWithdrawn) {
      const Rules rules(*wf, calendar_, FactView(before.facts()).WithEvent(event), arena);
      bool from_matched = false;
      for (const v1::TransitionDefinition* t : wf->TransitionsOn(event.type())) {
        if (current != nullptr && !t->from().empty() &&
            std::find(t->from().begin(), t->from().end(), state_now) == t->from().end()) {
          continue;
        }
        from_matched = true;
        if (t->has_when() && !rules.Holds(t->when())) continue;
        taken = t;
        break;
      }
      if (taken == nullptr) {
        const std::string where = current != nullptr ? "in state '" + state_now + "'" : "here";
        return FailedPreconditionError(
            "event type '" + event.type() + "' is not accepted " + where +
            (from_matched ? ": no transition's conditions hold for its facts" : ""));
      }
      // The starts the change will make, in its order: the new state's, then the transition's
      // (unless the new state closes the case).
      const bool moves = !taken->to().empty() && taken->to() != state_now;
      const std::string& state_after = moves ? taken->to() : state_now;
      const CivilDay entered = moves ? occurred_on : ParseTrusted(before.state_entered_on());
      if (moves)
        TANDEM_RETURN_IF_ERROR(PlanEntry(*wf, rules, state_now, taken->to(), occurred_on, &plan));
      if (!wf->FindState(state_after)->final()) {
        TANDEM_RETURN_IF_ERROR(
            PlanStarts(*wf, rules, taken->start_deadlines(), state_after, entered, &plan));
      }
      TANDEM_RETURN_IF_ERROR(PlanCaseStarts(workflows_, *wf, rules, *taken, event, &case_starts));
    }
  }

  // Phase 2: the change itself, which cannot fail.
  v1::CaseState& state = *target.state;
  if (current != nullptr) {
    if (target.state != current) state = std::move(*current);
  } else {
    state.set_case_id(event.case_id());
    state.set_partnership(event.partnership());
    state.set_workflow(wf->name());
    state.set_workflow_version(wf->version());
    state.set_edition(wf->edition_label());
    SetTimestamp(state.mutable_opened_at(), now);
    if (!event.opened_by_case().empty()) {
      auto* link = state.add_linked_cases();
      link->set_case_id(event.opened_by_case());
      link->set_relation(v1::LinkedCase::RELATION_OPENED_BY);
    }
  }
  const uint64_t old_next_id = state.next_timer_id();
  state.set_events_applied(state.events_applied() + 1);
  Change change(*wf, &state, now, event.event_id(), event.type(), std::move(plan), into,
                target.outcome, target.diff);
  if (event.type() == kFactsCorrected) {
    change.Correct(corrections);
    change.RecomputeDeadlines();
  } else if (event.type() == kWithdrawn) {
    change.RecordFacts(event, take);
    change.EnterState(std::string(kWithdrawnState), occurred_on);
    change.Finish(old_next_id, 0);
    return OkStatus();
  } else {
    change.MeetDeadlines(event, occurred_on);
    change.CancelNamed(taken->cancel_deadlines(), "cancelled by " + event.type());
    if (!taken->to().empty()) change.EnterState(taken->to(), occurred_on);
    if (!change.state().closed()) change.StartDeadlines(taken->start_deadlines());
    change.NotifyAll(v1::NOTIFICATION_KIND_TRANSITION, taken->notify());
    change.StartCases(taken->start_cases(), std::move(case_starts));
    // Last: it may take the event's facts, which the steps above read.
    change.RecordFacts(event, take);
  }
  // Assessed when the case opens and whenever facts they read may have changed.
  if (current == nullptr || event.type() == kFactsCorrected || wf->AssessmentsRead(event.type())) {
    change.Assess(Rules(*wf, calendar_, FactView(change.state().facts())));
  }
  change.Finish(old_next_id, 0);
  return OkStatus();
}

Result<Outcome> Engine::Fire(const v1::CaseState& current, uint64_t timer_id, Instant now,
                             v1::Timeline* into) const {
  v1::CaseState copy = current;
  return FireTaking(&copy, timer_id, now, into);
}

Result<Outcome> Engine::FireTaking(v1::CaseState* current, uint64_t timer_id, Instant now,
                                   v1::Timeline* into) const {
  TANDEM_CHECK(current != nullptr);  // REQUIRES in the header
  Outcome out;
  TANDEM_RETURN_IF_ERROR(FireChange(current, timer_id, now, into, {&out.state, &out, nullptr}));
  return out;
}

Status Engine::FireInPlace(v1::CaseState* current, uint64_t timer_id, Instant now,
                           v1::Timeline* into, TimerDiff* diff) const {
  TANDEM_CHECK(current != nullptr);  // REQUIRES in the header
  return FireChange(current, timer_id, now, into, {current, nullptr, diff});
}

Status Engine::FireChange(v1::CaseState* current, uint64_t timer_id, Instant now,
                          v1::Timeline* into, const Target& target) const {
  // Phase 1, on the case as it is.
  TANDEM_ASSIGN_OR_RETURN(const Workflow* wf, CaseWorkflow(workflows_, *current));
  int deadline_index = -1;
  int timer_index = -1;
  for (int i = 0; i < current->deadlines_size() && deadline_index < 0; ++i) {
    const auto& timers = current->deadlines(i).timers();
    for (int j = 0; j < timers.size(); ++j) {
      if (timers.Get(j).id() == timer_id) {
        deadline_index = i;
        timer_index = j;
        break;
      }
    }
  }
  if (deadline_index < 0) {
    return NotFoundError("case '" + current->case_id() + "' has no pending timer " +
                         std::to_string(timer_id));
  }
  const v1::DeadlineInstance& found = current->deadlines(deadline_index);
  const v1::DeadlineDefinition* def = wf->FindDeadline(found.name());
  if (def == nullptr) {
    return FailedPreconditionError("deadline '" + found.name() + "' is not in workflow '" +
                                   wf->name() + "'");
  }
  // What the change needs of the timer, which it deletes before reading them.
  const v1::TimerKind kind = found.timers(timer_index).kind();
  const uint32_t kind_index = found.timers(timer_index).index();
  const Instant due = ToInstant(found.timers(timer_index).due_at());
  const bool late = now > due;
  const auto& suppressed_in = def->suppressed_in_states();
  const bool suppressed = std::find(suppressed_in.begin(), suppressed_in.end(), current->state()) !=
                          suppressed_in.end();
  const std::string& move_to = def->on_breach().move_to();
  const bool moves = kind == v1::TIMER_KIND_BREACH && !suppressed && !move_to.empty();
  CivilDay breach_day{};
  std::vector<Computed> plan;
  if (moves) {
    // The case moves on the day the deadline passed, however late the timer fired.
    TANDEM_ASSIGN_OR_RETURN(breach_day, calendar::LondonDay(due));
    const Rules rules(*wf, calendar_, FactView(current->facts()),
                      into != nullptr ? into->GetArena() : nullptr);
    TANDEM_RETURN_IF_ERROR(PlanEntry(*wf, rules, current->state(), move_to, breach_day, &plan));
  }
  if (kind != v1::TIMER_KIND_WARNING && kind != v1::TIMER_KIND_BREACH &&
      kind != v1::TIMER_KIND_ESCALATION) {
    return InternalError("timer " + std::to_string(timer_id) + " has no kind");
  }

  // Phase 2, which cannot fail.
  const uint64_t old_next_id = current->next_timer_id();
  if (target.state != current) *target.state = std::move(*current);
  Change change(*wf, target.state, now, "timer:" + std::to_string(timer_id), "", std::move(plan),
                into, target.outcome, target.diff);
  v1::DeadlineInstance* deadline = change.state().mutable_deadlines(deadline_index);
  deadline->mutable_timers()->DeleteSubrange(timer_index, 1);
  switch (kind) {
    case v1::TIMER_KIND_WARNING: {
      const auto& w = def->warnings(static_cast<int>(kind_index));
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
        if (moves) change.EnterState(move_to, breach_day);
      }
      break;
    }
    default: {  // TIMER_KIND_ESCALATION, checked above
      if (deadline->status() == v1::DEADLINE_STATUS_BREACHED && !suppressed) {
        const auto& esc = def->escalations(static_cast<int>(kind_index));
        change.Notify(v1::NOTIFICATION_KIND_DEADLINE_ESCALATED, esc.notify(), esc.subject(), "",
                      deadline);
      }
      break;
    }
  }
  change.Finish(old_next_id, timer_id);
  return OkStatus();
}

}  // namespace tandem::engine
