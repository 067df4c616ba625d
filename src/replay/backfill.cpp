#include "replay/backfill.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/series_reader.hpp"
#include "core/clock.hpp"
#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/timestamp.hpp"
#include "esmond/client.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/size_limit.hpp"
#include "journal/fault_retry.hpp"
#include "journal/configured_journal.hpp"
#include "journal/journal.hpp"
#include "journal/series_description.hpp"
#include "osg/destination.hpp"
#include "osg/resend_conditions.hpp"
#include "replay/gaps.hpp"

namespace gapless::replay {

namespace {

using nlohmann::json;

// The archives a selection names (every configured one when it names none, so
// possibly none), checked before anything is changed.
std::vector<const ArchiveConfig*> named_archives(const Config& config, const Selection& selection) {
  check_selection(config, selection);
  std::vector<const ArchiveConfig*> archives;
  for (const std::string& name : selection.archives) archives.push_back(config.find_archive(name));
  if (selection.archives.empty())
    for (const ArchiveConfig& archive : config.archives) archives.push_back(&archive);
  return archives;
}

// named_archives, of which a backfill needs one at least.
std::vector<const ArchiveConfig*> selected_archives(const Config& config, const Selection& selection) {
  std::vector<const ArchiveConfig*> archives = named_archives(config, selection);
  if (archives.empty()) throw Error("no [[archive]] is configured in " + config.origin);
  return archives;
}

// The door, before anything is read or recorded: every destination the
// backfill would journal (each event type's raw data, and its summaries when
// the archive's are read) must be taken by a sink (core/destination_filter.hpp).
void check_destinations_taken(const Config& config, const Selection& selection,
                              const std::vector<const ArchiveConfig*>& archives) {
  std::set<std::string> refused;
  std::string refusals;
  for (const ArchiveConfig* archive : archives) {
    std::vector<osg::DataKind> kinds{osg::DataKind::raw};
    if (archive->summaries) kinds.push_back(osg::DataKind::summary);
    for (const std::string& event_type : selection.event_types.empty() ? archive->event_types : selection.event_types)
      for (const osg::DataKind kind : kinds) {
        const std::string destination = osg::destination_of(event_type, kind);
        const DestinationTakers takers = destination_takers(config.sinks, destination);
        if (!takers.taken() && refused.insert(destination).second)
          refusals += (refusals.empty() ? "" : "; ") + ("archive " + archive->name + ": " + takers.refusal);
      }
  }
  if (!refusals.empty())
    throw Error("backfill refused, nothing was read or journaled: " + refusals +
                " (name the event types a sink takes with --event-type, or widen a sink's accept in " +
                config.origin + ")");
}

bool host_matches(const json& metadata, const std::string& host, const char* name_field, const char* address_field) {
  if (host.empty()) return true;
  for (const char* field : {name_field, address_field}) {
    const auto it = metadata.find(field);
    if (it != metadata.end() && it->is_string() && it->get_ref<const std::string&>() == host) return true;
  }
  return false;
}

bool selected(const Selection& selection, const json& metadata) {
  return host_matches(metadata, selection.source_host, "input-source", "source") &&
         host_matches(metadata, selection.destination_host, "input-destination", "destination");
}

std::string arguments_json(const Selection& selection, const json& extra) {
  json arguments = extra;
  arguments["from"] = format_timestamp(selection.from);
  arguments["to"] = format_timestamp(selection.to);
  arguments["archives"] = selection.archives;
  arguments["event_types"] = selection.event_types;
  arguments["source_host"] = selection.source_host;
  arguments["destination_host"] = selection.destination_host;
  return arguments.dump();
}

// A backfill's transactions stay short: each holds the journal's write lock,
// which the daemon beside it needs for live data. Whole pages of 1000
// one-datapoint messages held it 260-500 ms at a time (bench/README.md,
// backfill-bench with --datapoints-per-message 1).
constexpr size_t kMessagesPerTransaction = 100;

// Sleeps so that `done` units since `start` do not exceed `rate` per second.
void pace(double rate, int64_t done, std::chrono::steady_clock::time_point start, const std::atomic<bool>& stop) {
  if (rate <= 0) return;
  const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(static_cast<double>(done) / rate));
  while (!stop.load() && std::chrono::steady_clock::now() < due)
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        due - std::chrono::steady_clock::now(), std::chrono::milliseconds(100)));
}

