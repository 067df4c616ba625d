// What GET /healthz answers: the reasons a person is needed, decided from a
// snapshot with no socket and no journal, so that each rule is unit-tested
// alone (tests/unit/test_http_health.cpp). No reason: 200 "ok"; else 503
// with one line per reason.
//
// The rules ([http] stalled_after, failed_polls):
//   - the journal takes no writes: an open fault episode of a journal kind
//     (disk-full, journal-busy, journal-io, ...), or of kind
//     "journal-size-limit" ([journal] max_size reached);
//   - a restart is required (core/restart_watch.hpp);
//   - an http sink's endpoint rejects the sink itself (401, 403, 404, a
//     redirect, TLS that does not verify: sender/http_answer_rules.hpp), at
//     once: its open "sink-rejected" episode, naming the status and the URL;
//   - a sink has pending messages and has delivered nothing for longer than
//     stalled_after. "Nothing for longer" counts from the latest of: its last
//     delivery, the oldest pending message's journal time (a sink idle until
//     a moment ago is not stalled; a parked message is not pending, so an
//     old one does not make an idle sink look stalled), the daemon's start;
//   - a destination has been parked, or a message parked on its own, for
//     longer than stalled_after (a parked destination's probe is not a
//     pending message of a stalled sink);
//   - an archive's last failed_polls polls failed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/fault_episode.hpp"
#include "journal/journal.hpp"

namespace gapless::http {

struct HealthInputs {
  int64_t now_ms = 0;
  int64_t daemon_started_ms = 0;
  std::vector<FaultSnapshot> faults;  // the daemon's open fault episodes
  std::vector<journal::SinkStatus> sinks;
  std::map<std::string, int64_t> last_delivered_ms;  // by sink; absent or 0: nothing delivered since the start
  std::map<std::string, std::vector<journal::ParkedMessage>> parked_messages;  // by sink
  std::vector<journal::ArchiveHealth> archives;
};

// One line per reason, most urgent first (the journal, a restart, sinks,
// archives); empty when all is well.
std::vector<std::string> health_reasons(const HealthInputs& inputs, const HttpConfig& rules);

}  // namespace gapless::http
