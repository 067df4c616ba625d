#include "daemon/pruner.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>

#include "core/clock.hpp"
#include "core/duration.hpp"
#include "replay/gaps.hpp"

namespace gapless::daemon {

int64_t PrunePass::transactions() const { return messages.transactions + digests.transactions + pages.transactions; }
int64_t PrunePass::longest_write_lock_us() const {
  return std::max({messages.longest_write_lock_us, digests.longest_write_lock_us, pages.longest_write_lock_us});
}
int64_t PrunePass::longest_checkpoint_us() const {
  return std::max({messages.longest_checkpoint_us, digests.longest_checkpoint_us, pages.longest_checkpoint_us});
}
bool PrunePass::complete() const { return messages.complete && digests.complete && pages.complete; }

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
  pass.pages = journal.release_free_pages(stop);
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
                 "transactions={} longest_write_lock_us={} longest_checkpoint_us={} took_ms={}{}",
                 pass.messages.messages, pass.messages.deliveries, pass.digests.datapoints, pass.pages.pages,
                 pass.bytes_in_use, pass.transactions(), pass.longest_write_lock_us(), pass.longest_checkpoint_us(),
                 took.count(), pass.complete() ? "" : " (stopped)");
    if (!sleep_beating(interval, stop_, progress_)) return;
  }
}

}  // namespace gapless::daemon
