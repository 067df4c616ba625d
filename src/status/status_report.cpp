// The three renderings of what `gapless status` shows; see status_report.hpp.
#include "status/status_report.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "collector/collector.hpp"
#include "core/build_info.hpp"
#include "core/clock.hpp"
#include "core/duration.hpp"
#include "core/fault_episode.hpp"
#include "core/restart_watch.hpp"
#include "journal/health_file.hpp"

namespace gapless::status {

namespace {

std::string age_text(std::optional<int64_t> since_ms) {
  if (!since_ms) return "-";
  int64_t age = std::max<int64_t>(0, unix_now_ms() - *since_ms) / 1000 * 1000;
  return format_duration(Milliseconds(age));
}

// Every archive the journal has polls of, and the configured ones not polled
// yet (polls_total 0), by name then URL.
std::vector<journal::ArchiveHealth> archive_rows(const Config& config, const journal::Journal& journal) {
  std::vector<journal::ArchiveHealth> rows = journal.archive_health();
  for (const ArchiveConfig& archive : config.archives)
    if (std::none_of(rows.begin(), rows.end(), [&](const auto& row) { return row.archive_url == archive.url; })) {
      journal::ArchiveHealth never_polled;
      never_polled.archive_url = archive.url;
      never_polled.name = archive.name;
      rows.push_back(std::move(never_polled));
    }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.archive_url) < std::tie(b.name, b.archive_url);
  });
  return rows;
}

int64_t failures_total(const journal::ArchiveHealth& archive) {
  int64_t total = 0;
  for (const auto& [kind, failures] : archive.failures) total += failures.count;
  return total;
}

nlohmann::json optional_json(std::optional<int64_t> value) { return value ? nlohmann::json(*value) : nullptr; }

nlohmann::json archive_json(const journal::ArchiveHealth& archive) {
  const bool polled = archive.polls_total > 0;
  nlohmann::json failures = nlohmann::json::object();
  for (const auto& [kind, counted] : archive.failures)
    failures[kind] = {{"count", counted.count}, {"last_ms", counted.last_ms}};
  return {{"archive", archive.name},
          {"url", archive.archive_url},
          {"first_poll_ms", polled ? nlohmann::json(archive.first_poll_ms) : nullptr},
          {"last_poll_ms", polled ? nlohmann::json(archive.last_poll_ms) : nullptr},
          {"last_success_ms", optional_json(archive.last_success_ms)},
          {"consecutive_failed_polls", archive.consecutive_failed_polls},
          {"polls_total", archive.polls_total},
          {"failed_polls_total", archive.failed_polls_total},
          {"points_journaled_total", archive.points_journaled_total},
          {"failures", failures},
          {"failures_total", failures_total(archive)},
          {"last_error", archive.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(archive.last_error)},
          {"last_error_ms", optional_json(archive.last_error_ms)}};
}

// The running daemon found its executable or a library replaced on disk
// (core/restart_watch.hpp): a fault episode of its own kind.
bool restart_required(const std::optional<journal::DaemonHealth>& health) {
  return health && std::any_of(health->faults.begin(), health->faults.end(),
                               [](const FaultSnapshot& fault) { return fault.kind == kRestartRequiredKind; });
}

// The running daemon's open fault episodes, as it publishes them; nothing
// when no daemon runs on this journal.
nlohmann::json daemon_json(const std::optional<journal::DaemonHealth>& health) {
  nlohmann::json out{{"running", health.has_value()},
                     {"pid", health ? nlohmann::json(health->pid) : nullptr},
                     {"published_ms", health ? nlohmann::json(health->written_ms) : nullptr},
                     {"faults", nlohmann::json::array()},
                     {"faults_left_out", health ? health->faults_left_out : 0},
                     {"restart_required", restart_required(health)}};
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      out["faults"].push_back({{"component", fault.component},
                               {"kind", fault.kind},
                               {"since_ms", fault.since_ms},
                               {"last_ms", fault.last_ms},
                               {"occurrences", fault.occurrences},
                               {"last_error", fault.last_error}});
  return out;
}

