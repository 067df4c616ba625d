// [journal] max_size: the journal's bytes in use at which producers pause.
//
// Why: a journal on a shared file system must not grow without bound while
// a sink is away. At the limit the producers (the collector, backfill,
// `gapless ingest` and import-dirq) write nothing: their cursors do not move,
// so nothing is skipped, and collection resumes by itself once pruning has
// brought the journal below the limit. Delivery and pruning go on; nothing
// undelivered is pruned to make room (journal invariant 6). Unlike a full
// disk, the disk reserve is not given back: the disk has room.
//
// The measure is Journal::bytes_in_use ((page_count - freelist_count) x
// page_size): it falls as soon as pruning commits, before the pages go back
// to the file system, and the -wal file, which checkpoints bound, is left
// out.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/fault_episode.hpp"

namespace gapless::journal {

// The kind of the fault episode of a producer paused at the limit (the HTTP
// endpoint's /healthz keys on it).
constexpr std::string_view kSizeLimitKind = "journal-size-limit";

class SizeLimit {
 public:
  // `max_size` 0: no limit, reached() is always nothing. `recheck_ms`: see
  // reached(); 0 for a command that asks once per batch (ingest, import-dirq),
  // whose batch must not pass the limit on a measure a second old.
  SizeLimit(std::string journal_path, int64_t max_size, int64_t recheck_ms = kRecheckMs);
  ~SizeLimit();

  // The journal's bytes in use when they are at or over the limit; nothing
  // below it. Measured on a read-only connection of its own, at most once
  // per recheck_ms (the answer between is the last one). Safe from any thread.
  std::optional<int64_t> reached();

  // Why a producer pauses, naming the file, its size and max_size.
  std::string pause_reason(int64_t bytes) const;

  // An occurrence of `episode` (kind journal-size-limit) for a producer
  // that pauses with `bytes` in use.
  void record_pause(FaultEpisode& episode, int64_t bytes) const;

  // Waits until the journal is below the limit, each check while at it an
  // occurrence of `episode`; false: `stop` was raised first.
  bool wait_below(FaultEpisode& episode, const std::atomic<bool>& stop);

  static constexpr int64_t kRecheckMs = 1'000;

 private:
  std::string path_;
  int64_t max_size_;
  int64_t recheck_ms_;
  std::mutex mutex_;
  std::unique_ptr<SQLite::Database> db_;
  int64_t checked_ms_ = 0;  // steady clock
  std::optional<int64_t> last_;
};

}  // namespace gapless::journal
