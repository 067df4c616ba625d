// `gapless-replay`: the operator's tool for the day after an outage.
//
//   gapless-replay backfill --from T --to T [--archive NAME]... [--event-type E]...
//                  [--source-host H] [--destination-host H] [--rate MSGS_PER_S]
//   gapless-replay resend   --from T --to T [--sink NAME] [--destination D]... [--event-type E]...
//                  [--source-host H] [--destination-host H] [--archive NAME]... [--rate MSGS_PER_S]
//                  [--reason TEXT]
//   gapless-replay gaps     --from T --to T [--archive NAME]... [--svg FILE] [--multiple X]
//   gapless-replay requests [--max N]
//   gapless-replay --version
//
// Every command takes --config FILE and --dry-run. Times: ISO 8601 dates or
// date-times (UTC unless an offset is given) or unix seconds; --to is
// exclusive. The work itself lives in the library (src/replay/), shared with
// the daemon: the same esmond client, the same reading rules, the same journal.
// Exit codes: 0 done, 1 runtime failure or incomplete, 2 bad usage, 130 interrupted.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "core/build_info.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/log.hpp"
#include "core/timestamp.hpp"
#include "daemon/stop_signals.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "journal/journal.hpp"
#include "replay/backfill.hpp"
#include "replay/gaps.hpp"

namespace {

using namespace gapless;

// Set by the first Ctrl-C (daemon/stop_signals.hpp): stop at the next page;
// everything journaled stays, and running the same command again continues.
std::atomic<bool> stop_requested{false};

// A bar with rate and ETA on a terminal; a plain line every 10 s otherwise.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(std::string what) : what_(std::move(what)), terminal_(::isatty(STDERR_FILENO) == 1) {}

  void operator()(const replay::Progress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < (terminal_ ? std::chrono::milliseconds(200) : std::chrono::seconds(10)) &&
        p.series_done != p.series_total)
      return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double fraction =
        p.seconds_total > 0 ? std::min(1.0, static_cast<double>(p.seconds_done) / static_cast<double>(p.seconds_total))
                            : 1.0;
    const double rate = elapsed > 0 ? static_cast<double>(p.messages) / elapsed : 0;
    const double eta = fraction > 0.001 ? elapsed * (1 - fraction) / fraction : 0;
    char line[256];
    std::snprintf(line, sizeof line, "%s: %3.0f%% series %lld/%lld, %lld datapoints, %lld messages, %.0f msg/s, ETA %.0f s",
                  what_.c_str(), fraction * 100, static_cast<long long>(p.series_done),
                  static_cast<long long>(p.series_total), static_cast<long long>(p.points_journaled),
                  static_cast<long long>(p.messages), rate, eta);
    if (terminal_) {
      const int width = 20;
      const int filled = static_cast<int>(fraction * width);
      std::cerr << "\r[" << std::string(static_cast<size_t>(filled), '#')
                << std::string(static_cast<size_t>(width - filled), '.') << "] " << line << "\033[K" << std::flush;
    } else {
      std::cerr << line << "\n";
    }
  }

  ~ProgressDisplay() {
    if (terminal_) std::cerr << "\n";
  }

 private:
  std::string what_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

