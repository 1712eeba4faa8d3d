// Engine benchmarks (run by hand; README records the figures and the command):
//   engine_bench                         all benchmarks
//   engine_bench --write-events=FILE     writes the 10-year national-volume events as JSON lines
//                                        instead, and the workflow they run to FILE.workflows/,
//                                        for timing `tandemctl simulate --workflows` end to end.
// The volume: 500 serious incidents, 3,000 deaths, 20,000 escalations and 5,000 actions a year
// (issue 2), 28,500 cases a year for 10 years. Every case runs the serious_incident workflow for
// now: it has more deadlines per case than the others, so the figure errs on the slow side.
//
// The ten years are 2018-2027, the span of the shipped bank-holiday data, but the shipped
// edition (WT2023) governs only cases from 15 December 2023. A benchmark measures speed, not
// law, so it runs the shipped workflow's rules unchanged with the edition dated from the start
// of the generated years (BenchWorkflow below); without that, six years of cases would be
// refused at their first event and the figure would time rejections. Every benchmark that
// simulates fails if any event is rejected.
#include <benchmark/benchmark.h>
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "daemon/config/loader.h"
#include "daemon/config/shipped.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/simulator.h"

namespace {

using tandem::calendar::CivilDay;
using tandem::calendar::Instant;
namespace v1 = tandem::v1;

constexpr int kFirstYear = 2018;
constexpr int kYears = 10;
constexpr int kCasesPerYear = 500 + 3000 + 20000 + 5000;

struct World {
  std::unique_ptr<tandem::engine::WorkflowSet> workflows;
  std::unique_ptr<tandem::calendar::WorkingDayCalendar> calendar;
  std::unique_ptr<tandem::engine::Engine> engine;
};

constexpr std::string_view kShippedEdition = "effective_from: \"2023-12-15\"";
constexpr std::string_view kBenchEdition = "effective_from: \"2018-01-01\"";

// The shipped serious_incident workflow with its edition dated 2018-01-01 (see the top).
std::string BenchWorkflow() {
  for (const auto& f : tandem::config::ShippedFiles()) {
    if (f.path != "workflows/serious_incident.yaml") continue;
    std::string text(f.text);
    const auto at = text.find(kShippedEdition);
    if (at == std::string::npos) {
      std::fprintf(stderr, "engine_bench: the shipped edition date changed; update the bench\n");
      std::exit(1);
    }
    return text.replace(at, kShippedEdition.size(), kBenchEdition);
  }
  std::fprintf(stderr, "engine_bench: serious_incident.yaml is not shipped\n");
  std::exit(1);
}

World& Shipped() {
  static World* w = [] {
    auto* world = new World;
    world->workflows = std::make_unique<tandem::engine::WorkflowSet>();
    auto wf = tandem::engine::Workflow::FromYaml(BenchWorkflow(), "bench:serious_incident.yaml");
    if (!wf.ok() || !world->workflows->Add(std::move(wf).value()).ok()) {
      std::fprintf(stderr, "engine_bench: cannot load the bench workflow\n");
      std::exit(1);
    }
    world->calendar = std::move(tandem::config::LoadCalendar("")).value();
    world->engine = std::make_unique<tandem::engine::Engine>(*world->workflows, *world->calendar);
    return world;
  }();
  return *w;
}

std::string Day(CivilDay d) { return tandem::calendar::FormatCivilDay(d); }

// One step of a generated case: which event, on which day (offset from awareness).
enum class Step : uint8_t {
  kReported,
  kInformed,
  kNotRequired,
  kSubmitted,
  kRapidReview,
  kPanel,
  kScheduled,
  kSent,
  kPublished
};
struct Planned {
  Step step;
  int16_t day;  // days after awareness
};

// A case's whole script, generated from a seeded RNG: small, so 285,000 of them fit easily.
struct Script {
  uint32_t index;
  CivilDay aware;
  uint8_t decision;  // 0 no_lcspr, 1 lcspr, 2 national review then lcspr
  std::vector<Planned> steps;
};

Script MakeScript(uint32_t index, CivilDay aware, std::mt19937& rng) {
  auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Script s{index, aware, 0, {}};
  s.steps.push_back({Step::kReported, 0});
  s.steps.push_back({Step::kInformed, static_cast<int16_t>(pick(0, 8))});
  if (pick(0, 9) == 0) {
    s.steps.push_back({Step::kNotRequired, static_cast<int16_t>(pick(1, 6))});
    return s;
  }
  const int submitted = pick(1, 10);  // some after the 5 working days
  s.steps.push_back({Step::kSubmitted, static_cast<int16_t>(submitted)});
  const int rr = submitted + pick(12, 28);
  s.steps.push_back({Step::kRapidReview, static_cast<int16_t>(rr)});
  const int r = pick(0, 19);
  s.decision = r < 12 ? 0 : (r < 19 ? 1 : 2);
  if (s.decision == 0) return s;
  int decided = rr;
  if (s.decision == 2) {
    decided = rr + pick(10, 30);
    s.steps.push_back({Step::kPanel, static_cast<int16_t>(decided)});
  }
  const int publication = decided + pick(150, 200);
  s.steps.push_back({Step::kScheduled, static_cast<int16_t>(decided + 120)});
  s.steps.push_back({Step::kSent, static_cast<int16_t>(publication - pick(8, 14))});
  s.steps.push_back({Step::kPublished, static_cast<int16_t>(publication)});
  return s;
}

// Builds step `n` of a case as it happens on `day`, which is its planned day unless an earlier
// step of the case came later (the generator keeps each case's steps in order). The event
// occurs on that day, so that feeding events in generated order and sorting them by occurred_at
// (as tandemctl simulate does) give the same timeline.
v1::Event Render(const Script& s, const Planned& p, std::size_t n, CivilDay day) {
  v1::Event e;
  // Built with append: g++ 12 misreports -Wrestrict on short literal + to_string chains.
  std::string id = "ev-";
  id.append(std::to_string(s.index)).append("-").append(std::to_string(n));
  e.set_event_id(id);
  std::string case_id = "SI-";
  e.set_case_id(case_id.append(std::to_string(s.index)));
  std::string partnership = "p";
  e.set_partnership(partnership.append(std::to_string(s.index % 150)));
  e.mutable_occurred_at()->set_seconds(std::chrono::sys_seconds(day).time_since_epoch().count() +
                                       10 * 3600 + n);
  auto& f = *e.mutable_facts()->mutable_fields();
  switch (p.step) {
    case Step::kReported:
      e.set_type("incident.reported");
      f["became_aware_on"].set_string_value(Day(day));
      f["incident_on"].set_string_value(Day(day - std::chrono::days(2)));
      f["child_dob"].set_string_value(Day(day - std::chrono::days(365 * (1 + s.index % 17))));
      f["outcome"].set_string_value(s.index % 3 == 0 ? "died" : "seriously_harmed");
      f["abuse_or_neglect"].set_string_value(s.index % 5 == 0 ? "known" : "suspected");
      f["location"].set_string_value("in_area");
      break;
    case Step::kInformed:
      e.set_type("partners.informed");
      f["informed_on"].set_string_value(Day(day));
      break;
    case Step::kNotRequired:
      e.set_type("notification.not_required");
      f["decided_on"].set_string_value(Day(day));
      f["rationale"].set_string_value("criteria not met");
      break;
    case Step::kSubmitted:
      e.set_type("notification.submitted");
      f["submitted_on"].set_string_value(Day(day));
      break;
    case Step::kRapidReview:
      e.set_type("rapid_review.submitted");
      f["submitted_on"].set_string_value(Day(day));
      f["decision"].set_string_value(s.decision == 0   ? "no_lcspr"
                                     : s.decision == 1 ? "lcspr"
                                                       : "national_review_recommended");
      break;
    case Step::kPanel:
      e.set_type("panel.review_decision");
      f["decided_on"].set_string_value(Day(day));
      f["decision"].set_string_value("lcspr");
      break;
    case Step::kScheduled:
      e.set_type("lcspr.publication_scheduled");
      f["publication_on"].set_string_value(Day(s.aware + std::chrono::days(s.steps.back().day)));
      break;
    case Step::kSent:
      e.set_type("lcspr.report_sent");
      f["sent_on"].set_string_value(Day(day));
      break;
    case Step::kPublished:
      e.set_type("lcspr.published");
      f["published_on"].set_string_value(Day(day));
      break;
  }
  return e;
}

// Feeds every generated event to `sink` in time order, building each only when it is due.
template <typename Sink>
std::size_t Generate(int cases_per_year, Sink&& sink) {
  std::mt19937 rng(20231215);  // fixed seed: the same ten years every run
  std::vector<Script> scripts;
  scripts.reserve(static_cast<std::size_t>(cases_per_year) * kYears);
  for (int y = 0; y < kYears; ++y) {
    const CivilDay jan1 = std::chrono::year(kFirstYear + y) / 1 / 1;
    for (int i = 0; i < cases_per_year; ++i) {
      const CivilDay aware =
          jan1 + std::chrono::days(std::uniform_int_distribution<int>(0, 364)(rng));
      scripts.push_back(MakeScript(static_cast<uint32_t>(scripts.size()), aware, rng));
    }
  }
  // (day, script, step): the earliest next step of every case.
  using Next = std::tuple<CivilDay, uint32_t, uint32_t>;
  std::priority_queue<Next, std::vector<Next>, std::greater<>> queue;
  for (const auto& s : scripts) queue.push({s.aware, s.index, 0});
  std::size_t events = 0;
  while (!queue.empty()) {
    auto [day, index, step] = queue.top();
    queue.pop();
    const Script& s = scripts[index];
    sink(Render(s, s.steps[step], step, day));
    ++events;
    // Steps of one case are generated in day order except the report to partners, which may
    // come after the notification: keep each case's own order by re-queueing at max(day, next).
    if (step + 1 < s.steps.size()) {
      const CivilDay next = std::max(day, s.aware + std::chrono::days(s.steps[step + 1].day));
      queue.push({next, index, step + 1});
    }
  }
  return events;
}

void BM_ApplyIncidentReported(benchmark::State& state) {
  const auto& engine = *Shipped().engine;
  std::mt19937 rng(1);
  Script s = MakeScript(1, std::chrono::year(2026) / 3 / 2, rng);
  const v1::Event e = Render(s, s.steps[0], 0, s.aware);
  const Instant now = tandem::engine::ToInstant(e.occurred_at());
  for (auto _ : state) {
    auto out = engine.Apply(nullptr, e, now);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_ApplyIncidentReported);

// A case opened by incident.reported on Monday 2 March 2026, and its script.
std::pair<Script, v1::CaseState> OpenedCase() {
  std::mt19937 rng(1);
  Script s = MakeScript(1, std::chrono::year(2026) / 3 / 2, rng);
  const v1::Event first = Render(s, s.steps[0], 0, s.aware);
  auto opened =
      Shipped().engine->Apply(nullptr, first, tandem::engine::ToInstant(first.occurred_at()));
  return {std::move(s), std::move(opened)->state};
}

void BM_ApplyNotificationSubmitted(benchmark::State& state) {
  const auto& engine = *Shipped().engine;
  const auto [s, opened] = OpenedCase();
  v1::Event e = Render(s, {Step::kSubmitted, 3}, 2, s.aware + std::chrono::days(3));
  const Instant now = tandem::engine::ToInstant(e.occurred_at());
  for (auto _ : state) {
    auto out = engine.Apply(&opened, e, now);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_ApplyNotificationSubmitted);

void BM_FireBreachTimer(benchmark::State& state) {
  const auto& engine = *Shipped().engine;
  const auto [s, opened] = OpenedCase();
  v1::Timer breach;
  for (const auto& t : tandem::engine::PendingTimers(opened)) {
    if (t.kind() == v1::TIMER_KIND_BREACH) breach = t;
  }
  const Instant due = tandem::engine::ToInstant(breach.due_at());
  for (auto _ : state) {
    auto out = engine.Fire(opened, breach.id(), due);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_FireBreachTimer);

// Ten years of national volume through the simulator (engine + virtual clock), as
// `tandemctl simulate` runs it, without printing. Timed: publishing every event, firing every
// timer and destroying the effects. Not timed: generating the events (BM_GenerateTenYears times
// that; `tandemctl simulate` reads them from a file instead), and freeing the simulator's cases
// once the last timer has fired.
void BM_SimulateTenYears(benchmark::State& state) {
  const auto& engine = *Shipped().engine;
  const int per_year = static_cast<int>(state.range(0));
  std::size_t events = 0;
  std::size_t effects = 0;
  std::size_t rejected = 0;
  auto count = [&](const tandem::engine::Simulator::Effects& out) {
    effects += out.size();
    for (const auto& e : out) rejected += e.has_rejected() ? 1 : 0;
  };
  for (auto _ : state) {
    state.PauseTiming();
    auto sim = std::make_unique<tandem::engine::Simulator>(engine);
    // Generated a slice at a time, untimed, and published timed: the slices keep memory small
    // and the pause/resume calls few.
    std::vector<v1::Event> slice;
    auto publish_slice = [&] {
      state.ResumeTiming();
      for (auto& e : slice) count(sim->Publish(std::move(e)));
      state.PauseTiming();
      slice.clear();
    };
    events = Generate(per_year, [&](v1::Event e) {
      slice.push_back(std::move(e));
      if (slice.size() == 1 << 16) publish_slice();
    });
    publish_slice();
    state.ResumeTiming();
    bool exhausted = false;
    count(sim->RunOut(100'000'000, &exhausted));
    if (exhausted) state.SkipWithError("timers never ran out");
    state.PauseTiming();
    sim.reset();
    state.ResumeTiming();
  }
  // A rejection is cheap: a run that rejects events does not measure what it claims to.
  if (rejected > 0) state.SkipWithError("events were rejected; the figure would time rejections");
  state.counters["cases"] = static_cast<double>(per_year) * kYears;
  state.counters["events"] = static_cast<double>(events);
  state.counters["effects"] =
      static_cast<double>(effects) / static_cast<double>(state.iterations());
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
// The full volume, and a tenth of it: small enough to count instructions with callgrind, which
// (unlike timings on this shared machine) repeat exactly from run to run:
//   valgrind --tool=callgrind engine_bench --benchmark_filter=SimulateTenYears/2850
BENCHMARK(BM_SimulateTenYears)
    ->Arg(kCasesPerYear)
    ->Arg(kCasesPerYear / 10)
    ->Unit(benchmark::kSecond)
    ->Iterations(1);

// The generator alone, to separate its cost from the engine's in BM_SimulateTenYears.
void BM_GenerateTenYears(benchmark::State& state) {
  std::size_t events = 0;
  for (auto _ : state) {
    events = Generate(kCasesPerYear, [](const v1::Event& e) { benchmark::DoNotOptimize(&e); });
  }
  state.counters["events"] = static_cast<double>(events);
}
BENCHMARK(BM_GenerateTenYears)->Unit(benchmark::kSecond)->Iterations(1);

int WriteEvents(const char* path) {
  const std::filesystem::path dir = std::string(path) + ".workflows";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "serious_incident.yaml") << BenchWorkflow();
  std::FILE* out = std::fopen(path, "w");
  if (out == nullptr) {
    std::perror(path);
    return 1;
  }
  std::string line;
  const std::size_t n = Generate(kCasesPerYear, [&](const v1::Event& e) {
    line.clear();
    // Rendering a message we built cannot fail.
    (void)google::protobuf::util::MessageToJsonString(e, &line);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out);
  });
  std::fclose(out);
  std::fprintf(stderr, "wrote %zu events to %s and the workflow to %s\n", n, path, dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr std::string_view kWrite = "--write-events=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kWrite.data(), kWrite.size()) == 0) {
      return WriteEvents(argv[i] + kWrite.size());
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
