// The daemon's pruner: retention on a schedule (issue 12). Every
// kPruneInterval (GAPLESS_PRUNE_INTERVAL_MS for tests) one pass, on its own
// journal connection:
//   1. messages delivered to every sink, the latest delivery older than
//      [journal] keep_delivered, go with their delivery rows;
//   2. datapoint digests go once the archive no longer serves their point
//      (esmond's retention for the series, replay::retention_seconds) and
//      their message is gone: whichever is longer (journal invariant 12);
//   3. free pages go back to the file system (incremental vacuum).
// Each step deletes in short transactions (Journal's Retention group), so
// live delivery is not held up; one log line per pass with its counts.
// Pruning is not a producer: it goes on at [journal] max_size and on a full
// disk (deleting is what frees room), and never deletes undelivered data.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "core/config.hpp"
#include "core/heartbeat.hpp"
#include "journal/journal.hpp"

namespace gapless::daemon {

constexpr std::chrono::milliseconds kPruneInterval = std::chrono::minutes(5);
constexpr const char* kPruneIntervalEnvironment = "GAPLESS_PRUNE_INTERVAL_MS";

struct PrunePass {
  journal::PruneReport messages;  // step 1
  journal::PruneReport digests;   // step 2
  journal::PruneReport pages;     // step 3
  int64_t bytes_in_use = 0;       // after the pass

  // Over the three steps.
  int64_t transactions() const;
  int64_t longest_write_lock_us() const;
  int64_t longest_checkpoint_us() const;
  bool complete() const;
};

// One pass at `now_ms` (unix ms), as the pruner runs it; the benchmark runs
// it too. Stops between transactions when `stop` is raised.
PrunePass prune_once(journal::Journal& journal, std::chrono::milliseconds keep_delivered, int64_t now_ms,
                     const std::atomic<bool>* stop = nullptr);

class Pruner {
 public:
  Pruner(const Config& config, const std::atomic<bool>& stop);
  // A pass at once, then one every interval, until `stop`. Journal faults
  // pass to the caller (the daemon's supervisor restarts it).
  void run();
  Heartbeat& progress() { return progress_; }

 private:
  const Config& config_;
  const std::atomic<bool>& stop_;
  Heartbeat progress_;
};

}  // namespace gapless::daemon
