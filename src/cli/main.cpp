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

#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "collector/collector.hpp"
#include "core/config.hpp"
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
#include "status/status_report.hpp"

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
        std::cout << status::to_json(config, *journal).dump(2) << "\n";
      else if (prometheus_output)
        status::print_prometheus(config, *journal);
      else
        status::print_text(config, *journal);
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
