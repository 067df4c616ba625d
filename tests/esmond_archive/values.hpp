// Generated measurement values: a pure function of (seed, series, event type,
// ts), in the JSON shapes esmond returns for each event type (docs/esmond.md 1.6).
#pragma once

#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "series.hpp"

namespace gapless::test::esmond {

// A run that failed writes only a "failures" point at its ts and nothing for
// the other event types, as pScheduler's archiver does (esmond_util.py).
bool run_failed(uint64_t seed, const Series& series, int64_t ts);

// The value of `event_type` for the run at `ts`. Defined for any ts (late
// points use it too); whether a point exists is decided elsewhere.
nlohmann::json generate_value(uint64_t seed, const Series& series, std::string_view event_type, int64_t ts);

// Packets per run behind a packet-loss-rate value (its denominator): the
// series' sample size.
int64_t packets_per_run(const Series& series);

// A value that differs from `value` in a type-preserving way, for corrections
// made without an explicit new value.
nlohmann::json corrected_value(const Series& series, std::string_view event_type, const nlohmann::json& value);

}  // namespace gapless::test::esmond
