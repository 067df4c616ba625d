// What the push endpoint counts, for the daemon's /metrics: runs journaled
// and journaled before, answers by status, the answer latency. Filled by the
// endpoint's threads without a lock (relaxed atomics), read by any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>

#include "core/latency_histogram.hpp"

namespace gapless::push {

struct CountersSnapshot {
  int64_t runs_journaled = 0;   // runs newly journaled (a 200 whose run was new)
  int64_t duplicates = 0;       // runs journaled before (a 200 for a run sent again)
  int64_t series_messages = 0;  // OSG messages journaled with the runs
  int64_t groups = 0;           // transactions: runs_journaled / groups is the group commit's gain
  std::map<int, int64_t> answers;  // by HTTP status; 0: any status not listed
  HistogramSnapshot latency;       // of the pushes that reached the handler: body read to answer (the commit wait)
};

class Counters {
 public:
  void answered(int status) noexcept;  // every answer, the server's own (a 413 it gave) included
  void timed(std::chrono::milliseconds latency) noexcept;  // a push, from its body read to its answer
  void journaled(bool duplicate, int64_t series_messages) noexcept;
  CountersSnapshot snapshot() const;  // groups left 0: the endpoint fills it

 private:
  static constexpr std::array<int, 8> kStatuses = {200, 400, 401, 404, 405, 413, 500, 503};
  std::array<std::atomic<int64_t>, kStatuses.size() + 1> answers_{};  // the last slot: any other status
  std::atomic<int64_t> runs_journaled_{0};
  std::atomic<int64_t> duplicates_{0};
  std::atomic<int64_t> series_messages_{0};
  LatencyHistogram latency_;
};

}  // namespace gapless::push