void print_daemon_text(const std::optional<journal::DaemonHealth>& health) {
  if (!health) {
    std::cout << "daemon: not running (no open faults to show)\n";
    return;
  }
  std::cout << "daemon: pid " << health->pid << ", ";
  if (health->faults.empty()) {
    std::cout << "no open faults\n";
    return;
  }
  std::cout << health->faults.size() + static_cast<size_t>(health->faults_left_out) << " open faults\n";
  for (const FaultSnapshot& fault : health->faults)
    std::printf("  FAULT %s: %s for %s, %lld occurrences, last %s ago: %s\n", fault.component.c_str(),
                fault.kind.c_str(), age_text(fault.since_ms).c_str(), static_cast<long long>(fault.occurrences),
                age_text(fault.last_ms).c_str(), fault.last_error.c_str());
  if (health->faults_left_out > 0)
    std::printf("  (%lld more not shown)\n", static_cast<long long>(health->faults_left_out));
  std::fflush(stdout);
}

// Prometheus' text exposition format.

// Label values escape backslash, double quote and line feed.
std::string label_value(std::string_view text) {
  std::string escaped;
  for (const char c : text) {
    if (c == '\\') escaped += "\\\\";
    else if (c == '"') escaped += "\\\"";
    else if (c == '\n') escaped += "\\n";
    else escaped += c;
  }
  return escaped;
}

std::string seconds_text(int64_t ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ms) / 1000.0);
  return text;
}

void print_family(const char* name, const char* type, const char* help) {
  std::printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

}  // namespace

nlohmann::json to_json(const Config& config, journal::Journal& journal) {
  nlohmann::json out;
  out["version"] = build_version();
  out["revision"] = build_revision();
  out["journal"] = config.journal.path;
  out["now_ms"] = unix_now_ms();
  out["daemon"] = daemon_json(journal::read_daemon_health(config.journal.path));
  out["sinks"] = nlohmann::json::array();
  for (const journal::SinkStatus& sink : journal.status()) {
    nlohmann::json sink_json{{"sink", sink.sink}, {"destinations", nlohmann::json::array()}};
    for (const journal::DestinationStatus& destination : sink.destinations) {
      nlohmann::json entry{{"destination", destination.destination},
                           {"pending", destination.pending},
                           {"delivered", destination.delivered},
                           {"parked", destination.parked},
                           {"oldest_undelivered_ms", nullptr}};
      if (destination.oldest_undelivered_ms) entry["oldest_undelivered_ms"] = *destination.oldest_undelivered_ms;
      if (destination.parked_destination) {
        const auto& parked = *destination.parked_destination;
        entry["parked_destination"] = {{"reason", parked.reason},
                                       {"parked_at_ms", parked.parked_at_ms},
                                       {"next_retry_ms", parked.next_retry_ms},
                                       {"attempts", parked.attempts}};
      }
      sink_json["destinations"].push_back(entry);
    }
    sink_json["parked_messages"] = nlohmann::json::array();
    for (const journal::ParkedMessage& message : journal.parked_messages(sink.sink, 100))
      sink_json["parked_messages"].push_back({{"id", message.id},
                                              {"gapless_id", message.gapless_id},
                                              {"destination", message.destination},
                                              {"reason", message.reason},
                                              {"attempts", message.attempts}});
    out["sinks"].push_back(sink_json);
  }
  out["archives"] = nlohmann::json::array();
  for (const journal::ArchiveHealth& archive : archive_rows(config, journal))
    out["archives"].push_back(archive_json(archive));
  return out;
}

