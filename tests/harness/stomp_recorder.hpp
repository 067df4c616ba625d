// A durable STOMP subscriber that records every MESSAGE the broker delivers,
// across broker restarts: the "what did the consumer actually get" witness of
// the delivery tests (nothing lost, duplicates counted).
//
// It uses gapless's own client (gapless::stomp::Connection) from a thread of
// its own: CONNECT as `reader` with a fixed client-id, SUBSCRIBE with
// activemq.subscriptionName (a durable topic subscription, kept by the broker
// in kahaDB while we are away) and ack:client-individual; each MESSAGE is
// recorded first and ACKed after, so a crash in between means a redelivery
// (a duplicate), never a loss. When the broker goes away it reconnects every
// 200 ms and subscribes again.
//
// ActiveMQ keeps messages for a durable subscription only once it exists:
// call start_and_wait_subscribed() BEFORE the messages are sent.
// Subscribe to your own subtree (`/topic/perfsonar.>`), never `/topic/>`: that
// matches advisory topics, which Debian's broker cannot render (no XStream).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace gapless::test {

struct RecordedMessage {
  std::string destination;  // e.g. "/topic/perfsonar.raw.throughput"
  std::vector<std::pair<std::string, std::string>> headers;  // as received (unescaped)
  std::string body;
  // The first header with this name, or nullptr.
  const std::string* header(std::string_view name) const;
};

struct StompRecorderOptions {
  std::string destination = "/topic/perfsonar.>";
  // The durable subscription is (client_id, subscription_name): use the same
  // pair to pick up what was kept for an earlier recorder.
  std::string client_id = "gapless-test-recorder";
  std::string subscription_name = "gapless-test-recorder";
  std::string login = "reader";
  std::string passcode = "reader-secret";
  // The CONNECT's host header; empty: the broker URI's host (ActiveMQ ignores
  // it; RabbitMQ takes it as the virtual host and wants "/").
  std::string virtual_host{};
  // More SUBSCRIBE headers, e.g. RabbitMQ's durable:true (RabbitNode::durable_recorder_options).
  std::vector<std::pair<std::string, std::string>> subscribe_headers{};
  std::chrono::milliseconds retry_interval{200};
  std::chrono::milliseconds heartbeat{2'000};
};

class StompRecorder {
 public:
  // Does not connect yet: call start() or start_and_wait_subscribed().
  explicit StompRecorder(std::string broker_uri, StompRecorderOptions options = {});
  ~StompRecorder();  // stop()
  StompRecorder(const StompRecorder&) = delete;
  StompRecorder& operator=(const StompRecorder&) = delete;

  // Starts the recording thread; returns at once.
  void start();
  // start(), then waits for the RECEIPT of the SUBSCRIBE. Throws
  // gapless::Error (with the last connection error) after `timeout`.
  void start_and_wait_subscribed(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until the recorder has subscribed at least `count` times in total
  // (1 after the first start, 2 after one reconnect...). False at timeout.
  bool wait_subscriptions(size_t count, std::chrono::milliseconds timeout) const;
  // Ends the thread with a DISCONNECT. The durable subscription stays on the
  // broker (inactive), so messages sent meanwhile wait for the next start().
  void stop();

  // True once at least `count` MESSAGE frames were recorded in total
  // (duplicates included). False at timeout.
  bool wait_for(size_t count, std::chrono::milliseconds timeout) const;
  // True once `count` distinct values of `header` were recorded.
  bool wait_for_distinct(std::string_view header, size_t count, std::chrono::milliseconds timeout) const;

  std::vector<RecordedMessage> snapshot() const;
  size_t count() const;
  // Distinct values of `header` (messages without it are not counted), e.g.
  // distinct("gapless-id") = how many different measurements arrived.
  size_t distinct(std::string_view header) const;
  // The distinct values of `header`, e.g. values("gapless-id"): which measurements arrived.
  std::set<std::string> values(std::string_view header) const;
  // value -> how often it was recorded; a value seen twice is a duplicate.
  std::map<std::string, size_t> count_by(std::string_view header) const;

  size_t subscriptions() const;   // successful SUBSCRIBEs so far (reconnects + 1)
  std::string last_error() const;  // why the last connection ended, or ""

 private:
  void run();
  void run_session();
  void record(RecordedMessage message);
  void set_error(const std::string& error);
  bool stop_requested() const;
  size_t distinct_locked(std::string_view header) const;

  std::string broker_uri_;
  StompRecorderOptions options_;
  std::thread thread_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stop_ = false;
  std::vector<RecordedMessage> messages_;
  size_t subscriptions_ = 0;
  size_t sessions_ = 0;  // for unique receipt ids per connection
  std::string last_error_;
};

}  // namespace gapless::test
