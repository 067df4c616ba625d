// A series' cadence as its esmond metadata states it: the test's
// `time-interval` parameter, in seconds (docs/esmond.md). The gap report
// checks journaled data against it and `gapless status` judges a cursor
// lagging by it, so both read it the same way.
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace gapless::esmond {

// esmond sends parameter values as strings ("60"); a number is accepted too.
// Nothing when absent, not a number, or outside 0.5 s .. 1e12 s.
std::optional<int64_t> time_interval(const nlohmann::json& metadata);

}  // namespace gapless::esmond
