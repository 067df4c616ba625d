// Summary values computed from base values the way esmond's validators do
// (aggregation, average, statistics; docs/esmond.md 1.6 "Allowed summaries").
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "series.hpp"

namespace gapless::test::esmond {

// The summary of one window from the base values that exist in it. For a
// percentage, `packets_per_run` is each value's denominator: esmond sums
// numerators and denominators, then divides.
nlohmann::json summarise(ValueType type, const Summary& summary, const std::vector<nlohmann::json>& values,
                         int64_t packets_per_run);

// Statistics of one histogram (string bucket keys, integer counts):
// minimum/maximum/mode as keys, mean/median/percentiles (NIST method),
// variance and standard deviation as numbers.
nlohmann::json histogram_statistics(const nlohmann::json& histogram);

}  // namespace gapless::test::esmond
