#include "daemon/tandemctl/simulate.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <vector>

#include "daemon/base/file.h"
#include "daemon/config/loader.h"
#include "daemon/engine/simulator.h"
#include "daemon/tandemctl/timeline.h"

namespace tandem::tandemctl {
namespace {

// More timer firings than any real timeline has: a workflow whose timers never run out.
constexpr std::size_t kMaxTimers = 10'000'000;

struct Malformed {
  int number;
  std::string reason;
};

Result<std::string> ReadEvents(const std::string& path) {
  if (path != "-") return ReadFile(path);
  std::ostringstream buf;
  buf << std::cin.rdbuf();
  return buf.str();
}

}  // namespace

int RunSimulate(const SimulateOptions& options, std::FILE* out, std::FILE* err) {
  auto fail = [err](const Status& s) {
    std::fprintf(err, "tandemctl simulate: %s\n", s.message().c_str());
    return 1;
  };
  auto workflows = config::LoadWorkflows(options.workflows);
  if (!workflows.ok()) return fail(workflows.status());
  if (const Status st = config::LoadPartnerships(options.partnerships, workflows->get());
      !st.ok()) {
    return fail(st);
  }
  auto cal = config::LoadCalendar(options.calendar);
  if (!cal.ok()) return fail(cal.status());
  std::optional<calendar::Instant> until;
  if (!options.until.empty()) {
    auto day = calendar::ParseCivilDay(options.until);
    if (!day.ok()) return fail(InvalidArgumentError("--until must be a date, YYYY-MM-DD"));
    auto end = calendar::EndOfLondonDay(*day);
    if (!end.ok()) return fail(end.status());
    until = *end;
  }
  auto text = ReadEvents(options.events);
  if (!text.ok()) return fail(text.status());

  std::vector<v1::Event> events;
  std::vector<Malformed> malformed;
  std::istringstream in(*text);
  std::string raw;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  for (int number = 1; std::getline(in, raw); ++number) {
    if (raw.find_first_not_of(" \t\r") == std::string::npos) continue;
    v1::Event event;
    auto st = google::protobuf::util::JsonStringToMessage(raw, &event, parse);
    if (!st.ok()) {
      // protobuf's message spans lines (it points at the offending column); keep one line.
      std::string why(st.message());
      for (char& c : why) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      why.erase(std::remove(why.begin(), why.end(), '^'), why.end());
      while (!why.empty() && why.back() == ' ') why.pop_back();
      malformed.push_back({number, "not a valid event: " + why});
      continue;
    }
    events.push_back(std::move(event));
  }
  // Each event happens at its occurred_at: keep file order among equal instants.
  std::stable_sort(events.begin(), events.end(), [](const v1::Event& a, const v1::Event& b) {
    return engine::ToInstant(a.occurred_at()) < engine::ToInstant(b.occurred_at());
  });

  std::string buffer;
  auto flush = [&]() {
    std::fwrite(buffer.data(), 1, buffer.size(), out);
    buffer.clear();
  };
  auto print = [&](const engine::Simulator::Effects& effects) {
    for (const auto& e : effects) {
      if (options.json) {
        buffer += EffectJson(e);
        buffer += '\n';
      } else {
        buffer += EffectText(e);
      }
    }
    if (buffer.size() > (1 << 16)) flush();
  };

  const std::string start =
      events.empty() ? calendar::FormatInstant(calendar::Instant{})
                     : calendar::FormatInstant(engine::ToInstant(events.front().occurred_at()));
  for (const auto& m : malformed) {
    const std::string reason = "line " + std::to_string(m.number) + ": " + m.reason;
    std::fprintf(err, "%s:%d: %s\n", options.events.c_str(), m.number, m.reason.c_str());
    if (options.json) {
      buffer += MalformedLineJson(start, m.number, reason) + "\n";
    } else {
      buffer += start + "  (line " + std::to_string(m.number) + ")  rejected     " + reason + "\n";
    }
  }

  engine::Engine engine(**workflows, **cal);
  engine::Simulator sim(engine);
  std::size_t beyond = 0;
  for (auto& event : events) {
    // --until ends the simulated time: later events are not applied either.
    if (until && engine::ToInstant(event.occurred_at()) > *until) {
      ++beyond;
      continue;
    }
    print(sim.Publish(std::move(event)));
  }
  if (beyond > 0) {
    std::fprintf(err, "tandemctl simulate: %zu events after --until %s not applied\n", beyond,
                 options.until.c_str());
  }
  int status = malformed.empty() ? 0 : 2;
  if (until) {
    print(sim.AdvanceTo(*until));
  } else {
    bool exhausted = false;
    print(sim.RunOut(kMaxTimers, &exhausted));
    if (exhausted) {
      std::fprintf(err, "tandemctl simulate: timers still pending after %zu firings\n", kMaxTimers);
      status = 3;
    }
  }
  if (sim.failed_timers() > 0) {
    std::fprintf(err, "tandemctl simulate: %zu timers could not fire (see the rejected lines)\n",
                 sim.failed_timers());
    if (status == 0) status = 4;
  }
  flush();
  std::fflush(out);
  return status;
}

}  // namespace tandem::tandemctl
