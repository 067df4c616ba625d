// Points in time as operators type them and read them: ISO 8601 dates or
// date-times (UTC unless an offset is given) or unix seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gapless {

// "2016-08-23", "2016-08-23T14:00", "2016-08-23T14:00:05Z",
// "2016-08-23 14:00:05+02:00", "1471910400". Returns unix seconds. Throws
// gapless::Error naming `what` (e.g. "--from") and the accepted forms.
int64_t parse_timestamp(std::string_view text, std::string_view what);

// "2016-08-23T14:00:05Z".
std::string format_timestamp(int64_t unix_seconds);

}  // namespace gapless