// A transient journal fault (a lock held past the busy timeout, a full disk,
// an I/O error) is waited out, not a failed command: one FaultEpisode per
// command logs it once, and writes wait for the disk reserve
// (journal/fault_retry.hpp). `stop` ends a wait with gapless::Error.
struct FaultWaiting {
  FaultWaiting(const Config& config, std::string command, const std::atomic<bool>& stopping)
      : faults(std::move(command)),
        reserve(config.journal.path, config.journal.disk_reserve),
        size_limit(config.journal.path, config.journal.max_size),
        stop(stopping) {}

  template <typename Work>
  auto retrying(Work&& work) {
    return journal::retry_transient(faults, reserve, false, stop, std::forward<Work>(work));
  }
  // Journals something new: waits for the disk reserve first.
  template <typename Work>
  auto producing(Work&& work) {
    if (!size_limit.wait_below(faults, stop)) throw Error("interrupted while the journal is at its max_size");
    return journal::retry_transient(faults, reserve, true, stop, std::forward<Work>(work));
  }
  // Before journaling: the disk reserve held and the journal below [journal] max_size.
  bool wait_for_room() {
    return journal::wait_for_reserve(reserve, faults, stop) && size_limit.wait_below(faults, stop);
  }

  FaultEpisode faults;
  journal::DiskReserve reserve;
  journal::SizeLimit size_limit;
  const std::atomic<bool>& stop;
};

}  // namespace

void check_selection(const Config& config, const Selection& selection, std::string_view prefix) {
  const std::string p(prefix);
  if (selection.from >= selection.to)
    throw BadArgument("from", p + "from " + format_timestamp(selection.from) + " is not before " + p + "to " +
                                  format_timestamp(selection.to) + " (" + p + "to is exclusive)");
  for (const std::string& name : selection.archives) {
    if (config.find_archive(name) != nullptr) continue;
    std::string known;  // what the operator may have meant
    for (const ArchiveConfig& archive : config.archives) known += (known.empty() ? "" : ", ") + archive.name;
    throw BadArgument("archive", p + "archive: unknown archive \"" + name + "\" (configured in " + config.origin +
                                     ": " + (known.empty() ? "none" : known) + ")");
  }
}

std::string checked_resend_sink(const Config& config, const Selection& selection, const std::string& sink,
                                std::string_view prefix) {
  check_selection(config, selection, prefix);
  const std::string p(prefix);
  if (sink.empty()) {
    if (config.sinks.size() != 1) throw BadArgument("sink", p + "sink: several sinks are configured, name one");
    return config.sinks.front().name;
  }
  if (config.find_sink(sink) == nullptr)
    throw BadArgument("sink", p + "sink: unknown sink \"" + sink + "\" (not in " + config.origin + ")");
  return sink;
}

