// The sender drains one sink's share of the journal to its broker, and is the
// only code that decides a message is delivered. Its promise (invariant 5 of
// the journal): a row becomes `delivered` only after the broker's RECEIPT for
// that message's own SEND *and* the RECEIPT for the COMMIT of its transaction.
// sender.cpp explains how each broker answer moves a message.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

#include "core/config.hpp"
#include "core/heartbeat.hpp"
#include "core/latency_histogram.hpp"

namespace gapless::sender {

// The kind of a sink's fault episode (core/fault_episode.hpp) while no broker
// of it can be reached: the episode's start is when the sink went down, for
// `gapless status`, and its repeated connect failures are counted, not logged
// one by one.
inline constexpr const char* kBrokerUnreachableKind = "broker-unreachable";

// What went wrong with a broker, as the metrics count it (broker_error_name).
enum class BrokerError : size_t {
  connect_failed,   // no CONNECTED from a broker (unreachable, refused login, TLS)
  connection_lost,  // an established connection dropped (EOF, heart-beat silence, overdue receipt, ERROR)
  not_authorized,   // an ERROR: not authorized to write to / create a destination
  flow_control,     // an ERROR: the broker's producer flow control
  refused,          // any other ERROR frame
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

class Sender {
 public:
  // `stop` is this sender's own (the daemon raises every sender's on SIGTERM,
  // one sender's when a SIGHUP reload removes or changes its sink): once true,
  // it stops claiming, waits at most sink.shutdown_timeout for outstanding
  // receipts, DISCONNECTs and returns from run(). `disk_reserve_bytes`: the journal's
  // [journal] disk_reserve, given back when the disk fills (disk_reserve.hpp).
  Sender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes, const std::atomic<bool>& stop);
  ~Sender();

  // Runs in the calling thread until `stop`, or, when `until_drained`, until
  // nothing is left to claim, nothing is in flight and every journal write is
  // made (parked messages wait). A transient journal fault pauses it; a
  // damaged journal (or another non-transient JournalError) ends it by throwing.
  void run(bool until_drained);

  const SenderCounters& counters() const { return counters_; }
  Heartbeat& progress() { return counters_.progress; }

 private:
  class Loop;
  SinkConfig sink_;
  std::string journal_path_;
  int64_t disk_reserve_bytes_;
  const std::atomic<bool>& stop_;
  SenderCounters counters_;
};

}  // namespace gapless::sender
