// `gapless`: the daemon and its operator commands.
//
//   gapless --version
//   gapless run          [--config FILE] [--until-drained] [--archive [NAME=]URL]...
//   gapless status       [--config FILE] [--json | --prometheus]
//   gapless ingest       [--config FILE] [--batch N] [PATH|-]
//   gapless import-dirq  [--config FILE] [--keep] [--min-age DURATION] PATH
//   gapless retry-parked [--config FILE] [--sink NAME] [--destination D]
//   gapless discard      [--config FILE] --sink NAME [--destination D] [--message-id N] --reason TEXT
//   gapless check        [--config FILE]   (exit 1: the journal breaks an invariant)
//   gapless retire-sink  [--config FILE] --sink NAME --reason TEXT
//
// Without --config every command uses the embedded defaults (core/config.hpp).
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/build_info.hpp"
#include "core/config.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "daemon/daemon.hpp"
#include "ingest/dirq_import.hpp"
#include "ingest/ingest_command.hpp"
#include "journal/configured_journal.hpp"
#include "journal/health_file.hpp"
#include "journal/integrity_check.hpp"
#include "journal/journal.hpp"
#include "status/status_report.hpp"

namespace {

using namespace gapless;

// retire-sink deletes a sink's pending and parked rows: not while the running
// daemon may be sending them, which is so until a reload has dropped the sink
// from its configuration and its sender has stopped (the daemon lists the
// sinks it sends to in its health file, journal/health_file.hpp). The file
// alone is not enough: the daemon may not have been reloaded since.
void refuse_retire_while_sent(const std::string& journal_path, const std::string& sink) {
  const std::optional<journal::DaemonHealth> daemon = journal::read_daemon_health(journal_path);
  if (!daemon) return;
  const std::string running = "retire-sink: the running daemon (pid " + std::to_string(daemon->pid) + ")";
  if (!daemon->sinks)
    throw Error(running + " does not say which sinks it sends to (it runs a gapless of before retire-sink); restart "
                "it first (systemctl restart gapless), then retire the sink");
  if (std::find(daemon->sinks->begin(), daemon->sinks->end(), sink) != daemon->sinks->end())
    throw Error(running + " still sends to sink \"" + sink +
                "\": reload it first (systemctl reload gapless), then retire the sink once the reload has stopped "
                "its sender");
}

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gapless: a collector that never loses a measurement"};
  app.require_subcommand(1);
  app.set_version_flag("--version", build_description(), "The version and the source revision of this build");
  std::string config_path;
  std::string log_level;
  app.add_option("--config", config_path, "TOML configuration (default: embedded defaults)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off (overrides the config)");

  bool until_drained = false;
  auto* run_command = app.add_subcommand("run", "Run the daemon in the foreground (logs to stderr)");
  run_command->add_flag("--until-drained", until_drained,
                        "Poll each archive once, then exit once nothing is left to send (parked messages wait)");
  std::vector<std::string> extra_archives;
  run_command->add_option("--archive", extra_archives,
                          "Also poll this esmond archive (NAME=URL or URL of .../esmond/perfsonar/archive/), "
                          "with the [[archive]] defaults");

  bool json_output = false;
  bool prometheus_output = false;
  auto* status_command = app.add_subcommand("status", "Delivery state per sink and destination, health per archive");
  auto* json_flag = status_command->add_flag("--json", json_output, "Machine-readable output");
  status_command
      ->add_flag("--prometheus", prometheus_output,
                 "Prometheus text exposition format (for node_exporter's textfile collector)")
      ->excludes(json_flag);

  std::string ingest_path = "-";
  size_t batch = 1000;
  auto* ingest_command = app.add_subcommand("ingest", "Journal messages given as directory-queue JSON lines");
  ingest_command->add_option("path", ingest_path, "File of JSON lines, or - for standard input");
  ingest_command->add_option("--batch", batch, "Lines per journal transaction")->check(CLI::Range(1, 1'000'000));

  std::string dirq_path, dirq_min_age = "10m";
  ingest::DirqImportOptions dirq_options;
  auto* import_dirq_command = app.add_subcommand(
      "import-dirq",
      "Journal every message left in a stompclt / rsv-perfsonar directory queue, removing what is journaled");
  import_dirq_command->add_option("path", dirq_path, "The queue's directory, e.g. /var/run/rsv-perfsonar")->required();
  import_dirq_command->add_flag("--keep", dirq_options.keep, "Only read the queue: lock, change and remove nothing");
  import_dirq_command->add_option("--min-age", dirq_min_age,
                                  "Leave locked (.lck) and unfinished (.tmp) elements younger than this (default 10m)");

  std::string retry_sink, retry_destination;
  auto* retry_command =
      app.add_subcommand("retry-parked", "Send parked messages again (recorded as an operator request)");
  retry_command->add_option("--sink", retry_sink, "Only this sink");
  retry_command->add_option("--destination", retry_destination,
                            "Only this destination, e.g. /topic/perfsonar.raw.throughput");

