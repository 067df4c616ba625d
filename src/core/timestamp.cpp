#include "core/timestamp.hpp"

#include <date/date.h>

#include <chrono>
#include <sstream>

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

}  // namespace

int64_t parse_timestamp(std::string_view view, std::string_view what) {
  std::string text(view);
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() <= 12)
    return std::stoll(text);
  if (!text.empty() && text.back() == 'Z') text.back() = '+', text += "0000";
  // Accept both "T" and a space between date and time.
  if (text.size() > 10 && text[10] == ' ') text[10] = 'T';
  int64_t seconds = 0;
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
