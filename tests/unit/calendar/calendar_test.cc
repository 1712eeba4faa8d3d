#include "daemon/calendar/calendar.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/file.h"
#include "daemon/base/status.h"

namespace tandem::calendar {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

constexpr std::string_view kShippedOrigin = "workflows/calendars/england-and-wales.json";

// The shipped England & Wales data, loaded once per test process. Read-only, so sharing it
// between tests keeps them hermetic.
const Result<WorkingDayCalendar>& Shipped() {
  static const Result<WorkingDayCalendar> calendar = []() -> Result<WorkingDayCalendar> {
    TANDEM_ASSIGN_OR_RETURN(
        std::string text,
        ReadFile(TANDEM_SOURCE_DIR "/workflows/calendars/england-and-wales.json"));
    return WorkingDayCalendar::FromGovUkJson(text, kShippedOrigin);
  }();
  return calendar;
}

// Returns the day in `text`, which the test writes as a valid "YYYY-MM-DD".
CivilDay Day(std::string_view text) {
  Result<CivilDay> day = ParseCivilDay(text);
  EXPECT_TRUE(day.ok()) << text;
  return day.ok() ? *day : CivilDay{};
}

// Results as strings, so a failing comparison prints dates rather than bytes.
std::string Show(const Result<CountedDay>& result) {
  if (!result.ok()) return result.status().ToString();
  return FormatCivilDay(result->day);
}

std::vector<std::string> ShowSkipped(const Result<CountedDay>& result) {
  std::vector<std::string> out;
  if (!result.ok()) return {result.status().ToString()};
  for (const SkippedDay& s : result->skipped) {
    out.push_back(FormatCivilDay(s.day).append(" ").append(s.reason));
  }
  return out;
}

std::string Show(const Result<Instant>& result) {
  if (!result.ok()) return result.status().ToString();
  return FormatInstant(*result);
}

std::string Add(std::string_view start, int n) {
  return Show(Shipped()->AddWorkingDays(Day(start), n));
}

std::string Subtract(std::string_view start, int n) {
  return Show(Shipped()->SubtractWorkingDays(Day(start), n));
}

// Asserts that the shipped calendar loaded; every test using it starts with this.
#define ASSERT_SHIPPED_LOADED() ASSERT_TRUE(Shipped().ok()) << Shipped().status().ToString()

// ---------------------------------------------------------------------------------------------
// The shipped data.

TEST(WorkingDayCalendar, ShippedDataCovers2018To2028) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(FormatCivilDay(Shipped()->first_day()), "2018-01-01");
  EXPECT_EQ(FormatCivilDay(Shipped()->last_day()), "2028-12-31");
  EXPECT_EQ(Shipped()->origin(), kShippedOrigin);
}

TEST(WorkingDayCalendar, ShippedDataHasEachYearsBankHolidays) {
  ASSERT_SHIPPED_LOADED();
  // 8 a year, plus the 2022 Platinum Jubilee and State Funeral and the 2023 coronation.
  const int expected[] = {8, 8, 8, 8, 10, 9, 8, 8, 8, 8, 8};
  for (int year = 2018; year <= 2028; ++year) {
    int holidays = 0;
    for (CivilDay d = CivilDay(std::chrono::year(year) / 1 / 1);
         d <= CivilDay(std::chrono::year(year) / 12 / 31); d += std::chrono::days(1)) {
      if (!Shipped()->HolidayTitle(d).empty()) ++holidays;
    }
    EXPECT_EQ(holidays, expected[year - 2018]) << year;
  }
}

TEST(WorkingDayCalendar, HolidayTitlesComeFromTheData) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2026-12-28")), "Boxing Day");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2028-01-03")), "New Year’s Day");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2020-05-08")), "Early May bank holiday (VE day)");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2022-06-03")), "Platinum Jubilee bank holiday");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2022-09-19")),
            "Bank Holiday for the State Funeral of Queen Elizabeth II");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2023-05-08")),
            "Bank holiday for the coronation of King Charles III");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2028-04-14")), "Good Friday");
  // 26 December 2026 is a Saturday: not a bank holiday itself, its substitute is the 28th.
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2026-12-26")), "");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2026-12-29")), "");
  EXPECT_EQ(Shipped()->HolidayTitle(Day("2017-12-25")), "");
}

TEST(WorkingDayCalendar, IsWorkingDayExcludesWeekendsAndBankHolidays) {
  ASSERT_SHIPPED_LOADED();
  const struct {
    const char* day;
    bool working;
  } cases[] = {
      {"2026-12-24", true},   // Thursday
      {"2026-12-25", false},  // Christmas Day
      {"2026-12-26", false},  // Saturday
      {"2026-12-27", false},  // Sunday
      {"2026-12-28", false},  // Boxing Day (substitute)
      {"2026-12-29", true},   // Tuesday
      {"2027-12-27", false},  // Christmas Day (substitute)
      {"2027-12-28", false},  // Boxing Day (substitute)
      {"2028-01-03", false},  // New Year's Day (substitute)
      {"2028-01-04", true},   // Tuesday
      {"2018-01-01", false},  // first day of the data, New Year's Day
      {"2028-12-29", true},   // last working day of the data
      {"2028-12-31", false},  // last day of the data, Sunday
  };
  for (const auto& c : cases) {
    Result<bool> working = Shipped()->IsWorkingDay(Day(c.day));
    ASSERT_TRUE(working.ok()) << c.day << ": " << working.status().ToString();
    EXPECT_EQ(*working, c.working) << c.day;
  }
}

