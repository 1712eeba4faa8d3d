#include "daemon/calendar/calendar.h"

#include <date/tz.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace tandem::calendar {
namespace {

using std::chrono::days;
using std::chrono::year_month_day;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Quote(std::string_view text) {
  // Appended rather than "'" + std::string(text): g++ 12 misreports -Wrestrict on that at -O2.
  std::string out;
  out.reserve(text.size() + 2);
  out.append(1, '\'').append(text).append(1, '\'');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Europe/London.

// The zone, looked up once. A missing zone is an environment failure (no tzdata package), so it
// is reported to every caller as kInternal rather than checked; the lookup is not retried
// because tzdata does not appear while the daemon runs.
struct LondonZone {
  const date::time_zone* zone = nullptr;
  std::string error;
};

LondonZone LocateLondon() {
  LondonZone result;
  try {
    result.zone = date::locate_zone("Europe/London");
  } catch (const std::exception& e) {
    // date throws std::runtime_error for a missing zone or unreadable tzdata; this adapter is
    // where that exception stops (CONVENTIONS C5).
    result.error = std::string("time zone Europe/London is unavailable: ") + e.what();
  }
  return result;
}

Result<const date::time_zone*> London() {
  // A function-local static: initialised once, thread-safe (C++11 magic statics).
  static const LondonZone kLondon = LocateLondon();
  if (kLondon.zone == nullptr) return InternalError(kLondon.error);
  return kLondon.zone;
}

// std::chrono::days (libstdc++, 64-bit count) and date::days (int count) are distinct types
// with the same period; these convert between the two libraries' day points.
date::local_days ToDateLocalDays(CivilDay day) {
  return date::local_days(std::chrono::duration_cast<date::days>(day.time_since_epoch()));
}

CivilDay FromDateLocalDays(date::local_days day) {
  return CivilDay(std::chrono::duration_cast<days>(day.time_since_epoch()));
}

// ---------------------------------------------------------------------------------------------
// Loader helpers.

// Returns the 1-based line of the byte at `offset` (0-based) in `text`.
int LineAt(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + offset, '\n'));
}

// A pointer into the JSON text that publishes how far the parser has read. nlohmann_json 3.11
// reports no positions for parsed values, only for syntax errors; reading through this iterator
// lets the parse callback note where each event starts, so that later validation errors can
// name a line.
class CountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator(const char* p, const char* base, std::size_t* consumed)
      : p_(p), base_(base), consumed_(consumed) {}

  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    *consumed_ = static_cast<std::size_t>(p_ - base_);
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  friend bool operator==(const CountingIterator& a, const CountingIterator& b) {
    return a.p_ == b.p_;
  }

 private:
  const char* p_;
  const char* base_;
  std::size_t* consumed_;
};

// Returns a nlohmann exception message without its "[json.exception.<id>] " tag and, for a
// parse error, without its "parse error at line L, column C: " preamble: the loader reports the
// line itself, in the "origin:line: " form every tandem loader uses.
std::string JsonErrorDetail(const char* what) {
  std::string_view text(what);
  if (text.starts_with("[json.exception.")) {
    const std::size_t tag_end = text.find("] ");
    if (tag_end != std::string_view::npos) text.remove_prefix(tag_end + 2);
  }
  if (text.starts_with("parse error")) {
    const std::size_t at = text.find(": ");
    if (at != std::string_view::npos) text.remove_prefix(at + 2);
  }
  return std::string(text);
}

