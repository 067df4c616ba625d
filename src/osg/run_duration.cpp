#include "osg/run_duration.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace gapless::osg {

namespace {

struct Parts {
  double weeks = 0, days = 0, hours = 0, minutes = 0, seconds = 0;
  bool years_or_months = false;
};

// "[-]P[nY][nM][nW][nD][T[nH][nM][nS]]" with decimal fractions (a comma
// too), as isodate accepts it.
std::optional<Parts> parse_parts(std::string_view text) {
  Parts parts;
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  if (i >= text.size() || text[i] != 'P') return std::nullopt;
  ++i;
  bool time = false;
  bool any = false;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (time) return std::nullopt;
      time = true;
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' || text[i] == ','))
      ++i;
    if (i == start || i >= text.size()) return std::nullopt;
    std::string number(text.substr(start, i - start));
    for (char& c : number)
      if (c == ',') c = '.';
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return std::nullopt;
    const char unit = text[i++];
    any = true;
    if (!time && (unit == 'Y' || unit == 'M')) parts.years_or_months = true;
    else if (!time && unit == 'W') parts.weeks = value;
    else if (!time && unit == 'D') parts.days = value;
    else if (time && unit == 'H') parts.hours = value;
    else if (time && unit == 'M') parts.minutes = value;
    else if (time && unit == 'S') parts.seconds = value;
    else return std::nullopt;
  }
  if (!any) return std::nullopt;
  if (negative) {
    parts.weeks = -parts.weeks, parts.days = -parts.days, parts.hours = -parts.hours;
    parts.minutes = -parts.minutes, parts.seconds = -parts.seconds;
  }
  return parts;
}

// CPython's timedelta constructor: each float argument's integer part times
// its factor goes into an exact sum, the fraction's integer microseconds too,
// the rest into a double rounded half-even once at the end. Arguments in its
// order: days, seconds, minutes, hours, weeks.
int64_t timedelta_microseconds(const Parts& parts) {
  int64_t sum = 0;
  double leftover = 0;
  const auto accumulate = [&](double value, double factor) {
    double whole = 0;
    const double fraction = std::modf(value, &whole);
    sum += static_cast<int64_t>(whole) * static_cast<int64_t>(factor);
    if (fraction == 0) return;
    double micro_whole = 0;
    const double micro_fraction = std::modf(factor * fraction, &micro_whole);
    sum += static_cast<int64_t>(micro_whole);
    leftover += micro_fraction;
  };
  accumulate(parts.days, 86400e6);
  accumulate(parts.seconds, 1e6);
  accumulate(parts.minutes, 60e6);
  accumulate(parts.hours, 3600e6);
  accumulate(parts.weeks, 604800e6);
  if (leftover != 0) sum += static_cast<int64_t>(std::nearbyint(leftover));  // round half to even
  return sum;
}

}  // namespace

std::optional<double> elmond_seconds(const nlohmann::json& value) {
  // int(val) first: a number, or a string of digits, is whole seconds.
  if (value.is_number_integer()) return static_cast<double>(value.get<int64_t>());
  if (value.is_number_float()) return std::trunc(value.get<double>());
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 18)
    return static_cast<double>(std::stoll(text));
  const std::optional<Parts> parts = parse_parts(text);
  if (!parts || parts->years_or_months) return std::nullopt;
  const int64_t total = timedelta_microseconds(*parts);
  // timedelta's normal form: days, 0 <= seconds < 86400, 0 <= microseconds < 1e6.
  int64_t whole_seconds = total / 1'000'000;
  int64_t microseconds = total % 1'000'000;
  if (microseconds < 0) microseconds += 1'000'000, whole_seconds -= 1;
  return (static_cast<double>(microseconds) + static_cast<double>(whole_seconds) * 1e6) / 1e6;
}

std::optional<int64_t> logstash_seconds(std::string_view text) {
  // Only unsigned integers per unit (the seconds may have a fraction),
  // no years or months, no repetition.
  const std::optional<Parts> parts = parse_parts(text);
  if (!parts || parts->years_or_months || parts->weeks != 0 || text.front() != 'P') return std::nullopt;
  for (double whole : {parts->days, parts->hours, parts->minutes})
    if (whole != std::trunc(whole) || whole < 0) return std::nullopt;
  if (parts->seconds < 0 || text.find(',') != std::string_view::npos) return std::nullopt;
  return static_cast<int64_t>(parts->days) * 86400 + static_cast<int64_t>(parts->hours) * 3600 +
         static_cast<int64_t>(parts->minutes) * 60 + static_cast<int64_t>(std::trunc(parts->seconds));
}

}  // namespace gapless::osg
