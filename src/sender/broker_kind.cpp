#include "sender/broker_kind.hpp"

namespace gapless::sender {

BrokerChoice choose_broker(std::string_view setting, std::string_view server) {
  if (setting == "rabbitmq") return {BrokerKind::rabbitmq, false};
  if (setting == "activemq") return {BrokerKind::activemq, false};
  if (server.rfind("RabbitMQ/", 0) == 0 || server == "RabbitMQ") return {BrokerKind::rabbitmq, false};
  if (server.rfind("ActiveMQ/", 0) == 0 || server == "ActiveMQ") return {BrokerKind::activemq, false};
  return {BrokerKind::activemq, true};
}

const char* broker_name(BrokerKind kind) { return kind == BrokerKind::rabbitmq ? "rabbitmq" : "activemq"; }

std::chrono::milliseconds offered_heartbeat(BrokerKind kind, std::chrono::milliseconds configured) {
  if (kind != BrokerKind::rabbitmq || configured <= std::chrono::milliseconds::zero()) return configured;
  return std::chrono::ceil<std::chrono::seconds>(configured);
}

std::optional<std::string> default_virtual_host(std::string_view setting) {
  if (setting == "rabbitmq") return std::string("/");
  return std::nullopt;
}

std::optional<std::string> refused_virtual_host(std::string_view connect_error) {
  constexpr std::string_view kStart = "Virtual host '";
  const size_t start = connect_error.find(kStart);
  if (start == std::string_view::npos) return std::nullopt;
  const size_t name = start + kStart.size();
  const size_t end = connect_error.find("' access denied", name);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(connect_error.substr(name, end - name));
}

}  // namespace gapless::sender
