// Space kept back for the day the disk fills: "<journal>.reserve", a file of
// `bytes` real blocks beside the journal.
//
// Why: on a full disk, delivery of what is already journaled must go on, and
// marking rows delivered needs a little space (WAL frames, the -shm file of
// a fresh open). So the first writer that meets SQLITE_FULL (any process: the
// file is the shared state) deletes the reserve, giving its blocks back to
// the file system, and the senders' marks succeed. Producers (collector,
// ingest, backfill) take the reserve back before they write: while there is
// not room for it and as much again, they pause (their cursors do not move,
// so nothing is skipped). Delivery never waits for the reserve.
//
// The file is allocated with posix_fallocate (real blocks, not a sparse
// file), created mode 0600 like the journal. A reserve of 0 bytes disables
// all of this: a full disk then only pauses, as SQLITE_FULL does anyway.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gapless::journal {

// The room left on the file system holding `path` (a file beside the journal,
// which need not exist yet), as an unprivileged writer sees it: the one
// measure both the reserve (take) and a full disk's diagnosis
// (fault_retry.hpp, disk_nearly_full) go by. Nothing when the file system
// cannot be asked.
struct FreeSpace {
  int64_t bytes = 0;
  bool out_of_inodes = false;
};
std::optional<FreeSpace> free_space(const std::string& path);

class DiskReserve {
 public:
  DiskReserve(std::string journal_path, int64_t bytes);

  // Producers, before writing: makes sure the reserve is held, creating it
  // when it is missing and the file system has room for it and as much
  // again. Returns false when it is missing and cannot be taken: pause.
  // Always true with a reserve of 0 bytes.
  bool take();

  // On SQLITE_FULL: deletes the reserve. Returns true when this call freed it.
  bool release();

  // The reserve file exists with its full size.
  bool held() const;

  const std::string& path() const { return reserve_path_; }

 private:
  std::string reserve_path_;
  int64_t bytes_;
};

}  // namespace gapless::journal
