#pragma once
// `tandemctl simulate`: runs a file of events (JSON lines, protobuf JSON mapping of
// tandem.v1.Event) through the engine on a virtual clock and prints the timeline.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

namespace tandem::tandemctl {

struct SimulateOptions {
  // The events file; "-" reads standard input.
  std::string events;
  // Fire timers up to the end of this day (YYYY-MM-DD, Europe/London); empty: until none is left.
  std::string until;
  bool json = false;
  // Workflows directory and calendar file; empty: the shipped ones.
  std::filesystem::path workflows;
  std::filesystem::path calendar;
  // Partnerships' own settings (proto/tandem/v1/partnership.proto); empty: none.
  std::filesystem::path partnerships;
};

// Runs the simulation, printing the timeline to `out` and problems to `err`. Returns the exit
// status: 0 when every line was an event (rejected events included); 1 when the workflows,
// calendar or events file cannot be loaded or an option is bad; 2 when some lines are not
// events (each named by line number, the rest still simulated); 3 when timers never run out;
// 4 when a timer could not fire (e.g. a breach moving the case into a state whose deadline lies
// past the calendar's data; each is a `rejected` line, the rest still simulated). With --until,
// events after the end of that day are not applied either.
int RunSimulate(const SimulateOptions& options, std::FILE* out, std::FILE* err);

}  // namespace tandem::tandemctl
