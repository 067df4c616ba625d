// Logging set-up. All modules log through spdlog's default logger, to stderr,
// as "key=value" pairs after a short event name so that lines can be grepped:
//   2026-11-25T09:30:35.123Z info sender: delivered sink=cern transaction=42 messages=500
#pragma once

#include <string_view>

namespace gapless {

// level: trace, debug, info, warn, error. Throws gapless::Error on an unknown level.
void setup_logging(std::string_view level);

// A level setup_logging accepts (trace, debug, info, warn, error, off).
bool known_log_level(std::string_view level);

// The default logger's level changed in place, as a SIGHUP reload does while
// other threads log. Throws gapless::Error on an unknown level.
void set_log_level(std::string_view level);

}  // namespace gapless