BackfillResult backfill(const Config& config, const Selection& selection, double rate, bool dry_run,
                        const std::atomic<bool>& stop, const ProgressCallback& progress) {
  const std::vector<const ArchiveConfig*> archives = selected_archives(config, selection);
  check_destinations_taken(config, selection, archives);
  BackfillResult result;
  FaultWaiting waiting(config, "backfill", stop);
  auto journal = waiting.retrying([&] { return journal::Journal::open(config.journal.path, journal::sink_registrations(config.sinks)); });
  if (!dry_run)
    result.request_id =
        waiting.producing([&] { return journal->begin_request("backfill", arguments_json(selection, {{"rate", rate}})); });

  // What is to be read: per series, the uncovered pieces of the window.
  struct Work {
    const ArchiveConfig* archive;
    esmond::Client* client;
    journal::Series series;
    json metadata;
    std::vector<std::pair<int64_t, int64_t>> pieces;
  };
  std::vector<std::unique_ptr<esmond::Client>> clients;
  std::vector<Work> work;
  Progress shown;
  for (const ArchiveConfig* archive : archives) {
    clients.push_back(std::make_unique<esmond::Client>(archive->name, archive->url, collector::client_options(*archive)));
    esmond::Client& client = *clients.back();
    std::vector<json> listing;
    try {
      std::vector<std::string> rejected;
      // docs/esmond.md 1.2: time-start only; the window applies to the data requests.
      listing = client.list_metadata(selection.from, 1000, &rejected);
      for (const std::string& problem : rejected) spdlog::warn("backfill: metadata left out error=\"{}\"", problem);
    } catch (const esmond::FetchError& e) {
      ++result.failures;
      spdlog::error("backfill: listing failed archive={} error=\"{}\"", archive->name, e.what());
      continue;
    }
    const std::vector<std::string>& event_types =
        selection.event_types.empty() ? archive->event_types : selection.event_types;
    for (json& metadata : listing) {
      if (!selected(selection, metadata)) continue;
      json kept = metadata;
      kept.erase("event-types");
      for (const auto& candidate :
           collector::series_in_metadata(metadata, client.base_url(), event_types, archive->summaries)) {
        // A dry run changes nothing: a series the journal does not know yet
        // has no coverage, and is not registered.
        journal::Series series{0, candidate.key, kept.dump(), std::nullopt};
        if (!dry_run)
          series = waiting.producing([&] { return journal->register_series(candidate.key, kept.dump()); });
        else if (std::optional<journal::Series> known = waiting.retrying([&] { return journal->find_series(candidate.key); }))
          series.id = known->id;
        std::vector<journal::CoveredRange> coverage;
        if (series.id != 0)
          coverage = waiting.retrying(
              [&] { return journal->coverage(series.id, selection.from - series.key.summary_window, selection.to); });
        // A summary point is stamped with its window's start: read from a
        // window earlier so the windows overlapping `from` are included.
        auto pieces = uncovered(selection.from - series.key.summary_window, selection.to, coverage);
        if (pieces.empty()) continue;
        for (const auto& [begin, end] : pieces) shown.seconds_total += end - begin;
        result.windows += static_cast<int64_t>(pieces.size());
        work.push_back(Work{archive, &client, std::move(series), metadata, std::move(pieces)});
      }
    }
  }
  result.series = static_cast<int64_t>(work.size());
  result.uncovered_seconds = shown.seconds_total;
  shown.series_total = result.series;
  if (progress) progress(shown);
  if (dry_run) return result;

  const auto started = std::chrono::steady_clock::now();
  const int64_t now = unix_now_ms() / 1000;
  for (Work& item : work) {
    if (stop.load()) break;
    collector::ReadOptions options = collector::read_options(config, *item.archive);
    options.priority = journal::Priority::backfill;
    options.request_id = result.request_id;
    options.advance_cursor = false;
    options.messages_per_transaction = kMessagesPerTransaction;
    options.after_page = [&](const collector::ReadResult& so_far) {  // so far in this piece
      shown.messages = result.messages + so_far.messages;
      shown.points_journaled = result.points_journaled + so_far.points_journaled;
      if (progress) progress(shown);
      pace(rate, shown.messages, started, stop);
    };
    try {
      int journal_failures = 0;
      for (size_t piece = 0; piece < item.pieces.size();) {
        if (stop.load()) break;
        const auto [begin, end] = item.pieces[piece];
        if (!waiting.wait_for_room()) break;
        try {
          const collector::ReadResult read = collector::read_series(*item.client, *journal, item.series,
                                                                    item.metadata, begin, end, now, options, stop);
          result.points_read += read.points_read;
          result.points_journaled += read.points_journaled;
          result.messages += read.messages;
          waiting.faults.resolved();
          journal_failures = 0;
        } catch (const journal::JournalError& e) {
          if (!e.transient() && journal::fault_on_disk(e, waiting.reserve.path()) != journal::Fault::full) throw;
          // Pages journaled before the fault stay (with their coverage):
          // after the wait, only what the piece still lacks is read.
          if (!journal::wait_after_fault(e, waiting.faults, &waiting.reserve, ++journal_failures, stop)) break;
          const auto coverage = waiting.retrying([&] { return journal->coverage(item.series.id, begin, end); });
          const auto rest = uncovered(begin, end, coverage);
          item.pieces.erase(item.pieces.begin() + static_cast<long>(piece));
          item.pieces.insert(item.pieces.begin() + static_cast<long>(piece), rest.begin(), rest.end());
          shown.seconds_done += (end - begin);
          for (const auto& [rest_begin, rest_end] : rest) shown.seconds_done -= rest_end - rest_begin;
          continue;
        }
        shown.seconds_done += end - begin;
        ++piece;
      }
    } catch (const esmond::FetchError& e) {
      ++result.failures;
      spdlog::warn("backfill: series failed archive={} series=\"{}\" kind={} error=\"{}\"", item.archive->name,
                   journal::describe(item.series.key), esmond::failure_kind_name(e.kind()), e.what());
    } catch (const collector::DataError& e) {
      ++result.failures;
      spdlog::warn("backfill: series failed archive={} series=\"{}\" kind=data error=\"{}\"", item.archive->name,
                   journal::describe(item.series.key), e.what());
    } catch (const Error& e) {
      journal->update_request(*result.request_id, "failed", result.messages, e.what());
      throw;
    }
    ++shown.series_done;
    shown.messages = result.messages;
    shown.points_journaled = result.points_journaled;
    if (progress) progress(shown);
  }
  result.interrupted = stop.load();
  const std::string state = result.interrupted ? "interrupted" : result.failures > 0 ? "incomplete" : "done";
  waiting.retrying([&] {
    journal->update_request(*result.request_id, state, result.messages,
                            std::to_string(result.points_journaled) + " datapoints journaled, " +
                                std::to_string(result.failures) + " series failed");
  });
  return result;
}

