// An MQTT subscriber (Paho MQTT C++ 1.2) on the test broker: the end-to-end
// witness that what gapless sent over STOMP reaches an MQTT consumer the way
// OSG's consumers see it, byte for byte.
//
// Names: MQTT `a/b/c` is ActiveMQ topic `a.b.c` is STOMP `/topic/a.b.c`;
// MQTT `#` is ActiveMQ `>` and `+` is `*`. Filters and received topics here
// are in MQTT form (a STOMP SEND to /topic/test.a arrives with topic "test/a").
//
// Non-durable (clean session): only messages published while connected are
// seen, and nothing survives a broker restart. Use StompRecorder for that.
// Note: a STOMP `persistent:true` message reaches MQTT at QoS 0 whatever the
// subscription QoS (ActiveMQ quirk, docs/stomp-activemq.md 2.10).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mqtt {
class async_client;
}

namespace gapless::test {

struct MqttMessage {
  std::string topic;    // MQTT form, e.g. "perfsonar/raw/throughput"
  std::string payload;  // raw bytes (may hold NULs)
  int qos = 0;
  bool retained = false;
};

struct MqttSubscriberOptions {
  std::string username = "reader";
  std::string password = "reader-secret";
  int qos = 1;
  std::chrono::milliseconds timeout{10'000};  // for connect and each SUBACK
};

class MqttSubscriber {
 public:
  // Connects to `server_uri` ("tcp://127.0.0.1:PORT", TestBroker::mqtt_uri())
  // and subscribes to every filter; returns once every SUBACK arrived. Throws
  // gapless::Error naming the broker and filter on failure.
  MqttSubscriber(const std::string& server_uri, std::vector<std::string> topic_filters,
                 MqttSubscriberOptions options = {});
  ~MqttSubscriber();  // disconnects
  MqttSubscriber(const MqttSubscriber&) = delete;
  MqttSubscriber& operator=(const MqttSubscriber&) = delete;

  // True once at least `count` messages arrived in total, false at timeout.
  bool wait_for(size_t count, std::chrono::milliseconds timeout) const;
  // Everything received so far, in arrival order.
  std::vector<MqttMessage> snapshot() const;
  size_t count() const;
  // False after the broker dropped us; lost_cause() then says why.
  bool connected() const;
  std::string lost_cause() const;

  // Conversions between ActiveMQ/STOMP and MQTT topic names ('.' <-> '/',
  // '>' <-> '#', '*' <-> '+'); a leading "/topic/" is dropped.
  static std::string to_mqtt_topic(std::string activemq_name);
  static std::string to_activemq_topic(std::string mqtt_name);

 private:
  void on_message(MqttMessage message);
  void on_connection_lost(const std::string& cause);

  std::string server_uri_;
  std::unique_ptr<mqtt::async_client> client_;
  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<MqttMessage> messages_;
  bool connected_ = false;
  std::string lost_cause_;
};

}  // namespace gapless::test