TEST(WorkingDayCalendar, IsWorkingDayOutsideTheDataIsOutOfRange) {
  ASSERT_SHIPPED_LOADED();
  for (const char* day : {"2017-12-31", "2029-01-01"}) {
    Result<bool> working = Shipped()->IsWorkingDay(Day(day));
    ASSERT_FALSE(working.ok()) << day;
    EXPECT_EQ(working.status().code(), StatusCode::kOutOfRange);
    EXPECT_NE(working.status().message().find(day), std::string::npos)
        << working.status().message();
    EXPECT_NE(working.status().message().find("2028-12-31"), std::string::npos)
        << working.status().message();
  }
}

// ---------------------------------------------------------------------------------------------
// Counting forwards.

// Every start day of December 2026 and December 2027, + 5 working days. Computed by hand from
// the calendar of those months and checked against an independent computation from the statutory
// rules (BFDA 1971 Sch.1 and the usual proclamations) in Python.
TEST(WorkingDayCalendar, FiveWorkingDaysFromEveryDayOfDecember2026And2027) {
  ASSERT_SHIPPED_LOADED();
  const struct {
    const char* start;
    const char* deadline;
  } cases[] = {
      // December 2026: 25 Dec Fri, 28 Dec Mon (Boxing Day substitute), 1 Jan 2027 Fri.
      {"2026-12-01", "2026-12-08"},  // Tue
      {"2026-12-02", "2026-12-09"},  // Wed
      {"2026-12-03", "2026-12-10"},  // Thu
      {"2026-12-04", "2026-12-11"},  // Fri
      {"2026-12-05", "2026-12-11"},  // Sat
      {"2026-12-06", "2026-12-11"},  // Sun
      {"2026-12-07", "2026-12-14"},  // Mon
      {"2026-12-08", "2026-12-15"},  // Tue
      {"2026-12-09", "2026-12-16"},  // Wed
      {"2026-12-10", "2026-12-17"},  // Thu
      {"2026-12-11", "2026-12-18"},  // Fri
      {"2026-12-12", "2026-12-18"},  // Sat
      {"2026-12-13", "2026-12-18"},  // Sun
      {"2026-12-14", "2026-12-21"},  // Mon
      {"2026-12-15", "2026-12-22"},  // Tue
      {"2026-12-16", "2026-12-23"},  // Wed
      {"2026-12-17", "2026-12-24"},  // Thu
      {"2026-12-18", "2026-12-29"},  // Fri: skips 25 and 28
      {"2026-12-19", "2026-12-29"},  // Sat
      {"2026-12-20", "2026-12-29"},  // Sun
      {"2026-12-21", "2026-12-30"},  // Mon
      {"2026-12-22", "2026-12-31"},  // Tue
      {"2026-12-23", "2027-01-04"},  // Wed: skips 25, 28 and 1 Jan
      {"2026-12-24", "2027-01-05"},  // Thu
      {"2026-12-25", "2027-01-05"},  // Fri, Christmas Day
      {"2026-12-26", "2027-01-05"},  // Sat
      {"2026-12-27", "2027-01-05"},  // Sun
      {"2026-12-28", "2027-01-05"},  // Mon, Boxing Day (substitute)
      {"2026-12-29", "2027-01-06"},  // Tue
      {"2026-12-30", "2027-01-07"},  // Wed
      {"2026-12-31", "2027-01-08"},  // Thu
      // December 2027: 27 Dec Mon and 28 Dec Tue (substitutes), 3 Jan 2028 Mon (substitute).
      {"2027-12-01", "2027-12-08"},  // Wed
      {"2027-12-02", "2027-12-09"},  // Thu
      {"2027-12-03", "2027-12-10"},  // Fri
      {"2027-12-04", "2027-12-10"},  // Sat
      {"2027-12-05", "2027-12-10"},  // Sun
      {"2027-12-06", "2027-12-13"},  // Mon
      {"2027-12-07", "2027-12-14"},  // Tue
      {"2027-12-08", "2027-12-15"},  // Wed
      {"2027-12-09", "2027-12-16"},  // Thu
      {"2027-12-10", "2027-12-17"},  // Fri
      {"2027-12-11", "2027-12-17"},  // Sat
      {"2027-12-12", "2027-12-17"},  // Sun
      {"2027-12-13", "2027-12-20"},  // Mon
      {"2027-12-14", "2027-12-21"},  // Tue
      {"2027-12-15", "2027-12-22"},  // Wed
      {"2027-12-16", "2027-12-23"},  // Thu
      {"2027-12-17", "2027-12-24"},  // Fri
      {"2027-12-18", "2027-12-24"},  // Sat
      {"2027-12-19", "2027-12-24"},  // Sun
      {"2027-12-20", "2027-12-29"},  // Mon: skips 27 and 28
      {"2027-12-21", "2027-12-30"},  // Tue
      {"2027-12-22", "2027-12-31"},  // Wed
      {"2027-12-23", "2028-01-04"},  // Thu: skips 27, 28 and 3 Jan
      {"2027-12-24", "2028-01-05"},  // Fri
      {"2027-12-25", "2028-01-05"},  // Sat
      {"2027-12-26", "2028-01-05"},  // Sun
      {"2027-12-27", "2028-01-05"},  // Mon, Christmas Day (substitute)
      {"2027-12-28", "2028-01-05"},  // Tue, Boxing Day (substitute)
      {"2027-12-29", "2028-01-06"},  // Wed
      {"2027-12-30", "2028-01-07"},  // Thu
      {"2027-12-31", "2028-01-10"},  // Fri: skips 3 Jan
  };
  ASSERT_EQ(std::size(cases), 62u);
  for (const auto& c : cases) EXPECT_EQ(Add(c.start, 5), c.deadline) << "start " << c.start;
}

