#pragma once
// The statutory calendar: England & Wales working days, calendar-month arithmetic, ages under
// the Family Law Reform Act 1969, and civil days in Europe/London as UTC instants. Pure: it
// reads no clock and no file; the caller passes the bank-holiday data in (DESIGN, "Time").

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace tandem::calendar {

// A civil date (no time of day, no zone).
using CivilDay = std::chrono::sys_days;
// A UTC instant with one-second resolution.
using Instant = std::chrono::sys_seconds;

// Returns the date in `text`, which must be exactly "YYYY-MM-DD" and a real date.
// Returns kInvalidArgument otherwise (the message quotes nothing but the expected form).
Result<CivilDay> ParseCivilDay(std::string_view text);
// Returns "YYYY-MM-DD".
std::string FormatCivilDay(CivilDay day);
// Returns "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatInstant(Instant instant);
// Returns the English weekday name of `day`, e.g. "Saturday".
std::string_view WeekdayName(CivilDay day);

// A day that a working-day count stepped over, and why it is not a working day: "Saturday",
// "Sunday", or the bank holiday's title from the data (e.g. "Christmas Day"). `reason` views
// text owned by whoever made the SkippedDay (the calendar, for a count), which must outlive it:
// a deadline's count steps over several days, and a copy of each reason was a string each.
struct SkippedDay {
  CivilDay day;
  std::string_view reason;
  friend bool operator==(const SkippedDay&, const SkippedDay&) = default;
};

// The result of a working-day count: the day reached and the non-working days passed over
// between the start (exclusive) and that day (exclusive), in date order.
struct CountedDay {
  CivilDay day;
  std::vector<SkippedDay> skipped;
};

// England & Wales working days: every day except Saturdays, Sundays and the bank holidays in
// the data. Immutable after construction; safe to share between threads.
class WorkingDayCalendar {
 public:
  // Builds a calendar from GOV.UK `bank-holidays.json` text (an object whose `division` key,
  // e.g. "england-and-wales", holds {"division": ..., "events": [{"title", "date", "notes",
  // "bunting"}]}). The data covers 1 January of its first year to 31 December of its last.
  // Returns kInvalidArgument, naming `origin` and the line, for malformed JSON, a missing
  // division, an event without a valid date or title, a duplicate date, or a year inside the
  // covered range with no bank holiday at all (a gap in the data).
  // Does not keep references to its arguments.
  static Result<WorkingDayCalendar> FromGovUkJson(std::string_view json, std::string_view origin,
                                                  std::string_view division = "england-and-wales");

  // The first and last days the data covers.
  CivilDay first_day() const { return first_day_; }
  CivilDay last_day() const { return last_day_; }
  // Where the data came from, as given to FromGovUkJson.
  const std::string& origin() const { return origin_; }

  // Returns whether `day` is a working day.
  // Returns kOutOfRange if `day` lies outside [first_day(), last_day()].
  Result<bool> IsWorkingDay(CivilDay day) const;

  // Returns the bank holiday's title if `day` is one in the data, else an empty string.
  std::string_view HolidayTitle(CivilDay day) const;

  // Returns the Nth working day after `start` (day 0 is `start`, which need not be a working
  // day; day 1 is the first working day after it). The deadline is the end of that day.
  // Returns kOutOfRange, naming the first day past the data and the data's last day, if the
  // count runs past the calendar's data or `start` is outside it.
  // REQUIRES: n >= 0.
  Result<CountedDay> AddWorkingDays(CivilDay start, int n) const;

  // Returns the Nth working day before `start` (`start` itself is not counted): e.g. the
  // latest day to send a report that must arrive 7 working days before a publication day.
  // Returns kOutOfRange as AddWorkingDays does, for a count running before the data.
  // REQUIRES: n >= 0.
  Result<CountedDay> SubtractWorkingDays(CivilDay start, int n) const;

 private:
  WorkingDayCalendar() = default;
  // The walk both counts share: `step` is +1 (forward) or -1 (back).
  Result<CountedDay> Count(CivilDay start, int n, int step) const;

  CivilDay first_day_{};
  CivilDay last_day_{};
  std::string origin_;
  std::vector<std::pair<CivilDay, std::string>> holidays_;  // sorted by day
};

// The result of adding calendar months: the day reached, and whether it was clamped to the end
// of a shorter month (31 August + 6 months = 28 or 29 February).
struct MonthResult {
  CivilDay day;
  bool clamped = false;
};

// Returns `start` moved by `months` calendar months (negative moves back), clamped to month end.
MonthResult AddMonths(CivilDay start, int months);

// How a 29 February birthday is kept in a common year. No statute settles it for England
// (domain notes 3.3, [U]); the default keeps the person younger on the borderline day, so the
// under-18 and under-25 tests include it.
enum class LeapDayBirthday {
  kMarch1,
  kFebruary28,
};

// Returns the person's age in whole years on `on` under the Family Law Reform Act 1969 s.9: an
// age is reached at the start of the birthday. A 29 February birthday falls on the day `rule`
// gives in common years. Returns a negative number when `on` is before `dob`.
int AgeOn(CivilDay dob, CivilDay on, LeapDayBirthday rule = LeapDayBirthday::kMarch1);

// Returns the UTC instant at which the civil day `day` ends in Europe/London (midnight at the
// start of the next day, 23:00 UTC the day before during British Summer Time).
// Returns kInternal if the system's tzdata has no Europe/London.
Result<Instant> EndOfLondonDay(CivilDay day);

// Returns the UTC instant at which the civil day `day` starts in Europe/London.
// Returns kInternal if the system's tzdata has no Europe/London.
Result<Instant> StartOfLondonDay(CivilDay day);

// Returns the civil day in Europe/London at the UTC instant `instant`.
// Returns kInternal if the system's tzdata has no Europe/London.
Result<CivilDay> LondonDay(Instant instant);

}  // namespace tandem::calendar
