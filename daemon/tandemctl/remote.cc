#include "daemon/tandemctl/remote.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <zmq.hpp>

#include "daemon/base/file.h"
#include "daemon/calendar/calendar.h"
#include "daemon/engine/engine.h"
#include "daemon/ingest/client.h"
#include "daemon/tandemctl/timeline.h"
#include "proto/tandem/v1/envelope.pb.h"

namespace tandem::tandemctl {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kBadInput = 1;
constexpr int kAnswerWasError = 2;
constexpr int kNoAnswer = 3;

Result<ingest::ClientOptions> ClientOptionsFor(const RemoteOptions& remote) {
  if (!(remote.timeout_seconds > 0)) {
    return InvalidArgumentError("--timeout must be a positive number of seconds");
  }
  ingest::ClientOptions options;
  options.deadline = std::chrono::milliseconds(static_cast<int64_t>(remote.timeout_seconds * 1000));
  // The deadline governs: each attempt waits up to 2.5 s, and attempts go on until it passes.
  options.reply_timeout = std::min(options.deadline, std::chrono::milliseconds(2500));
  options.max_attempts = 1000;
  return options;
}

// One line of protobuf's parse error (it spans lines and points at the column).
std::string OneLine(std::string_view text) {
  std::string why(text);
  for (char& c : why) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  why.erase(std::remove(why.begin(), why.end(), '^'), why.end());
  while (!why.empty() && why.back() == ' ') why.pop_back();
  return why;
}

std::string AckStatusName(v1::AckStatus s) {
  switch (s) {
    case v1::ACK_STATUS_ACCEPTED:
      return "ACCEPTED";
    case v1::ACK_STATUS_DUPLICATE:
      return "DUPLICATE";
    case v1::ACK_STATUS_REJECTED:
      return "REJECTED";
    default:
      return "UNSPECIFIED";
  }
}

std::string DeadlineStatusName(v1::DeadlineStatus s) {
  switch (s) {
    case v1::DEADLINE_STATUS_OPEN:
      return "open";
    case v1::DEADLINE_STATUS_BREACHED:
      return "breached";
    case v1::DEADLINE_STATUS_MET:
      return "met";
    case v1::DEADLINE_STATUS_MET_LATE:
      return "met_late";
    case v1::DEADLINE_STATUS_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

std::string ProtoJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  std::string json;
  // Messages built from parsed replies always print; an error would leave "{}".
  if (!google::protobuf::util::MessageToJsonString(m, &json, print).ok()) return "{}";
  return json;
}

// The explanation of deadline `d` in simulate's JSON form (a `deadline` line's "explanation").
Json ExplanationJson(const v1::DeadlineInstance& d) {
  v1::Effect effect;
  v1::DeadlineSet* set = effect.mutable_deadline();
  set->set_name(d.name());
  set->set_due_on(d.due_on());
  *set->mutable_due_at() = d.due_at();
  *set->mutable_explanation() = d.explanation();
  const Json line = Json::parse(EffectJson(effect), nullptr, /*allow_exceptions=*/false);
  return line.is_object() && line.contains("explanation") ? line["explanation"] : Json::object();
}

std::string SkippedText(const v1::Explanation& x) {
  std::string out;
  for (const auto& s : engine::SkippedDays(x)) {
    if (!out.empty()) out += ", ";
    out += calendar::FormatCivilDay(s.day) + " " + std::string(s.reason);
  }
  return out.empty() ? "none" : out;
}

// Sends `request` and returns the reply, or prints why there is none and returns the exit
// status in `*exit_status`.
std::optional<v1::Reply> Ask(const RemoteOptions& remote, const v1::Request& request,
                             std::FILE* err, int* exit_status) {
  auto options = ClientOptionsFor(remote);
  if (!options.ok()) {
    std::fprintf(err, "tandemctl: %s\n", options.status().message().c_str());
    *exit_status = kBadInput;
    return std::nullopt;
  }
  zmq::context_t context;
  auto client = ingest::Client::Connect(context, remote.endpoint, *options);
  if (!client.ok()) {
    std::fprintf(err, "tandemctl: %s\n", client.status().message().c_str());
    *exit_status = kBadInput;
    return std::nullopt;
  }
  auto reply = client->Call(request);
  if (!reply.ok()) {
    std::fprintf(err, "tandemctl: no answer from %s: %s\n", remote.endpoint.c_str(),
                 reply.status().message().c_str());
    *exit_status = kNoAnswer;
    return std::nullopt;
  }
  if (reply->has_error()) {
    std::fprintf(err, "tandemctl: %s: %s\n", reply->error().code().c_str(),
                 reply->error().message().c_str());
    *exit_status = kAnswerWasError;
    return std::nullopt;
  }
  return std::move(reply).value();
}

}  // namespace

int RunPublish(const PublishOptions& options, std::FILE* out, std::FILE* err) {
  auto client_options = ClientOptionsFor(options.remote);
  if (!client_options.ok()) {
    std::fprintf(err, "tandemctl publish: %s\n", client_options.status().message().c_str());
    return kBadInput;
  }
  Result<std::string> text = [&]() -> Result<std::string> {
    if (options.events != "-") return ReadFile(options.events);
    std::ostringstream buf;
    buf << std::cin.rdbuf();
    return buf.str();
  }();
  if (!text.ok()) {
    std::fprintf(err, "tandemctl publish: %s\n", text.status().message().c_str());
    return kBadInput;
  }
  zmq::context_t context;
  auto client = ingest::Client::Connect(context, options.remote.endpoint, *client_options);
  if (!client.ok()) {
    std::fprintf(err, "tandemctl publish: %s\n", client.status().message().c_str());
    return kBadInput;
  }

  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  int status = 0;
  std::istringstream in(*text);
  std::string raw;
  for (int number = 1; std::getline(in, raw); ++number) {
    if (raw.find_first_not_of(" \t\r") == std::string::npos) continue;
    v1::Request request;
    v1::Event* event = request.mutable_publish()->mutable_event();
    auto parsed = google::protobuf::util::JsonStringToMessage(raw, event, parse);
    if (!parsed.ok()) {
      std::fprintf(out, "%s:%d REJECTED invalid_argument: not a valid event: %s\n",
                   options.events.c_str(), number, OneLine(std::string(parsed.message())).c_str());
      status = std::max(status, kAnswerWasError);
      continue;
    }
    // The event_id is the request_id, so a retry is the same request. An event without a
    // usable id still gets the daemon's answer (REJECTED, naming the field).
    const std::string& id = event->event_id();
    request.set_request_id(!id.empty() && id.size() <= 128 ? id : "line:" + std::to_string(number));
    auto reply = client->Call(request);
    if (!reply.ok()) {
      std::fprintf(err, "tandemctl publish: %s: no answer from %s: %s\n", id.c_str(),
                   options.remote.endpoint.c_str(), reply.status().message().c_str());
      std::fflush(out);
      return kNoAnswer;
    }
    if (!reply->has_ack()) {
      std::fprintf(out, "%s REJECTED %s: %s\n", id.c_str(),
                   reply->has_error() ? reply->error().code().c_str() : "internal",
                   reply->has_error() ? reply->error().message().c_str() : "not an ack");
      status = std::max(status, kAnswerWasError);
      continue;
    }
    const v1::Ack& ack = reply->ack();
    std::string line = id + " " + AckStatusName(ack.status());
    if (ack.status() == v1::ACK_STATUS_DUPLICATE) {
      line += " (first " + AckStatusName(ack.first_status()) + ")";
    }
    if (!ack.code().empty()) line += " " + ack.code() + ": " + ack.reason();
    std::fprintf(out, "%s\n", line.c_str());
    if (ack.status() != v1::ACK_STATUS_ACCEPTED && ack.status() != v1::ACK_STATUS_DUPLICATE) {
      status = std::max(status, kAnswerWasError);
    }
  }
  std::fflush(out);
  return status;
}

int RunCaseShow(const CaseShowOptions& options, std::FILE* out, std::FILE* err) {
  v1::Request request;
  request.set_request_id("case:" + options.case_id.substr(0, 100));
  request.mutable_query_case()->set_case_id(options.case_id);
  int exit_status = 0;
  auto reply = Ask(options.remote, request, err, &exit_status);
  if (!reply.has_value()) return exit_status;
  if (!reply->has_case_view()) {
    std::fprintf(err, "tandemctl case show: unexpected answer\n");
    return kAnswerWasError;
  }
  const v1::CaseView& view = reply->case_view();
  const v1::CaseState& s = view.state();

  if (options.json) {
    Json j;
    j["state"] = Json::parse(ProtoJson(s));
    j["events"] = Json::array();
    for (const auto& e : view.events()) j["events"].push_back(Json::parse(ProtoJson(e)));
    j["timeline"] = Json::array();
    for (const auto& e : view.effects()) j["timeline"].push_back(Json::parse(EffectJson(e)));
    std::fprintf(out, "%s\n", j.dump().c_str());
    return 0;
  }

  std::string text;
  text += "case " + s.case_id() + "  partnership " + s.partnership() + "\n";
  text += "workflow " + s.workflow() + " v" + std::to_string(s.workflow_version()) + ", " +
          s.edition() + "\n";
  text += "state " + s.state() + " since " + s.state_entered_on() +
          (s.closed() ? "  (closed)" : "") + "\n";
  text += "\nfacts (latest of each event type):\n";
  for (const auto& f : s.facts()) {
    text += "  " + f.event_type() + " (" + f.event_id() + "): " + ProtoJson(f.facts()) + "\n";
  }
  text += "\ndeadlines:\n";
  for (const auto& d : s.deadlines()) {
    text += "  " + d.name() + "  due " + d.due_on() + " (" +
            calendar::FormatInstant(engine::ToInstant(d.due_at())) + ")  " +
            DeadlineStatusName(d.status());
    if (!d.met_on().empty()) text += " on " + d.met_on();
    text += "\n";
    const v1::Explanation& x = d.explanation();
    text += "      rule: " + x.rule() + "\n";
    text += "      from: " + x.anchor() + " = " + x.anchor_on() +
            (x.variant().empty() ? "" : "  variant: " + x.variant()) + "\n";
    text += "      skipped: " + SkippedText(x) + "\n";
    text += "      source: " + x.source() + "\n";
  }
  text += "\nevents:\n";
  for (const auto& e : view.events()) {
    text += "  " + calendar::FormatInstant(engine::ToInstant(e.occurred_at())) + "  " +
            e.event_id() + "  " + e.type() + "\n";
  }
  text += "\ntimeline:\n";
  for (const auto& e : view.effects()) text += EffectText(e);
  std::fwrite(text.data(), 1, text.size(), out);
  return 0;
}

int RunDeadlines(const DeadlinesOptions& options, std::FILE* out, std::FILE* err) {
  v1::Request request;
  request.set_request_id("deadlines");
  v1::ListDeadlines* list = request.mutable_list_deadlines();
  list->set_partnership(options.partnership);
  if (options.within >= 0 && options.overdue) {
    std::fprintf(err, "tandemctl deadlines: --within and --overdue exclude each other\n");
    return kBadInput;
  }
  if (options.within >= 0) list->set_within_working_days(static_cast<uint32_t>(options.within));
  if (options.overdue) list->set_overdue_only(true);
  int exit_status = 0;
  auto reply = Ask(options.remote, request, err, &exit_status);
  if (!reply.has_value()) return exit_status;
  if (!reply->has_deadlines()) {
    std::fprintf(err, "tandemctl deadlines: unexpected answer\n");
    return kAnswerWasError;
  }
  std::string text;
  for (const v1::DeadlineEntry& entry : reply->deadlines().deadlines()) {
    const v1::DeadlineInstance& d = entry.deadline();
    const std::string due_at = calendar::FormatInstant(engine::ToInstant(d.due_at()));
    if (options.json) {
      Json j;
      j["case_id"] = entry.case_id();
      j["partnership"] = entry.partnership();
      j["workflow"] = entry.workflow();
      j["state"] = entry.state();
      j["name"] = d.name();
      j["status"] = DeadlineStatusName(d.status());
      j["due"] = d.due_on();
      j["due_at"] = due_at;
      j["explanation"] = ExplanationJson(d);
      text += j.dump() + "\n";
    } else {
      char line[512];
      std::snprintf(line, sizeof line, "%-10s  %-9s  %-20s  %-24s  %s  (%s)\n", d.due_on().c_str(),
                    DeadlineStatusName(d.status()).c_str(), entry.case_id().c_str(),
                    d.name().c_str(), entry.state().c_str(), d.explanation().rule().c_str());
      text += line;
    }
  }
  if (!options.json && reply->deadlines().deadlines_size() == 0) text += "no deadlines\n";
  std::fwrite(text.data(), 1, text.size(), out);
  return 0;
}

namespace {

std::string InstantText(const google::protobuf::Timestamp& t) {
  return t.seconds() == 0 && t.nanos() == 0 ? std::string()
                                            : calendar::FormatInstant(engine::ToInstant(t));
}

// One delivery as a line of `tandemctl outbox`, text or JSON.
std::string DeliveryLine(const v1::OutboxRecord& r, bool parked, bool json) {
  const v1::Effect& effect = r.effect();
  const v1::Notification& n = effect.notification();
  if (json) {
    Json j;
    j["id"] = r.sequence();
    j["state"] = parked ? "parked" : "pending";
    j["channel"] = r.channel();
    j["address"] = r.address();
    j["notification_id"] = n.notification_id();
    j["case_id"] = effect.case_id();
    j["partnership"] = n.partnership();
    j["workflow"] = n.workflow();
    j["kind"] = std::string(engine::NotificationKindName(n.kind()));
    j["roles"] = Json::array();
    for (const std::string& role : n.roles()) j["roles"].push_back(role);
    j["deadline"] = n.deadline();
    j["due_on"] = n.due_on();
    j["attempts"] = r.attempts();
    j["enqueued_at"] = InstantText(r.enqueued_at());
    j["next_attempt_at"] = parked ? "" : InstantText(r.next_attempt_at());
    j["dead_lettered_at"] = InstantText(r.dead_lettered_at());
    j["last_error"] = r.last_error();
    return j.dump() + "\n";
  }
  std::string line =
      std::to_string(r.sequence()) + "  " + (parked ? "parked " : "pending") + "  " +
      (r.channel().empty() ? "-" : r.channel()) + "  " + (r.address().empty() ? "-" : r.address()) +
      "  attempts=" + std::to_string(r.attempts()) + "  " +
      (parked ? "parked " + InstantText(r.dead_lettered_at())
              : "next " + InstantText(r.next_attempt_at())) +
      "  " + effect.case_id() + "  " + std::string(engine::NotificationKindName(n.kind())) + "  " +
      n.notification_id();
  if (!r.last_error().empty()) line += "  (" + r.last_error() + ")";
  return line + "\n";
}

}  // namespace

int RunOutbox(const OutboxOptions& options, std::FILE* out, std::FILE* err) {
  v1::Request request;
  request.set_request_id("outbox");
  request.mutable_list_outbox()->set_parked_only(options.parked_only);
  int exit_status = 0;
  auto reply = Ask(options.remote, request, err, &exit_status);
  if (!reply.has_value()) return exit_status;
  if (!reply->has_outbox()) {
    std::fprintf(err, "tandemctl outbox: unexpected answer\n");
    return kAnswerWasError;
  }
  const v1::OutboxList& list = reply->outbox();
  std::string text;
  for (const v1::OutboxRecord& r : list.pending()) text += DeliveryLine(r, false, options.json);
  for (const v1::OutboxRecord& r : list.parked()) text += DeliveryLine(r, true, options.json);
  if (!options.json && list.pending_size() + list.parked_size() == 0) {
    text += options.parked_only ? "no parked deliveries\n" : "no pending or parked deliveries\n";
  }
  if (!options.json && list.truncated()) text += "(more not shown)\n";
  std::fwrite(text.data(), 1, text.size(), out);
  return 0;
}

int RunOutboxRetry(const OutboxRetryOptions& options, std::FILE* out, std::FILE* err) {
  if (options.delivery_id == 0) {
    std::fprintf(err, "tandemctl outbox retry: the delivery id is a positive number\n");
    return kBadInput;
  }
  v1::Request request;
  request.set_request_id("retry:" + std::to_string(options.delivery_id));
  request.mutable_retry_delivery()->set_delivery_id(options.delivery_id);
  int exit_status = 0;
  auto reply = Ask(options.remote, request, err, &exit_status);
  if (!reply.has_value()) return exit_status;
  if (!reply->has_outbox() || reply->outbox().pending_size() != 1) {
    std::fprintf(err, "tandemctl outbox retry: unexpected answer\n");
    return kAnswerWasError;
  }
  const v1::OutboxRecord& r = reply->outbox().pending(0);
  std::fprintf(out, "%llu re-queued %s %s\n", static_cast<unsigned long long>(r.sequence()),
               r.channel().c_str(), r.effect().notification().notification_id().c_str());
  return 0;
}

}  // namespace tandem::tandemctl