// Where, in the text, the parts the loader reports on start. Filled by the parse callback.
struct SourceLines {
  int division = 1;         // the division's object
  std::vector<int> events;  // each element of the division's "events" array
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Civil days and instants.

Result<CivilDay> ParseCivilDay(std::string_view text) {
  // Exactly "YYYY-MM-DD": no signs, no spaces, no time part, two-digit month and day.
  auto bad = [] { return InvalidArgumentError("not a date of the form YYYY-MM-DD"); };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(text[i])) return bad();
  }
  auto number = [&](int from, int len) {
    int n = 0;
    for (int i = from; i < from + len; ++i) n = n * 10 + (text[i] - '0');
    return n;
  };
  const year_month_day ymd{std::chrono::year(number(0, 4)),
                           std::chrono::month(static_cast<unsigned>(number(5, 2))),
                           std::chrono::day(static_cast<unsigned>(number(8, 2)))};
  if (!ymd.ok()) return bad();  // e.g. 2026-02-30, month 13
  return CivilDay(ymd);
}

std::string FormatCivilDay(CivilDay day) {
  const year_month_day ymd(day);
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", year, static_cast<unsigned>(ymd.month()),
                  static_cast<unsigned>(ymd.day()));
    return buf;
  }
  // By hand: every deadline formats several days, and snprintf dominated the engine's profile.
  const unsigned m = static_cast<unsigned>(ymd.month());
  const unsigned d = static_cast<unsigned>(ymd.day());
  const unsigned y = static_cast<unsigned>(year);
  std::string out(10, '-');
  out[0] = static_cast<char>('0' + y / 1000);
  out[1] = static_cast<char>('0' + y / 100 % 10);
  out[2] = static_cast<char>('0' + y / 10 % 10);
  out[3] = static_cast<char>('0' + y % 10);
  out[5] = static_cast<char>('0' + m / 10);
  out[6] = static_cast<char>('0' + m % 10);
  out[8] = static_cast<char>('0' + d / 10);
  out[9] = static_cast<char>('0' + d % 10);
  return out;
}

std::string FormatInstant(Instant instant) {
  const CivilDay day = std::chrono::floor<days>(instant);
  // In [0, 86400) because floor rounds towards the past, also before 1970.
  const auto secs = static_cast<unsigned>((instant - day).count());
  char buf[32];
  std::snprintf(buf, sizeof(buf), "T%02u:%02u:%02uZ", secs / 3600, secs / 60 % 60, secs % 60);
  return FormatCivilDay(day) + buf;
}

std::string_view WeekdayName(CivilDay day) {
  static constexpr std::string_view kNames[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                "Thursday", "Friday", "Saturday"};
  return kNames[std::chrono::weekday(day).c_encoding()];
}

// ---------------------------------------------------------------------------------------------
// WorkingDayCalendar.

