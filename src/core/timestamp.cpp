#include "core/timestamp.hpp"

#include <date/date.h>

#include <chrono>
#include <sstream>
#include <string_view>

#include "core/error.hpp"

namespace gapless {

namespace {

// Tries one format on the whole text.
bool parse_as(const std::string& text, const char* format, int64_t& out) {
  std::istringstream in(text);
  date::sys_seconds point;
  std::chrono::minutes offset{0};
  in >> date::parse(format, point, offset);
  if (in.fail()) return false;
  in.peek();
  if (!in.eof()) return false;  // trailing characters
  // Parsing into sys_seconds already applied the offset (UTC = local - offset).
  out = point.time_since_epoch().count();
  return true;
}

// Whether `text` (a final Z already written +0000, the date and time
// joined by T) has the shape of the forms below, each field its digits:
// YYYY-MM-DD[THH:MM[:SS[.fraction]]][(+|-)HH[:]MM]. date's parse converts
// some fields before it checks that it read a number, so malformed input
// such as "16:55:?5" (a NaN to an integer) or "-0#:00" (the lowest long
// negated) is undefined behaviour there (found by tests/fuzz): date only
// ever sees this shape, and judges the values (month 13, hour 25).
bool has_accepted_shape(std::string_view text) {
  size_t at = 0;
  const auto digits = [&](size_t count) {
    for (size_t i = 0; i < count; ++i, ++at)
      if (at >= text.size() || text[at] < '0' || text[at] > '9') return false;
    return true;
  };
  const auto take = [&](char c) {
    if (at >= text.size() || text[at] != c) return false;
    ++at;
    return true;
  };
  if (!(digits(4) && take('-') && digits(2) && take('-') && digits(2))) return false;
  if (at == text.size()) return true;
  if (!(take('T') && digits(2) && take(':') && digits(2))) return false;
  if (take(':')) {
    if (!digits(2)) return false;
    if (take('.')) {
      if (!digits(1)) return false;
      while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    }
  }
  if (at == text.size()) return true;
  if (!take('+') && !take('-')) return false;
  if (!digits(2)) return false;
  take(':');
  return digits(2) && at == text.size();
}

}  // namespace

int64_t parse_timestamp(std::string_view view, std::string_view what) {
  std::string text(view);
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 12)
    return std::stoll(text);
  if (!text.empty() && text.back() == 'Z') text.back() = '+', text += "0000";
  // Accept both "T" and a space between date and time.
  if (text.size() > 10 && text[10] == ' ') text[10] = 'T';
  int64_t seconds = 0;
  if (has_accepted_shape(text))
    for (const char* format : {"%Y-%m-%dT%H:%M:%S%Ez", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%Ez", "%Y-%m-%dT%H:%M%z",
                               "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"})
      if (parse_as(text, format, seconds)) return seconds;
  throw Error(std::string(what) + ": cannot read \"" + std::string(view) +
              "\" as a time: use an ISO 8601 date (2016-08-23), a date-time (2016-08-23T14:00:00, UTC unless "
              "an offset such as Z or +02:00 is given) or unix seconds");
}

std::string format_timestamp(int64_t unix_seconds) {
  return date::format("%FT%TZ", date::sys_seconds{std::chrono::seconds(unix_seconds)});
}

}  // namespace gapless
