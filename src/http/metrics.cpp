#include "http/metrics.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "status/status_report.hpp"

namespace gapless::http {

namespace {

using status::label_value;
using status::prometheus_seconds;

std::string bound(double seconds_value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds_value);
  return text;
}

void family(std::ostream& out, const std::string& name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void sample(std::ostream& out, const std::string& name, const std::string& labels, const std::string& value) {
  out << name << '{' << labels << "} " << value << '\n';
}

std::string sink_label(const std::string& sink) { return "sink=\"" + label_value(sink) + "\""; }

std::optional<int64_t> file_size(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return static_cast<int64_t>(info.st_size);
}

void write_journal_families(const Config& config, journal::Journal& journal, const DaemonSnapshot& daemon,
                            std::ostream& out) {
  const int64_t now = unix_now_ms();
  const std::vector<journal::SinkStatus> sinks = journal.status();
  family(out, "gapless_messages_journaled", "gauge",
         "Messages held in the journal per sink and destination, whatever their state (pending + delivered + "
         "parked).");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations)
      sample(out, "gapless_messages_journaled",
             sink_label(sink.sink) + ",destination=\"" + label_value(destination.destination) + "\"",
             std::to_string(destination.pending + destination.delivered + destination.parked));
  family(out, "gapless_oldest_undelivered_age_seconds", "gauge",
         "Age of the oldest pending or parked message per sink and destination, by its journal time (absent: "
         "none).");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations)
      if (destination.oldest_undelivered_ms)
        sample(out, "gapless_oldest_undelivered_age_seconds",
               sink_label(sink.sink) + ",destination=\"" + label_value(destination.destination) + "\"",
               prometheus_seconds(std::max<int64_t>(0, now - *destination.oldest_undelivered_ms)));
  family(out, "gapless_oldest_pending_age_seconds", "gauge",
         "Age of the oldest pending message (waiting for delivery, not parked) per sink and destination, by its "
         "journal time (absent: none).");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations)
      if (destination.oldest_pending_ms)
        sample(out, "gapless_oldest_pending_age_seconds",
               sink_label(sink.sink) + ",destination="" + label_value(destination.destination) + """,
               prometheus_seconds(std::max<int64_t>(0, now - *destination.oldest_pending_ms)));

  // A series' cursor is its newest journaled point + 1: the newest cursor
  // shows whether the archive as a whole is being read, the oldest the
  // series furthest behind (or one the archive no longer feeds).
  struct Lag {
    std::string name, url;
    std::optional<int64_t> newest_ts, oldest_ts;
  };
  std::vector<Lag> lags;
  for (const ArchiveConfig& archive : config.archives) {
    Lag lag{archive.name, archive.url, {}, {}};
    for (const journal::Series& series : journal.series_of_archive(archive.url)) {
      if (!series.cursor_ts) continue;
      lag.newest_ts = std::max(lag.newest_ts.value_or(*series.cursor_ts), *series.cursor_ts);
      lag.oldest_ts = std::min(lag.oldest_ts.value_or(*series.cursor_ts), *series.cursor_ts);
    }
    lags.push_back(std::move(lag));
  }
  const auto archive_labels = [](const Lag& lag) {
    return "archive=\"" + label_value(lag.name) + "\",url=\"" + label_value(lag.url) + "\"";
  };
  family(out, "gapless_archive_cursor_lag_seconds", "gauge",
         "Now minus the newest cursor among the archive's series (how far behind the collector reads the archive; "
         "absent before its first read).");
  for (const Lag& lag : lags)
    if (lag.newest_ts) sample(out, "gapless_archive_cursor_lag_seconds", archive_labels(lag), prometheus_seconds(now - *lag.newest_ts * 1000));
  family(out, "gapless_archive_oldest_cursor_lag_seconds", "gauge",
         "Now minus the oldest cursor among the archive's series (the series furthest behind, or one the archive "
         "no longer feeds).");
  for (const Lag& lag : lags)
    if (lag.oldest_ts)
      sample(out, "gapless_archive_oldest_cursor_lag_seconds", archive_labels(lag), prometheus_seconds(now - *lag.oldest_ts * 1000));

  const std::string journal_label = "journal=\"" + label_value(config.journal.path) + "\"";
  family(out, "gapless_journal_size_bytes", "gauge", "Size of the journal's files: the database and its -wal.");
  for (const auto& [file, path] : {std::pair{"db", config.journal.path}, std::pair{"wal", config.journal.path + "-wal"}})
    if (const auto size = file_size(path))
      sample(out, "gapless_journal_size_bytes", journal_label + ",file=\"" + file + "\"", std::to_string(*size));
  family(out, "gapless_journal_disk_free_bytes", "gauge",
         "Free space on the file system holding the journal, for an unprivileged user.");
  if (const auto space = journal::free_space(config.journal.path))
    sample(out, "gapless_journal_disk_free_bytes", journal_label, std::to_string(space->bytes));

  // Every journal fault kind shown from the start, at 0 while none is open.
  std::map<std::string, int64_t> open_by_kind;
  for (const std::string& kind : journal::journal_fault_kinds()) open_by_kind[kind] = 0;
  for (const FaultSnapshot& fault : daemon.faults)
    if (open_by_kind.count(fault.kind)) ++open_by_kind[fault.kind];
  family(out, "gapless_journal_faults_open", "gauge",
         "Open fault episodes in which the journal takes no writes, by kind (a full disk, a lock held elsewhere, "
         "an I/O error, the size limit): collection pauses, delivery goes on.");
  for (const auto& [kind, open] : open_by_kind)
    sample(out, "gapless_journal_faults_open", "kind=\"" + label_value(kind) + "\"", std::to_string(open));
}

