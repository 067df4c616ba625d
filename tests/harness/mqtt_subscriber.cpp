#include "harness/mqtt_subscriber.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mqtt/async_client.h>

#include "core/error.hpp"

namespace gapless::test {
namespace {

// Each subscriber needs a client id of its own: the broker drops an older
// connection that reuses one.
std::string unique_client_id() {
  static std::atomic<int> counter{0};
  return "gapless-test-mqtt-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string swap_characters(std::string text, const std::string& from, const std::string& to) {
  for (char& c : text) {
    auto at = from.find(c);
    if (at != std::string::npos) c = to[at];
  }
  return text;
}

}  // namespace

std::string MqttSubscriber::to_mqtt_topic(std::string activemq_name) {
  const std::string prefix = "/topic/";
  if (activemq_name.rfind(prefix, 0) == 0) activemq_name.erase(0, prefix.size());
  return swap_characters(std::move(activemq_name), ".>*", "/#+");
}

std::string MqttSubscriber::to_activemq_topic(std::string mqtt_name) {
  return swap_characters(std::move(mqtt_name), "/#+", ".>*");
}

MqttSubscriber::MqttSubscriber(const std::string& server_uri, std::vector<std::string> topic_filters,
                               MqttSubscriberOptions options)
    : server_uri_(server_uri),
      // No persistence: Paho's default would write files into the current directory.
      client_(std::make_unique<mqtt::async_client>(server_uri, unique_client_id(), nullptr)) {
  client_->set_message_callback([this](mqtt::const_message_ptr message) {
    on_message({message->get_topic(), message->get_payload(), message->get_qos(), message->is_retained()});
  });
  client_->set_connection_lost_handler([this](const std::string& cause) { on_connection_lost(cause); });

  auto connect_options = mqtt::connect_options_builder()
                             .mqtt_version(MQTTVERSION_3_1_1)
                             .clean_session(true)
                             .user_name(options.username)
                             .password(options.password)
                             .connect_timeout(options.timeout)
                             .keep_alive_interval(std::chrono::seconds(20))
                             .finalize();
  try {
    if (!client_->connect(connect_options)->wait_for(options.timeout)) {
      throw Error("no CONNACK within " + std::to_string(options.timeout.count()) + " ms");
    }
    {
      std::lock_guard lock(mutex_);
      connected_ = true;
    }
    for (const auto& filter : topic_filters) {
      auto token = client_->subscribe(filter, options.qos);
      if (!token->wait_for(options.timeout)) throw Error("no SUBACK for " + filter);
      auto response = token->get_subscribe_response();  // by value: keep it alive for the loop
      for (auto code : response.get_reason_codes()) {
        if (code >= 0x80) throw Error("SUBACK refused " + filter + " (code " + std::to_string(code) + ")");
      }
    }
  } catch (const mqtt::exception& e) {
    throw Error("MQTT subscriber on " + server_uri + " as " + options.username + ": " + e.what());
  } catch (const Error& e) {
    throw Error("MQTT subscriber on " + server_uri + " as " + options.username + ": " + e.what());
  }
}

MqttSubscriber::~MqttSubscriber() {
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception&) {
    // The broker may be gone already; nothing to clean up on its side.
  }
  // Paho's threads call back into this object: end them while the members
  // they touch still exist (members are destroyed after this body).
  client_.reset();
}

void MqttSubscriber::on_message(MqttMessage message) {
  {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
  }
  arrived_.notify_all();
}

void MqttSubscriber::on_connection_lost(const std::string& cause) {
  {
    std::lock_guard lock(mutex_);
    connected_ = false;
    lost_cause_ = cause.empty() ? "connection lost" : cause;
  }
  arrived_.notify_all();
}

bool MqttSubscriber::wait_for(size_t count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return arrived_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
}

std::vector<MqttMessage> MqttSubscriber::snapshot() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

size_t MqttSubscriber::count() const {
  std::lock_guard lock(mutex_);
  return messages_.size();
}

bool MqttSubscriber::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

std::string MqttSubscriber::lost_cause() const {
  std::lock_guard lock(mutex_);
  return lost_cause_;
}

}  // namespace gapless::test
