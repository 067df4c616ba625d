#include "daemon/pruner.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "core/clock.hpp"
#include "core/duration.hpp"
#include "replay/gaps.hpp"

namespace gapless::daemon {
namespace {

}  // namespace

PrunePass prune_once(journal::Journal& journal, std::chrono::milliseconds keep_delivered, int64_t now_ms,
                     const std::atomic<bool>* stop) {
  PrunePass pass;
  pass.messages = journal.prune_delivered(now_ms - keep_delivered.count(), stop);
  const int64_t now_s = now_ms / 1000;
  pass.digests = journal.prune_datapoints(
      [now_s](const journal::SeriesKey& series) {
        return std::optional<int64_t>(now_s - replay::retention_seconds(series));
      },
      stop);
  pass.pages_released = journal.release_free_pages(stop);
  pass.bytes_in_use = journal.bytes_in_use();
  return pass;
}

Pruner::Pruner(const Config& config, const std::atomic<bool>& stop) : config_(config), stop_(stop) {}

void Pruner::run() {
  const std::chrono::milliseconds interval =
      interval_from_environment(kPruneIntervalEnvironment, kPruneInterval, "pruner");
  // Pruning registers no sink: an empty list leaves the sinks as they are.
  std::unique_ptr<journal::Journal> journal = journal::Journal::open(config_.journal.path, {}, false);
  while (!stop_) {
    progress_.beat();
    const auto began = std::chrono::steady_clock::now();
    const PrunePass pass = prune_once(*journal, config_.journal.keep_delivered, unix_now_ms(), &stop_);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
    spdlog::info("pruner: pass messages={} deliveries={} digests={} pages_released={} bytes_in_use={} "
                 "transactions={} longest_transaction_us={} took_ms={}{}",
                 pass.messages.messages, pass.messages.deliveries, pass.digests.datapoints, pass.pages_released,
                 pass.bytes_in_use, pass.messages.transactions + pass.digests.transactions,
                 std::max(pass.messages.longest_transaction_us, pass.digests.longest_transaction_us), took.count(),
                 pass.messages.complete && pass.digests.complete ? "" : " (stopped)");
    if (!sleep_beating(interval, stop_, progress_)) return;
  }
}

}  // namespace gapless::daemon
