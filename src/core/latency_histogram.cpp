#include "core/latency_histogram.hpp"

#include <algorithm>

namespace gapless {

void LatencyHistogram::observe(std::chrono::milliseconds latency) noexcept {
  const int64_t ms = std::max<int64_t>(0, latency.count());
  const auto bound = std::lower_bound(kUpperBoundsMs.begin(), kUpperBoundsMs.end(), ms);
  buckets_[static_cast<size_t>(bound - kUpperBoundsMs.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_ms_.fetch_add(ms, std::memory_order_relaxed);
}

HistogramSnapshot LatencyHistogram::snapshot() const {
  HistogramSnapshot out;
  int64_t running = 0;
  for (size_t i = 0; i < kUpperBoundsMs.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out.upper_bounds_seconds.push_back(static_cast<double>(kUpperBoundsMs[i]) / 1000.0);
    out.cumulative.push_back(running);
  }
  out.count = running + buckets_.back().load(std::memory_order_relaxed);
  out.sum_seconds = static_cast<double>(sum_ms_.load(std::memory_order_relaxed)) / 1000.0;
  return out;
}

}  // namespace gapless
