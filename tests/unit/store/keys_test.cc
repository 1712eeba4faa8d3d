#include "daemon/store/internal/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tandem::store::internal {
namespace {

using std::chrono::seconds;

calendar::Instant Sec(int64_t s) { return calendar::Instant(seconds(s)); }

// RocksDB's default comparator is bytewise, which is std::string's order on unsigned bytes.
bool Less(const std::string& a, const std::string& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return static_cast<unsigned char>(x) < static_cast<unsigned char>(y);
  });
}

// Expects `keys` to be strictly increasing in bytewise order.
void ExpectAscending(const std::vector<std::string>& keys) {
  for (std::size_t i = 1; i < keys.size(); ++i) {
    EXPECT_TRUE(Less(keys[i - 1], keys[i])) << "key " << i - 1 << " does not sort before key " << i;
  }
}

TEST(Keys, SequenceKeysAreBigEndianAndSortNumerically) {
  EXPECT_EQ(SequenceKey(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_EQ(SequenceKey(0x0102030405060708), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  ExpectAscending({SequenceKey(0), SequenceKey(1), SequenceKey(255), SequenceKey(256),
                   SequenceKey(65535), SequenceKey(65536), SequenceKey(uint64_t{1} << 32),
                   SequenceKey(std::numeric_limits<uint64_t>::max())});
  for (uint64_t v :
       {uint64_t{0}, uint64_t{7}, uint64_t{1} << 40, std::numeric_limits<uint64_t>::max()}) {
    EXPECT_EQ(ParseSequenceKey(SequenceKey(v)), v);
  }
  EXPECT_EQ(ParseSequenceKey("short"), std::nullopt);
}

TEST(Keys, EventKeysOfACaseSortInSequenceOrderAndShareItsPrefix) {
  const std::vector<std::string> keys = {EventKey("SI-1", 1), EventKey("SI-1", 2),
                                         EventKey("SI-1", 255), EventKey("SI-1", 256),
                                         EventKey("SI-1", uint64_t{1} << 33)};
  ExpectAscending(keys);
  for (const auto& k : keys) EXPECT_EQ(k.rfind(EventPrefix("SI-1"), 0), 0u);
  EXPECT_EQ(EventKey("SI-1", 2), std::string("SI-1\0\0\0\0\0\0\0\0\x02", 13));
}

TEST(Keys, EventPrefixOfOneCaseMatchesNoOtherCase) {
  // "SI-1" must not see the events of "SI-10" or "SI-1x": the 0 byte ends the case_id.
  for (const std::string other : {"SI-10", "SI-1x", "SI-"}) {
    EXPECT_NE(EventKey(other, 1).rfind(EventPrefix("SI-1"), 0), 0u) << other;
  }
  // And every event of "SI-1" sorts before every event of "SI-10".
  EXPECT_TRUE(Less(EventKey("SI-1", std::numeric_limits<uint64_t>::max()), EventKey("SI-10", 0)));
}

TEST(Keys, TimerKeysSortByDueInstantIncludingBefore1970) {
  ExpectAscending({
      TimerKey(Sec(std::numeric_limits<int64_t>::min()), "a", 1),
      TimerKey(Sec(-86400LL * 365 * 100), "a", 1),
      TimerKey(Sec(-256), "a", 1),
      TimerKey(Sec(-1), "a", 1),
      TimerKey(Sec(0), "a", 1),
      TimerKey(Sec(1), "a", 1),
      TimerKey(Sec(255), "a", 1),
      TimerKey(Sec(256), "a", 1),
      TimerKey(Sec(1799193600), "a", 1),
      TimerKey(Sec(std::numeric_limits<int64_t>::max()), "a", 1),
  });
}

TEST(Keys, TimerKeysDueTogetherSortByCaseThenTimerId) {
  const calendar::Instant due = Sec(1799193600);
  ExpectAscending({TimerKey(due, "A", 1), TimerKey(due, "A", 2), TimerKey(due, "A", 256),
                   TimerKey(due, "AB", 1), TimerKey(due, "B", 1)});
  // The due instant decides before the case does.
  EXPECT_TRUE(Less(TimerKey(due, "Z", 9), TimerKey(due + seconds(1), "A", 1)));
}

TEST(Keys, TimerKeyRoundTripsThroughParse) {
  for (int64_t s : {std::numeric_limits<int64_t>::min(), int64_t{-5}, int64_t{0},
                    int64_t{1799193600}, std::numeric_limits<int64_t>::max()}) {
    const auto parts = ParseTimerKey(TimerKey(Sec(s), "SI-1", 42));
    ASSERT_TRUE(parts.has_value());
    EXPECT_EQ(parts->due, Sec(s));
    EXPECT_EQ(parts->case_id, "SI-1");
    EXPECT_EQ(parts->timer_id, 42u);
  }
  EXPECT_EQ(ParseTimerKey(SequenceKey(1)), std::nullopt);
  EXPECT_EQ(ParseTimerKey(std::string(18, 'x')), std::nullopt);
}

TEST(Keys, TimerKeyAfterBoundsExactlyTheTimersDueByThen) {
  const calendar::Instant until = Sec(1000);
  const std::string bound = TimerKeyAfter(until);
  EXPECT_TRUE(
      Less(TimerKey(until, std::string(200, '\xff'), std::numeric_limits<uint64_t>::max()), bound));
  EXPECT_TRUE(Less(TimerKey(Sec(-1000), "a", 1), bound));
  EXPECT_FALSE(Less(TimerKey(until + seconds(1), "\x01", 0), bound));
}

TEST(Keys, CaseAndDedupeKeysAreTheIdsThemselves) {
  EXPECT_EQ(CaseKey("SI-1"), "SI-1");
  EXPECT_EQ(DedupeKey("e-1"), "e-1");
}

}  // namespace
}  // namespace tandem::store::internal
