#include "harness/timed_subscriber.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "harness/stomp_helpers.hpp"
#include "stomp/connection.hpp"
#include "stomp/frame.hpp"

namespace gapless::test {

const std::string* TimedMessage::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return &value;
  return nullptr;
}

TimedSubscriber::TimedSubscriber(const std::string& broker_uri, const std::string& destination)
    : connection_(connect_stomp(broker_uri, "reader", "reader-secret")) {
  stomp::Frame subscribe{"SUBSCRIBE",
                         {{"id", "timed-subscriber"},
                          {"destination", destination},
                          {"ack", "auto"},
                          {"receipt", "timed-subscriber-subscribed"}},
                         {}};
  const stomp::Frame reply = send_and_await(*connection_, subscribe);
  if (reply.command != "RECEIPT")
    throw Error("TimedSubscriber: SUBSCRIBE to " + destination + " on " + broker_uri + " refused: " + reply.body);
  thread_ = std::thread([this] { run(); });
}

TimedSubscriber::~TimedSubscriber() {
  stop_ = true;
  thread_.join();
  connection_->disconnect(std::chrono::milliseconds(2000));
}

std::vector<TimedMessage> TimedSubscriber::take() {
  std::lock_guard lock(mutex_);
  std::vector<TimedMessage> taken;
  taken.swap(queue_);
  return taken;
}

std::string TimedSubscriber::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

void TimedSubscriber::run() {
  try {
    while (!stop_) {
      std::optional<stomp::Frame> frame = connection_->poll(std::chrono::milliseconds(100));
      if (!frame) continue;
      // Stamped before anything else is done with the frame.
      const auto arrived = std::chrono::system_clock::now();
      if (frame->command == "MESSAGE") {
        TimedMessage message;
        message.arrived = arrived;
        if (const std::string* destination = frame->header("destination")) message.destination = *destination;
        if (const std::string* id = frame->header("gapless-id")) message.gapless_id = *id;
        message.headers = std::move(frame->headers);
        message.body = std::move(frame->body);
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(message));
        ++received_;
      } else if (frame->command == "ERROR") {
        std::lock_guard lock(mutex_);
        failure_ = "broker ERROR: " + frame->body;
        return;
      }
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    failure_ = e.what();
  }
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(values.size())));
  return values.at(std::max<size_t>(rank, 1) - 1);
}

std::string delay_summary(const std::vector<double>& delays) {
  if (delays.empty()) return "no samples";
  char text[200];
  std::snprintf(text, sizeof text, "%zu samples: p50 %.2f s, p90 %.2f s, p99 %.2f s, max %.2f s", delays.size(),
                percentile(delays, 0.5), percentile(delays, 0.9), percentile(delays, 0.99),
                *std::max_element(delays.begin(), delays.end()));
  return text;
}

}  // namespace gapless::test
