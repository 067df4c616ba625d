// GET /metrics: Prometheus' text exposition format. First everything
// `gapless status --prometheus` prints (status::write_prometheus, the one
// place those families are written), then what the daemon adds:
//   - from the journal: messages held per sink and destination, the age of
//     the oldest undelivered one, each archive's cursor lag, the journal's
//     file size and the free space beside it, open journal faults by kind;
//   - from the senders (DaemonSnapshot): per sink, whether it is connected,
//     messages delivered, the latest delivery, reconnects, broker errors by
//     kind and the send-to-receipt latency histogram.
// Every family has its HELP and TYPE once, then all its samples together.
#pragma once

#include <ostream>

#include "core/config.hpp"
#include "http/daemon_snapshot.hpp"
#include "journal/journal.hpp"

namespace gapless::http {

void write_metrics(const Config& config, journal::Journal& journal, const DaemonSnapshot& daemon, std::ostream& out);

}  // namespace gapless::http