Result<WorkingDayCalendar> WorkingDayCalendar::FromGovUkJson(std::string_view json,
                                                             std::string_view origin,
                                                             std::string_view division) {
  const std::string where(origin);
  auto error_at = [&](int line, const std::string& what) {
    return InvalidArgumentError(where + ":" + std::to_string(line) + ": " + what);
  };

  // Parse, noting the line where the division and each of its events start. Depths follow
  // nlohmann's callback: a key directly in the root object is at depth 1, the division's keys at
  // depth 2, and each element of its "events" array starts at depth 3.
  SourceLines lines;
  std::string root_key;
  std::string division_key;
  std::size_t consumed = 0;
  auto note_position = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    // The parser has read the token that triggered the event, so `consumed` is just past it.
    const int line = LineAt(json, consumed == 0 ? 0 : consumed - 1);
    if (event == Event::key && depth == 1) {
      root_key = parsed.get<std::string>();
      division_key.clear();
      // A repeated division key replaces the earlier object, as nlohmann does.
      if (root_key == division) lines = SourceLines{line, {}};
    } else if (event == Event::key && depth == 2) {
      division_key = parsed.get<std::string>();
      if (root_key == division && division_key == "events") lines.events.clear();
    } else if (depth == 3 && root_key == division && division_key == "events" &&
               (event == Event::object_start || event == Event::array_start ||
                event == Event::value)) {
      lines.events.push_back(line);
    }
    return true;
  };
  const char* base = json.data();
  nlohmann::json root;
  try {
    root =
        nlohmann::json::parse(CountingIterator(base, base, &consumed),
                              CountingIterator(base + json.size(), base, &consumed), note_position);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts the characters read, the offending one included.
    return error_at(LineAt(json, e.byte == 0 ? 0 : e.byte - 1),
                    "malformed JSON: " + JsonErrorDetail(e.what()));
  } catch (const nlohmann::json::exception& e) {
    // Not a syntax error but a value the parser cannot hold, such as a number overflow.
    return error_at(LineAt(json, consumed == 0 ? 0 : consumed - 1),
                    "malformed JSON: " + JsonErrorDetail(e.what()));
  }

  if (!root.is_object() || !root.contains(division) || !root[std::string(division)].is_object()) {
    return error_at(1, "no division " + Quote(division) + " (expected an object under that key)");
  }
  const nlohmann::json& div = root[std::string(division)];
  if (!div.contains("events") || !div["events"].is_array()) {
    return error_at(lines.division, "division " + Quote(division) + " has no 'events' array");
  }
  const nlohmann::json& events = div["events"];
  if (events.empty()) {
    return error_at(lines.division,
                    "division " + Quote(division) + " lists no events, so covers no dates");
  }
  // The callback saw every element of this array, so each has a line. The fallback only guards
  // against a structure the callback's tracking did not foresee: a less precise line rather than
  // a crash on an operator's file.
  auto event_line = [&](std::size_t i) {
    return i < lines.events.size() && lines.events.size() == events.size() ? lines.events[i]
                                                                           : lines.division;
  };

  struct Parsed {
    CivilDay day;
    std::string title;
    std::size_t index;  // 0-based position in "events"
  };
  std::vector<Parsed> parsed;
  parsed.reserve(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& event = events[i];
    const int line = event_line(i);
    // Events are numbered from 1 in messages, for the operator reading the file.
    const std::string name = "event " + std::to_string(i + 1);
    if (!event.is_object()) return error_at(line, name + " is not an object");
    const auto date_it = event.find("date");
    if (date_it == event.end() || !date_it->is_string()) {
      return error_at(line, name + " has no valid 'date'");
    }
    Result<CivilDay> day = ParseCivilDay(date_it->get_ref<const std::string&>());
    if (!day.ok()) {
      return error_at(line, name + " has no valid 'date' (" + day.status().message() + ")");
    }
    const auto title_it = event.find("title");
    if (title_it == event.end() || !title_it->is_string() ||
        title_it->get_ref<const std::string&>().empty()) {
      return error_at(line, name + " has no valid 'title'");
    }
    parsed.push_back({*day, title_it->get<std::string>(), i});
  }

  // GOV.UK lists events in date order, but an operator's own file need not. The sort is stable,
  // so of two events on one day the earlier in the file comes first.
  std::stable_sort(parsed.begin(), parsed.end(),
                   [](const Parsed& a, const Parsed& b) { return a.day < b.day; });
  for (std::size_t i = 1; i < parsed.size(); ++i) {
    if (parsed[i].day != parsed[i - 1].day) continue;
    const Parsed& earlier = parsed[i - 1];
    const Parsed& later = parsed[i];
    return error_at(event_line(later.index), "event " + std::to_string(later.index + 1) +
                                                 " repeats the date of event " +
                                                 std::to_string(earlier.index + 1) + " (line " +
                                                 std::to_string(event_line(earlier.index)) + ")");
  }

  // Every year has bank holidays, so a year with none inside the covered range means events
  // are missing, and counting through it would treat its holidays as working days.
  for (std::size_t i = 1; i < parsed.size(); ++i) {
    const int prev_year = static_cast<int>(year_month_day(parsed[i - 1].day).year());
    const int year = static_cast<int>(year_month_day(parsed[i].day).year());
    if (year > prev_year + 1) {
      const std::string missing =
          year == prev_year + 2 ? std::to_string(prev_year + 1)
                                : std::to_string(prev_year + 1) + "-" + std::to_string(year - 1);
      return error_at(event_line(parsed[i].index),
                      "no bank holiday in " + missing + ", between events in " +
                          std::to_string(prev_year) + " and " + std::to_string(year) +
                          " (a gap in the data)");
    }
  }

  WorkingDayCalendar calendar;
  calendar.origin_ = where;
  calendar.first_day_ = CivilDay(year_month_day(parsed.front().day).year() / 1 / 1);
  calendar.last_day_ = CivilDay(year_month_day(parsed.back().day).year() / 12 / 31);
  calendar.holidays_.reserve(parsed.size());
  for (Parsed& p : parsed) calendar.holidays_.emplace_back(p.day, std::move(p.title));
  return calendar;
}

