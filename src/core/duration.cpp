#include "core/duration.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>
#include <cstdint>
#include <limits>

#include "core/error.hpp"

namespace gapless {

namespace {

struct Unit {
  std::string_view suffix;
  int64_t milliseconds;
};

// Longest suffixes first so that "ms" is not read as "m" followed by junk.
constexpr Unit kUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
};

}  // namespace

Milliseconds parse_duration(std::string_view text, std::string_view what) {
  auto fail = [&](std::string_view why) -> Error {
    return Error(std::string(what) + ": invalid duration \"" + std::string(text) + "\": " +
                 std::string(why) + " (expected a whole number with a unit: ms, s, m, h, d)");
  };
  int64_t count = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
  if (ec != std::errc() || end == text.data()) throw fail("no leading number");
  if (count < 0) throw fail("negative");
  std::string_view suffix(end, text.data() + text.size() - end);
  int64_t factor = 0;
  if (suffix.empty()) {
    factor = 1000;
  } else {
    for (const Unit& unit : kUnits)
      if (suffix == unit.suffix) factor = unit.milliseconds;
  }
  if (factor == 0) throw fail("unknown unit \"" + std::string(suffix) + "\"");
  if (count > std::numeric_limits<int64_t>::max() / factor) throw fail("too large");
  return Milliseconds(count * factor);
}

std::string format_duration(Milliseconds duration) {
  const int64_t ms = duration.count();
  for (auto it = std::rbegin(kUnits); it != std::rend(kUnits); ++it)
    if (ms != 0 && ms % it->milliseconds == 0)
      return std::to_string(ms / it->milliseconds) + std::string(it->suffix);
  return std::to_string(ms) + "ms";
}

Milliseconds interval_from_environment(const char* variable, Milliseconds fallback, std::string_view component) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long ms = std::strtoll(text, &end, 10);
  if (*end != '\0' || ms <= 0) {
    spdlog::warn("{}: ignoring {}=\"{}\" (not a positive number of ms) interval_ms={}", component, variable, text,
                 fallback.count());
    return fallback;
  }
  return Milliseconds(ms);
}

}  // namespace gapless
