// The three renderings of what `gapless status` shows; see status_report.hpp.
#include "status/status_report.hpp"

#include <algorithm>
#include <cstdarg>
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
#include "core/destination_filter.hpp"
#include "core/duration.hpp"
#include "core/fault_episode.hpp"
#include "core/restart_watch.hpp"
#include "journal/health_file.hpp"
#include "status/problems.hpp"

namespace gapless::status {

namespace {

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
                     {"restart_required", restart_required(health)},
                     // The daemon's own build (null: a daemon that does not publish it).
                     {"version", health && !health->version.empty() ? nlohmann::json(health->version) : nullptr},
                     {"revision", health && !health->revision.empty() ? nlohmann::json(health->revision) : nullptr}};
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

// The daemon's line: which gapless it runs and how many faults are open
// (the faults themselves are problems, listed after it).
void print_daemon_text(const std::optional<journal::DaemonHealth>& health) {
  if (!health) {
    std::cout << "daemon: not running (no open faults to show)\n";
    return;
  }
  std::string line = "daemon: pid " + std::to_string(health->pid) + ", ";
  line += health->version.empty() ? "version not published"
                                  : "gapless " + health->version + " (revision " + health->revision + ")";
  const size_t faults = health->faults.size() + static_cast<size_t>(health->faults_left_out);
  line += faults == 0 ? ", no open faults" : ", " + std::to_string(faults) + " open faults";
  std::cout << fit_to_width(line, "", "  ");
}

// Prometheus' text exposition format.

// printf's formatting, into a stream: the Prometheus text goes to stdout
// (`gapless status --prometheus`) or to the daemon's /metrics response.
[[gnu::format(printf, 2, 3)]] void emit(std::ostream& out, const char* format, ...) {
  char small[512];
  va_list arguments;
  va_start(arguments, format);
  va_list again;
  va_copy(again, arguments);
  const int length = std::vsnprintf(small, sizeof small, format, arguments);
  va_end(arguments);
  if (length < 0) {
    va_end(again);
    return;
  }
  if (static_cast<size_t>(length) < sizeof small) {
    out.write(small, length);
  } else {
    std::string large(static_cast<size_t>(length) + 1, '\0');
    std::vsnprintf(large.data(), large.size(), format, again);
    out.write(large.data(), length);
  }
  va_end(again);
}

void print_family(std::ostream& out, const char* name, const char* type, const char* help) {
  emit(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

}  // namespace

std::string prometheus_seconds(int64_t ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ms) / 1000.0);
  return text;
}

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