void add_selection(CLI::App* command, std::string& from, std::string& to, replay::Selection& selection) {
  command->add_option("--from", from, "Start of the window: 2016-08-23, 2016-08-23T14:00Z or unix seconds")->required();
  command->add_option("--to", to, "End of the window (exclusive)")->required();
  command->add_option("--event-type", selection.event_types, "Only this event type (repeatable)");
  command->add_option("--source-host", selection.source_host, "Only tests from this host (input-source or source)");
  command->add_option("--destination-host", selection.destination_host,
                      "Only tests to this host (input-destination or destination)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gapless-replay: backfill outage windows, resend on request, show the gaps"};
  app.require_subcommand(1);
  app.set_version_flag("--version", build_description("gapless-replay"),
                       "The version and the source revision of this build");
  std::string config_path;
  std::string log_level = "warn";
  bool dry_run = false;
  replay::Selection selection;
  std::string from_text, to_text;
  double rate = 0;

  auto* backfill = app.add_subcommand("backfill", "Re-read the archives over a window; journal what is missing");
  add_selection(backfill, from_text, to_text, selection);
  backfill->add_option("--archive", selection.archives, "Only this archive (repeatable)");
  backfill->add_option("--rate", rate, "At most this many messages per second")->check(CLI::PositiveNumber);

  std::string sink, reason;
  std::vector<std::string> destinations;
  auto* resend = app.add_subcommand("resend", "Queue the delivered messages of a window again for a sink");
  add_selection(resend, from_text, to_text, selection);
  resend->add_option("--sink", sink, "The sink to send them to again (default: the only one configured)");
  resend->add_option("--destination", destinations, "Only this destination, e.g. /topic/perfsonar.raw.throughput");
  resend->add_option("--archive", selection.archives,
                     "Only messages collected from this archive (repeatable); ingested messages are then not "
                     "selected");
  resend->footer(
      "Messages collected from archives (the collector, backfills) are selected by the datapoints they carry: "
      "a datapoint's ts in the window, its series matching --destination, --event-type, --source-host, "
      "--destination-host and --archive.\n"
      "Messages journaled by `gapless ingest` are selected by their ts_start header (unix seconds), or, without "
      "an integer one, by when they were journaled; --destination applies to them, --event-type E matches the "
      "destinations /topic/perfsonar.raw.E and /topic/perfsonar.summary.E or an event-type header, "
      "--source-host and --destination-host their input-source and input-destination headers. With --archive "
      "they are not selected. No [[archive]] needs to be configured.");
  resend->add_option("--rate", rate, "At most this many messages per second")->check(CLI::PositiveNumber);
  resend->add_option("--reason", reason, "Recorded with the request (who asked, why)");

  std::string svg_path;
  double multiple = 3.0;
  auto* gaps = app.add_subcommand("gaps", "Where the journal has no data although the series' cadence says it should");
  gaps->add_option("--from", from_text, "Start of the window")->required();
  gaps->add_option("--to", to_text, "End of the window (exclusive)")->required();
  gaps->add_option("--archive", selection.archives, "Only this archive (repeatable)");
  gaps->add_option("--svg", svg_path, "Also write a timeline picture (SVG) to this file");
  gaps->add_option("--multiple", multiple, "A gap is longer than this many cadences")->check(CLI::PositiveNumber);

  size_t max_requests = 50;
  auto* requests = app.add_subcommand("requests", "List operator requests (backfills, resends, retries)");
  requests->add_option("--max", max_requests, "Newest first, at most this many");

  for (auto* command : {backfill, resend, gaps, requests}) {
    command->add_option("--config", config_path, "TOML configuration (default: embedded defaults)");
    command->add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
    command->add_flag("--dry-run", dry_run, "Print what would happen, with counts; change nothing");
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
    setup_logging(log_level);
    if (!from_text.empty()) selection.from = parse_timestamp(from_text, "--from");
    if (!to_text.empty()) selection.to = parse_timestamp(to_text, "--to");
    // Bad arguments are refused here, before anything is opened or changed.
    if (*resend)
      sink = replay::checked_resend_sink(config, selection, sink);
    else if (*backfill || *gaps)
      replay::check_selection(config, selection);
  } catch (const Error& e) {
    std::cerr << "gapless-replay: " << e.what() << "\n";
    return 2;
  }

  daemon::stop_on_signals(stop_requested);

  try {
    if (*backfill) {
      replay::BackfillResult result;
      {
        ProgressDisplay display(dry_run ? "backfill (dry run)" : "backfill");
        result = replay::backfill(config, selection, rate, dry_run, stop_requested,
                                  [&](const replay::Progress& p) { display(p); });
      }
      const std::string window = format_timestamp(selection.from) + " to " + format_timestamp(selection.to);
      if (dry_run) {
        std::cout << "backfill (dry run) " << window << ": " << result.series << " series, " << result.windows
                  << " uncovered windows, " << result.uncovered_seconds << " s of archive time to read; "
                  << "nothing was changed\n";
        return 0;
      }
      std::cout << "backfill request " << *result.request_id << " " << window << ": " << result.series
                << " series, " << result.points_read << " datapoints read, " << result.points_journaled
                << " journaled (new), " << result.messages << " messages, " << result.failures << " failures"
                << (result.interrupted ? "; interrupted: run the same command again to continue" : "") << "\n";
      if (result.interrupted) return daemon::kInterruptedExitCode;
      return result.failures > 0 ? 1 : 0;
    }
    if (*resend) {
      replay::ResendResult result;
      {
        ProgressDisplay display(dry_run ? "resend (dry run)" : "resend");
        result = replay::resend(config, selection, sink, destinations, rate, reason, dry_run, stop_requested,
                                [&](const replay::Progress& p) { display(p); });
      }
      if (dry_run) {
        std::cout << "resend (dry run): " << result.messages << " messages (of " << result.series << " series, and "
                  << result.ingested << " ingested) would be sent again to sink " << sink
                  << "; nothing was changed\n";
        return 0;
      }
      std::cout << "resend request " << *result.request_id << ": " << result.messages
                << " delivered messages queued again for sink " << sink << " (header gapless-resend: "
                << *result.request_id << ")\n";
      return stop_requested ? daemon::kInterruptedExitCode : 0;
    }
    // Reads, waiting out a transient journal fault (a lock held past the busy
    // timeout, an I/O error) instead of failing; logged once.
    FaultEpisode faults("gapless-replay");
    journal::DiskReserve reserve(config.journal.path, config.journal.disk_reserve);
    const auto reading = [&](auto&& work) {
      return journal::retry_transient(faults, reserve, false, stop_requested, work);
    };
    if (*gaps) {
      const std::vector<replay::SeriesGaps> all = reading([&] {
        auto journal = journal::Journal::open(config.journal.path, {}, false);
        std::vector<replay::SeriesGaps> found_all;
        for (const ArchiveConfig& archive : config.archives) {
          if (!selection.archives.empty() &&
              std::find(selection.archives.begin(), selection.archives.end(), archive.name) == selection.archives.end())
            continue;
          auto found = replay::find_gaps(*journal, archive.url, selection.from, selection.to, unix_now_ms() / 1000,
                                         replay::GapOptions{multiple});
          found_all.insert(found_all.end(), found.begin(), found.end());
        }
        return found_all;
      });
      std::cout << replay::gaps_table(all);
      if (!svg_path.empty() && !dry_run) {
        std::ofstream(svg_path) << replay::gaps_svg(all, selection.from, selection.to);
        std::cout << "timeline written to " << svg_path << "\n";
      }
      return 0;
    }
    if (*requests) {
      const std::vector<journal::Request> listed = reading([&] {
        return journal::Journal::open(config.journal.path, {}, false)->requests(max_requests);
      });
      for (const journal::Request& r : listed)
        std::cout << r.id << "  " << format_timestamp(r.created_ms / 1000) << "  " << r.kind << "  " << r.state
                  << "  messages=" << r.messages << "  by=" << r.created_by << "  " << r.arguments
                  << (r.note.empty() ? "" : "  note: " + r.note) << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "\ngapless-replay: " << e.what() << "\n";
    // Interrupted while waiting out a journal fault: run it again.
    return stop_requested ? daemon::kInterruptedExitCode : 1;
  }
  return 2;
}
