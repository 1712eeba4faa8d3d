#pragma once
// A change's timer diff as the simulator's timer index needs it: due instants and ids, not the
// Timer messages an Outcome lists. Shared by the engine, which makes the diff, and the
// simulator, which applies it to its index.

#include <cstdint>
#include <vector>

#include "daemon/calendar/calendar.h"

namespace tandem::engine::internal {

struct TimerRef {
  calendar::Instant due;
  uint64_t id;
};

// As Outcome::timers_set and Outcome::timers_cancelled. Owned by its driver, which reuses it
// from change to change (each change sets both lists).
struct TimerDiff {
  std::vector<TimerRef> set;
  std::vector<TimerRef> cancelled;
};

}  // namespace tandem::engine::internal
