#include "journal/fault_retry.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/backoff.hpp"
#include "journal/size_limit.hpp"

namespace gapless::journal {

namespace {

// With less room than this, SQLite's I/O errors and CANTOPEN are a full disk:
// creating or growing the -shm and -wal files is what failed (fault_on_disk).
constexpr int64_t kNearlyFullBytes = 1024 * 1024;

}  // namespace

const char* fault_kind(Fault fault) {
  switch (fault) {
    case Fault::busy: return "journal-busy";
    case Fault::full: return "disk-full";
    case Fault::io: return "journal-io";
    case Fault::damaged: return "journal-damaged";
    case Fault::other: return "journal-other";
  }
  return "journal-other";
}

const std::vector<std::string>& journal_fault_kinds() {
  static const std::vector<std::string> kinds = {
      fault_kind(Fault::busy),    fault_kind(Fault::full),  fault_kind(Fault::io),
      fault_kind(Fault::damaged), fault_kind(Fault::other), std::string(kSizeLimitKind)};
  return kinds;
}

bool disk_nearly_full(const std::string& path) {
  const std::optional<FreeSpace> space = free_space(path);
  return space && (space->bytes < kNearlyFullBytes || space->out_of_inodes);
}

Fault fault_on_disk(const JournalError& error, const std::string& journal_path) {
  if ((error.fault() == Fault::io || error.fault() == Fault::other) && disk_nearly_full(journal_path))
    return Fault::full;
  return error.fault();
}

int64_t journal_retry_delay_ms(int failures) {
  return doubling_delay(std::chrono::seconds(1), std::chrono::seconds(30), failures).count();
}

void record_reserve_pause(const DiskReserve& reserve, FaultEpisode& episode) {
  episode.occurred(fault_kind(Fault::full),
                   "paused: the disk holding " + reserve.path() +
                       " is nearly full; nothing is written until the disk reserve can be taken again (free "
                       "space on that file system); it resumes by itself then, nothing is skipped, and delivery "
                       "of what is journaled goes on");
}

bool wait_for_reserve(DiskReserve& reserve, FaultEpisode& episode, const std::atomic<bool>& stop) {
  while (!reserve.take()) {
    record_reserve_pause(reserve, episode);
    if (!gapless::sleep_unless_stopped(std::chrono::milliseconds(kReserveRecheckMs), stop)) return false;
  }
  return true;
}

bool wait_after_fault(const JournalError& error, FaultEpisode& episode, DiskReserve* reserve, int failures,
                      const std::atomic<bool>& stop) {
  const Fault fault = reserve != nullptr ? fault_on_disk(error, reserve->path()) : error.fault();
  episode.occurred(fault_kind(fault), error.what());
  if (fault == Fault::full && reserve != nullptr) reserve->release();
  return gapless::sleep_unless_stopped(std::chrono::milliseconds(journal_retry_delay_ms(failures)), stop);
}

}  // namespace gapless::journal
