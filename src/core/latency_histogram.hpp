// A latency histogram that one thread fills and any other reads, without a
// lock: each observation is three relaxed atomic additions. For the
// sender's send-to-receipt time, published on the daemon's /metrics
// (src/http) in Prometheus' histogram form.
//
// Here in core because the thread that observes (a sender) sits below the
// endpoint that reads it (docs/architecture.md, "Layers").
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace gapless {

// What a reader sees: bucket upper bounds (seconds, ascending, without
// +Inf) with the observations at or below each, cumulative as Prometheus
// wants them; `count` is the +Inf bucket.
struct HistogramSnapshot {
  std::vector<double> upper_bounds_seconds;
  std::vector<int64_t> cumulative;
  int64_t count = 0;
  double sum_seconds = 0;
};

class LatencyHistogram {
 public:
  // From 5 ms (a broker on the same host) to 5 min (receipt_timeout's
  // default): a frozen broker lands in the last buckets, not beyond them.
  static constexpr std::array<int64_t, 14> kUpperBoundsMs = {5,    10,   25,    50,    100,   250,    500,
                                                             1000, 2500, 5000, 10000, 30000, 60000, 300000};

  void observe(std::chrono::milliseconds latency) noexcept;
  // Consistent enough for metrics: a concurrent observe() may show in some
  // buckets and not yet in the count; the snapshot keeps +Inf >= every
  // bucket all the same.
  HistogramSnapshot snapshot() const;

 private:
  std::array<std::atomic<int64_t>, kUpperBoundsMs.size() + 1> buckets_{};  // not cumulative; last: above every bound
  std::atomic<int64_t> sum_ms_{0};
};

}  // namespace gapless
