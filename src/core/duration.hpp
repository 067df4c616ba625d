// Durations in configuration and on the command line: a whole number with a
// unit ("250ms", "30s", "5m", "1h", "21d"); a bare integer means seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace gapless {

using Milliseconds = std::chrono::milliseconds;

// Throws gapless::Error naming `what` (e.g. the config key) on malformed text.
Milliseconds parse_duration(std::string_view text, std::string_view what);

// The shortest exact form: 90000ms -> "90s", 3600000ms -> "1h".
std::string format_duration(Milliseconds duration);

// An interval the tests shorten through the environment variable `variable`
// (a positive whole number of milliseconds); unset or empty: `fallback`.
// Anything else is logged as ignored, naming `component`, and gives `fallback`.
Milliseconds interval_from_environment(const char* variable, Milliseconds fallback, std::string_view component);

}  // namespace gapless