TEST(WorkingDayCalendar, FiveWorkingDaysAcrossEaster) {
  ASSERT_SHIPPED_LOADED();
  // 2025: Good Friday 18 April, Easter Monday 21 April.
  EXPECT_EQ(Add("2025-04-17", 5), "2025-04-28");  // Thursday before Good Friday
  EXPECT_EQ(Add("2025-04-18", 5), "2025-04-28");  // Good Friday
  EXPECT_EQ(Add("2025-04-21", 5), "2025-04-28");  // Easter Monday
  // 2026: Good Friday 3 April, Easter Monday 6 April.
  EXPECT_EQ(Add("2026-04-02", 5), "2026-04-13");
  EXPECT_EQ(Add("2026-04-03", 5), "2026-04-13");
  EXPECT_EQ(Add("2026-04-06", 5), "2026-04-13");
  // 2027: Good Friday 26 March, Easter Monday 29 March.
  EXPECT_EQ(Add("2027-03-25", 5), "2027-04-05");
  EXPECT_EQ(Add("2027-03-26", 5), "2027-04-05");
  EXPECT_EQ(Add("2027-03-29", 5), "2027-04-05");
}

TEST(WorkingDayCalendar, EasterSkipsAreListedWithTheirTitles) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2025-04-17"), 5);
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2025-04-18 Good Friday",
                                     "2025-04-19 Saturday",
                                     "2025-04-20 Sunday",
                                     "2025-04-21 Easter Monday",
                                     "2025-04-26 Saturday",
                                     "2025-04-27 Sunday",
                                 }));
}

// The worked examples of domain notes section 3.1.
TEST(WorkingDayCalendar, MatchesTheDomainNotesWorkedExamples) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(Add("2025-04-17", 5), "2025-04-28");
  EXPECT_EQ(Add("2026-12-24", 5), "2027-01-05");
  EXPECT_EQ(Add("2027-12-23", 5), "2028-01-04");
  EXPECT_EQ(Add("2024-12-20", 15), "2025-01-15");
  EXPECT_EQ(Add("2026-12-18", 15), "2027-01-13");
  EXPECT_EQ(Subtract("2027-12-31", 7), "2027-12-20");
}

TEST(WorkingDayCalendar, SkipsChristmasSubstituteDay) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2026-12-24"), 5);
  EXPECT_EQ(Show(result), "2027-01-05");
  // Strictly between the start and the deadline, in date order, a holiday named by its title.
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2026-12-25 Christmas Day",
                                     "2026-12-26 Saturday",
                                     "2026-12-27 Sunday",
                                     "2026-12-28 Boxing Day",
                                     "2027-01-01 New Year’s Day",
                                     "2027-01-02 Saturday",
                                     "2027-01-03 Sunday",
                                 }));
}

TEST(WorkingDayCalendar, SkipsBothSubstituteDaysAndNewYearSubstitute) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2027-12-23"), 5);
  EXPECT_EQ(Show(result), "2028-01-04");
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2027-12-25 Saturday",
                                     "2027-12-26 Sunday",
                                     "2027-12-27 Christmas Day",
                                     "2027-12-28 Boxing Day",
                                     "2028-01-01 Saturday",
                                     "2028-01-02 Sunday",
                                     "2028-01-03 New Year’s Day",
                                 }));
}

TEST(WorkingDayCalendar, ZeroWorkingDaysIsTheStartDay) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(Add("2026-12-24", 0), "2026-12-24");
  // Day 0 need not be a working day.
  EXPECT_EQ(Add("2026-12-26", 0), "2026-12-26");
  EXPECT_EQ(Add("2026-12-25", 0), "2026-12-25");
  EXPECT_TRUE(ShowSkipped(Shipped()->AddWorkingDays(Day("2026-12-26"), 0)).empty());
  EXPECT_EQ(Subtract("2026-12-27", 0), "2026-12-27");
  EXPECT_TRUE(ShowSkipped(Shipped()->SubtractWorkingDays(Day("2026-12-27"), 0)).empty());
}

