// `gapless`: the daemon and its operator commands.
//
//   gapless run          [--config FILE] [--until-drained] [--archive [NAME=]URL]...
//   gapless status       [--config FILE] [--json | --prometheus]
//   gapless ingest       [--config FILE] [--batch N] [PATH|-]
//   gapless retry-parked [--config FILE] [--sink NAME] [--destination D]
//   gapless discard      [--config FILE] --sink NAME [--destination D] [--message-id N] --reason TEXT
//
// Without --config every command uses the embedded defaults (core/config.hpp).
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <tuple>

#include "collector/collector.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/log.hpp"
#include "ingest/ingest.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "journal/health_file.hpp"
#include "journal/file_access.hpp"
#include "journal/journal.hpp"
#include "sender/sender.hpp"

namespace {

using namespace gapless;

std::unique_ptr<journal::Journal> open_journal(const Config& config, bool check_integrity = true) {
  auto journal = journal::Journal::open(config.journal.path, config.sink_names(), check_integrity);
  if (!config.journal.group.empty()) journal::share_with_group(config.journal.path, config.journal.group);
  return journal;
}

// What is allowed but unwise, said once when the daemon starts.
void log_start_warnings(const Config& config) {
  for (const std::string& warning : config.warnings) spdlog::warn("config: {}", warning);
  if (config.journal.group.empty())
    if (auto warning = journal::exposure_warning(config.journal.path)) spdlog::warn("journal: {}", *warning);
}

// ---- run ------------------------------------------------------------------

// `--archive NAME=URL` or `--archive URL` (named after the URL's host). Read
// as an [[archive]] table, so it gets the same defaults and checks.
ArchiveConfig archive_from_argument(const std::string& argument, const Config& config) {
  std::string name;
  std::string url = argument;
  if (const size_t equals = argument.find('='); equals != std::string::npos && argument.rfind("http", 0) != 0) {
    name = argument.substr(0, equals);
    url = argument.substr(equals + 1);
  } else if (const size_t scheme = argument.find("://"); scheme != std::string::npos) {
    name = argument.substr(scheme + 3, argument.find_first_of(":/", scheme + 3) - (scheme + 3));
  }
  const std::string toml = "[[sink]]\nname = \"unused\"\nbrokers = [\"stomp://unused:1\"]\n[[archive]]\nname = " +
                           nlohmann::json(name).dump() + "\nurl = " + nlohmann::json(url).dump() + "\n";
  ArchiveConfig archive = parse_config(toml, "--archive " + argument).archives.at(0);
  if (config.find_archive(archive.name))
    throw Error("--archive " + argument + ": an archive named \"" + archive.name + "\" is already configured");
  return archive;
}

// Waits `ms` for a stop signal; true when one came (the daemon then stops).
bool signalled_within(const sigset_t& signals, int64_t ms) {
  timespec wait{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
  const int signal_number = sigtimedwait(&signals, nullptr, &wait);
  if (signal_number > 0) spdlog::info("daemon: stopping during start signal={}", strsignal(signal_number));
  return signal_number > 0;
}

// Opens (creates, migrates, checks) the journal once at start. The disk may
// already be full: opening creates the -wal and -shm files, which needs a
// little space, and fails with SQLITE_FULL, CANTOPEN or IOERR. The reserve
// is then given back and the open tried again at once; while it still fails
// for lack of space (or a lock held past the busy timeout, an I/O error), it
// is tried again with backoff, the fault published for `gapless status`,
// until it succeeds or a signal asks to stop (false). A damaged journal (the
// quick check) and faults that space does not explain end the start.
bool open_journal_at_start(const Config& config, const sigset_t& signals, journal::HealthFile& health) {
  journal::DiskReserve reserve(config.journal.path, config.journal.disk_reserve);
  FaultEpisode episode("daemon start");
  for (int failures = 1;; ++failures) {
    try {
      open_journal(config);  // create or migrate once, before the senders open their own connections
      episode.resolved();
      return true;
    } catch (const journal::JournalError& e) {
      if (e.fault() == journal::Fault::damaged) throw;
      const bool space = e.fault() == journal::Fault::full || e.fault() == journal::Fault::io ||
                         journal::disk_nearly_full(config.journal.path);
      if (space && reserve.release()) continue;  // at once, with the space back
      if (!e.transient() && !space) throw;
      episode.occurred(journal::fault_kind(space ? journal::Fault::full : e.fault()),
                       std::string(e.what()) + " (the daemon starts when the journal can be opened)");
      health.publish(open_fault_episodes());
      if (signalled_within(signals, journal::journal_retry_delay_ms(failures))) return false;
    }
  }
}

// What to do about a damaged journal, unless the error says it already
// (the quick check's message does).
std::string damaged_advice(const std::string& error, const std::string& journal_path) {
  if (error.find("never repairs") != std::string::npos) return "";
  return ". gapless never repairs or resets a journal; the file is left as it is. Keep a copy, then restore a "
         "backup, or salvage it (sqlite3 " + journal_path + " .recover), or move it aside to start an empty "
         "journal (its undelivered messages would then not be sent)";
}

int run_daemon(const Config& config, bool until_drained) {
  // Signals are taken synchronously by this thread (sigtimedwait), so no
  // handler runs inside a sender in the middle of a journal write. Blocked
  // before anything else: a SIGTERM during start-up (the journal's integrity
  // check can take seconds) then means a clean stop, not death by default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  log_start_warnings(config);
  journal::DaemonLock lock(config.journal.path);
  // Open fault episodes, for `gapless status` (journal/health_file.hpp).
  journal::HealthFile health(config.journal.path);
  health.publish({});
  if (!open_journal_at_start(config, signals, health)) return 130;
  spdlog::info("daemon: start journal={} sinks={} config={} pid={}", config.journal.path, config.sinks.size(),
               config.origin, ::getpid());

  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::atomic<bool> failed{false};
  std::vector<std::unique_ptr<sender::Sender>> senders;
  std::vector<std::thread> threads;

  // One component's thread: runs `body` until it returns. Nothing one
  // component meets stops the others: a failure is logged and the component
  // started again after a backoff (1 s doubling to 30 s; back to 1 s after 5
  // minutes without one). Only a damaged journal stops the daemon: a person
  // must look at it.
  const auto supervise = [&](const std::string& component, const std::function<void()>& body) {
    int failures = 0;
    for (;;) {
      const auto began = std::chrono::steady_clock::now();
      std::string error;
      try {
        body();
        return;
      } catch (const journal::JournalError& e) {
        if (e.fault() == journal::Fault::damaged) {
          spdlog::critical("daemon: stopping, the journal is damaged component=\"{}\" error=\"{}{}\"", component,
                           e.what(), damaged_advice(e.what(), config.journal.path));
          failed = true;
          stop = true;
          return;
        }
        error = std::string(e.what()) + " (journal fault: " + journal::fault_name(e.fault()) + ")";
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (stop) return;
      if (std::chrono::steady_clock::now() - began > std::chrono::minutes(5)) failures = 0;
      const int64_t delay = journal::journal_retry_delay_ms(++failures);
      spdlog::critical("daemon: component failed, restarting component=\"{}\" failures={} restart_in_ms={} "
                       "error=\"{}\"",
                       component, failures, delay, error);
      if (!journal::sleep_unless_stopped(delay, stop)) return;
      spdlog::info("daemon: component restarted component=\"{}\"", component);
    }
  };

  // With --until-drained, every archive is polled once and the senders start
  // when that is done: "drained" must include what the poll collected.
  collector::Collector collector(config, stop);
  std::atomic<bool> collected{!until_drained || config.archives.empty()};
  if (!config.archives.empty()) {
    ++running;
    threads.emplace_back([&] {
      supervise("collector", [&] {
        if (until_drained)
          collector.run_once();
        else
          collector.run();
      });
      collected = true;
      --running;
    });
  }

  for (const SinkConfig& sink : config.sinks) {
    senders.push_back(std::make_unique<sender::Sender>(sink, config.journal.path, config.journal.disk_reserve, stop));
    ++running;
    threads.emplace_back([&, sender = senders.back().get(), name = sink.name] {
      while (!collected && !stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      supervise("sender sink=" + name, [&] { sender->run(until_drained); });
      --running;
    });
  }

  int signals_seen = 0;
  int ticks = 0;
  while (running > 0) {
    // About once a second: what status shows. Written in place, so even on a full disk.
    if (ticks++ % 10 == 0) health.publish(open_fault_episodes());
    timespec tick{0, 100'000'000};
    int signal_number = sigtimedwait(&signals, nullptr, &tick);
    if (signal_number <= 0) continue;
    if (++signals_seen == 1) {
      spdlog::info("daemon: stopping signal={} (again to exit at once)", strsignal(signal_number));
      stop = true;
    } else {
      // Safe: the journal is crash-consistent at every instant.
      spdlog::warn("daemon: second signal, exiting now");
      std::_Exit(130);
    }
  }
  for (std::thread& thread : threads) thread.join();
  int64_t delivered = 0;
  for (const auto& sender : senders) delivered += sender->counters().delivered;
  spdlog::info("daemon: stopped delivered={}", delivered);
  return failed ? 1 : 0;
}

// ---- status ---------------------------------------------------------------

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

// The running daemon's open fault episodes, as it publishes them; nothing
// when no daemon runs on this journal.
nlohmann::json daemon_json(const std::optional<journal::DaemonHealth>& health) {
  nlohmann::json out{{"running", health.has_value()},
                     {"pid", health ? nlohmann::json(health->pid) : nullptr},
                     {"published_ms", health ? nlohmann::json(health->written_ms) : nullptr},
                     {"faults", nlohmann::json::array()},
                     {"faults_left_out", health ? health->faults_left_out : 0}};
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

nlohmann::json status_json(const Config& config, journal::Journal& journal) {
  nlohmann::json out;
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

void print_status_text(const Config& config, journal::Journal& journal) {
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

// ---- status --prometheus ----------------------------------------------------
// The text exposition format (for node_exporter's textfile collector): each
// family's HELP and TYPE, then all its samples together.

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

void print_status_prometheus(const Config& config, journal::Journal& journal) {
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

// ---- ingest -----------------------------------------------------------------

int run_ingest(const Config& config, const std::string& path, size_t batch) {
  auto journal = open_journal(config);
  ingest::IngestResult result;
  if (path == "-") {
    result = ingest::ingest_stream(std::cin, "stdin", *journal, batch, config.messages);
  } else {
    std::ifstream input(path, std::ios::binary);
    if (!input) throw Error("ingest: cannot open \"" + path + "\"");
    result = ingest::ingest_stream(input, path, *journal, batch, config.messages);
  }
  std::cout << "ingested " << result.lines << " lines: " << result.appended << " journaled, "
            << result.duplicates << " already journaled\n";
  return 0;
}

// `gapless ingest` is a producer (journal/disk_reserve.hpp): it writes only
// while it holds the disk reserve, and on a full disk gives the reserve back
// so that the daemon's delivery of what is journaled goes on.
int ingest_within_reserve(const Config& config, const std::function<int()>& ingest) {
  journal::DiskReserve reserve(config.journal.path, config.journal.disk_reserve);
  const std::string free_space =
      "Free space on the file system of " + config.journal.path + ", then run the same command again";
  if (!reserve.take())
    throw Error("ingest: the disk holding the journal is nearly full, nothing was journaled: its last space is "
                "kept for delivering what is already journaled (the disk reserve " + reserve.path() +
                " cannot be taken). " + free_space);
  try {
    return ingest();
  } catch (const Error& e) {
    const auto* journal_error = dynamic_cast<const journal::JournalError*>(&e);
    const bool full = journal_error != nullptr
                          ? journal::fault_on_disk(*journal_error, config.journal.path) == journal::Fault::full
                          : std::string_view(e.what()).find("(SQLITE_FULL)") != std::string_view::npos;
    if (!full) throw;
    reserve.release();
    throw Error("ingest: the disk is full: " + std::string(e.what()) + ". Batches before it were journaled. " +
                free_space + ": what is already journaled is skipped");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gapless: a collector that never loses a measurement"};
  app.require_subcommand(1);
  std::string config_path;
  std::string log_level;
  app.add_option("--config", config_path, "TOML configuration (default: embedded defaults)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off (overrides the config)");

  bool until_drained = false;
  auto* run = app.add_subcommand("run", "Run the daemon in the foreground (logs to stderr)");
  run->add_flag("--until-drained", until_drained,
                "Poll each archive once, then exit once nothing is left to send (parked messages wait)");
  std::vector<std::string> extra_archives;
  run->add_option("--archive", extra_archives,
                  "Also poll this esmond archive (NAME=URL or URL of .../esmond/perfsonar/archive/), "
                  "with the [[archive]] defaults");

  bool json_output = false;
  bool prometheus_output = false;
  auto* status = app.add_subcommand("status", "Delivery state per sink and destination, health per archive");
  auto* json_flag = status->add_flag("--json", json_output, "Machine-readable output");
  status->add_flag("--prometheus", prometheus_output,
                   "Prometheus text exposition format (for node_exporter's textfile collector)")
      ->excludes(json_flag);

  std::string ingest_path = "-";
  size_t batch = 1000;
  auto* ingest = app.add_subcommand("ingest", "Journal messages given as directory-queue JSON lines");
  ingest->add_option("path", ingest_path, "File of JSON lines, or - for standard input");
  ingest->add_option("--batch", batch, "Lines per journal transaction")->check(CLI::Range(1, 1'000'000));

  std::string retry_sink, retry_destination;
  auto* retry = app.add_subcommand("retry-parked", "Send parked messages again (recorded as an operator request)");
  retry->add_option("--sink", retry_sink, "Only this sink");
  retry->add_option("--destination", retry_destination, "Only this destination, e.g. /topic/perfsonar.raw.throughput");

  std::string discard_sink, discard_destination, discard_reason;
  int64_t discard_message = 0;
  auto* discard = app.add_subcommand(
      "discard", "Remove parked messages of one sink for good (only parked ones; recorded as an operator request)");
  discard->add_option("--sink", discard_sink, "The sink whose parked messages are removed")->required();
  discard->add_option("--destination", discard_destination, "Only this destination");
  discard->add_option("--message-id", discard_message, "Only this message (its journal id, as status lists it)")
      ->check(CLI::PositiveNumber);
  discard->add_option("--reason", discard_reason, "Why, for the record (shown by gapless-replay requests)")
      ->required();

  for (auto* command : {run, status, ingest, retry, discard}) {
    command->add_option("--config", config_path, "TOML configuration (default: embedded defaults)");
    command->add_option("--log-level", log_level, "Overrides the config's log_level");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as documented
    // (CLI11's own codes, 105-120, say nothing to a script).
    return app.exit(e) == 0 ? 0 : 2;
  }

  Config config;
  try {
    config = config_path.empty() ? default_config() : load_config(config_path);
    setup_logging(log_level.empty() ? config.log_level : log_level);
    for (const std::string& argument : extra_archives) config.archives.push_back(archive_from_argument(argument, config));
    if (!retry_sink.empty() && !config.find_sink(retry_sink))
      throw Error("retry-parked: unknown sink \"" + retry_sink + "\" (not in " + config.origin + ")");
    if (*discard && !config.find_sink(discard_sink))
      throw Error("discard: unknown sink \"" + discard_sink + "\" (not in " + config.origin + ")");
    if (*discard && discard_reason.find_first_not_of(" \t") == std::string::npos)
      throw Error("discard: --reason must say why (it is kept in the request table)");
  } catch (const Error& e) {
    std::cerr << "gapless: " << e.what() << "\n";
    return 2;
  }

  try {
    if (*run) return run_daemon(config, until_drained);
    if (*status) {
      auto journal = open_journal(config, false);  // must stay fast on a journal of millions of rows
      if (json_output)
        std::cout << status_json(config, *journal).dump(2) << "\n";
      else if (prometheus_output)
        print_status_prometheus(config, *journal);
      else
        print_status_text(config, *journal);
      return 0;
    }
    if (*ingest) return ingest_within_reserve(config, [&] { return run_ingest(config, ingest_path, batch); });
    if (*retry) {
      auto journal = open_journal(config);
      auto optional_text = [](const std::string& text) {
        return text.empty() ? std::nullopt : std::optional<std::string_view>(text);
      };
      int64_t requeued = journal->retry_parked(optional_text(retry_sink), optional_text(retry_destination), true);
      std::cout << "retry-parked: " << requeued << " messages back to pending\n";
      return 0;
    }
    if (*discard) {
      auto journal = open_journal(config);
      const auto destination =
          discard_destination.empty() ? std::nullopt : std::optional<std::string_view>(discard_destination);
      const auto message = discard_message > 0 ? std::optional<int64_t>(discard_message) : std::nullopt;
      const journal::DiscardResult result = journal->discard_parked(discard_sink, destination, message, discard_reason);
      if (result.discarded == 0) {
        std::cerr << "gapless: discard: no parked message of sink " << discard_sink << " matched; nothing removed\n";
        return 1;
      }
      std::cout << "discard: " << result.discarded << " parked messages removed for sink " << discard_sink
                << " (request " << result.request_id << ")\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "gapless: " << e.what() << "\n";
    spdlog::error("gapless: failed error=\"{}\"", e.what());
    return 1;
  }
  return 2;
}