Result<bool> WorkingDayCalendar::IsWorkingDay(CivilDay day) const {
  if (day < first_day_ || day > last_day_) {
    return OutOfRangeError(
        FormatCivilDay(day) + " is outside the bank-holiday data, which covers " +
        FormatCivilDay(first_day_) + " to " + FormatCivilDay(last_day_) + " (" + origin_ + ")");
  }
  const unsigned wd = std::chrono::weekday(day).c_encoding();
  if (wd == 0 || wd == 6) return false;
  return HolidayTitle(day).empty();
}

std::string_view WorkingDayCalendar::HolidayTitle(CivilDay day) const {
  const auto it = std::lower_bound(
      holidays_.begin(), holidays_.end(), day,
      [](const std::pair<CivilDay, std::string>& h, CivilDay d) { return h.first < d; });
  if (it == holidays_.end() || it->first != day) return {};
  // The view points into holidays_, which never changes after construction.
  return it->second;
}

// Both counts walk one day at a time, which is linear in the span covered (a handful of weeks
// for statutory counts) and produces the skipped-day list as it goes. Instead of searching the
// holiday table for every day, a cursor into the sorted table moves along with the walk.
Result<CountedDay> WorkingDayCalendar::Count(CivilDay start, int n, int step) const {
  // REQUIRES in the header: a negative count is a caller bug, not bad input; callers check the
  // counts they read from files before counting with them.
  TANDEM_CHECK(n >= 0);
  if (start < first_day_) {
    return OutOfRangeError("start day " + FormatCivilDay(start) +
                           " is before the bank-holiday data, which begins " +
                           FormatCivilDay(first_day_) + " (" + origin_ + ")");
  }
  if (start > last_day_) {
    return OutOfRangeError("start day " + FormatCivilDay(start) +
                           " is past the bank-holiday data, which ends " +
                           FormatCivilDay(last_day_) + " (" + origin_ + ")");
  }
  const bool forward = step > 0;
  CountedDay result{start, {}};
  // Two weekend days a week, and room for a bank holiday or two: one allocation for most counts.
  result.skipped.reserve(static_cast<std::size_t>(n) / 5 * 2 + 4);
  // The next holiday the walk can meet: the first after `start` going forward, the last before
  // it going back (as an index, so that "before the first" is -1).
  const auto first_after = std::upper_bound(
      holidays_.begin(), holidays_.end(), start,
      [](CivilDay d, const std::pair<CivilDay, std::string>& h) { return d < h.first; });
  const auto first_not_before = std::lower_bound(
      holidays_.begin(), holidays_.end(), start,
      [](const std::pair<CivilDay, std::string>& h, CivilDay d) { return h.first < d; });
  std::ptrdiff_t next =
      forward ? first_after - holidays_.begin() : (first_not_before - holidays_.begin()) - 1;
  const auto size = static_cast<std::ptrdiff_t>(holidays_.size());
  unsigned wd = std::chrono::weekday(start).c_encoding();
  CivilDay day = start;
  for (int counted = 0; counted < n;) {
    day += days(step);
    wd = (wd + (forward ? 1 : 6)) % 7;
    if (day > last_day_ || day < first_day_) {
      return OutOfRangeError(
          "counting " + std::to_string(n) + " working days " + (forward ? "from " : "back from ") +
          FormatCivilDay(start) + " needs " + FormatCivilDay(day) +
          (forward ? ", past the bank-holiday data, which ends " + FormatCivilDay(last_day_)
                   : ", before the bank-holiday data, which begins " + FormatCivilDay(first_day_)) +
          " (" + origin_ + ")");
    }
    if (next >= 0 && next < size && holidays_[next].first == day) {
      result.skipped.push_back({day, holidays_[next].second});
      next += step;
    } else if (wd == 0 || wd == 6) {
      result.skipped.push_back({day, WeekdayName(day)});
    } else {
      ++counted;
    }
  }
  // A backward walk met the days latest first; the contract lists skipped days in date order.
  if (!forward) std::reverse(result.skipped.begin(), result.skipped.end());
  result.day = day;
  return result;
}