  std::string discard_sink, discard_destination, discard_reason;
  int64_t discard_message = 0;
  auto* discard_command = app.add_subcommand(
      "discard", "Remove parked messages of one sink for good (only parked ones; recorded as an operator request)");
  discard_command->add_option("--sink", discard_sink, "The sink whose parked messages are removed")->required();
  discard_command->add_option("--destination", discard_destination, "Only this destination");
  discard_command->add_option("--message-id", discard_message, "Only this message (its journal id, as status lists it)")
      ->check(CLI::PositiveNumber);
  discard_command->add_option("--reason", discard_reason, "Why, for the record (shown by gapless-replay requests)")
      ->required();

  std::string retire_sink, retire_reason;
  auto* retire_command = app.add_subcommand(
      "retire-sink",
      "End what the journal keeps for a sink removed from the configuration: its pending and parked messages are "
      "removed and it gets no new ones (recorded as an operator request)");
  retire_command->add_option("--sink", retire_sink, "The sink, no longer in the configuration")->required();
  retire_command->add_option("--reason", retire_reason, "Why, for the record (shown by gapless-replay requests)")
      ->required();

  auto* check_command = app.add_subcommand(
      "check", "Full integrity check of the journal (SQLite's, then every invariant a query can check); exit 1 on a finding");

  for (auto* command : {run_command, status_command, ingest_command, import_dirq_command, retry_command, discard_command,
                        check_command, retire_command}) {
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
    for (const std::string& argument : extra_archives)
      config.archives.push_back(archive_from_argument(argument, config));
    if (!retry_sink.empty() && !config.find_sink(retry_sink))
      throw Error("retry-parked: unknown sink \"" + retry_sink + "\" (not in " + config.origin + ")");
    if (*import_dirq_command) dirq_options.min_age = parse_duration(dirq_min_age, "import-dirq --min-age");
    if (*discard_command && !config.find_sink(discard_sink))
      throw Error("discard: unknown sink \"" + discard_sink + "\" (not in " + config.origin + ")");
    if (*discard_command && discard_reason.find_first_not_of(" \t") == std::string::npos)
      throw Error("discard: --reason must say why (it is kept in the request table)");
    if (*retire_command && config.find_sink(retire_sink))
      throw Error("retire-sink: sink \"" + retire_sink + "\" is still in " + config.origin +
                  "; remove it from the configuration first (and reload the daemon: systemctl reload gapless), "
                  "then retire it");
    if (*retire_command && retire_reason.find_first_not_of(" \t") == std::string::npos)
      throw Error("retire-sink: --reason must say why (it is kept in the request table)");
    if (*retire_command) refuse_retire_while_sent(config.journal.path, retire_sink);
  } catch (const Error& e) {
    std::cerr << "gapless: " << e.what() << "\n";
    return 2;
  }

  try {
    if (*run_command) {
      // A SIGHUP reads the file again, with this command line's additions.
      std::function<Config()> read_config;
      if (!config_path.empty())
        read_config = [&] {
          Config next = load_config(config_path);
          if (!log_level.empty()) next.log_level = log_level;  // --log-level still overrides
          for (const std::string& argument : extra_archives)
            next.archives.push_back(archive_from_argument(argument, next));
          return next;
        };
      return daemon::run(config, until_drained, read_config);
    }
    if (*status_command) {
      auto journal = journal::open_configured(config, false);  // must stay fast on a journal of millions of rows
      if (json_output)
        std::cout << status::to_json(config, *journal).dump(2) << "\n";
      else if (prometheus_output)
        status::print_prometheus(config, *journal);
      else
        status::print_text(config, *journal);
      return 0;
    }
    if (*ingest_command) return ingest::run_command(config, ingest_path, batch);
    if (*import_dirq_command) return ingest::import_dirq_command(config, dirq_path, dirq_options);
    if (*check_command) {
      auto journal = journal::open_configured(config, false);  // check_integrity runs the full check instead
      const journal::IntegrityReport report = journal::check_integrity(*journal);
      std::cout << journal::format_integrity_report(report);
      return report.ok() ? 0 : 1;
    }
    if (*retry_command) {
      auto journal = journal::open_configured(config);
      auto optional_text = [](const std::string& text) {
        return text.empty() ? std::nullopt : std::optional<std::string_view>(text);
      };
      int64_t requeued = journal->retry_parked(optional_text(retry_sink), optional_text(retry_destination), true);
      std::cout << "retry-parked: " << requeued << " messages back to pending\n";
      return 0;
    }
    if (*retire_command) {
      auto journal = journal::open_configured(config);
      const journal::RetireResult result = journal->retire_sink(retire_sink, retire_reason);
      std::cout << "retire-sink: sink " << retire_sink << " retired (request " << result.request_id << "): "
                << result.pending << " pending and " << result.parked << " parked messages removed, "
                << result.parked_destinations << " parked destinations; it receives no new messages\n";
      return 0;
    }
    if (*discard_command) {
      auto journal = journal::open_configured(config);
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
