#include "daemon/outbox/internal/backoff.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tandem::outbox::internal {
namespace {

using std::chrono::seconds;

TEST(Backoff, DoublesFromTheInitialWaitUpToTheCap) {
  const Backoff backoff(seconds(5), seconds(3600), 0.0, 1);
  EXPECT_EQ(backoff.Base(1), seconds(5));
  EXPECT_EQ(backoff.Base(2), seconds(10));
  EXPECT_EQ(backoff.Base(3), seconds(20));
  EXPECT_EQ(backoff.Base(10), seconds(2560));
  EXPECT_EQ(backoff.Base(11), seconds(3600));
  // Large counts stay at the cap rather than overflowing.
  EXPECT_EQ(backoff.Base(64), seconds(3600));
  EXPECT_EQ(backoff.Base(UINT32_MAX), seconds(3600));
}

TEST(Backoff, CapBelowTheNextDoublingIsReachedExactly) {
  const Backoff backoff(seconds(5), seconds(12), 0.0, 1);
  EXPECT_EQ(backoff.Base(2), seconds(10));
  EXPECT_EQ(backoff.Base(3), seconds(12));
  EXPECT_EQ(backoff.Base(4), seconds(12));
}

TEST(Backoff, ZeroInitialWaitRetriesAtOnce) {
  Backoff backoff(seconds(0), seconds(60), 0.5, 1);
  EXPECT_EQ(backoff.Base(5), seconds(0));
  EXPECT_EQ(backoff.Next(5), seconds(0));
}

TEST(Backoff, WithoutJitterTheWaitIsTheBase) {
  Backoff backoff(seconds(5), seconds(3600), 0.0, 99);
  for (uint32_t attempts = 1; attempts <= 12; ++attempts) {
    EXPECT_EQ(backoff.Next(attempts), backoff.Base(attempts)) << attempts;
  }
}

TEST(Backoff, JitterStaysWithinItsFractionAndSpreadsTheWaits) {
  constexpr double kJitter = 0.2;
  Backoff backoff(seconds(5), seconds(3600), kJitter, 7);
  for (uint32_t attempts = 1; attempts <= 12; ++attempts) {
    const double base = static_cast<double>(backoff.Base(attempts).count());
    const auto low = static_cast<int64_t>(std::floor(base * (1 - kJitter)));
    const auto high = static_cast<int64_t>(std::ceil(base * (1 + kJitter)));
    int64_t min = INT64_MAX;
    int64_t max = INT64_MIN;
    for (int draw = 0; draw < 2000; ++draw) {
      const int64_t wait = backoff.Next(attempts).count();
      min = std::min(min, wait);
      max = std::max(max, wait);
    }
    EXPECT_GE(min, low) << attempts;
    EXPECT_LE(max, high) << attempts;
    // Jitter actually spreads the waits (from 20 s up, whole seconds can show it).
    if (base >= 20) {
      EXPECT_LT(min, static_cast<int64_t>(base)) << attempts;
      EXPECT_GT(max, static_cast<int64_t>(base)) << attempts;
    }
  }
}

TEST(Backoff, TheSameSeedGivesTheSameWaits) {
  auto draws = [](uint64_t seed) {
    Backoff backoff(seconds(100), seconds(100000), 0.5, seed);
    std::vector<int64_t> out;
    for (uint32_t attempts = 1; attempts <= 20; ++attempts) {
      out.push_back(backoff.Next(attempts).count());
    }
    return out;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
}

}  // namespace
}  // namespace tandem::outbox::internal
