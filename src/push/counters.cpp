#include "push/counters.hpp"

namespace gapless::push {

void Counters::answered(int status) noexcept {
  size_t slot = kStatuses.size();
  for (size_t i = 0; i < kStatuses.size(); ++i)
    if (kStatuses[i] == status) slot = i;
  answers_[slot].fetch_add(1, std::memory_order_relaxed);
}

void Counters::timed(std::chrono::milliseconds latency) noexcept { latency_.observe(latency); }

void Counters::journaled(bool duplicate, int64_t series_messages) noexcept {
  (duplicate ? duplicates_ : runs_journaled_).fetch_add(1, std::memory_order_relaxed);
  series_messages_.fetch_add(series_messages, std::memory_order_relaxed);
}

CountersSnapshot Counters::snapshot() const {
  CountersSnapshot snapshot;
  snapshot.runs_journaled = runs_journaled_.load(std::memory_order_relaxed);
  snapshot.duplicates = duplicates_.load(std::memory_order_relaxed);
  snapshot.series_messages = series_messages_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kStatuses.size(); ++i) snapshot.answers[kStatuses[i]] = answers_[i].load(std::memory_order_relaxed);
  snapshot.answers[0] = answers_.back().load(std::memory_order_relaxed);  // 0: any other status
  snapshot.latency = latency_.snapshot();
  return snapshot;
}

}  // namespace gapless::push
