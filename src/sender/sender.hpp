// The sender drains one sink's share of the journal to its broker, and is the
// only code that decides a message is delivered. Its promise (invariant 5 of
// the journal): a row becomes `delivered` only after the broker's RECEIPT for
// that message's own SEND *and* the RECEIPT for the COMMIT of its transaction.
// sender.cpp explains how each broker answer moves a message.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "core/heartbeat.hpp"

namespace gapless::sender {

// Counters for logs, status and metrics; updated by the sender thread only.
struct SenderCounters {
  std::atomic<int64_t> delivered{0};
  std::atomic<int64_t> refused{0};       // SENDs answered by an ERROR
  std::atomic<int64_t> aborted{0};       // transactions aborted
  std::atomic<int64_t> connections{0};   // successful CONNECTs
  std::atomic<bool> connected{false};
  Heartbeat progress;  // beaten each turn of the loop and during its waits, for the service watchdog
};

class Sender {
 public:
  // `stop` is shared by every sender of the process: once true, senders stop
  // claiming, wait at most sink.shutdown_timeout for outstanding receipts,
  // DISCONNECT and return from run(). `disk_reserve_bytes`: the journal's
  // [journal] disk_reserve, given back when the disk fills (disk_reserve.hpp).
  Sender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes, const std::atomic<bool>& stop);
  ~Sender();

  // Runs in the calling thread until `stop`, or, when `until_drained`, until
  // nothing is left to claim, nothing is in flight and every journal write is
  // made (parked messages wait). A transient journal fault pauses it; a
  // damaged journal (or another non-transient JournalError) ends it by throwing.
  void run(bool until_drained);

  const SenderCounters& counters() const { return counters_; }
  Heartbeat& progress() { return counters_.progress; }

 private:
  class Loop;
  SinkConfig sink_;
  std::string journal_path_;
  int64_t disk_reserve_bytes_;
  const std::atomic<bool>& stop_;
  SenderCounters counters_;
};

}  // namespace gapless::sender
