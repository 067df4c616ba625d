// What only the running daemon knows, as the endpoint reads it on each
// request: each sender's counters (copied, so a sender replaced on a reload
// never leaves the endpoint holding a dangling one) and the process's open
// fault episodes. The daemon supplies a callback that builds it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/fault_episode.hpp"
#include "push/counters.hpp"
#include "sender/counters.hpp"

namespace gapless::http {

struct SinkCounters {
  std::string sink;
  sender::CountersSnapshot counters;
};

struct DaemonSnapshot {
  int64_t started_ms = 0;  // unix ms
  std::vector<SinkCounters> sinks;
  std::vector<FaultSnapshot> faults;  // open_fault_episodes() of the daemon
  // The configuration in force (a SIGHUP reload replaces it: status and
  // resend then know the sinks and archives it added); null: the one the
  // endpoint started with. Its [http] and [journal] never differ from that
  // one's: those keys need a restart (daemon/config_reload.hpp).
  std::shared_ptr<const Config> config;
  std::optional<push::CountersSnapshot> push;  // the push endpoint's, when [push] listen is set
};

using SnapshotSource = std::function<DaemonSnapshot()>;

}  // namespace gapless::http
