#include "daemon/outbox/internal/backoff.h"

#include <cmath>

#include "daemon/base/check.h"

namespace tandem::outbox::internal {

Backoff::Backoff(std::chrono::seconds initial, std::chrono::seconds max, double jitter,
                 uint64_t seed)
    : initial_(initial),
      max_(max),
      jitter_(jitter),
      rng_(seed != 0
               ? seed
               : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()) {
  // The dispatcher's options are validated where they are read (config); these are caller bugs.
  TANDEM_CHECK(initial.count() >= 0 && initial <= max);
  TANDEM_CHECK(jitter >= 0.0 && jitter <= 1.0);
}

std::chrono::seconds Backoff::Base(uint32_t attempts) const {
  TANDEM_CHECK(attempts >= 1);  // the dispatcher asks only after a failed attempt
  // Doubling step by step stops at max_, so a large attempt count cannot overflow.
  std::chrono::seconds wait = initial_;
  for (uint32_t i = 1; i < attempts && wait < max_; ++i) {
    wait = wait > max_ / 2 ? max_ : wait * 2;
  }
  return wait < max_ ? wait : max_;
}

std::chrono::seconds Backoff::Next(uint32_t attempts) {
  const std::chrono::seconds base = Base(attempts);
  if (jitter_ == 0.0) return base;
  std::uniform_real_distribution<double> factor(1.0 - jitter_, 1.0 + jitter_);
  const double jittered = std::round(static_cast<double>(base.count()) * factor(rng_));
  return std::chrono::seconds(jittered < 0.0 ? 0
                                             : static_cast<std::chrono::seconds::rep>(jittered));
}

}  // namespace tandem::outbox::internal
