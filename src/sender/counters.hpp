// What every sender (sender.hpp's STOMP one, http_sender.hpp's) counts, for
// logs, status and metrics, in the same terms whatever the protocol.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "core/heartbeat.hpp"
#include "core/latency_histogram.hpp"

namespace gapless::sender {

// The kind of a sink's fault episode (core/fault_episode.hpp) while no broker
// of it can be reached (an http sink: its URL answers nothing, or 429 or
// 5xx): the episode's start is when the sink went down, for `gapless
// status`, and its repeated failures are counted, not logged one by one.
inline constexpr const char* kBrokerUnreachableKind = "broker-unreachable";

// The kind of an http sink's fault episode while its URL answers that the
// sink itself is wrong (401, 403, 404, a redirect, a certificate that does
// not verify: http_answer_rules.hpp): the sink is paused, nothing is parked,
// and a person must fix its credentials or its URL.
inline constexpr const char* kSinkRejectedKind = "sink-rejected";

// What went wrong with a broker (an http sink: its URL), as the metrics
// count it (broker_error_name).
enum class BrokerError : size_t {
  connect_failed,   // no CONNECTED from a broker (unreachable, refused login, TLS); http: no answer at all
  connection_lost,  // an established connection dropped (EOF, heart-beat silence, overdue receipt, ERROR);
                    // http: a request timed out
  not_authorized,   // an ERROR: not authorized to write to / create a destination; http: the sink rejected (401 ...)
  flow_control,     // an ERROR: the broker's producer flow control; http: 429 or 5xx
  refused,          // any other ERROR frame; http: the message refused (400, 413, 422)
};
constexpr size_t kBrokerErrorKinds = 5;
const char* broker_error_name(BrokerError kind);  // "connect-failed", "connection-lost", ...

// A copy of SenderCounters at one instant, for the daemon's endpoint.
struct CountersSnapshot {
  int64_t delivered = 0;
  int64_t refused = 0;
  int64_t aborted = 0;
  int64_t connections = 0;
  int64_t reconnects = 0;
  bool connected = false;
  int64_t last_delivered_ms = 0;
  std::map<std::string, int64_t> broker_errors;  // every kind, by broker_error_name
  HistogramSnapshot latency;
};

// Counters for logs, status and metrics; updated by the sender thread only,
// read by any (each is an atomic, the histogram lock-free).
struct SenderCounters {
  std::atomic<int64_t> delivered{0};
  std::atomic<int64_t> refused{0};       // SENDs answered by an ERROR
  std::atomic<int64_t> aborted{0};       // transactions aborted
  std::atomic<int64_t> connections{0};   // successful CONNECTs
  std::atomic<int64_t> reconnects{0};    // successful CONNECTs after the first (a lost connection, a failback)
  std::atomic<bool> connected{false};
  std::atomic<int64_t> last_delivered_ms{0};  // unix ms of the latest delivered mark; 0: none since start
  std::array<std::atomic<int64_t>, kBrokerErrorKinds> broker_errors{};  // by BrokerError
  LatencyHistogram latency;  // a message's SEND to its transaction's COMMIT RECEIPT, for delivered messages
  Heartbeat progress;  // beaten each turn of the loop and during its waits, for the service watchdog

  void count(BrokerError kind) { broker_errors[static_cast<size_t>(kind)].fetch_add(1, std::memory_order_relaxed); }
  CountersSnapshot snapshot() const;
};

}  // namespace gapless::sender
