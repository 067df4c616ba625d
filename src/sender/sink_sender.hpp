// What the daemon runs for one sink, whatever its protocol: the STOMP sender
// (sender.hpp) or the http one (http_sender.hpp). Both keep the same promise
// (journal invariant 5: a row is marked delivered only after its sink
// confirmed it) and count in the same terms (counters.hpp), so the daemon,
// status and metrics need not know which runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/config.hpp"
#include "core/heartbeat.hpp"
#include "sender/counters.hpp"

namespace gapless::sender {

class SinkSender {
 public:
  virtual ~SinkSender() = default;

  // Runs in the calling thread until its `stop` (given to make_sender), or,
  // when `until_drained`, until nothing is left to claim, in flight or owed
  // to the journal (parked messages wait). A transient journal fault pauses
  // it; a damaged journal ends it by throwing.
  virtual void run(bool until_drained) = 0;

  virtual const SenderCounters& counters() const = 0;
  virtual Heartbeat& progress() = 0;
};

// The sender of `sink.protocol` ("stomp" or "http"). `stop` is this sender's
// own (a reload stops one sink); `disk_reserve_bytes` is [journal]
// disk_reserve, given back when the disk fills.
std::unique_ptr<SinkSender> make_sender(const SinkConfig& sink, const std::string& journal_path,
                                        int64_t disk_reserve_bytes, const std::atomic<bool>& stop);

}  // namespace gapless::sender