void print_text(const Config& config, journal::Journal& journal) {
  std::cout << build_description() << "\n";
  std::cout << "journal " << config.journal.path << "\n";
  print_daemon_text(journal::read_daemon_health(config.journal.path));
  for (const journal::SinkStatus& sink : journal.status()) {
    int64_t pending = 0, delivered = 0, parked = 0;
    for (const auto& destination : sink.destinations) {
      pending += destination.pending;
      delivered += destination.delivered;
      parked += destination.parked;
    }
    std::cout << "\nsink " << sink.sink << ": pending=" << pending << " delivered=" << delivered
              << " parked=" << parked << "\n";
    std::printf("  %-52s %10s %10s %10s  %s\n", "destination", "pending", "delivered", "parked",
                "oldest undelivered");
    for (const auto& destination : sink.destinations) {
      std::printf("  %-52s %10lld %10lld %10lld  %s\n", destination.destination.c_str(),
                  static_cast<long long>(destination.pending), static_cast<long long>(destination.delivered),
                  static_cast<long long>(destination.parked), age_text(destination.oldest_undelivered_ms).c_str());
      if (destination.parked_destination)
        std::printf("    PARKED for %s (attempts %lld, next retry in %s): %s\n",
                    age_text(destination.parked_destination->parked_at_ms).c_str(),
                    static_cast<long long>(destination.parked_destination->attempts),
                    format_duration(Milliseconds(std::max<int64_t>(
                                        0, (destination.parked_destination->next_retry_ms - unix_now_ms()) / 1000 * 1000)))
                        .c_str(),
                    destination.parked_destination->reason.c_str());
    }
    for (const journal::ParkedMessage& message : journal.parked_messages(sink.sink, 20))
      std::printf("  parked message %lld (%s) on %s: %s\n", static_cast<long long>(message.id),
                  message.gapless_id.c_str(), message.destination.c_str(), message.reason.c_str());
  }
  for (const journal::ArchiveHealth& archive : archive_rows(config, journal)) {
    std::string verdict;
    if (archive.polls_total == 0)
      verdict = "not polled yet";
    else if (archive.consecutive_failed_polls > 0)
      verdict = "FAILING, " + std::to_string(archive.consecutive_failed_polls) + " failed polls since the last success";
    else if (!archive.last_success_ms)
      verdict = "no successful poll yet";
    else
      verdict = "ok";
    std::printf("\narchive %s %s: %s\n", archive.name.c_str(), archive.archive_url.c_str(), verdict.c_str());
    if (archive.polls_total == 0) continue;
    std::printf("  last poll %s ago, last success %s%s; polls %lld (failed %lld), points journaled %lld\n",
                age_text(archive.last_poll_ms).c_str(), age_text(archive.last_success_ms).c_str(),
                archive.last_success_ms ? " ago" : "", static_cast<long long>(archive.polls_total),
                static_cast<long long>(archive.failed_polls_total),
                static_cast<long long>(archive.points_journaled_total));
    std::string failures;
    for (const auto& [kind, counted] : archive.failures)
      failures += (failures.empty() ? "" : ", ") + kind + " " + std::to_string(counted.count);
    std::printf("  failures %lld%s%s\n", static_cast<long long>(failures_total(archive)), failures.empty() ? "" : ": ",
                failures.c_str());
    if (archive.last_error_ms)
      std::printf("  last error %s ago: %s\n", age_text(archive.last_error_ms).c_str(), archive.last_error.c_str());
  }
  std::cout.flush();
}

