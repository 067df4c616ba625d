// Which broker a STOMP sink talks to, and what follows from it before the
// delivery rules (delivery_machine.hpp): the `broker` setting ("auto",
// "activemq", "rabbitmq") or, for "auto", the CONNECTED frame's `server`
// header ("ActiveMQ/5.17.2", "RabbitMQ/3.10.8"). An unknown server gets
// ActiveMQ's rules: they hold no SEND's receipt hostage to a COMMIT on a
// broker that keeps transactions, and the sender says once that it assumed so.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gapless::sender {

enum class BrokerKind { activemq, rabbitmq };

struct BrokerChoice {
  BrokerKind kind = BrokerKind::activemq;
  bool assumed = false;  // "auto" and a server we do not know
};

BrokerChoice choose_broker(std::string_view setting, std::string_view server);
const char* broker_name(BrokerKind kind);

// The heart-beat to offer: RabbitMQ counts them in whole seconds (it cuts
// 1500 ms to 1 s, and anything under a second to 1 s), so offer whole
// seconds, rounded up, and both ends agree on the interval.
std::chrono::milliseconds offered_heartbeat(BrokerKind kind, std::chrono::milliseconds configured);

// The `host` header for an empty `virtual_host`: "/" (RabbitMQ's default
// virtual host) when the sink is set to RabbitMQ; nothing otherwise (the
// connection sends the broker's host name, which ActiveMQ only logs).
std::optional<std::string> default_virtual_host(std::string_view setting);

// The virtual host a refused CONNECT names as unknown or denied, from
// RabbitMQ's words "Virtual host 'X' access denied"; nothing otherwise.
std::optional<std::string> refused_virtual_host(std::string_view connect_error);

}  // namespace gapless::sender
