#include "http/health.hpp"

#include <algorithm>
#include <optional>

#include "core/restart_watch.hpp"
#include "journal/fault_retry.hpp"
#include "journal/size_limit.hpp"
#include "sender/counters.hpp"
#include "status/problems.hpp"

namespace gapless::http {

namespace {

// A kind journal/fault_retry.hpp lists: the journal takes no writes right now.
bool journal_fault(const std::string& kind) {
  const std::vector<std::string>& kinds = journal::journal_fault_kinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

// "for 2h5m (since 2026-12-05T18:00:05Z)", in status's words.
std::string since(int64_t now_ms, int64_t since_ms) { return "for " + status::since_text(since_ms, now_ms); }

}  // namespace

std::vector<std::string> health_reasons(const HealthInputs& in, const HttpConfig& rules) {
  std::vector<std::string> reasons;
  const int64_t stalled_ms = rules.stalled_after.count();
  const auto too_long = [&](int64_t since_ms) { return in.now_ms - since_ms > stalled_ms; };

  for (const FaultSnapshot& fault : in.faults) {
    if (fault.kind == journal::kSizeLimitKind)
      reasons.push_back("journal at its size limit (" + fault.component + ") " + since(in.now_ms, fault.since_ms) +
                        ": " + fault.last_error);
    else if (journal_fault(fault.kind))
      reasons.push_back("journal not writable (" + fault.component + ", " + fault.kind + ") " +
                        since(in.now_ms, fault.since_ms) + ": " + fault.last_error);
  }
  for (const FaultSnapshot& fault : in.faults)
    if (fault.kind == kRestartRequiredKind) reasons.push_back("restart required: " + fault.last_error);
  // At once, not after stalled_after: the sink's configuration is wrong, and
  // nothing it holds moves until a person fixes it.
  for (const FaultSnapshot& fault : in.faults)
    if (fault.kind == sender::kSinkRejectedKind)
      reasons.push_back(fault.component + ": rejected by its endpoint " + since(in.now_ms, fault.since_ms) + ": " +
                        fault.last_error);

  for (const journal::SinkStatus& sink : in.sinks) {
    int64_t pending = 0;
    std::optional<int64_t> oldest_pending_ms;
    for (const journal::DestinationStatus& destination : sink.destinations) {
      if (destination.parked_destination) {
        const journal::ParkedDestination& parked = *destination.parked_destination;
        if (too_long(parked.parked_at_ms))
          reasons.push_back("sink " + sink.sink + ": destination " + destination.destination + " parked " +
                            since(in.now_ms, parked.parked_at_ms) + ", " + std::to_string(destination.parked) +
                            " messages: " + parked.reason);
        continue;
      }
      if (destination.pending == 0) continue;
      pending += destination.pending;
      // Pending only: a message parked long ago is its own reason (below), not a stalled sink.
      if (destination.oldest_pending_ms)
        oldest_pending_ms =
            std::min(oldest_pending_ms.value_or(*destination.oldest_pending_ms), *destination.oldest_pending_ms);
    }
    if (pending > 0) {
      const auto last = in.last_delivered_ms.find(sink.sink);
      const int64_t last_delivered = last == in.last_delivered_ms.end() ? 0 : last->second;
      const int64_t quiet_since = std::max({last_delivered, oldest_pending_ms.value_or(0), in.daemon_started_ms});
      if (too_long(quiet_since))
        reasons.push_back("sink " + sink.sink + ": " + std::to_string(pending) + " messages pending, nothing delivered " +
                          since(in.now_ms, quiet_since) +
                          (last_delivered > 0 ? "" : "; nothing delivered since the daemon started"));
    }
    // One line per sink however many: the oldest, and how many more.
    if (const auto parked = in.parked_messages.find(sink.sink); parked != in.parked_messages.end()) {
      const journal::ParkedMessage* oldest = nullptr;
      int64_t stale = 0;
      for (const journal::ParkedMessage& message : parked->second)
        if (too_long(message.updated_ms)) {
          ++stale;
          if (oldest == nullptr || message.updated_ms < oldest->updated_ms) oldest = &message;
        }
      if (oldest != nullptr)
        reasons.push_back("sink " + sink.sink + ": message " + std::to_string(oldest->id) + " (" + oldest->gapless_id +
                          ") to " + oldest->destination + " parked " + since(in.now_ms, oldest->updated_ms) + ": " +
                          oldest->reason +
                          (stale > 1 ? " (and " + std::to_string(stale - 1) + " more parked that long)" : ""));
    }
  }

  for (const journal::ArchiveHealth& archive : in.archives)
    if (rules.failed_polls > 0 && archive.consecutive_failed_polls >= rules.failed_polls)
      reasons.push_back("archive " + archive.name + " (" + archive.archive_url + "): its last " +
                        std::to_string(archive.consecutive_failed_polls) + " polls failed" +
                        (archive.last_error.empty() ? "" : ": " + archive.last_error));
  return reasons;
}

}  // namespace gapless::http