TEST(WorkingDayCalendar, StartOnAWeekendCountsFromTheNextWorkingDay) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2026-12-05"), 1);  // Saturday
  EXPECT_EQ(Show(result), "2026-12-07");
  // The start itself is never listed; only the Sunday lies strictly between.
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{"2026-12-06 Sunday"}));
}

TEST(WorkingDayCalendar, StartOnABankHolidayCountsFromTheNextWorkingDay) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2026-12-25"), 1);
  EXPECT_EQ(Show(result), "2026-12-29");
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2026-12-26 Saturday",
                                     "2026-12-27 Sunday",
                                     "2026-12-28 Boxing Day",
                                 }));
}

TEST(WorkingDayCalendar, CountsThroughTheWholeData) {
  ASSERT_SHIPPED_LOADED();
  // 2,779 working days from 2 January 2018 to 29 December 2028, counted independently from
  // the statutory rules; a long count must land exactly on the last working day.
  EXPECT_EQ(Add("2018-01-01", 2779), "2028-12-29");
  EXPECT_EQ(Subtract("2028-12-30", 2779), "2018-01-02");
}

// ---------------------------------------------------------------------------------------------
// Counting backwards.

TEST(WorkingDayCalendar, SubtractsAcrossChristmasSubstituteDays) {
  ASSERT_SHIPPED_LOADED();
  // Publication on Friday 31 December 2027: the report is due 7 working days before.
  Result<CountedDay> result = Shipped()->SubtractWorkingDays(Day("2027-12-31"), 7);
  EXPECT_EQ(Show(result), "2027-12-20");
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2027-12-25 Saturday",
                                     "2027-12-26 Sunday",
                                     "2027-12-27 Christmas Day",
                                     "2027-12-28 Boxing Day",
                                 }));
}

TEST(WorkingDayCalendar, SubtractsAcrossEaster) {
  ASSERT_SHIPPED_LOADED();
  // Thursday 1 April 2027 - 7: 31, 30 March, then Easter Monday 29, the weekend and Good
  // Friday 26 are skipped, then 25, 24, 23, 22 and 19 March.
  Result<CountedDay> result = Shipped()->SubtractWorkingDays(Day("2027-04-01"), 7);
  EXPECT_EQ(Show(result), "2027-03-19");
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2027-03-20 Saturday",
                                     "2027-03-21 Sunday",
                                     "2027-03-26 Good Friday",
                                     "2027-03-27 Saturday",
                                     "2027-03-28 Sunday",
                                     "2027-03-29 Easter Monday",
                                 }));
  // Friday 10 April 2026 - 7 = Monday 30 March 2026 (Easter 3-6 April skipped).
  EXPECT_EQ(Subtract("2026-04-10", 7), "2026-03-30");
}

TEST(WorkingDayCalendar, SubtractDoesNotCountTheStartDay) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(Subtract("2026-12-23", 1), "2026-12-22");
  // From a Sunday: back over Saturday and Christmas Day to Thursday 24 December.
  Result<CountedDay> result = Shipped()->SubtractWorkingDays(Day("2026-12-27"), 1);
  EXPECT_EQ(Show(result), "2026-12-24");
  EXPECT_EQ(ShowSkipped(result), (std::vector<std::string>{
                                     "2026-12-25 Christmas Day",
                                     "2026-12-26 Saturday",
                                 }));
}

// ---------------------------------------------------------------------------------------------
// Past the data.

TEST(WorkingDayCalendar, CountPastTheDataIsOutOfRange) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2028-12-22"), 10);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  const std::string message = result.status().message();
  EXPECT_NE(message.find("2029-01-01"), std::string::npos) << message;  // first day past
  EXPECT_NE(message.find("2028-12-31"), std::string::npos) << message;  // the data's end
  EXPECT_NE(message.find(kShippedOrigin), std::string::npos) << message;
}

TEST(WorkingDayCalendar, CountEndingOnTheLastWorkingDayIsInRange) {
  ASSERT_SHIPPED_LOADED();
  EXPECT_EQ(Add("2028-12-22", 3), "2028-12-29");
  EXPECT_EQ(Add("2028-12-31", 0), "2028-12-31");
  Result<CountedDay> result = Shipped()->AddWorkingDays(Day("2028-12-29"), 1);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("2029-01-01"), std::string::npos);
}

