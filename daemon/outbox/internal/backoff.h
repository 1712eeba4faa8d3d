#pragma once
// The dispatcher's retry schedule: exponential back-off, capped, with multiplicative jitter.
// Shared by the dispatcher and its tests, which check the bounds over many draws.

#include <chrono>
#include <cstdint>
#include <random>

namespace tandem::outbox::internal {

// Draws the wait before the next attempt. Not thread-safe: owned by the dispatcher's thread.
class Backoff {
 public:
  // `seed` 0 seeds from std::random_device.
  // REQUIRES: 0 <= initial <= max, 0 <= jitter <= 1.
  Backoff(std::chrono::seconds initial, std::chrono::seconds max, double jitter, uint64_t seed);

  // Returns min(max, initial * 2^(attempts-1)) before jitter; `attempts` counts the failed
  // attempt just made. REQUIRES: attempts >= 1.
  std::chrono::seconds Base(uint32_t attempts) const;
  // Returns Base(attempts) scaled by a uniform factor in [1 - jitter, 1 + jitter], rounded to
  // whole seconds, never negative.
  std::chrono::seconds Next(uint32_t attempts);

 private:
  std::chrono::seconds initial_;
  std::chrono::seconds max_;
  double jitter_;
  std::mt19937_64 rng_;
};

}  // namespace tandem::outbox::internal
