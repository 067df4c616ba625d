#include "sender/counters.hpp"

namespace gapless::sender {

const char* broker_error_name(BrokerError kind) {
  switch (kind) {
    case BrokerError::connect_failed: return "connect-failed";
    case BrokerError::connection_lost: return "connection-lost";
    case BrokerError::not_authorized: return "not-authorized";
    case BrokerError::flow_control: return "flow-control";
    case BrokerError::refused: return "refused";
  }
  return "refused";
}

CountersSnapshot SenderCounters::snapshot() const {
  CountersSnapshot out;
  out.delivered = delivered;
  out.refused = refused;
  out.aborted = aborted;
  out.connections = connections;
  out.reconnects = reconnects;
  out.connected = connected;
  out.last_delivered_ms = last_delivered_ms;
  for (size_t kind = 0; kind < kBrokerErrorKinds; ++kind)
    out.broker_errors[broker_error_name(static_cast<BrokerError>(kind))] = broker_errors[kind].load();
  out.latency = latency.snapshot();
  return out;
}

}  // namespace gapless::sender