journal::AppendedSelection ingested_selection(const Selection& selection,
                                              const std::vector<std::string>& destinations) {
  journal::AppendedSelection ingested{.from = selection.from, .to = selection.to, .conditions = {}};
  if (!destinations.empty()) ingested.conditions.push_back({.destinations = destinations, .header_values = {}});
  // What the filters mean for an OSG message is osg's to say.
  if (!selection.event_types.empty()) ingested.conditions.push_back(osg::of_event_types(selection.event_types));
  if (!selection.source_host.empty()) ingested.conditions.push_back(osg::from_source_host(selection.source_host));
  if (!selection.destination_host.empty())
    ingested.conditions.push_back(osg::to_destination_host(selection.destination_host));
  return ingested;
}

ResendResult resend(const Config& config, const Selection& selection, const std::string& named_sink,
                    const std::vector<std::string>& destinations, double rate, const std::string& reason,
                    bool dry_run, const std::atomic<bool>& stop, const ProgressCallback& progress) {
  const std::string sink = checked_resend_sink(config, selection, named_sink);
  // No archive is fine: an ingest-only site resends what `gapless ingest` journaled.
  const std::vector<const ArchiveConfig*> archives = named_archives(config, selection);
  FaultWaiting waiting(config, "resend", stop);
  auto journal = waiting.retrying([&] { return journal::Journal::open(config.journal.path, journal::sink_registrations(config.sinks)); });

  ResendResult result;
  std::vector<int64_t> series_ids;
  for (const ArchiveConfig* archive : archives) {
    std::string url = archive->url;
    for (const journal::Series& series : waiting.retrying([&] { return journal->series_of_archive(url); })) {
      if (!selection.event_types.empty() &&
          std::find(selection.event_types.begin(), selection.event_types.end(), series.key.event_type) ==
              selection.event_types.end())
        continue;
      const std::string destination = osg::destination_of(series.key);
      if (!destinations.empty() &&
          std::find(destinations.begin(), destinations.end(), destination) == destinations.end())
        continue;
      if (!selected(selection, json::parse(series.metadata, nullptr, false))) continue;
      series_ids.push_back(series.id);
    }
  }
  result.series = static_cast<int64_t>(series_ids.size());
  std::vector<int64_t> messages =
      waiting.retrying([&] { return journal->messages_of_series(series_ids, selection.from, selection.to); });
  // The messages the collector did not produce (journal invariant 15), unless
  // archives are named: those came from none.
  if (selection.archives.empty()) {
    const journal::AppendedSelection wanted = ingested_selection(selection, destinations);
    const std::vector<int64_t> ingested = waiting.retrying([&] { return journal->appended_messages(wanted); });
    result.ingested = static_cast<int64_t>(ingested.size());
    const size_t collected = messages.size();
    messages.insert(messages.end(), ingested.begin(), ingested.end());
    std::inplace_merge(messages.begin(), messages.begin() + static_cast<long>(collected), messages.end());
    messages.erase(std::unique(messages.begin(), messages.end()), messages.end());  // see invariant 15
  }
  Progress shown;
  shown.series_total = result.series;
  shown.seconds_total = static_cast<int64_t>(messages.size());
  if (dry_run) {
    result.messages = static_cast<int64_t>(messages.size());
    if (progress) progress(shown);
    return result;
  }
  result.request_id = waiting.retrying([&] {
    return journal->begin_request("resend", arguments_json(selection, {{"sink", sink},
                                                                       {"destinations", destinations},
                                                                       {"rate", rate},
                                                                       {"reason", reason}}));
  });
  const auto started = std::chrono::steady_clock::now();
  const size_t chunk = rate > 0 ? std::max<size_t>(1, static_cast<size_t>(rate / 10)) : 5000;
  for (size_t at = 0; at < messages.size() && !stop.load(); at += chunk) {
    const std::vector<int64_t> part(messages.begin() + static_cast<long>(at),
                                    messages.begin() + static_cast<long>(std::min(messages.size(), at + chunk)));
    result.messages += waiting.retrying([&] { return journal->queue_resend(sink, part, *result.request_id); });
    shown.seconds_done = static_cast<int64_t>(std::min(messages.size(), at + chunk));
    shown.messages = result.messages;
    if (progress) progress(shown);
    pace(rate, shown.seconds_done, started, stop);
  }
  waiting.retrying(
      [&] { journal->update_request(*result.request_id, stop.load() ? "interrupted" : "done", result.messages, reason); });
  return result;
}

}  // namespace gapless::replay
