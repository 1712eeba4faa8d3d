#include "daemon/tandemctl/timeline.h"

#include <google/protobuf/util/time_util.h>

#include <nlohmann/json.hpp>

#include "daemon/engine/engine.h"

namespace tandem::tandemctl {
namespace {

using Json = nlohmann::ordered_json;

std::string At(const google::protobuf::Timestamp& ts) {
  return calendar::FormatInstant(engine::ToInstant(ts));
}

std::string_view Kind(const v1::Effect& e) {
  switch (e.kind_case()) {
    case v1::Effect::kState:
      return "state";
    case v1::Effect::kDeadline:
      return "deadline";
    case v1::Effect::kWarning:
      return "warning";
    case v1::Effect::kBreach:
      return "breach";
    case v1::Effect::kMet:
      return "met";
    case v1::Effect::kNotification:
      return "notification";
    case v1::Effect::kRejected:
      return "rejected";
    case v1::Effect::kCancelled:
      return "cancelled";
    case v1::Effect::kAssessment:
      return "assessment";
    case v1::Effect::kCorrected:
      return "corrected";
    case v1::Effect::kCaseStarted:
      return "case_started";
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  return "unknown";
}

std::string_view ConfidenceName(v1::Confidence c) {
  switch (c) {
    case v1::CONFIDENCE_V:
      return "v";
    case v1::CONFIDENCE_V1:
      return "v1";
    case v1::CONFIDENCE_R:
      return "r";
    case v1::CONFIDENCE_U:
      return "u";
    default:
      return "";
  }
}

// One JSON object written field by field, in order: what nlohmann::ordered_json's dump() gives
// for the same fields, without building a tree first (a ten-year timeline has millions of
// lines, and building and freeing the trees was most of simulate's time).
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(*out) { out_ += '{'; }
  ObjectWriter& Str(std::string_view key, std::string_view value) {
    Key(key);
    Quoted(value);
    return *this;
  }
  ObjectWriter& Bool(std::string_view key, bool value) {
    Key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  ObjectWriter& Uint(std::string_view key, uint64_t value) {
    Key(key);
    out_ += std::to_string(value);
    return *this;
  }
  ObjectWriter& StrArray(std::string_view key,
                         const google::protobuf::RepeatedPtrField<std::string>& values) {
    Key(key);
    out_ += '[';
    for (int i = 0; i < values.size(); ++i) {
      if (i > 0) out_ += ',';
      Quoted(values.Get(i));
    }
    out_ += ']';
    return *this;
  }
  // Starts a nested object or array value; the caller writes it, then calls End / ']'.
  std::string& Open(std::string_view key) {
    Key(key);
    return out_;
  }
  void End() { out_ += '}'; }

  // Appends `value` as a JSON string, escaped as nlohmann's dump() escapes it (UTF-8 kept).
  static void Quote(std::string_view value, std::string& out) {
    out += '"';
    for (const char c : value) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[(c >> 4) & 0xF];
            out += kHex[c & 0xF];
          } else {
            out += c;
          }
      }
    }
    out += '"';
  }

 private:
  void Key(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    Quoted(key);
    out_ += ':';
  }
  void Quoted(std::string_view value) { Quote(value, out_); }

  std::string& out_;
  bool first_ = true;
};

void WriteExplanation(const v1::Explanation& x, std::string& out) {
  ObjectWriter j(&out);
  j.Str("rule", x.rule()).Str("anchor", x.anchor()).Str("anchor_on", x.anchor_on());
  std::string& skipped = j.Open("skipped");
  skipped += '[';
  bool first = true;
  for (const auto& s : engine::SkippedDays(x)) {
    if (!first) skipped += ',';
    first = false;
    ObjectWriter day(&skipped);
    day.Str("date", calendar::FormatCivilDay(s.day)).Str("reason", s.reason);
    day.End();
  }
  skipped += ']';
  j.Bool("clamped", x.clamped()).Str("source", x.source());
  j.Str("confidence", ConfidenceName(x.confidence())).Str("edition", x.edition());
  j.Str("calendar", x.calendar());
  if (!x.variant().empty()) j.Str("variant", x.variant());
  if (!x.overrides().empty()) j.StrArray("overrides", x.overrides());
  j.End();
}

// One "partnership: ..." line per override that shaped the deadline.
std::string Overrides(const v1::Explanation& x, const std::string& pad) {
  std::string out;
  for (const auto& o : x.overrides())
    out.append(pad).append("partnership: ").append(o).append("\n");
  return out;
}

