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

Json ExplanationJson(const v1::Explanation& x) {
  Json skipped = Json::array();
  for (const auto& s : engine::SkippedDays(x)) {
    skipped.push_back({{"date", calendar::FormatCivilDay(s.day)}, {"reason", s.reason}});
  }
  Json j = {{"rule", x.rule()},           {"anchor", x.anchor()},
            {"anchor_on", x.anchor_on()}, {"skipped", skipped},
            {"clamped", x.clamped()},     {"source", x.source()},
            {"confidence", ConfidenceName(x.confidence())},
            {"edition", x.edition()},     {"calendar", x.calendar()}};
  if (!x.variant().empty()) j["variant"] = x.variant();
  return j;
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
  Json j = {{"kind", Kind(e)}, {"case_id", e.case_id()}, {"at", At(e.at())}, {"cause", e.cause()}};
  switch (e.kind_case()) {
    case v1::Effect::kState:
      j["workflow"] = e.state().workflow();
      j["from"] = e.state().from();
      j["to"] = e.state().to();
      j["final"] = e.state().final();
      break;
    case v1::Effect::kDeadline:
      j["name"] = e.deadline().name();
      j["due"] = e.deadline().due_on();
      j["due_at"] = At(e.deadline().due_at());
      j["recomputed"] = e.deadline().recomputed();
      j["explanation"] = ExplanationJson(e.deadline().explanation());
      break;
    case v1::Effect::kWarning:
      j["name"] = e.warning().name();
      j["due"] = e.warning().due_on();
      j["working_days_before"] = e.warning().working_days_before();
      j["late"] = e.warning().late();
      break;
    case v1::Effect::kBreach:
      j["name"] = e.breach().name();
      j["due"] = e.breach().due_on();
      j["suppressed"] = e.breach().suppressed();
      j["late"] = e.breach().late();
      break;
    case v1::Effect::kMet:
      j["name"] = e.met().name();
      j["due"] = e.met().due_on();
      j["met_on"] = e.met().met_on();
      j["late"] = e.met().late();
      break;
    case v1::Effect::kNotification: {
      const auto& n = e.notification();
      j["notification_id"] = n.notification_id();
      j["notification_kind"] = NotificationKindName(n.kind());
      j["roles"] = Json(std::vector<std::string>(n.roles().begin(), n.roles().end()));
      j["subject"] = n.subject();
      if (!n.deadline().empty()) {
        j["name"] = n.deadline();
        j["due"] = n.due_on();
      }
      break;
    }
    case v1::Effect::kRejected:
      j["event_id"] = e.rejected().event_id();
      j["event_type"] = e.rejected().event_type();
      j["code"] = e.rejected().code();
      j["reason"] = e.rejected().reason();
      break;
    case v1::Effect::kCancelled:
      j["name"] = e.cancelled().name();
      j["due"] = e.cancelled().due_on();
      j["reason"] = e.cancelled().reason();
      break;
    case v1::Effect::kAssessment:
      j["name"] = e.assessment().name();
      j["value"] = e.assessment().value();
      break;
    case v1::Effect::kCorrected:
      j["facts"] = Json(std::vector<std::string>(e.corrected().facts().begin(),
                                                 e.corrected().facts().end()));
      break;
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  return j.dump();
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
             (x.variant().empty() ? "" : "; " + x.variant()) + "\n";
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
    case v1::Effect::KIND_NOT_SET:
      break;
  }
  return head + "\n";
}

std::string MalformedLineJson(const std::string& at, int line, const std::string& reason) {
  Json j = {{"kind", "rejected"}, {"case_id", ""}, {"at", at},     {"cause", ""},
            {"event_id", ""},     {"event_type", ""}, {"code", "invalid_argument"},
            {"reason", reason},   {"line", line}};
  return j.dump();
}

}  // namespace tandem::tandemctl