void write_sender_families(const DaemonSnapshot& daemon, std::ostream& out) {
  family(out, "gapless_daemon_start_timestamp_seconds", "gauge", "When the running daemon started.");
  out << "gapless_daemon_start_timestamp_seconds " << prometheus_seconds(daemon.started_ms) << '\n';
  const auto per_sink = [&](const char* name, const char* type, const char* help, auto value) {
    family(out, name, type, help);
    for (const SinkCounters& sink : daemon.sinks) sample(out, name, sink_label(sink.sink), value(sink.counters));
  };
  per_sink("gapless_sink_connected", "gauge",
           "1 while the sink's sender is connected to a broker (an http sink: while its URL is not failing).",
           [](const sender::CountersSnapshot& c) { return std::string(c.connected ? "1" : "0"); });
  per_sink("gapless_sink_delivered_total", "counter", "Messages the sink's sender marked delivered since the daemon started.",
           [](const sender::CountersSnapshot& c) { return std::to_string(c.delivered); });
  per_sink("gapless_sink_last_delivery_timestamp_seconds", "gauge",
           "When the sink's sender last marked messages delivered (0: not since the daemon started).",
           [](const sender::CountersSnapshot& c) { return prometheus_seconds(c.last_delivered_ms); });
  per_sink("gapless_sink_reconnects_total", "counter",
           "Connections to a broker made after the sink's first one (after a lost connection, or a failback).",
           [](const sender::CountersSnapshot& c) { return std::to_string(c.reconnects); });
  per_sink("gapless_sink_transactions_aborted_total", "counter", "Transactions the sink's sender aborted.",
           [](const sender::CountersSnapshot& c) { return std::to_string(c.aborted); });

  family(out, "gapless_sink_broker_errors_total", "counter",
         "Broker errors by kind: connect-failed, connection-lost, and ERROR frames (not-authorized, flow-control, "
         "refused); an http sink's: no answer, a timeout, the sink rejected (401 ...), 429 or 5xx, a message refused.");
  for (const SinkCounters& sink : daemon.sinks)
    for (const auto& [kind, count] : sink.counters.broker_errors)
      sample(out, "gapless_sink_broker_errors_total", sink_label(sink.sink) + ",kind=\"" + label_value(kind) + "\"",
             std::to_string(count));

  const std::string latency = "gapless_sink_delivery_latency_seconds";
  family(out, latency, "histogram",
         "Time from a message's SEND to the RECEIPT of its transaction's COMMIT (an http sink: from its request to "
         "the 2xx answer), for the messages delivered.");
  for (const SinkCounters& sink : daemon.sinks) {
    const HistogramSnapshot& histogram = sink.counters.latency;
    const std::string labels = sink_label(sink.sink);
    for (size_t i = 0; i < histogram.upper_bounds_seconds.size(); ++i)
      sample(out, latency + "_bucket", labels + ",le=\"" + bound(histogram.upper_bounds_seconds[i]) + "\"",
             std::to_string(histogram.cumulative[i]));
    sample(out, latency + "_bucket", labels + ",le=\"+Inf\"", std::to_string(histogram.count));
    sample(out, latency + "_sum", labels, prometheus_seconds(static_cast<int64_t>(histogram.sum_seconds * 1000.0 + 0.5)));
    sample(out, latency + "_count", labels, std::to_string(histogram.count));
  }
}

// The push endpoint's ([push]), when it runs.
void write_push_families(const push::CountersSnapshot& push, std::ostream& out) {
  const auto counter = [&](const char* name, const char* help, int64_t value) {
    family(out, name, "counter", help);
    out << name << ' ' << value << '\n';
  };
  counter("gapless_push_runs_journaled_total", "Runs pushed and newly journaled (each answered 200).",
          push.runs_journaled);
  counter("gapless_push_duplicates_total",
          "Runs pushed again that the journal held already (answered 200, journaled once).", push.duplicates);
  counter("gapless_push_series_messages_total", "OSG messages journaled from pushed runs.", push.series_messages);
  counter("gapless_push_commits_total", "Transactions the pushed runs were committed in (concurrent pushes share one).",
          push.groups);
  family(out, "gapless_push_answers_total", "counter",
         "Answers of the push endpoint by HTTP status (503: the journal took nothing, at max_size or a fault; "
         "status 0: any other).");
  for (const auto& [status, count] : push.answers)
    sample(out, "gapless_push_answers_total", "status=\"" + std::to_string(status) + "\"", std::to_string(count));
  const std::string latency = "gapless_push_answer_latency_seconds";
  family(out, latency, "histogram", "Time from a push's body read to its answer (the commit wait included).");
  const HistogramSnapshot& histogram = push.latency;
  for (size_t i = 0; i < histogram.upper_bounds_seconds.size(); ++i)
    sample(out, latency + "_bucket", "le=\"" + bound(histogram.upper_bounds_seconds[i]) + "\"",
           std::to_string(histogram.cumulative[i]));
  sample(out, latency + "_bucket", "le=\"+Inf\"", std::to_string(histogram.count));
  out << latency << "_sum " << prometheus_seconds(static_cast<int64_t>(histogram.sum_seconds * 1000.0 + 0.5)) << '\n';
  out << latency << "_count " << histogram.count << '\n';
}

}  // namespace

void write_metrics(const Config& config, journal::Journal& journal, const DaemonSnapshot& daemon, std::ostream& out) {
  status::write_prometheus(config, journal, out);
  write_journal_families(config, journal, daemon, out);
  write_sender_families(daemon, out);
  if (daemon.push) write_push_families(*daemon.push, out);
}

}  // namespace gapless::http
