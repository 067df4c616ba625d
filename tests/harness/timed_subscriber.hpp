// A live STOMP subscriber that stamps every MESSAGE with the wall-clock time
// it arrived: the witness of end-to-end delay. A measurement that became
// visible in an archive at time t and arrives here at time t + d was d late,
// whatever happened in between (collector poll, journal, sender, broker).
//
//   gapless::test::TimedSubscriber subscriber(broker.stomp_uri());   // subscribed on return
//   ... the daemon runs ...
//   for (auto& message : subscriber.take()) use(message.arrived, message.body);
//
// Non-durable, ack:auto, as a dashboard consumer reads: the broker stores
// nothing for it and dispatches without fsync, so the delay is gapless's, not
// the broker's disk. Only messages published while it is subscribed are seen.
// The receiving thread only stamps and queues; take() hands the queue over,
// so parsing bodies (which can take longer than a message's arrival interval)
// never delays the stamps of the messages behind it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace gapless::stomp {
class Connection;
}

namespace gapless::test {

struct TimedMessage {
  std::chrono::system_clock::time_point arrived;  // when the receiving thread read the frame
  std::string destination;                        // e.g. "/topic/perfsonar.raw.packet-loss-rate"
  std::string gapless_id;                         // "" when the message has none
  std::vector<std::pair<std::string, std::string>> headers;  // all of them, as received
  std::string body;
  // The first header with this name, or nullptr.
  const std::string* header(std::string_view name) const;
};

class TimedSubscriber {
 public:
  // CONNECTs as reader/reader-secret, SUBSCRIBEs to `destination` and waits
  // for the broker's RECEIPT, so nothing published after the constructor
  // returns is missed. Throws gapless::Error on failure.
  explicit TimedSubscriber(const std::string& broker_uri,
                           const std::string& destination = "/topic/perfsonar.raw.>");
  ~TimedSubscriber();  // DISCONNECT
  TimedSubscriber(const TimedSubscriber&) = delete;
  TimedSubscriber& operator=(const TimedSubscriber&) = delete;

  // The messages received since the last take(), in arrival order.
  std::vector<TimedMessage> take();
  // Messages received in total.
  size_t received() const { return received_.load(); }
  // Empty while the subscription is alive; otherwise why it ended (an ERROR
  // frame or a lost connection: messages published after it are not seen).
  std::string failure() const;

 private:
  void run();

  std::unique_ptr<stomp::Connection> connection_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> received_{0};
  mutable std::mutex mutex_;
  std::vector<TimedMessage> queue_;
  std::string failure_;
};

// Arrival delays, in seconds, as the live-priority test and backfill-bench
// report them. Nearest rank: the smallest value with at least `fraction` of
// all at or below it; 0 without values.
double percentile(std::vector<double> values, double fraction);
// "N samples: p50 .. s, p90 .. s, p99 .. s, max .. s", or "no samples".
std::string delay_summary(const std::vector<double>& delays);

}  // namespace gapless::test