TEST(WorkingDayCalendar, StartOutsideTheDataIsOutOfRange) {
  ASSERT_SHIPPED_LOADED();
  Result<CountedDay> before = Shipped()->AddWorkingDays(Day("2017-12-29"), 1);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(before.status().message().find("2017-12-29"), std::string::npos);
  EXPECT_NE(before.status().message().find("2018-01-01"), std::string::npos);

  Result<CountedDay> after = Shipped()->AddWorkingDays(Day("2029-01-02"), 0);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(after.status().message().find("2029-01-02"), std::string::npos);
  EXPECT_NE(after.status().message().find("2028-12-31"), std::string::npos);

  Result<CountedDay> subtract = Shipped()->SubtractWorkingDays(Day("2029-01-02"), 1);
  ASSERT_FALSE(subtract.ok());
  EXPECT_EQ(subtract.status().code(), StatusCode::kOutOfRange);
}

TEST(WorkingDayCalendar, SubtractBeforeTheDataIsOutOfRange) {
  ASSERT_SHIPPED_LOADED();
  // Wednesday 3 January 2018 - 5: Tuesday 2nd counts, 1st is New Year's Day, then the data ends.
  Result<CountedDay> result = Shipped()->SubtractWorkingDays(Day("2018-01-03"), 5);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("2017-12-31"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("2018-01-01"), std::string::npos)
      << result.status().message();
}

// ---------------------------------------------------------------------------------------------
// Loading.

constexpr std::string_view kSmall = R"({
  "england-and-wales": {
    "division": "england-and-wales",
    "events": [
      {"title": "Christmas Day", "date": "2026-12-25", "notes": "", "bunting": true},
      {"title": "Boxing Day", "date": "2026-12-28", "notes": "Substitute day", "bunting": true}
    ]
  },
  "scotland": {
    "division": "scotland",
    "events": [
      {"title": "St Andrew’s Day", "date": "2026-11-30", "notes": "", "bunting": true}
    ]
  }
})";

TEST(WorkingDayCalendar, LoadsAnOperatorsOwnFileInTheSameShape) {
  Result<WorkingDayCalendar> calendar = WorkingDayCalendar::FromGovUkJson(kSmall, "local.json");
  ASSERT_TRUE(calendar.ok()) << calendar.status().ToString();
  EXPECT_EQ(FormatCivilDay(calendar->first_day()), "2026-01-01");
  EXPECT_EQ(FormatCivilDay(calendar->last_day()), "2026-12-31");
  EXPECT_EQ(calendar->origin(), "local.json");
  EXPECT_EQ(calendar->HolidayTitle(Day("2026-12-28")), "Boxing Day");
  EXPECT_EQ(Show(calendar->AddWorkingDays(Day("2026-12-24"), 1)), "2026-12-29");
}

TEST(WorkingDayCalendar, LoadsTheNamedDivision) {
  Result<WorkingDayCalendar> calendar =
      WorkingDayCalendar::FromGovUkJson(kSmall, "local.json", "scotland");
  ASSERT_TRUE(calendar.ok()) << calendar.status().ToString();
  EXPECT_EQ(calendar->HolidayTitle(Day("2026-11-30")), "St Andrew’s Day");
  EXPECT_EQ(calendar->HolidayTitle(Day("2026-12-25")), "");
}

TEST(WorkingDayCalendar, LoadSortsEventsListedOutOfOrder) {
  constexpr std::string_view kUnsorted = R"({"england-and-wales": {"events": [
      {"title": "Boxing Day", "date": "2027-12-28"},
      {"title": "Christmas Day", "date": "2026-12-25"},
      {"title": "Christmas Day", "date": "2027-12-27"}
  ]}})";
  Result<WorkingDayCalendar> calendar = WorkingDayCalendar::FromGovUkJson(kUnsorted, "x.json");
  ASSERT_TRUE(calendar.ok()) << calendar.status().ToString();
  EXPECT_EQ(Show(calendar->AddWorkingDays(Day("2027-12-24"), 1)), "2027-12-29");
  EXPECT_EQ(calendar->HolidayTitle(Day("2026-12-25")), "Christmas Day");
}

// Returns the status of loading `json` as "x.json".
Status LoadStatus(std::string_view json) {
  return WorkingDayCalendar::FromGovUkJson(json, "x.json").status();
}

TEST(WorkingDayCalendar, MalformedJsonNamesOriginAndLine) {
  constexpr std::string_view kBroken = R"({
  "england-and-wales": {
    "events": [
      {"title": "Christmas Day", "date": "2026-12-25",}
    ]
  }
})";
  Status status = LoadStatus(kBroken);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind("x.json:4: malformed JSON", 0), 0u) << status.message();
}

TEST(WorkingDayCalendar, EmptyTextIsMalformed) {
  Status status = LoadStatus("");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().rfind("x.json:1: malformed JSON", 0), 0u) << status.message();
}

TEST(WorkingDayCalendar, MissingDivisionIsRejected) {
  Status status = WorkingDayCalendar::FromGovUkJson(kSmall, "x.json", "northern-ireland").status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:1: no division 'northern-ireland'"), std::string::npos)
      << status.message();
  EXPECT_EQ(LoadStatus("[]").code(), StatusCode::kInvalidArgument);
}

