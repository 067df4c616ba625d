// A sender's journal connection and the rule every sender follows with it: a
// journal fault is a pause, not a crash. Each call is one journal operation;
// a transient fault (busy, full, I/O) is an occurrence of the sender's fault
// episode (core/fault_episode.hpp, logged when it begins and ends, shown by
// status) and the journal is left alone until journal::journal_retry_delay_ms
// has passed; on a full disk the reserve beside the journal is given back
// once, so that delivery marks can still be written while producers pause.
// Any other fault (a damaged journal) propagates: a person must look.
// Shared by the STOMP sender (sender.cpp) and the http one (http_sender.cpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/fault_episode.hpp"
#include "core/heartbeat.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "journal/journal.hpp"

namespace gapless::sender {

class JournalLink {
 public:
  // `component` names the sender in its fault episode ("sender sink=NAME").
  JournalLink(std::string component, std::string journal_path, int64_t disk_reserve_bytes);

  // Opens the journal, registering `sink`, retrying transient faults until it
  // opens (true) or `stop` (false); `progress` is beaten while it waits.
  bool open(const journal::SinkRegistration& sink, const std::atomic<bool>& stop, Heartbeat& progress);

  // One journal operation: true when `work` ran to its end; false after a
  // transient fault, or while the backoff after one lasts (work not run).
  template <typename Work>
  bool call(Work&& work) {
    if (!ready()) return false;
    try {
      work();
    } catch (const journal::JournalError& e) {
      if (!e.transient()) throw;
      failed(e);
      return false;
    }
    if (failures_ > 0) recovered();
    return true;
  }

  bool ready() const { return std::chrono::steady_clock::now() >= retry_at_; }
  bool faulty() const { return episode_.is_open(); }  // the latest operation failed
  void retry_now() { retry_at_ = {}; }                // one more attempt, whatever the backoff (stopping)
  bool is_open() const { return journal_ != nullptr; }
  journal::Journal& journal() { return *journal_; }

 private:
  void failed(const journal::JournalError& error);
  void recovered();

  std::string journal_path_;
  FaultEpisode episode_;
  journal::DiskReserve reserve_;
  std::unique_ptr<journal::Journal> journal_;
  int failures_ = 0;  // transient faults in a row
  bool reserve_released_ = false;
  std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace gapless::sender
