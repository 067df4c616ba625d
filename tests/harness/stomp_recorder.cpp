#include "harness/stomp_recorder.hpp"

#include <set>

#include "core/error.hpp"
#include "stomp/connection.hpp"
#include "stomp/error_text.hpp"
#include "stomp/frame.hpp"
#include "stomp/uri.hpp"

namespace gapless::test {
namespace {

using namespace std::chrono_literals;

// How long one poll() may block: bounds how late stop() is noticed.
constexpr auto kPollSlice = 100ms;
constexpr auto kConnectTimeout = 5s;
constexpr auto kDisconnectTimeout = 2s;
// The subscription id on our connection (one subscription per connection).
constexpr const char* kSubscriptionId = "recorder";

}  // namespace

const std::string* RecordedMessage::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

StompRecorder::StompRecorder(std::string broker_uri, StompRecorderOptions options)
    : broker_uri_(std::move(broker_uri)), options_(std::move(options)) {
  stomp::BrokerUri::parse(broker_uri_);  // fail here, not in the thread, on a bad URI
}

StompRecorder::~StompRecorder() { stop(); }

void StompRecorder::start() {
  if (thread_.joinable()) throw Error("StompRecorder::start: already started");
  {
    std::lock_guard lock(mutex_);
    stop_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void StompRecorder::start_and_wait_subscribed(std::chrono::milliseconds timeout) {
  size_t before = subscriptions();
  start();
  if (!wait_subscriptions(before + 1, timeout)) {
    std::string error = last_error();
    stop();
    throw Error("StompRecorder: no RECEIPT for SUBSCRIBE " + options_.destination + " on " + broker_uri_ +
                " within " + std::to_string(timeout.count()) + " ms" +
                (error.empty() ? std::string() : "; last error: " + error));
  }
}

bool StompRecorder::wait_subscriptions(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return subscriptions_ >= count; });
}

void StompRecorder::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool StompRecorder::stop_requested() const {
  std::lock_guard lock(mutex_);
  return stop_;
}

// Connect, subscribe, record, until stop(); any failure means: wait
// retry_interval and start over (the broker is restarting, typically).
void StompRecorder::run() {
  while (!stop_requested()) {
    try {
      run_session();
    } catch (const std::exception& e) {
      set_error(e.what());
    }
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.retry_interval, [&] { return stop_; });
  }
}

void StompRecorder::run_session() {
  stomp::ConnectOptions connect;
  connect.login = options_.login;
  connect.passcode = options_.passcode;
  connect.virtual_host = options_.virtual_host;
  connect.client_id = options_.client_id;
  connect.heartbeat = options_.heartbeat;
  connect.connect_timeout = kConnectTimeout;
  auto connection = stomp::Connection::open(stomp::BrokerUri::parse(broker_uri_), connect);

  std::string receipt;
  {
    std::lock_guard lock(mutex_);
    receipt = "recorder-subscribe-" + std::to_string(++sessions_);
  }
  stomp::Frame subscribe{"SUBSCRIBE", {}, {}};
  subscribe.add("destination", options_.destination)
      .add("id", kSubscriptionId)
      .add("ack", "client-individual")
      .add("activemq.subscriptionName", options_.subscription_name)
      .add("receipt", receipt);
  for (const auto& [name, value] : options_.subscribe_headers) subscribe.add(name, value);
  connection->send(subscribe);

  while (!stop_requested()) {
    auto frame = connection->poll(kPollSlice);
    if (!frame) continue;
    if (frame->command == "MESSAGE") {
      const std::string* ack = frame->header("ack");
      if (ack == nullptr) throw Error("MESSAGE without ack header on a client-individual subscription");
      std::string ack_id = *ack;
      const std::string* destination = frame->header("destination");
      record({destination ? *destination : std::string(), std::move(frame->headers), std::move(frame->body)});
      // Recorded first, acknowledged second: a failure in between yields a
      // redelivery (visible as a duplicate), never a lost message.
      stomp::Frame ack_frame{"ACK", {}, {}};
      ack_frame.add("id", ack_id);
      connection->send(ack_frame);
    } else if (frame->command == "RECEIPT") {
      const std::string* id = frame->header("receipt-id");
      if (id != nullptr && *id == receipt) {
        {
          std::lock_guard lock(mutex_);
          ++subscriptions_;
          last_error_.clear();
        }
        changed_.notify_all();
      }
    } else if (frame->command == "ERROR") {
      throw Error("ERROR from broker: " + stomp::error_text_with_body(*frame));
    }
  }
  connection->disconnect(kDisconnectTimeout);
}

void StompRecorder::record(RecordedMessage message) {
  {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
  }
  changed_.notify_all();
}

void StompRecorder::set_error(const std::string& error) {
  std::lock_guard lock(mutex_);
  last_error_ = error;
}

bool StompRecorder::wait_for(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
}

bool StompRecorder::wait_for_distinct(std::string_view header, size_t count,
                                      std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return distinct_locked(header) >= count; });
}

std::vector<RecordedMessage> StompRecorder::snapshot() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

size_t StompRecorder::count() const {
  std::lock_guard lock(mutex_);
  return messages_.size();
}

size_t StompRecorder::distinct(std::string_view header) const {
  std::lock_guard lock(mutex_);
  return distinct_locked(header);
}

size_t StompRecorder::distinct_locked(std::string_view header) const {
  std::set<std::string_view> values;
  for (const auto& message : messages_) {
    if (const std::string* value = message.header(header)) values.insert(*value);
  }
  return values.size();
}

std::set<std::string> StompRecorder::values(std::string_view header) const {
  std::lock_guard lock(mutex_);
  std::set<std::string> values;
  for (const auto& message : messages_)
    if (const std::string* value = message.header(header)) values.insert(*value);
  return values;
}

std::map<std::string, size_t> StompRecorder::count_by(std::string_view header) const {
  std::lock_guard lock(mutex_);
  std::map<std::string, size_t> counts;
  for (const auto& message : messages_) {
    if (const std::string* value = message.header(header)) ++counts[*value];
  }
  return counts;
}

size_t StompRecorder::subscriptions() const {
  std::lock_guard lock(mutex_);
  return subscriptions_;
}

std::string StompRecorder::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

}  // namespace gapless::test