Result<CountedDay> WorkingDayCalendar::AddWorkingDays(CivilDay start, int n) const {
  return Count(start, n, +1);
}

Result<CountedDay> WorkingDayCalendar::SubtractWorkingDays(CivilDay start, int n) const {
  return Count(start, n, -1);
}

// ---------------------------------------------------------------------------------------------
// Months and ages.

MonthResult AddMonths(CivilDay start, int months) {
  const year_month_day ymd(start);
  const std::chrono::year_month target =
      std::chrono::year_month(ymd.year(), ymd.month()) + std::chrono::months(months);
  const year_month_day moved = target / ymd.day();
  if (moved.ok()) return {CivilDay(moved), false};
  // The start's day does not exist in the target month (31 August + 6 months): the month's
  // last day is the nearest day that stays inside the period (domain notes 3.2).
  return {CivilDay(target / std::chrono::last), true};
}

int AgeOn(CivilDay dob, CivilDay on, LeapDayBirthday rule) {
  const year_month_day birth(dob);
  const year_month_day when(on);
  const std::chrono::year year = when.year();
  year_month_day birthday = year / birth.month() / birth.day();
  if (!birthday.ok()) {
    // Only 29 February is missing from some years; where it is, the rule picks the day.
    birthday = rule == LeapDayBirthday::kMarch1 ? year / std::chrono::March / 1
                                                : year / std::chrono::February / 28;
  }
  // FLRA 1969 s.9: the age is reached at the start of the birthday, so on the birthday itself
  // the new age already applies.
  int age = static_cast<int>(year) - static_cast<int>(birth.year());
  if (CivilDay(when) < CivilDay(birthday)) --age;
  return age;
}

// ---------------------------------------------------------------------------------------------
// Europe/London.

Result<Instant> StartOfLondonDay(CivilDay day) {
  TANDEM_ASSIGN_OR_RETURN(const date::time_zone* zone, London());
  // Local midnight exists exactly once in Europe/London under current rules (clocks change at
  // 01:00 UTC); `earliest` keeps any historical gap or overlap at midnight from throwing and
  // picks the instant the day began.
  const auto start =
      zone->to_sys(date::local_seconds(ToDateLocalDays(day)), date::choose::earliest);
  return Instant(std::chrono::duration_cast<std::chrono::seconds>(start.time_since_epoch()));
}

Result<Instant> EndOfLondonDay(CivilDay day) {
  // A day ends when the next one starts: 24, 23 or 25 hours after it began.
  return StartOfLondonDay(day + days(1));
}

Result<CivilDay> LondonDay(Instant instant) {
  TANDEM_ASSIGN_OR_RETURN(const date::time_zone* zone, London());
  const date::sys_seconds utc(
      std::chrono::duration_cast<std::chrono::seconds>(instant.time_since_epoch()));
  const date::local_seconds local = zone->to_local(utc);
  return FromDateLocalDays(date::floor<date::days>(local));
}

}  // namespace tandem::calendar