TEST(WorkingDayCalendar, DivisionWithoutEventsIsRejected) {
  Status status = LoadStatus("{\n\"england-and-wales\": {\"events\": {}}}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:2: division 'england-and-wales' has no 'events' array"),
            std::string::npos)
      << status.message();

  status = LoadStatus("{\"england-and-wales\": {\"events\": []}}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("lists no events"), std::string::npos) << status.message();
}

TEST(WorkingDayCalendar, BadDateNamesTheEventAndLine) {
  constexpr std::string_view kBadDate = R"({
  "england-and-wales": {
    "events": [
      {"title": "Christmas Day", "date": "2026-12-25"},
      {"title": "Boxing Day",
       "date": "2026-02-30"}
    ]
  }
})";
  Status status = LoadStatus(kBadDate);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:5: event 2 has no valid 'date'"), std::string::npos)
      << status.message();

  // A date that is not a string, or no date at all.
  status = LoadStatus(R"({"england-and-wales": {"events": [{"title": "A", "date": 20261225}]}})");
  EXPECT_NE(status.message().find("x.json:1: event 1 has no valid 'date'"), std::string::npos)
      << status.message();
  status = LoadStatus(R"({"england-and-wales": {"events": [{"title": "A"}]}})");
  EXPECT_NE(status.message().find("event 1 has no valid 'date'"), std::string::npos)
      << status.message();
}

TEST(WorkingDayCalendar, MissingTitleIsRejected) {
  Status status = LoadStatus(
      "{\"england-and-wales\": {\"events\": [\n{\"date\": \"2026-12-25\"},\n{\"title\": \"\", "
      "\"date\": \"2026-12-28\"}]}}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:2: event 1 has no valid 'title'"), std::string::npos)
      << status.message();
}

TEST(WorkingDayCalendar, EventThatIsNotAnObjectIsRejected) {
  Status status = LoadStatus(
      "{\"england-and-wales\": {\"events\": [\n{\"title\": \"A\", \"date\": \"2026-12-25\"},\n"
      "\"2026-12-28\"]}}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:3: event 2 is not an object"), std::string::npos)
      << status.message();
}

TEST(WorkingDayCalendar, DuplicateDateIsRejected) {
  constexpr std::string_view kDuplicate = R"({
  "england-and-wales": {
    "events": [
      {"title": "Christmas Day", "date": "2026-12-25"},
      {"title": "Boxing Day", "date": "2026-12-28"},
      {"title": "Christmas Day", "date": "2026-12-25"}
    ]
  }
})";
  Status status = LoadStatus(kDuplicate);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:6: event 3 repeats the date of event 1 (line 4)"),
            std::string::npos)
      << status.message();
}

TEST(WorkingDayCalendar, YearWithNoBankHolidaysIsAGap) {
  constexpr std::string_view kGap = R"({
  "england-and-wales": {
    "events": [
      {"title": "Christmas Day", "date": "2019-12-25"},
      {"title": "Boxing Day", "date": "2019-12-26"},
      {"title": "New Year’s Day", "date": "2021-01-01"}
    ]
  }
})";
  Status status = LoadStatus(kGap);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("x.json:6: no bank holiday in 2020"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("gap"), std::string::npos) << status.message();
}

// ---------------------------------------------------------------------------------------------
// Parsing and formatting.

TEST(ParseCivilDay, AcceptsRealDatesInTheExactForm) {
  Result<CivilDay> leap = ParseCivilDay("2024-02-29");
  ASSERT_TRUE(leap.ok());
  EXPECT_EQ(*leap, CivilDay(std::chrono::year(2024) / 2 / 29));
  Result<CivilDay> day = ParseCivilDay("2026-12-28");
  ASSERT_TRUE(day.ok());
  EXPECT_EQ(*day, CivilDay(std::chrono::year(2026) / 12 / 28));
}

