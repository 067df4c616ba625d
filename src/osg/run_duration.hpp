// ISO 8601 durations in pScheduler runs ("PT0.000312S", "PT30S") read the two
// ways the perfSONAR 5 archive path reads them, because a pushed run's
// values must come out exactly as elmond serves them back:
//   - elmond (util.py iso8601_to_seconds): isodate's timedelta, so rounded to
//     whole microseconds, then (microseconds + whole seconds * 1e6) / 1e6 as
//     doubles; a number or an integer string is taken as whole seconds.
//   - Logstash (pscheduler_iso8601_duration.rb, as read): days, hours,
//     minutes and the integer part of the seconds; the fraction is dropped.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gapless::osg {

// Seconds as elmond computes them; nothing when elmond gets None (not a
// duration, or one with years or months).
std::optional<double> elmond_seconds(const nlohmann::json& value);

// Whole seconds as perfSONAR's Logstash converts a duration field; nothing
// when the text is not a duration it converts (it then keeps the text).
std::optional<int64_t> logstash_seconds(std::string_view text);

}  // namespace gapless::osg