std::string Skipped(const v1::Explanation& x) {
  std::string out;
  for (const auto& s : engine::SkippedDays(x)) {
    out.append(out.empty() ? "" : ", ").append(calendar::FormatCivilDay(s.day)).append(" ");
    out.append(s.reason);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

std::string EffectJson(const v1::Effect& e) {
  std::string out;
  out.reserve(256);
  ObjectWriter j(&out);
  j.Str("kind", Kind(e)).Str("case_id", e.case_id()).Str("at", At(e.at()));
  j.Str("cause", e.cause());
  switch (e.kind_case()) {
    case v1::Effect::kState:
      j.Str("workflow", e.state().workflow()).Str("from", e.state().from());
      j.Str("to", e.state().to()).Bool("final", e.state().final());
      break;
    case v1::Effect::kDeadline:
      j.Str("name", e.deadline().name()).Str("due", e.deadline().due_on());
      j.Str("due_at", At(e.deadline().due_at())).Bool("recomputed", e.deadline().recomputed());
      WriteExplanation(e.deadline().explanation(), j.Open("explanation"));
      break;
    case v1::Effect::kWarning:
      j.Str("name", e.warning().name()).Str("due", e.warning().due_on());
      j.Uint("working_days_before", e.warning().working_days_before());
      j.Bool("late", e.warning().late());
      break;
    case v1::Effect::kBreach:
      j.Str("name", e.breach().name()).Str("due", e.breach().due_on());
      j.Bool("suppressed", e.breach().suppressed()).Bool("late", e.breach().late());
      break;
    case v1::Effect::kMet:
      j.Str("name", e.met().name()).Str("due", e.met().due_on());
      j.Str("met_on", e.met().met_on()).Bool("late", e.met().late());
      break;
    case v1::Effect::kNotification: {
      const auto& n = e.notification();
      j.Str("notification_id", n.notification_id());
      j.Str("notification_kind", engine::NotificationKindName(n.kind()));
      j.StrArray("roles", n.roles()).Str("subject", n.subject());
      if (!n.deadline().empty()) j.Str("name", n.deadline()).Str("due", n.due_on());
      break;
    }
    case v1::Effect::kRejected:
      j.Str("event_id", e.rejected().event_id()).Str("event_type", e.rejected().event_type());
      j.Str("code", e.rejected().code()).Str("reason", e.rejected().reason());
      break;
    case v1::Effect::kCancelled:
      j.Str("name", e.cancelled().name()).Str("due", e.cancelled().due_on());
      j.Str("reason", e.cancelled().reason());
      break;
    case v1::Effect::kAssessment:
      j.Str("name", e.assessment().name()).Bool("value", e.assessment().value());
      break;
    case v1::Effect::kCorrected:
      j.StrArray("facts", e.corrected().facts());
      break;
    case v1::Effect::kCaseStarted:
      j.Str("workflow", e.case_started().workflow());
      j.Str("started_case_id", e.case_started().case_id());
      j.Str("event_id", e.case_started().event().event_id());
      j.Str("event_type", e.case_started().event().type());
      break;
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  j.End();
  return out;
}

std::string EffectText(const v1::Effect& e) {
  std::string head = At(e.at()) + "  " + e.case_id() + "  ";
  std::string kind(Kind(e));
  kind.resize(13, ' ');
  head += kind;
  switch (e.kind_case()) {
    case v1::Effect::kState:
      return head + (e.state().from().empty() ? "opened in " : e.state().from() + " -> ") +
             e.state().to() + (e.state().final() ? " (closed)" : "") + "\n";
    case v1::Effect::kDeadline: {
      const auto& d = e.deadline();
      const auto& x = d.explanation();
      const std::string pad(head.size(), ' ');
      return head + d.name() + " due " + d.due_on() + (d.recomputed() ? " (recomputed)" : "") +
             "\n" + pad + "rule: " + x.rule() + ", day 0 = " + x.anchor_on() + "\n" + pad +
             "skipped: " + Skipped(x) + "\n" + pad + "source: " + x.source() + " [" +
             std::string(ConfidenceName(x.confidence())) + "], " + x.edition() +
             (x.variant().empty() ? "" : "; " + x.variant()) + "\n" + Overrides(x, pad);
    }
    case v1::Effect::kWarning:
      return head + e.warning().name() + " due " + e.warning().due_on() + " (" +
             std::to_string(e.warning().working_days_before()) + " working days before)" +
             (e.warning().late() ? " late" : "") + "\n";
    case v1::Effect::kBreach:
      return head + e.breach().name() + " was due " + e.breach().due_on() +
             (e.breach().suppressed() ? " (suppressed)" : "") + (e.breach().late() ? " late" : "") +
             "\n";
    case v1::Effect::kMet:
      return head + e.met().name() + " met on " + e.met().met_on() + ", due " + e.met().due_on() +
             (e.met().late() ? " LATE" : " on time") + "\n";
    case v1::Effect::kNotification: {
      std::string roles;
      for (const auto& r : e.notification().roles()) roles += (roles.empty() ? "" : ",") + r;
      return head + "to " + roles + ": " + e.notification().subject() + "\n";
    }
    case v1::Effect::kRejected:
      return head + e.rejected().event_id() + " (" + e.rejected().event_type() +
             "): " + e.rejected().reason() + "\n";
    case v1::Effect::kCancelled:
      return head + e.cancelled().name() + " (due " + e.cancelled().due_on() +
             "): " + e.cancelled().reason() + "\n";
    case v1::Effect::kAssessment:
      return head + e.assessment().name() + " = " + (e.assessment().value() ? "true" : "false") +
             "\n";
    case v1::Effect::kCorrected: {
      std::string facts;
      for (const auto& f : e.corrected().facts()) facts += (facts.empty() ? "" : ", ") + f;
      return head + facts + "\n";
    }
    case v1::Effect::kCaseStarted:
      return head + e.case_started().workflow() + " case " + e.case_started().case_id() + " (" +
             e.case_started().event().type() + ")\n";
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  return head + "\n";
}

std::string MalformedLineJson(const std::string& at, int line, const std::string& reason) {
  Json j = {{"kind", "rejected"},
            {"case_id", ""},
            {"at", at},
            {"cause", ""},
            {"event_id", ""},
            {"event_type", ""},
            {"code", "invalid_argument"},
            {"reason", reason},
            {"line", line}};
  return j.dump();
}

}  // namespace tandem::tandemctl
