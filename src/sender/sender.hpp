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
#include "sender/counters.hpp"
#include "sender/sink_sender.hpp"

namespace gapless::sender {

class Sender : public SinkSender {
 public:
  // `stop` is this sender's own (the daemon raises every sender's on SIGTERM,
  // one sender's when a SIGHUP reload removes or changes its sink): once true,
  // it stops claiming, waits at most sink.shutdown_timeout for outstanding
  // receipts, DISCONNECTs and returns from run(). `disk_reserve_bytes`: the journal's
  // [journal] disk_reserve, given back when the disk fills (disk_reserve.hpp).
  Sender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes, const std::atomic<bool>& stop);
  ~Sender() override;

  // Runs in the calling thread until `stop`, or, when `until_drained`, until
  // nothing is left to claim, nothing is in flight and every journal write is
  // made (parked messages wait). A transient journal fault pauses it; a
  // damaged journal (or another non-transient JournalError) ends it by throwing.
  void run(bool until_drained) override;

  const SenderCounters& counters() const override { return counters_; }
  Heartbeat& progress() override { return counters_.progress; }

 private:
  class Loop;
  SinkConfig sink_;
  std::string journal_path_;
  int64_t disk_reserve_bytes_;
  const std::atomic<bool>& stop_;
  SenderCounters counters_;
};

}  // namespace gapless::sender
