// Waiting out a journal fault that passes by itself (JournalError::transient:
// a lock held past the busy timeout, a full disk, an I/O error), for the code
// that can simply wait: gapless-replay, `gapless run` opening its journal.
// The collector and the senders have their own schedules and use only the
// pieces (fault_kind, journal_retry_delay_ms).
//
// The rule for a full disk (disk_reserve.hpp): whoever meets SQLITE_FULL
// releases the reserve, so delivery can go on; a producer takes the reserve
// back before it writes, and pauses while it cannot.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "core/fault_episode.hpp"
#include "core/stop_wait.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/journal.hpp"

namespace gapless::journal {

// The kind of a fault episode for `fault`: "journal-busy", "disk-full" (a
// full disk, whether SQLite met it or a producer pauses for the reserve, is
// one episode), "journal-io", "journal-damaged", "journal-other".
const char* fault_kind(Fault fault);

// Every kind of fault episode that means the journal takes no writes now:
// fault_kind's five and the size limit's (size_limit.hpp kSizeLimitKind).
// For the metrics and /healthz, which must not keep their own list.
const std::vector<std::string>& journal_fault_kinds();

// The file system holding `path` (a journal, or any file beside it) has
// almost no room left: less than a MiB, or no free inode.
bool disk_nearly_full(const std::string& path);

// The fault as a caller must react to it. SQLite says SQLITE_FULL when a
// write needs a block it cannot get, but an I/O error (SQLITE_IOERR_SHMSIZE)
// or CANTOPEN when it cannot create or grow the -shm or -wal file: on a
// disk with almost no room left, those are a full disk too.
Fault fault_on_disk(const JournalError& error, const std::string& journal_path);

// After `failures` transient faults in a row: 1 s doubling up to 30 s. A
// journal fault is not an archive's or a broker's: it is local and usually
// short (a backup holding a lock, space freed), so it is retried sooner than
// those.
int64_t journal_retry_delay_ms(int failures);

// A producer that cannot take `reserve`: an occurrence of `episode` (kind
// "disk-full") with the one text that says why it pauses and that it
// resumes by itself.
void record_reserve_pause(const DiskReserve& reserve, FaultEpisode& episode);

// Producers, before writing: waits until `reserve` is taken. While it cannot
// be, that is an occurrence of `episode` (kind "disk-full"), checked again
// every kReserveRecheckMs. false: `stop` was raised first.
constexpr int64_t kReserveRecheckMs = 2'000;
bool wait_for_reserve(DiskReserve& reserve, FaultEpisode& episode, const std::atomic<bool>& stop);

// What one attempt that failed with a transient fault (or one a full disk
// explains, fault_on_disk) leads to: the fault counted in `episode`, the
// reserve released on a full disk, the backoff slept. false when `stop` was
// raised while waiting.
bool wait_after_fault(const JournalError& error, FaultEpisode& episode, DiskReserve* reserve, int failures,
                      const std::atomic<bool>& stop);

// Runs `work` until it does not throw a transient JournalError; when
// `producer`, each attempt first takes the reserve (waiting for it).
// The episode is resolved on success. Other errors pass at once. Throws
// gapless::Error ("interrupted") when `stop` is raised while waiting.
template <typename Work>
auto retry_transient(FaultEpisode& episode, DiskReserve& reserve, bool producer, const std::atomic<bool>& stop,
                     Work&& work) -> decltype(work()) {
  for (int failures = 0;;) {
    if (producer && !wait_for_reserve(reserve, episode, stop)) throw Error("interrupted while the disk is full");
    try {
      if constexpr (std::is_void_v<decltype(work())>) {
        work();
        episode.resolved();
        return;
      } else {
        auto result = work();
        episode.resolved();
        return result;
      }
    } catch (const JournalError& e) {
      if (!e.transient() && fault_on_disk(e, reserve.path()) != Fault::full) throw;
      if (!wait_after_fault(e, episode, &reserve, ++failures, stop))
        throw Error(std::string("interrupted while waiting out a journal fault: ") + e.what());
    }
  }
}

}  // namespace gapless::journal
