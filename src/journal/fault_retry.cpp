#include "journal/fault_retry.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace gapless::journal {

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

int64_t journal_retry_delay_ms(int failures) {
  int64_t delay = 1'000;
  for (int i = 1; i < failures && delay < 30'000; ++i) delay *= 2;
  return std::min<int64_t>(delay, 30'000);
}

bool sleep_unless_stopped(int64_t ms, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now,
                                                                              std::chrono::milliseconds(100)));
  }
  return false;
}

bool wait_for_reserve(DiskReserve& reserve, FaultEpisode& episode, const std::atomic<bool>& stop) {
  while (!reserve.take()) {
    episode.occurred(fault_kind(Fault::full),
                     "paused: the disk holding " + reserve.path() +
                         " is nearly full; nothing is written until the disk reserve can be taken again (free "
                         "space on that file system; delivery of what is journaled goes on)");
    if (!sleep_unless_stopped(kReserveRecheckMs, stop)) return false;
  }
  return true;
}

bool wait_after_fault(const JournalError& error, FaultEpisode& episode, DiskReserve* reserve, int failures,
                      const std::atomic<bool>& stop) {
  episode.occurred(fault_kind(error.fault()), error.what());
  if (error.fault() == Fault::full && reserve != nullptr) reserve->release();
  return sleep_unless_stopped(journal_retry_delay_ms(failures), stop);
}

}  // namespace gapless::journal