TEST(ParseCivilDay, RejectsAnythingElse) {
  for (std::string_view text :
       {"2026-02-30", "2025-02-29", "2026-13-01", "2026-00-10", "2026-01-00", "2026-2-3", "",
        "2026-02-03T00:00", "2026-02-03 ", " 2026-02-03", "2026/02/03", "+026-02-03", "2026-0a-03",
        "20260203"}) {
    Result<CivilDay> day = ParseCivilDay(text);
    ASSERT_FALSE(day.ok()) << "'" << text << "'";
    EXPECT_EQ(day.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(day.status().message(), "not a date of the form YYYY-MM-DD");
  }
}

TEST(FormatCivilDay, PadsYearMonthAndDay) {
  EXPECT_EQ(FormatCivilDay(CivilDay(std::chrono::year(2027) / 1 / 5)), "2027-01-05");
  EXPECT_EQ(FormatCivilDay(CivilDay(std::chrono::year(999) / 12 / 31)), "0999-12-31");
}

TEST(FormatInstant, WritesUtcWithSeconds) {
  const Instant instant = std::chrono::sys_days(std::chrono::year(2026) / 10 / 25) + hours(23) +
                          std::chrono::minutes(59) + seconds(7);
  EXPECT_EQ(FormatInstant(instant), "2026-10-25T23:59:07Z");
  EXPECT_EQ(FormatInstant(Instant(seconds(0))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatInstant(Instant(seconds(-1))), "1969-12-31T23:59:59Z");
}

TEST(WeekdayName, NamesEveryDayOfAWeek) {
  EXPECT_EQ(WeekdayName(Day("2026-12-24")), "Thursday");
  EXPECT_EQ(WeekdayName(Day("2026-12-25")), "Friday");
  EXPECT_EQ(WeekdayName(Day("2026-12-26")), "Saturday");
  EXPECT_EQ(WeekdayName(Day("2026-12-27")), "Sunday");
  EXPECT_EQ(WeekdayName(Day("2026-12-28")), "Monday");
  EXPECT_EQ(WeekdayName(Day("2026-12-29")), "Tuesday");
  EXPECT_EQ(WeekdayName(Day("2026-12-30")), "Wednesday");
}

// ---------------------------------------------------------------------------------------------
// Months.

std::string ShowMonths(std::string_view start, int months) {
  const MonthResult result = AddMonths(Day(start), months);
  return FormatCivilDay(result.day) + (result.clamped ? " clamped" : "");
}

TEST(AddMonths, ClampsToTheEndOfAShorterMonth) {
  EXPECT_EQ(ShowMonths("2023-08-31", 6), "2024-02-29 clamped");  // leap year
  EXPECT_EQ(ShowMonths("2025-08-31", 6), "2026-02-28 clamped");  // common year
  EXPECT_EQ(ShowMonths("2024-01-31", 1), "2024-02-29 clamped");
  EXPECT_EQ(ShowMonths("2026-01-31", 1), "2026-02-28 clamped");
  EXPECT_EQ(ShowMonths("2026-03-31", 1), "2026-04-30 clamped");
}

TEST(AddMonths, KeepsTheDayWhenItExists) {
  EXPECT_EQ(ShowMonths("2026-06-30", 6), "2026-12-30");
  EXPECT_EQ(ShowMonths("2026-03-15", 6), "2026-09-15");
  EXPECT_EQ(ShowMonths("2026-11-15", 3), "2027-02-15");
  EXPECT_EQ(ShowMonths("2024-02-29", 12), "2025-02-28 clamped");
  EXPECT_EQ(ShowMonths("2024-02-29", 48), "2028-02-29");
  EXPECT_EQ(ShowMonths("2026-05-10", 0), "2026-05-10");
}

TEST(AddMonths, MovesBackForNegativeMonths) {
  EXPECT_EQ(ShowMonths("2026-03-31", -1), "2026-02-28 clamped");
  EXPECT_EQ(ShowMonths("2026-12-31", -6), "2026-06-30 clamped");
  EXPECT_EQ(ShowMonths("2027-01-15", -2), "2026-11-15");
}

// ---------------------------------------------------------------------------------------------
// Ages.

TEST(AgeOn, AgeIsReachedAtTheStartOfTheBirthday) {
  const CivilDay dob = Day("2008-06-15");
  EXPECT_EQ(AgeOn(dob, Day("2026-06-14")), 17);
  EXPECT_EQ(AgeOn(dob, Day("2026-06-15")), 18);
  EXPECT_EQ(AgeOn(dob, Day("2026-06-16")), 18);
  // "Up to and including age 24": under 25 until the day before the 25th birthday.
  EXPECT_EQ(AgeOn(dob, Day("2033-06-14")), 24);
  EXPECT_EQ(AgeOn(dob, Day("2033-06-15")), 25);
  EXPECT_EQ(AgeOn(dob, Day("2033-06-16")), 25);
  EXPECT_EQ(AgeOn(dob, dob), 0);
}

TEST(AgeOn, LeapDayBirthdayIsFirstOfMarchInCommonYearsByDefault) {
  const CivilDay dob = Day("2008-02-29");
  EXPECT_EQ(AgeOn(dob, Day("2026-02-28")), 17);
  EXPECT_EQ(AgeOn(dob, Day("2026-02-28"), LeapDayBirthday::kMarch1), 17);
  EXPECT_EQ(AgeOn(dob, Day("2026-03-01")), 18);
  EXPECT_EQ(AgeOn(dob, Day("2033-02-28")), 24);
  EXPECT_EQ(AgeOn(dob, Day("2033-03-01")), 25);
}

TEST(AgeOn, LeapDayBirthdayCanBeTwentyEighthOfFebruary) {
  const CivilDay dob = Day("2008-02-29");
  EXPECT_EQ(AgeOn(dob, Day("2026-02-27"), LeapDayBirthday::kFebruary28), 17);
  EXPECT_EQ(AgeOn(dob, Day("2026-02-28"), LeapDayBirthday::kFebruary28), 18);
  EXPECT_EQ(AgeOn(dob, Day("2026-03-01"), LeapDayBirthday::kFebruary28), 18);
  EXPECT_EQ(AgeOn(dob, Day("2033-02-28"), LeapDayBirthday::kFebruary28), 25);
}

TEST(AgeOn, LeapDayBirthdayInALeapYearIsTheTwentyNinth) {
  const CivilDay dob = Day("2008-02-29");
  for (LeapDayBirthday rule : {LeapDayBirthday::kMarch1, LeapDayBirthday::kFebruary28}) {
    EXPECT_EQ(AgeOn(dob, Day("2028-02-28"), rule), 19);
    EXPECT_EQ(AgeOn(dob, Day("2028-02-29"), rule), 20);
    EXPECT_EQ(AgeOn(dob, Day("2028-03-01"), rule), 20);
  }
}

TEST(AgeOn, IsNegativeBeforeBirth) {
  EXPECT_LT(AgeOn(Day("2026-06-15"), Day("2026-06-14")), 0);
  EXPECT_LT(AgeOn(Day("2026-06-15"), Day("2025-06-15")), 0);
  EXPECT_LT(AgeOn(Day("2026-01-01"), Day("2025-12-31")), 0);
}

// ---------------------------------------------------------------------------------------------
// Europe/London.

TEST(EndOfLondonDay, FollowsBritishSummerTime) {
  const struct {
    const char* day;
    const char* end;
  } cases[] = {
      {"2026-01-15", "2026-01-16T00:00:00Z"},  // winter: GMT
      {"2026-07-15", "2026-07-15T23:00:00Z"},  // summer: BST
      {"2026-03-28", "2026-03-29T00:00:00Z"},  // the day before BST starts
      {"2026-03-29", "2026-03-29T23:00:00Z"},  // BST starts at 01:00 UTC: a 23-hour day
      {"2026-10-24", "2026-10-24T23:00:00Z"},  // the day before BST ends
      {"2026-10-25", "2026-10-26T00:00:00Z"},  // BST ends at 01:00 UTC: a 25-hour day
      {"2027-03-27", "2027-03-28T00:00:00Z"}, {"2027-03-28", "2027-03-28T23:00:00Z"},
      {"2027-10-30", "2027-10-30T23:00:00Z"}, {"2027-10-31", "2027-11-01T00:00:00Z"},
  };
  for (const auto& c : cases) EXPECT_EQ(Show(EndOfLondonDay(Day(c.day))), c.end) << c.day;
}

TEST(StartOfLondonDay, FollowsBritishSummerTime) {
  EXPECT_EQ(Show(StartOfLondonDay(Day("2026-01-15"))), "2026-01-15T00:00:00Z");
  EXPECT_EQ(Show(StartOfLondonDay(Day("2026-07-15"))), "2026-07-14T23:00:00Z");
  EXPECT_EQ(Show(StartOfLondonDay(Day("2026-03-29"))), "2026-03-29T00:00:00Z");
  EXPECT_EQ(Show(StartOfLondonDay(Day("2026-10-25"))), "2026-10-24T23:00:00Z");
}

TEST(LondonDay, LateEveningUtcInSummerIsTheNextLondonDay) {
  auto at = [](const char* day, int h, int m) {
    return Instant(Day(day)) + hours(h) + std::chrono::minutes(m);
  };
  auto show = [](const Result<CivilDay>& d) {
    return d.ok() ? FormatCivilDay(*d) : d.status().ToString();
  };
  EXPECT_EQ(show(LondonDay(at("2026-07-14", 23, 30))), "2026-07-15");
  EXPECT_EQ(show(LondonDay(at("2026-07-14", 22, 59))), "2026-07-14");
  EXPECT_EQ(show(LondonDay(at("2026-01-15", 23, 30))), "2026-01-15");
  EXPECT_EQ(show(LondonDay(at("2026-03-29", 0, 59))), "2026-03-29");
  EXPECT_EQ(show(LondonDay(at("2026-10-25", 23, 59))), "2026-10-25");
}

TEST(LondonDay, RoundTripsWithStartAndEndOfEveryDay) {
  for (CivilDay day = Day("2026-01-01"); day <= Day("2027-12-31"); day += std::chrono::days(1)) {
    Result<Instant> start = StartOfLondonDay(day);
    Result<Instant> end = EndOfLondonDay(day);
    ASSERT_TRUE(start.ok()) << start.status().ToString();
    ASSERT_TRUE(end.ok()) << end.status().ToString();
    Result<CivilDay> first = LondonDay(*start);
    Result<CivilDay> last = LondonDay(*end - seconds(1));
    Result<CivilDay> next = LondonDay(*end);
    ASSERT_TRUE(first.ok() && last.ok() && next.ok());
    EXPECT_EQ(*first, day) << FormatCivilDay(day);
    EXPECT_EQ(*last, day) << FormatCivilDay(day);
    EXPECT_EQ(*next, day + std::chrono::days(1)) << FormatCivilDay(day);
    const auto length = *end - *start;
    EXPECT_TRUE(length == hours(23) || length == hours(24) || length == hours(25))
        << FormatCivilDay(day);
  }
}

}  // namespace
}  // namespace tandem::calendar