void print_prometheus(const Config& config, journal::Journal& journal) {
  const std::vector<journal::ArchiveHealth> archives = archive_rows(config, journal);
  const auto labels = [](const journal::ArchiveHealth& archive) {
    return "archive=\"" + label_value(archive.name) + "\",url=\"" + label_value(archive.archive_url) + "\"";
  };
  const auto per_archive = [&](const char* name, const char* type, const char* help, auto value) {
    print_family(name, type, help);
    for (const journal::ArchiveHealth& archive : archives)
      std::printf("%s{%s} %s\n", name, labels(archive).c_str(), value(archive).c_str());
  };
  const auto count = [](int64_t value) { return std::to_string(value); };

  // The usual build-info form: a constant 1, the facts in the labels.
  print_family("gapless_build_info", "gauge", "The version of gapless and the source revision it was built from.");
  std::printf("gapless_build_info{version=\"%s\",revision=\"%s\"} 1\n", label_value(build_version()).c_str(),
              label_value(build_revision()).c_str());

  per_archive("gapless_archive_polls_total", "counter", "Polls of the archive by the collector.",
              [&](const auto& a) { return count(a.polls_total); });
  per_archive("gapless_archive_failed_polls_total", "counter",
              "Polls of the archive in which anything failed (see gapless_archive_failures_total).",
              [&](const auto& a) { return count(a.failed_polls_total); });
  per_archive("gapless_archive_consecutive_failed_polls", "gauge",
              "Failed polls of the archive since its last successful one.",
              [&](const auto& a) { return count(a.consecutive_failed_polls); });
  per_archive("gapless_archive_last_poll_timestamp_seconds", "gauge",
              "When the latest poll of the archive ended (0: never).",
              [&](const auto& a) { return seconds_text(a.polls_total > 0 ? a.last_poll_ms : 0); });
  per_archive("gapless_archive_last_success_timestamp_seconds", "gauge",
              "When the latest poll that read everything without a failure ended (0: never).",
              [&](const auto& a) { return seconds_text(a.last_success_ms.value_or(0)); });
  per_archive("gapless_archive_points_journaled_total", "counter",
              "Datapoints of the archive journaled by the collector (new or corrected).",
              [&](const auto& a) { return count(a.points_journaled_total); });

  // Every kind from the start at 0: a series that appears at 1 shows no increase.
  print_family("gapless_archive_failures_total", "counter",
               "Failures while polling the archive, by kind (failed requests, series, metadata objects).");
  const std::vector<std::string> known_kinds = collector::failure_kinds();
  for (const journal::ArchiveHealth& archive : archives) {
    std::map<std::string, int64_t> by_kind;
    for (const std::string& kind : known_kinds) by_kind[kind] = 0;
    for (const auto& [kind, counted] : archive.failures) by_kind[kind] = counted.count;
    for (const auto& [kind, value] : by_kind)
      std::printf("gapless_archive_failures_total{%s,kind=\"%s\"} %lld\n", labels(archive).c_str(),
                  label_value(kind).c_str(), static_cast<long long>(value));
  }

  const std::optional<journal::DaemonHealth> health = journal::read_daemon_health(config.journal.path);
  print_family("gapless_daemon_running", "gauge",
               "1 when a gapless daemon holds this journal and publishes its fault episodes, else 0.");
  std::printf("gapless_daemon_running{journal=\"%s\"} %d\n", label_value(config.journal.path).c_str(),
              health ? 1 : 0);
  print_family("gapless_restart_required", "gauge",
               "1 when the running daemon's executable or a shared library it loaded was replaced on disk (an "
               "upgrade): it runs the old code until restarted. Else 0.");
  std::printf("gapless_restart_required{journal=\"%s\"} %d\n", label_value(config.journal.path).c_str(),
              restart_required(health) ? 1 : 0);
  const auto fault_labels = [](const FaultSnapshot& fault) {
    return "component=\"" + label_value(fault.component) + "\",kind=\"" + label_value(fault.kind) + "\"";
  };
  print_family("gapless_fault_open", "gauge",
               "An open fault episode of the daemon (a full disk, a journal locked by another process, ...): 1 "
               "while it lasts, absent otherwise.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      std::printf("gapless_fault_open{%s} 1\n", fault_labels(fault).c_str());
  print_family("gapless_fault_occurrences", "gauge", "Occurrences of each open fault episode since it began.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      std::printf("gapless_fault_occurrences{%s} %lld\n", fault_labels(fault).c_str(),
                  static_cast<long long>(fault.occurrences));
  print_family("gapless_fault_since_timestamp_seconds", "gauge", "When each open fault episode began.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      std::printf("gapless_fault_since_timestamp_seconds{%s} %s\n", fault_labels(fault).c_str(),
                  seconds_text(fault.since_ms).c_str());

  const std::vector<journal::SinkStatus> sinks = journal.status();
  print_family("gapless_messages", "gauge", "Journaled messages per sink and destination, by delivery state.");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations) {
      const std::string where =
          "sink=\"" + label_value(sink.sink) + "\",destination=\"" + label_value(destination.destination) + "\"";
      for (const auto& [state, value] : {std::pair{"pending", destination.pending},
                                         std::pair{"delivered", destination.delivered},
                                         std::pair{"parked", destination.parked}})
        std::printf("gapless_messages{%s,state=\"%s\"} %lld\n", where.c_str(), state, static_cast<long long>(value));
    }
  print_family("gapless_oldest_undelivered_timestamp_seconds", "gauge",
               "Journal time of the oldest pending or parked message per sink and destination (absent: none).");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations)
      if (destination.oldest_undelivered_ms)
        std::printf("gapless_oldest_undelivered_timestamp_seconds{sink=\"%s\",destination=\"%s\"} %s\n",
                    label_value(sink.sink).c_str(), label_value(destination.destination).c_str(),
                    seconds_text(*destination.oldest_undelivered_ms).c_str());
  std::fflush(stdout);
}

}  // namespace gapless::status
