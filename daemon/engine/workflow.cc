#include "daemon/engine/workflow.h"

#include <array>
#include <set>

#include "daemon/engine/internal/facts.h"
#include "daemon/engine/internal/yaml_proto.h"

namespace tandem::engine {
namespace {

using internal::LineMap;

constexpr std::array<std::string_view, 9> kRoles = {
    "la_dsp",     "icb_dsp",           "police_dsp",    "la_lsp",      "icb_lsp",
    "police_lsp", "partnership_chair", "business_unit", "owner_agency"};

std::string Idx(std::string_view base, int i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

// Accumulates reference checks over one definition; the first error wins.
class Checker {
 public:
  // Records in `start_cases` each case a transition opens, with where it is written, for the
  // cross-workflow check (WorkflowSet::CheckStartCases).
  Checker(const v1::WorkflowDefinition& def, const LineMap& lines, std::string_view origin,
          std::vector<Workflow::StartCaseRef>* start_cases)
      : def_(def), lines_(lines), origin_(origin), start_cases_(*start_cases) {}

  Status Run() {
    TANDEM_RETURN_IF_ERROR(Header());
    TANDEM_RETURN_IF_ERROR(Parameters());
    TANDEM_RETURN_IF_ERROR(Events());
    TANDEM_RETURN_IF_ERROR(States());
    TANDEM_RETURN_IF_ERROR(Deadlines());
    TANDEM_RETURN_IF_ERROR(Transitions());
    for (int i = 0; i < def_.assessments_size(); ++i) {
      const auto& a = def_.assessments(i);
      const std::string path = Idx("assessments", i);
      if (a.name().empty()) return Err(path + ".name", "is required");
      if (!a.has_when()) return Err(path, "needs 'when'");
      TANDEM_RETURN_IF_ERROR(CheckCondition(a.when(), path + ".when"));
    }
    return OkStatus();
  }

 private:
  Status Err(std::string_view path, std::string_view what) const {
    return InvalidArgumentError(lines_.Where(origin_, path) + ": " + std::string(what));
  }

  Status Header() {
    if (def_.name().empty()) return Err("name", "is required");
    if (def_.version() == 0) return Err("version", "is required and must be 1 or more");
    if (def_.edition().name().empty()) return Err("edition.name", "is required");
    if (!calendar::ParseCivilDay(def_.edition().effective_from()).ok()) {
      return Err("edition.effective_from", "is required, as YYYY-MM-DD");
    }
    return OkStatus();
  }

  Status Parameters() {
    std::set<std::string> names;
    for (int i = 0; i < def_.parameters_size(); ++i) {
      const auto& p = def_.parameters(i);
      const std::string path = Idx("parameters", i);
      if (p.name().empty()) return Err(path + ".name", "is required");
      if (!names.insert(p.name()).second)
        return Err(path + ".name", "'" + p.name() + "' given twice");
      if (p.values().empty()) return Err(path + ".values", "lists no values");
      if (std::find(p.values().begin(), p.values().end(), p.default_()) == p.values().end()) {
        return Err(path + ".default", "must be one of the parameter's values");
      }
    }
    return OkStatus();
  }

  Status Events() {
    bool any_start = false;
    for (int i = 0; i < def_.events_size(); ++i) {
      const auto& e = def_.events(i);
      const std::string path = Idx("events", i);
      if (e.type().empty()) return Err(path + ".type", "is required");
      if (e.type() == kFactsCorrected || e.type() == kWithdrawn) {
        return Err(path + ".type", "'" + e.type() + "' is built in to every workflow");
      }
      if (!event_types_.insert(e.type()).second) {
        return Err(path + ".type", "'" + e.type() + "' given twice");
      }
      any_start = any_start || e.starts_case();
      std::set<std::string> facts;
      for (int j = 0; j < e.facts_size(); ++j) {
        const auto& f = e.facts(j);
        const std::string fp = Idx(path + ".facts", j);
        if (f.name().empty()) return Err(fp + ".name", "is required");
        if (f.name().find('.') != std::string::npos) {
          return Err(fp + ".name", "'" + f.name() + "' may not contain '.'");
        }
        if (!facts.insert(f.name()).second)
          return Err(fp + ".name", "'" + f.name() + "' given twice");
        if (f.type() == v1::FACT_TYPE_UNSPECIFIED) return Err(fp + ".type", "is required");
        if ((f.type() == v1::FACT_TYPE_ENUM) != (f.values_size() > 0)) {
          return Err(fp + ".values", "are required for an enum fact and only for one");
        }
      }
    }
    if (!any_start) return Err("events", "no event type has starts_case: true");
    return OkStatus();
  }

  Status States() {
    for (int i = 0; i < def_.states_size(); ++i) {
      const auto& s = def_.states(i);
      const std::string path = Idx("states", i);
      if (s.name().empty()) return Err(path + ".name", "is required");
      if (s.name() == kWithdrawnState) {
        return Err(path + ".name", "'withdrawn' is the built-in state of a withdrawn case");
      }
      if (!states_.insert(s.name()).second)
        return Err(path + ".name", "'" + s.name() + "' given twice");
    }
    for (const auto& d : def_.deadlines()) deadline_names_.insert(d.name());
    for (int i = 0; i < def_.states_size(); ++i) {
      const auto& s = def_.states(i);
      const std::string path = Idx("states", i);
      TANDEM_RETURN_IF_ERROR(DeadlineRefs(s.start_deadlines(), path + ".start_deadlines"));
      for (int j = 0; j < s.notify_size(); ++j) {
        TANDEM_RETURN_IF_ERROR(Notify(s.notify(j), Idx(path + ".notify", j)));
      }
    }
    return OkStatus();
  }

  Status Transitions() {
    std::set<std::string> started;
    for (int i = 0; i < def_.transitions_size(); ++i) {
      const auto& t = def_.transitions(i);
      const std::string path = Idx("transitions", i);
      const v1::EventTypeDefinition* e = Event(t.on());
      if (e == nullptr) return Err(path + ".on", "unknown event type '" + t.on() + "'");
      if (e->starts_case()) {
        if (t.to().empty()) return Err(path + ".to", "a starting event must name the first state");
        if (!t.from().empty()) return Err(path + ".from", "a starting event has no 'from'");
        started.insert(t.on());
      }
      for (int j = 0; j < t.from_size(); ++j) {
        TANDEM_RETURN_IF_ERROR(StateRef(t.from(j), Idx(path + ".from", j)));
      }
      if (!t.to().empty()) TANDEM_RETURN_IF_ERROR(StateRef(t.to(), path + ".to"));
      context_event_ = t.on();
      if (t.has_when()) TANDEM_RETURN_IF_ERROR(CheckCondition(t.when(), path + ".when"));
      context_event_.clear();
      TANDEM_RETURN_IF_ERROR(DeadlineRefs(t.start_deadlines(), path + ".start_deadlines"));
      TANDEM_RETURN_IF_ERROR(DeadlineRefs(t.cancel_deadlines(), path + ".cancel_deadlines"));
      for (int j = 0; j < t.notify_size(); ++j) {
        TANDEM_RETURN_IF_ERROR(Notify(t.notify(j), Idx(path + ".notify", j)));
      }
      context_event_ = t.on();
      for (int j = 0; j < t.start_cases_size(); ++j) {
        TANDEM_RETURN_IF_ERROR(StartCase(t.start_cases(j), Idx(path + ".start_cases", j)));
      }
      context_event_.clear();
    }
    for (int i = 0; i < def_.events_size(); ++i) {
      if (def_.events(i).starts_case() && started.count(def_.events(i).type()) == 0) {
        return Err(Idx("events", i) + ".starts_case",
                   "no transition on '" + def_.events(i).type() + "' opens the case");
      }
    }
    return OkStatus();
  }

  Status Deadlines() {
    std::set<std::string> names;
    for (int i = 0; i < def_.deadlines_size(); ++i) {
      const auto& d = def_.deadlines(i);
      const std::string path = Idx("deadlines", i);
      if (d.name().empty()) return Err(path + ".name", "is required");
      if (!names.insert(d.name()).second)
        return Err(path + ".name", "'" + d.name() + "' given twice");
      if (d.source().empty())
        return Err(path + ".source", "is required: every rule names its source");
      if (d.confidence() == v1::CONFIDENCE_UNSPECIFIED) {
        return Err(path + ".confidence", "is required (v, v1, r or u)");
      }
      if (!d.has_from()) return Err(path + ".from", "is required");
      TANDEM_RETURN_IF_ERROR(CheckAnchor(d.from(), path + ".from"));
      if (!d.has_offset()) return Err(path + ".offset", "is required");
      TANDEM_RETURN_IF_ERROR(CheckOffset(d.offset(), path + ".offset"));
      for (int j = 0; j < d.variants_size(); ++j) {
        const auto& v = d.variants(j);
        const std::string vp = Idx(path + ".variants", j);
        if (!v.has_when()) return Err(vp + ".when", "is required");
        TANDEM_RETURN_IF_ERROR(CheckCondition(v.when(), vp + ".when"));
        if (v.has_from()) TANDEM_RETURN_IF_ERROR(CheckAnchor(v.from(), vp + ".from"));
        if (v.has_offset()) TANDEM_RETURN_IF_ERROR(CheckOffset(v.offset(), vp + ".offset"));
      }
      for (int j = 0; j < d.warnings_size(); ++j) {
        const auto& w = d.warnings(j);
        const std::string wp = Idx(path + ".warnings", j);
        if (w.working_days_before() == 0)
          return Err(wp + ".working_days_before", "must be 1 or more");
        TANDEM_RETURN_IF_ERROR(Roles(w.notify(), wp + ".notify"));
        TANDEM_RETURN_IF_ERROR(Template(w.subject(), wp + ".subject"));
      }
      for (int j = 0; j < d.met_by_size(); ++j) {
        const auto& m = d.met_by(j);
        const std::string mp = Idx(path + ".met_by", j);
        const v1::EventTypeDefinition* e = Event(m.event());
        if (e == nullptr) return Err(mp + ".event", "unknown event type '" + m.event() + "'");
        if (!m.date_fact().empty()) {
          const v1::FactDefinition* f = internal::FindFactDefinition(*e, m.date_fact());
          if (f == nullptr || f->type() != v1::FACT_TYPE_DATE) {
            return Err(mp + ".date_fact",
                       "'" + m.event() + "' has no date fact '" + m.date_fact() + "'");
          }
        }
      }
      TANDEM_RETURN_IF_ERROR(Roles(d.on_breach().notify(), path + ".on_breach.notify"));
      TANDEM_RETURN_IF_ERROR(Template(d.on_breach().subject(), path + ".on_breach.subject"));
      if (!d.on_breach().move_to().empty()) {
        TANDEM_RETURN_IF_ERROR(StateRef(d.on_breach().move_to(), path + ".on_breach.move_to"));
      }
      for (int j = 0; j < d.escalations_size(); ++j) {
        const auto& e = d.escalations(j);
        const std::string ep = Idx(path + ".escalations", j);
        if (e.working_days_after() == 0)
          return Err(ep + ".working_days_after", "must be 1 or more");
        if (e.notify().empty()) return Err(ep + ".notify", "names no role");
        TANDEM_RETURN_IF_ERROR(Roles(e.notify(), ep + ".notify"));
        TANDEM_RETURN_IF_ERROR(Template(e.subject(), ep + ".subject"));
      }
      for (int j = 0; j < d.suppressed_in_states_size(); ++j) {
        TANDEM_RETURN_IF_ERROR(
            StateRef(d.suppressed_in_states(j), Idx(path + ".suppressed_in_states", j)));
      }
    }
    return OkStatus();
  }

  Status CheckAnchor(const v1::Anchor& a, const std::string& path) {
    if (a.has_state_entered()) {
      if (!a.state_entered()) return Err(path + ".state_entered", "may only be true");
      return OkStatus();
    }
    if (!a.has_facts() || a.facts().values().empty()) {
      return Err(path, "needs 'facts' (date facts, first present wins) or 'state_entered: true'");
    }
    for (int i = 0; i < a.facts().values_size(); ++i) {
      TANDEM_RETURN_IF_ERROR(
          FactRef(a.facts().values(i), Idx(path + ".facts", i), v1::FACT_TYPE_DATE).status());
    }
    return OkStatus();
  }

  Status CheckOffset(const v1::Offset& o, const std::string& path) {
    if (o.amount_case() == v1::Offset::AMOUNT_NOT_SET) {
      return Err(path, "needs working_days, calendar_days or months");
    }
    return OkStatus();
  }

  Status CheckCondition(const v1::Condition& c, const std::string& path) {
    switch (c.test_case()) {
      case v1::Condition::kFact: {
        const auto& f = c.fact();
        TANDEM_ASSIGN_OR_RETURN(const v1::FactDefinition* def,
                                FactRef(f.name(), path + ".fact.name", v1::FACT_TYPE_UNSPECIFIED));
        // At run time the event being applied is the latest record, so a plain name means its
        // fact when it has one.
        if (const v1::EventTypeDefinition* own = Event(context_event_);
            own != nullptr && f.name().find('.') == std::string::npos) {
          if (const auto* mine = internal::FindFactDefinition(*own, f.name())) def = mine;
        }
        if (f.test_case() == v1::FactCondition::TEST_NOT_SET) {
          return Err(path + ".fact", "needs equals, in or present");
        }
        std::vector<std::string> values;
        if (f.has_equals()) values.push_back(f.equals());
        for (const auto& v : f.in().values()) values.push_back(v);
        for (const auto& v : values) {
          if (!internal::ValueTextFits(*def, v)) {
            return Err(path + ".fact",
                       "'" + v + "' is not a possible value of fact '" + f.name() + "'");
          }
        }
        return OkStatus();
      }
      case v1::Condition::kAge: {
        const auto& a = c.age();
        TANDEM_RETURN_IF_ERROR(FactRef(a.dob(), path + ".age.dob", v1::FACT_TYPE_DATE).status());
        if (a.on().empty()) return Err(path + ".age.on", "names no date fact");
        for (int i = 0; i < a.on_size(); ++i) {
          TANDEM_RETURN_IF_ERROR(
              FactRef(a.on(i), Idx(path + ".age.on", i), v1::FACT_TYPE_DATE).status());
        }
        if (a.below() == 0) return Err(path + ".age.below", "must be 1 or more");
        return OkStatus();
      }
      case v1::Condition::kAll:
      case v1::Condition::kAny: {
        const bool all = c.test_case() == v1::Condition::kAll;
        const auto& list = all ? c.all() : c.any();
        const std::string lp = path + (all ? ".all" : ".any");
        if (list.conditions().empty()) return Err(lp, "lists no condition");
        for (int i = 0; i < list.conditions_size(); ++i) {
          TANDEM_RETURN_IF_ERROR(CheckCondition(list.conditions(i), Idx(lp, i)));
        }
        return OkStatus();
      }
      case v1::Condition::kNot:
        return CheckCondition(c.not_(), path + ".not");
      case v1::Condition::kParameter: {
        const auto& p = c.parameter();
        for (const auto& def : def_.parameters()) {
          if (def.name() != p.name()) continue;
          if (std::find(def.values().begin(), def.values().end(), p.equals()) ==
              def.values().end()) {
            return Err(path + ".parameter.equals",
                       "'" + p.equals() + "' is not a value of parameter '" + p.name() + "'");
          }
          return OkStatus();
        }
        return Err(path + ".parameter.name", "unknown parameter '" + p.name() + "'");
      }
      case v1::Condition::TEST_NOT_SET:
        break;
    }
    return Err(path, "needs one of fact, age, all, any, not, parameter");
  }

  // Resolves a (possibly qualified) fact name to a declaration; `want` other than UNSPECIFIED
  // also requires that type for every declaration the name can mean.
  Result<const v1::FactDefinition*> FactRef(const std::string& name, const std::string& path,
                                            v1::FactType want) {
    const auto found = internal::ResolveFactName(def_, name);
    if (found.empty()) return Err(path, "unknown fact '" + name + "'");
    for (const auto& [type, fact] : found) {
      if (want != v1::FACT_TYPE_UNSPECIFIED && fact->type() != want) {
        return Err(path, "fact '" + type + "." + fact->name() + "' is not a " +
                             std::string(internal::FactTypeName(want)));
      }
    }
    return found.front().second;
  }

  Status StateRef(const std::string& name, const std::string& path) {
    if (states_.count(name) == 0) return Err(path, "unknown state '" + name + "'");
    return OkStatus();
  }

  Status DeadlineRefs(const google::protobuf::RepeatedPtrField<std::string>& names,
                      const std::string& path) {
    for (int i = 0; i < names.size(); ++i) {
      if (deadline_names_.count(names[i]) == 0) {
        return Err(Idx(path, i), "unknown deadline '" + names[i] + "'");
      }
    }
    return OkStatus();
  }

  Status Roles(const google::protobuf::RepeatedPtrField<std::string>& roles,
               const std::string& path) {
    for (int i = 0; i < roles.size(); ++i) {
      if (!IsKnownRole(roles[i])) return Err(Idx(path, i), "unknown role '" + roles[i] + "'");
    }
    return OkStatus();
  }

  // What can be checked of a case a transition opens without the other workflow; the rest is
  // WorkflowSet::CheckStartCases, once every workflow is loaded.
  Status StartCase(const v1::StartCaseDefinition& sc, const std::string& path) {
    if (sc.workflow().empty()) return Err(path + ".workflow", "is required");
    if (sc.workflow() == def_.name()) {
      return Err(path + ".workflow", "a workflow may not open cases of its own");
    }
    if (sc.event().empty()) return Err(path + ".event", "is required");
    if (sc.case_id_suffix().empty()) return Err(path + ".case_id_suffix", "is required");
    if (sc.case_id_suffix().size() > 32 || sc.case_id_suffix().find('\0') != std::string::npos) {
      return Err(path + ".case_id_suffix", "must be 1 to 32 bytes of text");
    }
    if (sc.source().empty())
      return Err(path + ".source", "is required: every rule names its source");
    if (sc.confidence() == v1::CONFIDENCE_UNSPECIFIED) {
      return Err(path + ".confidence", "is required (v, v1, r or u)");
    }
    if (sc.has_when()) TANDEM_RETURN_IF_ERROR(CheckCondition(sc.when(), path + ".when"));
    std::set<std::string> names;
    for (int i = 0; i < sc.facts_size(); ++i) {
      const auto& m = sc.facts(i);
      const std::string fp = Idx(path + ".facts", i);
      if (m.name().empty()) return Err(fp + ".name", "is required");
      if (!names.insert(m.name()).second)
        return Err(fp + ".name", "'" + m.name() + "' given twice");
      switch (m.value_case()) {
        case v1::FactMapping::kFrom:
          TANDEM_RETURN_IF_ERROR(
              FactRef(m.from(), fp + ".from", v1::FACT_TYPE_UNSPECIFIED).status());
          break;
        case v1::FactMapping::kText:
          break;
        case v1::FactMapping::VALUE_NOT_SET:
          return Err(fp, "needs 'from' (a fact of this case) or 'text' (a fixed value)");
      }
    }
    Workflow::StartCaseRef ref;
    ref.definition = &sc;
    ref.where = lines_.Where(origin_, path);
    for (int i = 0; i < sc.facts_size(); ++i) {
      ref.fact_where.push_back(lines_.Where(origin_, Idx(path + ".facts", i) + ".name"));
    }
    start_cases_.push_back(std::move(ref));
    return OkStatus();
  }

  Status Notify(const v1::NotifyDefinition& n, const std::string& path) {
    if (n.roles().empty()) return Err(path + ".roles", "names no role");
    TANDEM_RETURN_IF_ERROR(Roles(n.roles(), path + ".roles"));
    TANDEM_RETURN_IF_ERROR(Template(n.subject(), path + ".subject"));
    return Template(n.body(), path + ".body");
  }

  Status Template(const std::string& text, const std::string& path) {
    for (std::size_t open = text.find('{'); open != std::string::npos;
         open = text.find('{', open + 1)) {
      const std::size_t close = text.find('}', open);
      if (close == std::string::npos) return Err(path, "has an unclosed '{'");
      const std::string_view name(text.data() + open + 1, close - open - 1);
      if (std::find(kTemplatePlaceholders.begin(), kTemplatePlaceholders.end(), name) ==
          kTemplatePlaceholders.end()) {
        return Err(path, "unknown placeholder {" + std::string(name) + "}");
      }
    }
    return OkStatus();
  }

  const v1::EventTypeDefinition* Event(const std::string& type) const {
    for (const auto& e : def_.events()) {
      if (e.type() == type) return &e;
    }
    return nullptr;
  }

  const v1::WorkflowDefinition& def_;
  const LineMap& lines_;
  std::string_view origin_;
  std::vector<Workflow::StartCaseRef>& start_cases_;
  std::set<std::string> event_types_;
  std::set<std::string> states_;
  std::set<std::string> deadline_names_;
  // The event type of the transition being checked; empty elsewhere.
  std::string context_event_;
};

v1::EventTypeDefinition BuiltInEvent(std::string_view type, std::string_view description) {
  v1::EventTypeDefinition e;
  e.set_type(std::string(type));
  e.set_description(std::string(description));
  return e;
}

}  // namespace

bool IsKnownRole(std::string_view role) {
  return std::find(kRoles.begin(), kRoles.end(), role) != kRoles.end();
}

Result<std::shared_ptr<const Workflow>> Workflow::FromYaml(std::string_view yaml,
                                                           std::string_view origin) {
  std::shared_ptr<Workflow> wf(new Workflow());
  wf->origin_ = std::string(origin);
  TANDEM_ASSIGN_OR_RETURN(LineMap lines, internal::ParseYamlInto(yaml, origin, &wf->def_));
  TANDEM_RETURN_IF_ERROR(wf->Check(lines));
  wf->Index();
  return std::shared_ptr<const Workflow>(std::move(wf));
}

Status Workflow::Check(const LineMap& lines) {
  TANDEM_RETURN_IF_ERROR(Checker(def_, lines, origin_, &start_cases_).Run());
  // Checker verified the edition date parses.
  effective_from_ = *calendar::ParseCivilDay(def_.edition().effective_from());
  edition_label_ =
      def_.edition().name() + " (in force from " + def_.edition().effective_from() + ")";
  leap_ = def_.leap_day_birthday() == v1::LEAP_DAY_BIRTHDAY_FEBRUARY_28
              ? calendar::LeapDayBirthday::kFebruary28
              : calendar::LeapDayBirthday::kMarch1;
  return OkStatus();
}

void Workflow::Index() {
  for (const auto& e : def_.events()) {
    events_.emplace(e.type(), &e);
    if (e.starts_case()) starting_events_.push_back(e.type());
  }
  facts_corrected_ = BuiltInEvent(kFactsCorrected, "corrects recorded facts of the case");
  withdrawn_ = BuiltInEvent(kWithdrawn, "closes the case; open deadlines are cancelled");
  auto* reason = withdrawn_.add_facts();
  reason->set_name("reason");
  reason->set_type(v1::FACT_TYPE_STRING);
  reason->set_required(true);
  events_.emplace(std::string(kFactsCorrected), &facts_corrected_);
  events_.emplace(std::string(kWithdrawn), &withdrawn_);
  for (const auto& s : def_.states()) states_.emplace(s.name(), &s);
  withdrawn_state_.set_name(std::string(kWithdrawnState));
  withdrawn_state_.set_description("withdrawn by a case.withdrawn event");
  withdrawn_state_.set_final(true);
  states_.emplace(std::string(kWithdrawnState), &withdrawn_state_);
  for (const auto& d : def_.deadlines()) deadlines_.emplace(d.name(), &d);
  for (const auto& t : def_.transitions()) transitions_[t.on()].push_back(&t);
  for (const auto& p : def_.parameters()) parameters_.emplace(p.name(), p.default_());
  for (const auto& a : def_.assessments()) IndexAssessmentInputs(a.when());
}

void Workflow::IndexAssessmentInputs(const v1::Condition& c) {
  auto add = [this](const std::string& fact) {
    for (const auto& [type, def] : internal::ResolveFactName(def_, fact)) {
      assessment_inputs_.insert(type);
    }
  };
  switch (c.test_case()) {
    case v1::Condition::kFact:
      add(c.fact().name());
      break;
    case v1::Condition::kAge:
      add(c.age().dob());
      for (const auto& on : c.age().on()) add(on);
      break;
    case v1::Condition::kAll:
      for (const auto& x : c.all().conditions()) IndexAssessmentInputs(x);
      break;
    case v1::Condition::kAny:
      for (const auto& x : c.any().conditions()) IndexAssessmentInputs(x);
      break;
    case v1::Condition::kNot:
      IndexAssessmentInputs(c.not_());
      break;
    case v1::Condition::kParameter:
    case v1::Condition::TEST_NOT_SET:
      break;
  }
}

namespace {

// "15 working days after", "6 calendar months before": an offset in the words of a note.
std::string OffsetWords(const v1::Offset& o) {
  std::string n;
  switch (o.amount_case()) {
    case v1::Offset::kWorkingDays:
      n = std::to_string(o.working_days()) + " working days";
      break;
    case v1::Offset::kCalendarDays:
      n = std::to_string(o.calendar_days()) + " calendar days";
      break;
    case v1::Offset::kMonths:
      n = std::to_string(o.months()) + " calendar months";
      break;
    case v1::Offset::AMOUNT_NOT_SET:
      return "no offset";
  }
  return n + (o.direction() == v1::DIRECTION_BEFORE ? " before" : " after");
}

// Replaces each role of `roles` that `routes` reroutes, keeping each role once.
void Reroute(const std::map<std::string, std::vector<std::string>>& routes,
             google::protobuf::RepeatedPtrField<std::string>* roles) {
  std::vector<std::string> out;
  for (const auto& r : *roles) {
    auto it = routes.find(r);
    for (const auto& to : it == routes.end() ? std::vector<std::string>{r} : it->second) {
      if (std::find(out.begin(), out.end(), to) == out.end()) out.push_back(to);
    }
  }
  roles->Clear();
  for (auto& r : out) roles->Add(std::move(r));
}

}  // namespace

Result<std::shared_ptr<const Workflow>> Workflow::WithOverrides(
    const Workflow& base, std::string_view partnership, const v1::WorkflowOverride& o,
    std::string_view origin, const internal::LineMap& lines, std::string_view path) {
  auto err = [&](const std::string& field, const std::string& what) {
    return InvalidArgumentError(lines.Where(origin, std::string(path) + "." + field) + ": " + what);
  };
  auto at = [&](const std::string& field) {
    return std::string(origin) + ":" +
           std::to_string(lines.LineOf(std::string(path) + "." + field));
  };
  std::shared_ptr<Workflow> wf(new Workflow());
  wf->def_ = base.def_;
  wf->origin_ = base.origin_ + " with " + std::string(origin);
  wf->partnership_ = std::string(partnership);
  const std::string who = "partnership " + std::string(partnership) + ", ";
  v1::WorkflowDefinition& def = wf->def_;

  for (int i = 0; i < o.parameters_size(); ++i) {
    const auto& p = o.parameters(i);
    const std::string f = Idx("parameters", i);
    v1::ParameterDefinition* found = nullptr;
    for (auto& d : *def.mutable_parameters()) {
      if (d.name() == p.name()) found = &d;
    }
    if (found == nullptr) return err(f + ".name", "unknown parameter '" + p.name() + "'");
    if (std::find(found->values().begin(), found->values().end(), p.value()) ==
        found->values().end()) {
      return err(f + ".value",
                 "'" + p.value() + "' is not a value of parameter '" + p.name() + "'");
    }
    wf->overrides_all_.push_back("parameter " + p.name() + " = " + p.value() + " (" + who + at(f) +
                                 "; the workflow says " + found->default_() + ")");
    found->set_default_(p.value());
  }

  std::map<std::string, std::vector<std::string>> routes;
  for (int i = 0; i < o.roles_size(); ++i) {
    const auto& r = o.roles(i);
    const std::string f = Idx("roles", i);
    if (!IsKnownRole(r.role())) return err(f + ".role", "unknown role '" + r.role() + "'");
    if (r.to().empty()) return err(f + ".to", "names no role");
    std::string to_words;
    for (int j = 0; j < r.to_size(); ++j) {
      if (!IsKnownRole(r.to(j))) return err(Idx(f + ".to", j), "unknown role '" + r.to(j) + "'");
      to_words += (j == 0 ? "" : ", ") + r.to(j);
    }
    routes[r.role()] = {r.to().begin(), r.to().end()};
    wf->overrides_all_.push_back("notifications to " + r.role() + " go to " + to_words + " (" +
                                 who + at(f) + ")");
  }

  for (int i = 0; i < o.deadlines_size(); ++i) {
    const auto& d = o.deadlines(i);
    const std::string f = Idx("deadlines", i);
    v1::DeadlineDefinition* found = nullptr;
    for (auto& x : *def.mutable_deadlines()) {
      if (x.name() == d.deadline()) found = &x;
    }
    if (found == nullptr) return err(f + ".deadline", "unknown deadline '" + d.deadline() + "'");
    std::vector<std::string>& notes = wf->overrides_of_[d.deadline()];
    if (d.has_offset()) {
      if (d.offset().amount_case() == v1::Offset::AMOUNT_NOT_SET) {
        return err(f + ".offset", "needs working_days, calendar_days or months");
      }
      notes.push_back("offset " + OffsetWords(d.offset()) + " (" + who + at(f + ".offset") +
                      "; the workflow says " + OffsetWords(found->offset()) + ")");
      *found->mutable_offset() = d.offset();
    }
    for (int j = 0; j < d.variant_offsets_size(); ++j) {
      const auto& v = d.variant_offsets(j);
      const std::string vf = Idx(f + ".variant_offsets", j);
      if (static_cast<int>(v.variant()) >= found->variants_size()) {
        return err(vf + ".variant", "deadline '" + d.deadline() + "' has no variant " +
                                        std::to_string(v.variant()) + " (it has " +
                                        std::to_string(found->variants_size()) + ")");
      }
      if (v.offset().amount_case() == v1::Offset::AMOUNT_NOT_SET) {
        return err(vf + ".offset", "needs working_days, calendar_days or months");
      }
      v1::DeadlineVariant* variant = found->mutable_variants(static_cast<int>(v.variant()));
      const std::string was =
          variant->has_offset() ? OffsetWords(variant->offset()) : OffsetWords(found->offset());
      notes.push_back("variant " + std::to_string(v.variant()) +
                      (variant->note().empty() ? "" : " (" + variant->note() + ")") + " offset " +
                      OffsetWords(v.offset()) + " (" + who + at(vf + ".offset") +
                      "; the workflow says " + was + ")");
      *variant->mutable_offset() = v.offset();
    }
    for (int j = 0; j < d.warnings_size(); ++j) {
      for (int k = 0; k < d.warnings(j).notify_size(); ++k) {
        if (!IsKnownRole(d.warnings(j).notify(k))) {
          return err(Idx(Idx(f + ".warnings", j) + ".notify", k),
                     "unknown role '" + d.warnings(j).notify(k) + "'");
        }
      }
    }
    if (d.warnings_size() > 0) {
      *found->mutable_warnings() = d.warnings();
      notes.push_back("warnings replaced (" + who + at(f + ".warnings") + ")");
    }
    for (int j = 0; j < d.escalations_size(); ++j) {
      for (int k = 0; k < d.escalations(j).notify_size(); ++k) {
        if (!IsKnownRole(d.escalations(j).notify(k))) {
          return err(Idx(Idx(f + ".escalations", j) + ".notify", k),
                     "unknown role '" + d.escalations(j).notify(k) + "'");
        }
      }
    }
    if (d.escalations_size() > 0) {
      *found->mutable_escalations() = d.escalations();
      notes.push_back("escalations replaced (" + who + at(f + ".escalations") + ")");
    }
    if (!d.move_to().empty()) {
      bool known = false;
      for (const auto& st : def.states()) known = known || st.name() == d.move_to();
      if (!known) return err(f + ".move_to", "unknown state '" + d.move_to() + "'");
      notes.push_back("a breach moves the case to " + d.move_to() + " (" + who +
                      at(f + ".move_to") + "; the workflow says " +
                      (found->on_breach().move_to().empty() ? std::string("it stays")
                                                            : found->on_breach().move_to()) +
                      ")");
      found->mutable_on_breach()->set_move_to(d.move_to());
    }
  }

  if (!routes.empty()) {
    for (auto& st : *def.mutable_states()) {
      for (auto& n : *st.mutable_notify()) Reroute(routes, n.mutable_roles());
    }
    for (auto& t : *def.mutable_transitions()) {
      for (auto& n : *t.mutable_notify()) Reroute(routes, n.mutable_roles());
    }
    for (auto& d : *def.mutable_deadlines()) {
      Reroute(routes, d.mutable_on_breach()->mutable_notify());
      for (auto& w : *d.mutable_warnings()) Reroute(routes, w.mutable_notify());
      for (auto& e : *d.mutable_escalations()) Reroute(routes, e.mutable_notify());
    }
  }

  // The changed definition must still hold together (e.g. a breach state that is final).
  const internal::LineMap none;
  TANDEM_RETURN_IF_ERROR(
      wf->Check(none).WithPrefix(std::string(origin) + ": with the " + "partnership's changes"));
  wf->Index();
  return std::shared_ptr<const Workflow>(std::move(wf));
}

std::vector<std::string> Workflow::OverridesOf(std::string_view deadline) const {
  std::vector<std::string> out;
  if (partnership_.empty()) return out;
  auto it = overrides_of_.find(deadline);
  if (it != overrides_of_.end()) out = it->second;
  out.insert(out.end(), overrides_all_.begin(), overrides_all_.end());
  return out;
}

const v1::EventTypeDefinition* Workflow::FindEvent(std::string_view type) const {
  auto it = events_.find(type);
  return it == events_.end() ? nullptr : it->second;
}

const v1::StateDefinition* Workflow::FindState(std::string_view name) const {
  auto it = states_.find(name);
  return it == states_.end() ? nullptr : it->second;
}

const v1::DeadlineDefinition* Workflow::FindDeadline(std::string_view name) const {
  auto it = deadlines_.find(name);
  return it == deadlines_.end() ? nullptr : it->second;
}

const std::vector<const v1::TransitionDefinition*>& Workflow::TransitionsOn(
    std::string_view event_type) const {
  static const std::vector<const v1::TransitionDefinition*> kNone;
  auto it = transitions_.find(event_type);
  return it == transitions_.end() ? kNone : it->second;
}

std::string_view Workflow::Parameter(std::string_view name) const {
  auto it = parameters_.find(name);
  return it == parameters_.end() ? std::string_view() : std::string_view(it->second);
}

Status WorkflowSet::Add(std::shared_ptr<const Workflow> workflow) {
  const Workflow& wf = *workflow;
  for (const auto& existing : all_) {
    if (existing->name() == wf.name() && existing->version() == wf.version()) {
      return AlreadyExistsError(wf.origin() + ": workflow '" + wf.name() + "' version " +
                                std::to_string(wf.version()) + " is already loaded from " +
                                existing->origin());
    }
  }
  for (const auto& e : wf.definition().events()) {
    auto it = owner_.find(e.type());
    if (it != owner_.end() && it->second != wf.name()) {
      return AlreadyExistsError(wf.origin() + ": event type '" + e.type() +
                                "' already belongs to workflow '" + it->second + "'");
    }
  }
  for (const auto& e : wf.definition().events()) owner_[e.type()] = wf.name();
  for (const auto& type : wf.starting_events()) {
    auto& editions = by_start_[type];
    editions.push_back(&wf);
    std::sort(editions.begin(), editions.end(), [](const Workflow* a, const Workflow* b) {
      return a->effective_from() < b->effective_from();
    });
  }
  all_.push_back(std::move(workflow));
  return OkStatus();
}

Status WorkflowSet::CheckStartCases() const {
  for (const auto& wf : all_) {
    for (const Workflow::StartCaseRef& ref : wf->start_cases()) {
      const v1::StartCaseDefinition& sc = *ref.definition;
      const Workflow* target = nullptr;
      for (const auto& other : all_) {
        if (other->name() == sc.workflow()) target = other.get();  // the last added edition
      }
      if (target == nullptr) {
        return InvalidArgumentError(ref.where + ": opens a case of workflow '" + sc.workflow() +
                                    "', which is not loaded");
      }
      const v1::EventTypeDefinition* event = target->FindEvent(sc.event());
      if (event == nullptr || !event->starts_case()) {
        return InvalidArgumentError(ref.where + ": '" + sc.event() +
                                    "' is not an event that starts a case of workflow '" +
                                    sc.workflow() + "'");
      }
      for (int i = 0; i < sc.facts_size(); ++i) {
        const v1::FactMapping& m = sc.facts(i);
        const v1::FactDefinition* fact = internal::FindFactDefinition(*event, m.name());
        if (fact == nullptr) {
          return InvalidArgumentError(ref.fact_where[i] + ": '" + sc.event() + "' has no fact '" +
                                      m.name() + "'");
        }
        if (m.value_case() == v1::FactMapping::kText && !internal::ValueTextFits(*fact, m.text())) {
          return InvalidArgumentError(ref.fact_where[i] + ": '" + m.text() +
                                      "' is not a value of fact '" + m.name() + "' (" +
                                      std::string(internal::FactTypeName(fact->type())) + ")");
        }
      }
    }
  }
  return OkStatus();
}

Result<const Workflow*> WorkflowSet::ForNewCase(const v1::Event& event) const {
  auto it = by_start_.find(event.type());
  if (it == by_start_.end()) {
    return NotFoundError("event type '" + event.type() + "' does not start a case");
  }
  const auto& editions = it->second;
  // Every edition of one workflow names the same trigger fact (its starting event's date of
  // awareness); take it from the newest.
  const std::string& trigger = editions.back()->definition().edition().trigger_fact();
  calendar::CivilDay day{};
  std::string what;
  if (!trigger.empty() && event.facts().fields().count(trigger) != 0) {
    auto parsed = calendar::ParseCivilDay(event.facts().fields().at(trigger).string_value());
    if (!parsed.ok()) {
      return InvalidArgumentError("fact '" + trigger + "' must be a date, YYYY-MM-DD");
    }
    day = *parsed;
    // The trigger date is a fact value, which a rejection reason never carries.
    what = "the date in fact '" + trigger + "'";
  } else {
    TANDEM_ASSIGN_OR_RETURN(day, calendar::LondonDay(calendar::Instant(
                                     std::chrono::seconds(event.occurred_at().seconds()))));
    what = calendar::FormatCivilDay(day) + " (occurred_at)";
  }
  const Workflow* chosen = nullptr;
  for (const Workflow* wf : editions) {
    if (wf->effective_from() <= day) chosen = wf;
  }
  if (chosen == nullptr) {
    return FailedPreconditionError("no edition of workflow '" + editions.front()->name() +
                                   "' was in force on " + what + "; the earliest loaded is " +
                                   editions.front()->edition_label());
  }
  return Find(chosen->name(), chosen->version(), event.partnership());
}

const Workflow* WorkflowSet::Find(std::string_view name, uint32_t version) const {
  for (const auto& wf : all_) {
    if (wf->name() == name && wf->version() == version) return wf.get();
  }
  return nullptr;
}

const Workflow* WorkflowSet::Find(std::string_view name, uint32_t version,
                                  std::string_view partnership) const {
  if (!overrides_.empty()) {
    auto it = overrides_.find(std::make_tuple(partnership, name, version));
    if (it != overrides_.end()) return it->second.get();
  }
  return Find(name, version);
}

Status WorkflowSet::AddPartnership(std::string_view yaml, std::string_view origin) {
  v1::PartnershipOverrides file;
  TANDEM_ASSIGN_OR_RETURN(const LineMap lines, internal::ParseYamlInto(yaml, origin, &file));
  if (file.partnership().empty()) {
    return InvalidArgumentError(lines.Where(origin, "partnership") + ": is required");
  }
  for (int i = 0; i < file.workflows_size(); ++i) {
    const v1::WorkflowOverride& o = file.workflows(i);
    const std::string path = Idx("workflows", i);
    std::vector<const Workflow*> editions;
    for (const auto& wf : all_) {
      if (wf->name() == o.workflow()) editions.push_back(wf.get());
    }
    if (editions.empty()) {
      return InvalidArgumentError(lines.Where(origin, path + ".workflow") + ": unknown workflow '" +
                                  o.workflow() + "'");
    }
    for (const Workflow* base : editions) {
      TANDEM_ASSIGN_OR_RETURN(
          auto changed, Workflow::WithOverrides(*base, file.partnership(), o, origin, lines, path));
      TANDEM_RETURN_IF_ERROR(AddOverride(std::move(changed)));
    }
  }
  return OkStatus();
}

Status WorkflowSet::AddOverride(std::shared_ptr<const Workflow> workflow) {
  const Workflow& wf = *workflow;
  if (Find(wf.name(), wf.version()) == nullptr) {
    return NotFoundError(wf.origin() + ": workflow '" + wf.name() + "' version " +
                         std::to_string(wf.version()) + " is not loaded");
  }
  auto key = std::make_tuple(wf.partnership(), wf.name(), wf.version());
  if (overrides_.count(key) != 0) {
    return AlreadyExistsError(wf.origin() + ": partnership '" + wf.partnership() +
                              "' already overrides workflow '" + wf.name() + "'");
  }
  overrides_.emplace(std::move(key), std::move(workflow));
  return OkStatus();
}

bool WorkflowSet::KnowsEventType(std::string_view event_type) const {
  return event_type == kFactsCorrected || event_type == kWithdrawn ||
         owner_.find(event_type) != owner_.end();
}

}  // namespace tandem::engine