nlohmann::json to_json(const Config& config, journal::Journal& journal) {
  nlohmann::json out;
  out["version"] = build_version();
  out["revision"] = build_revision();
  out["journal"] = config.journal.path;
  out["now_ms"] = unix_now_ms();
  out["daemon"] = daemon_json(journal::read_daemon_health(config.journal.path));
  out["sinks"] = nlohmann::json::array();
  for (const journal::SinkStatus& sink : journal.status()) {
    // configured false: orphaned, removed from the configuration; its rows wait (retire-sink ends them).
    nlohmann::json sink_json{{"sink", sink.sink},
                             {"configured", config.find_sink(sink.sink) != nullptr},
                             // what its new messages follow (journal invariant 3); null: every destination
                             {"accept", sink.accept ? nlohmann::json(*sink.accept) : nlohmann::json(nullptr)},
                             {"destinations", nlohmann::json::array()}};
    for (const journal::DestinationStatus& destination : sink.destinations) {
      nlohmann::json entry{{"destination", destination.destination},
                           {"pending", destination.pending},
                           {"delivered", destination.delivered},
                           {"parked", destination.parked},
                           {"oldest_undelivered_ms", nullptr},
                           {"oldest_pending_ms", nullptr}};
      if (destination.oldest_undelivered_ms) entry["oldest_undelivered_ms"] = *destination.oldest_undelivered_ms;
      if (destination.oldest_pending_ms) entry["oldest_pending_ms"] = *destination.oldest_pending_ms;
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

// 80 columns (problems.hpp, kTextWidth): what needs a person first, then
// each sink's destinations and each archive.
void print_text(const Config& config, journal::Journal& journal) {
  const int64_t now = unix_now_ms();
  const std::optional<journal::DaemonHealth> health = journal::read_daemon_health(config.journal.path);
  const std::vector<journal::SinkStatus> sinks = journal.status();
  const std::vector<journal::ArchiveHealth> archives = archive_rows(config, journal);
  std::cout << build_description() << "\n";
  std::cout << fit_to_width("journal " + config.journal.path, "", "  ");
  print_daemon_text(health);

  std::vector<std::string> problems = find_problems(config, journal, health, sinks, archives, now);
  if (health && health->faults_left_out > 0)
    problems.push_back(std::to_string(health->faults_left_out) + " more open faults not shown");
  if (problems.empty()) {
    std::cout << "\nno problems\n";
  } else {
    std::cout << "\nPROBLEMS (" << problems.size() << ")\n";
    for (const std::string& problem : problems) std::cout << fit_to_width(problem, "  ", "    ");
  }

  // Destination, three counts and the age of the oldest undelivered message
  // in 80 columns; a longer destination gets a line of its own.
  constexpr int kDestinationWidth = 38;
  const auto row = [](const std::string& destination, const std::string& pending, const std::string& delivered,
                      const std::string& parked, const std::string& oldest) {
    std::string name = destination;
    if (name.size() > kDestinationWidth) {
      std::cout << "  " << name << "\n";
      name.clear();
    }
    std::printf("  %-*s %9s %10s %9s  %s\n", kDestinationWidth, name.c_str(), pending.c_str(), delivered.c_str(),
                parked.c_str(), oldest.c_str());
  };
  for (const journal::SinkStatus& sink : sinks) {
    int64_t pending = 0, delivered = 0, parked = 0;
    for (const auto& destination : sink.destinations) {
      pending += destination.pending;
      delivered += destination.delivered;
      parked += destination.parked;
    }
    std::cout << "\n"
              << fit_to_width("sink " + sink.sink + ": pending=" + std::to_string(pending) + " delivered=" +
                                  std::to_string(delivered) + " parked=" + std::to_string(parked),
                              "", "  ")
              << fit_to_width("accepts " + (sink.accept ? accept_text(*sink.accept)
                                                        : std::string("every destination (registered before "
                                                                      "accept lists)")),
                              "  ", "    ");
    row("destination", "pending", "delivered", "parked", "oldest");
    for (const auto& destination : sink.destinations)
      row(destination.destination + (destination.parked_destination ? " (PARKED)" : ""),
          std::to_string(destination.pending), std::to_string(destination.delivered),
          std::to_string(destination.parked),
          destination.oldest_undelivered_ms ? elapsed_text(now - *destination.oldest_undelivered_ms) : "-");
    std::fflush(stdout);
  }
  for (const journal::ArchiveHealth& archive : archives) {
    std::string verdict;
    if (archive.polls_total == 0)
      verdict = "not polled yet";
    else if (archive.consecutive_failed_polls > 0)
      verdict = "FAILING, " + std::to_string(archive.consecutive_failed_polls) + " failed polls since the last success";
    else if (!archive.last_success_ms)
      verdict = "no successful poll yet";
    else
      verdict = "ok";
    std::cout << "\n" << fit_to_width("archive " + archive.name + " " + archive.archive_url + ": " + verdict, "", "  ");
    if (archive.polls_total == 0) continue;
    std::cout << fit_to_width("last poll " + elapsed_text(now - archive.last_poll_ms) + " ago, last success " +
                                  (archive.last_success_ms ? elapsed_text(now - *archive.last_success_ms) + " ago" : "-") +
                                  "; polls " + std::to_string(archive.polls_total) + " (failed " +
                                  std::to_string(archive.failed_polls_total) + "), points journaled " +
                                  std::to_string(archive.points_journaled_total),
                              "  ", "    ");
    std::string failures;
    for (const auto& [kind, counted] : archive.failures)
      failures += (failures.empty() ? "" : ", ") + kind + " " + std::to_string(counted.count);
    std::cout << fit_to_width("failures " + std::to_string(failures_total(archive)) +
                                  (failures.empty() ? "" : ": ") + failures,
                              "  ", "    ");
    if (archive.last_error_ms)
      std::cout << fit_to_width("last error " + elapsed_text(now - *archive.last_error_ms) + " ago: " +
                                    shortened_reason(archive.last_error),
                                "  ", "    ");
  }
  std::cout.flush();
}

void write_prometheus(const Config& config, journal::Journal& journal, std::ostream& out) {
  const std::vector<journal::ArchiveHealth> archives = archive_rows(config, journal);
  const auto labels = [](const journal::ArchiveHealth& archive) {
    return "archive=\"" + label_value(archive.name) + "\",url=\"" + label_value(archive.archive_url) + "\"";
  };
  const auto per_archive = [&](const char* name, const char* type, const char* help, auto value) {
    print_family(out, name, type, help);
    for (const journal::ArchiveHealth& archive : archives)
      emit(out, "%s{%s} %s\n", name, labels(archive).c_str(), value(archive).c_str());
  };
  const auto count = [](int64_t value) { return std::to_string(value); };

  // The usual build-info form: a constant 1, the facts in the labels.
  print_family(out, "gapless_build_info", "gauge", "The version of gapless and the source revision it was built from.");
  emit(out, "gapless_build_info{version=\"%s\",revision=\"%s\"} 1\n", label_value(build_version()).c_str(),
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
              [&](const auto& a) { return prometheus_seconds(a.polls_total > 0 ? a.last_poll_ms : 0); });
  per_archive("gapless_archive_last_success_timestamp_seconds", "gauge",
              "When the latest poll that read everything without a failure ended (0: never).",
              [&](const auto& a) { return prometheus_seconds(a.last_success_ms.value_or(0)); });
  per_archive("gapless_archive_points_journaled_total", "counter",
              "Datapoints of the archive journaled by the collector (new or corrected).",
              [&](const auto& a) { return count(a.points_journaled_total); });

  // Every kind from the start at 0: a series that appears at 1 shows no increase.
  print_family(out, "gapless_archive_failures_total", "counter",
               "Failures while polling the archive, by kind (failed requests, series, metadata objects).");
  const std::vector<std::string> known_kinds = collector::failure_kinds();
  for (const journal::ArchiveHealth& archive : archives) {
    std::map<std::string, int64_t> by_kind;
    for (const std::string& kind : known_kinds) by_kind[kind] = 0;
    for (const auto& [kind, counted] : archive.failures) by_kind[kind] = counted.count;
    for (const auto& [kind, value] : by_kind)
      emit(out, "gapless_archive_failures_total{%s,kind=\"%s\"} %lld\n", labels(archive).c_str(),
                  label_value(kind).c_str(), static_cast<long long>(value));
  }

  const std::optional<journal::DaemonHealth> health = journal::read_daemon_health(config.journal.path);
  print_family(out, "gapless_daemon_running", "gauge",
               "1 when a gapless daemon holds this journal and publishes its fault episodes, else 0.");
  emit(out, "gapless_daemon_running{journal=\"%s\"} %d\n", label_value(config.journal.path).c_str(),
              health ? 1 : 0);
  print_family(out, "gapless_restart_required", "gauge",
               "1 when the running daemon's executable or a shared library it loaded was replaced on disk (an "
               "upgrade): it runs the old code until restarted. Else 0.");
  emit(out, "gapless_restart_required{journal=\"%s\"} %d\n", label_value(config.journal.path).c_str(),
              restart_required(health) ? 1 : 0);
  const auto fault_labels = [](const FaultSnapshot& fault) {
    return "component=\"" + label_value(fault.component) + "\",kind=\"" + label_value(fault.kind) + "\"";
  };
  print_family(out, "gapless_fault_open", "gauge",
               "An open fault episode of the daemon (a full disk, a journal locked by another process, ...): 1 "
               "while it lasts, absent otherwise.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      emit(out, "gapless_fault_open{%s} 1\n", fault_labels(fault).c_str());
  print_family(out, "gapless_fault_occurrences", "gauge", "Occurrences of each open fault episode since it began.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      emit(out, "gapless_fault_occurrences{%s} %lld\n", fault_labels(fault).c_str(),
                  static_cast<long long>(fault.occurrences));
  print_family(out, "gapless_fault_since_timestamp_seconds", "gauge", "When each open fault episode began.");
  if (health)
    for (const FaultSnapshot& fault : health->faults)
      emit(out, "gapless_fault_since_timestamp_seconds{%s} %s\n", fault_labels(fault).c_str(),
                  prometheus_seconds(fault.since_ms).c_str());

  const std::vector<journal::SinkStatus> sinks = journal.status();
  print_family(out, "gapless_messages", "gauge", "Journaled messages per sink and destination, by delivery state.");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations) {
      const std::string where =
          "sink=\"" + label_value(sink.sink) + "\",destination=\"" + label_value(destination.destination) + "\"";
      for (const auto& [state, value] : {std::pair{"pending", destination.pending},
                                         std::pair{"delivered", destination.delivered},
                                         std::pair{"parked", destination.parked}})
        emit(out, "gapless_messages{%s,state=\"%s\"} %lld\n", where.c_str(), state, static_cast<long long>(value));
    }
  print_family(out, "gapless_oldest_undelivered_timestamp_seconds", "gauge",
               "Journal time of the oldest pending or parked message per sink and destination (absent: none).");
  for (const journal::SinkStatus& sink : sinks)
    for (const journal::DestinationStatus& destination : sink.destinations)
      if (destination.oldest_undelivered_ms)
        emit(out, "gapless_oldest_undelivered_timestamp_seconds{sink=\"%s\",destination=\"%s\"} %s\n",
                    label_value(sink.sink).c_str(), label_value(destination.destination).c_str(),
                    prometheus_seconds(*destination.oldest_undelivered_ms).c_str());
}

void print_prometheus(const Config& config, journal::Journal& journal) {
  write_prometheus(config, journal, std::cout);
  std::cout.flush();
}

}  // namespace gapless::status
