// What only the running daemon knows, as the endpoint reads it on each
// request: each sender's counters (copied, so a sender replaced on a reload
// never leaves the endpoint holding a dangling one) and the process's open
// fault episodes. The daemon supplies a callback that builds it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/fault_episode.hpp"
#include "sender/sender.hpp"

namespace gapless::http {

struct SinkCounters {
  std::string sink;
  sender::CountersSnapshot counters;
};

struct DaemonSnapshot {
  int64_t started_ms = 0;  // unix ms
  std::vector<SinkCounters> sinks;
  std::vector<FaultSnapshot> faults;  // open_fault_episodes() of the daemon
};

using SnapshotSource = std::function<DaemonSnapshot()>;

}  // namespace gapless::http
