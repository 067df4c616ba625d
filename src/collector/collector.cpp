#include "collector/collector.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "collector/series_reader.hpp"
#include "core/backoff.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "esmond/client.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/size_limit.hpp"
#include "journal/fault_retry.hpp"
#include "journal/configured_journal.hpp"
#include "journal/journal.hpp"
#include "journal/series_description.hpp"
#include "osg/listing_keys.hpp"

namespace gapless::collector {

namespace {

int64_t seconds_of(Milliseconds duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

// retry_min doubling per failure up to retry_max, with up to 20% jitter so
// that the series of one broken archive do not retry in lockstep.
int64_t backoff_ms(const CollectorConfig& settings, int failures) {
  const int64_t delay = doubling_delay(settings.retry_min, settings.retry_max, failures).count();
  thread_local std::minstd_rand random(std::random_device{}());
  return delay + static_cast<int64_t>(random() % static_cast<uint64_t>(delay / 5 + 1));
}

// The metadata kept with a series: the archive's object without the parts
// that change on every poll (time-updated lives in event-types) or that
// describe a page rather than the test.
std::string series_metadata(const nlohmann::json& metadata) {
  nlohmann::json kept = nlohmann::json::object();
  for (const auto& [key, value] : metadata.items())
    if (key != "event-types" && !osg::is_pagination_key(key)) kept[key] = value;
  return kept.dump();
}

// `episode`, made log-only for `component` the first time it is needed.
FaultEpisode& failing(std::unique_ptr<FaultEpisode>& episode, const std::string& component) {
  if (!episode) episode = std::make_unique<FaultEpisode>(component, FaultEpisode::Listing::log_only);
  return *episode;
}

// The poll itself; poll_archive records it.
PollReport poll(const Config& config, const ArchiveConfig& archive, esmond::Client& client,
                journal::Journal& journal, SeriesBackoffs& backoffs, const std::atomic<bool>& stop,
                Heartbeat* progress) {
  const CollectorConfig& settings = config.collector;
  PollReport report;
  const int64_t now = unix_now_ms() / 1000;
  const int64_t overlap = seconds_of(archive.overlap);
  const int64_t first_contact = now - seconds_of(archive.lookback);
  const std::string& archive_url = client.base_url();

  ReadOptions options = read_options(config, archive);
  if (progress)  // each page journaled is progress; a request that brings nothing is not
    options.after_page = [progress, then = std::move(options.after_page)](const ReadResult& read) {
      progress->beat();
      if (then) then(read);
    };
  // A journal failure (disk full, say) ends the poll; the archive is polled
  // again after its backoff. A damaged journal ends collection.
  const auto journal_failed = [&](const Error& e, const std::string& series) {
    const auto* journal_error = dynamic_cast<const journal::JournalError*>(&e);
    if (journal_error != nullptr && journal_error->fault() == journal::Fault::damaged) throw *journal_error;
    ++report.failures["journal"];
    report.last_error = "archive " + archive.name + " " + archive_url + ": " + e.what();
    report.journal_fault =
        journal_error != nullptr ? journal::fault_on_disk(*journal_error, config.journal.path) : journal::Fault::other;
    report.journal_error = e.what();
    // A transient fault is logged once per episode, by the caller.
    const auto level = journal_error != nullptr && journal_error->transient() ? spdlog::level::debug
                                                                              : spdlog::level::err;
    if (series.empty())
      spdlog::log(level, "collector: journal failed archive={} error=\"{}\"", archive.name, e.what());
    else
      spdlog::log(level, "collector: journal failed archive={} series=\"{}\" error=\"{}\"", archive.name, series,
                  e.what());
  };

  std::vector<nlohmann::json> listing;
  try {
    // docs/esmond.md 1.2: time-start only, from the oldest point a known series may still need.
    int64_t updated_since = first_contact;
    for (const journal::Series& known : journal.series_of_archive(archive_url))
      if (known.cursor_ts) updated_since = std::min(updated_since, *known.cursor_ts - overlap);
    std::vector<std::string> rejected;
    listing = client.list_metadata(updated_since, 1000, &rejected);
    report.listed = true;
    if (backoffs.listing_failing) backoffs.listing_failing->resolved();
    report.metadata = static_cast<int64_t>(listing.size());
    for (const std::string& problem : rejected) {
      ++report.failures["invalid-metadata"];
      report.last_error = "archive " + archive.name + " " + archive_url + ": metadata left out: " + problem;
      spdlog::warn("collector: metadata left out archive={} error=\"{}\"", archive.name, problem);
    }
  } catch (const esmond::FetchError& e) {
    ++report.failures[std::string(esmond::failure_kind_name(e.kind()))];
    report.last_error = e.what();
    failing(backoffs.listing_failing, "collector archive=" + archive.name + " listing")
        .occurred(esmond::failure_kind_name(e.kind()), e.what());
    spdlog::debug("collector: listing failed archive={} kind={} error=\"{}\"", archive.name,
                  esmond::failure_kind_name(e.kind()), e.what());
    return report;
  } catch (const Error& e) {
    journal_failed(e, "");
    return report;
  }

  // The series due, registered first; then read in order, the archive's
  // side running ahead of the journal's (read_in_order).
  std::vector<SeriesRead> due;
  for (const nlohmann::json& metadata : listing) {
    const std::string metadata_text = series_metadata(metadata);
    for (const SeriesInMetadata& candidate :
         series_in_metadata(metadata, archive_url, archive.event_types, archive.summaries)) {
      if (stop.load()) return report;
      if (progress) progress->beat();
      journal::Series series;
      try {
        series = journal.register_series(candidate.key, metadata_text);
      } catch (const Error& e) {
        journal_failed(e, journal::describe(candidate.key));
        return report;
      }
      // A summary point is stamped with the start of its window: on first
      // contact, the window holding the lookback's first data starts up to a
      // window earlier.
      const int64_t from = series.cursor_ts ? *series.cursor_ts - overlap
                                            : first_contact - series.key.summary_window;
      if (series.cursor_ts && candidate.time_updated && *candidate.time_updated < from) {
        ++report.series_skipped;  // nothing written to it since before our overlap
        continue;
      }
      if (backoffs.series[series.id].next_try_ms > unix_now_ms()) {
        ++report.series_skipped;
        ++report.series_backing_off;
        continue;
      }
      due.push_back(SeriesRead{std::move(series), metadata, from, std::nullopt});
    }
  }

  const auto read_done = [&](size_t index, const ReadResult& read, std::exception_ptr failure) {
    if (progress) progress->beat();
    const journal::SeriesKey& key = due[index].series.key;
    SeriesBackoffs::Backoff& backoff = backoffs.series[due[index].series.id];
    report.points_read += read.points_read;
    report.points_journaled += read.points_journaled;  // pages before a failure stay journaled
    report.corrections += read.corrections;
    report.messages += read.messages;
    if (!failure) {
      ++report.series_read;
      if (backoff.failing) backoff.failing->resolved();
      backoff.failures = 0;
      backoff.next_try_ms = 0;
      return;
    }
    std::string failure_kind = "data";
    std::string problem;
    try {
      std::rethrow_exception(failure);
    } catch (const esmond::FetchError& e) {
      failure_kind = std::string(esmond::failure_kind_name(e.kind()));
      problem = e.what();
    } catch (const std::exception& e) {  // DataError
      problem = e.what();
    }
    ++report.series_failed;
    ++report.failures[failure_kind];
    report.last_error = problem;
    ++backoff.failures;
    const int64_t delay = backoff_ms(settings, backoff.failures);
    backoff.next_try_ms = unix_now_ms() + delay;
    // The episode logs the first failure of a kind, then a count a minute.
    failing(backoff.failing, "collector " + journal::describe(key)).occurred(failure_kind, problem);
    spdlog::debug("collector: series failed archive={} series=\"{}\" kind={} failures={} retry_in_ms={} "
                  "error=\"{}\"",
                  archive.name, journal::describe(key), failure_kind, backoff.failures, delay, problem);
  };
  try {
    read_in_order(client, journal, due, now, options, stop, read_done);
  } catch (const Error& e) {
    journal_failed(e, "");
  }
  return report;
}

}  // namespace

std::vector<std::string> failure_kinds() {
  std::vector<std::string> kinds;
  for (const esmond::FailureKind kind :
       {esmond::FailureKind::connect, esmond::FailureKind::timeout, esmond::FailureKind::http_status,
        esmond::FailureKind::redirect, esmond::FailureKind::not_json, esmond::FailureKind::malformed,
        esmond::FailureKind::invalid})
    kinds.emplace_back(esmond::failure_kind_name(kind));
  for (const char* kind : {"invalid-metadata", "data", "journal"}) kinds.emplace_back(kind);
  return kinds;
}

PollReport poll_archive(const Config& config, const ArchiveConfig& archive, esmond::Client& client,
                        journal::Journal& journal, SeriesBackoffs& backoffs, const std::atomic<bool>& stop,
                        Heartbeat* progress) {
  PollReport report = poll(config, archive, client, journal, backoffs, stop, progress);
  journal::ArchivePoll health;
  health.archive_url = client.base_url();
  health.name = archive.name;
  health.polled_ms = unix_now_ms();
  // Stopped (at any point: `stop` is never lowered), or series left to their
  // backoff: not everything due was read, so not a success (invariant 14).
  health.complete = report.listed && report.series_backing_off == 0 && !stop.load();
  health.points_journaled = report.points_journaled;
  health.failures = report.failures;
  health.last_error = report.last_error;
  try {
    journal.record_poll(health);
  } catch (const journal::JournalError& e) {
    if (e.fault() == journal::Fault::damaged) throw;
    // Health is diagnostics: collection goes on without it. But a full disk
    // here is a full disk for the next poll too: the caller pauses.
    if (!report.journal_fault && e.transient()) {
      report.journal_fault = journal::fault_on_disk(e, config.journal.path);
      report.journal_error = e.what();
    }
    spdlog::log(e.transient() ? spdlog::level::debug : spdlog::level::err,
                "collector: archive health not recorded archive={} url={} error=\"{}\"", archive.name,
                health.archive_url, e.what());
  } catch (const std::exception& e) {
    spdlog::error("collector: archive health not recorded archive={} url={} error=\"{}\"", archive.name,
                  health.archive_url, e.what());
  }
  return report;
}

// ---------------------------------------------------------------------------
// Scheduling (see the top of collector.hpp).

// One per collector: the archives, when each is due and which thread polls
// it, the disk reserve, and the halt on a damaged journal; work() is a
// polling thread's loop.
struct Collector::Scheduler {
  struct Archive {
    const ArchiveConfig* config = nullptr;
    SeriesBackoffs backoffs;
    std::unique_ptr<esmond::Client> client;  // used by one thread at a time (busy)
    int64_t next_due_ms = 0;
    int listing_failures = 0;
    int journal_failures = 0;  // transient journal faults in a row
    std::unique_ptr<FaultEpisode> faults;  // this archive's journal faults and pauses
    // Beaten by its poll while one is in progress, and then a member of the
    // collector's heartbeat: a stuck poll silences the collector.
    std::unique_ptr<Heartbeat> poll_progress = std::make_unique<Heartbeat>();
    bool busy = false;
    bool polled = false;  // once mode: done
  };

  Scheduler(const Config& configuration, const std::atomic<bool>& stopping)
      : config(configuration),
        stop(stopping),
        reserve(config.journal.path, config.journal.disk_reserve),
        size_limit(config.journal.path, config.journal.max_size) {
    for (const ArchiveConfig& archive : config.archives) {
      archives.emplace_back();
      archives.back().config = &archive;
      archives.back().faults = std::make_unique<FaultEpisode>("collector archive=" + archive.name);
    }
  }

  const Config& config;
  const std::atomic<bool>& stop;
  Heartbeat progress;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Archive> archives;
  bool once = false;  // poll each archive once, then leave

  // A damaged journal: every thread leaves, and run() throws this.
  std::atomic<bool> halted{false};
  std::exception_ptr damaged;

  // Taken by one thread at a time (it is one file, created under a temporary name).
  std::mutex reserve_mutex;
  journal::DiskReserve reserve;
  journal::SizeLimit size_limit;  // thread-safe

  bool take_reserve() {
    std::lock_guard lock(reserve_mutex);
    return reserve.take();
  }
  void release_reserve() {
    std::lock_guard lock(reserve_mutex);
    reserve.release();
  }

  // The archive due soonest that no thread is polling; nullptr when stopping
  // (or, once, when every archive has been polled).
  Archive* take() {
    std::unique_lock lock(mutex);
    for (;;) {
      progress.beat();
      if (stop.load() || halted.load()) return nullptr;
      Archive* next = nullptr;
      for (Archive& archive : archives)
        if (!archive.busy && !(once && archive.polled) &&
            (next == nullptr || archive.next_due_ms < next->next_due_ms))
          next = &archive;
      if (once && next == nullptr) return nullptr;
      const int64_t now = unix_now_ms();
      if (next != nullptr && next->next_due_ms <= now) {
        next->busy = true;
        next->poll_progress->beat();
        progress.join(*next->poll_progress);
        return next;
      }
      // Wake at least every 200 ms to notice `stop` (an atomic, not a condition).
      const int64_t wait_ms = next == nullptr ? 200 : std::min<int64_t>(200, next->next_due_ms - now);
      changed.wait_for(lock, std::chrono::milliseconds(wait_ms));
    }
  }

  // `done`: in once mode, the archive is not polled again (a poll paused or
  // cut short by a transient journal fault is not done).
  void give_back(Archive& archive, int64_t next_due_ms, bool done = true) {
    {
      std::lock_guard lock(mutex);
      progress.leave(*archive.poll_progress);
      archive.busy = false;
      archive.polled = archive.polled || done;
      archive.next_due_ms = next_due_ms;
    }
    changed.notify_all();
  }

  void halt(std::exception_ptr failure) {
    {
      std::lock_guard lock(mutex);
      if (!damaged) damaged = failure;
      halted = true;
    }
    changed.notify_all();
  }

  void work() {
    std::unique_ptr<journal::Journal> journal;  // one connection per thread
    while (Archive* archive = take()) {
      const ArchiveConfig& settings = *archive->config;
      // A producer writes only while it holds the disk reserve: on a full
      // disk, the space left goes to delivery. The cursors stay as they are.
      if (!take_reserve()) {
        journal::record_reserve_pause(reserve, *archive->faults);
        give_back(*archive, unix_now_ms() + journal::kReserveRecheckMs, false);
        continue;
      }
      // [journal] max_size (journal/size_limit.hpp): paused the same way,
      // keeping the reserve; pruning brings the journal below again.
      if (const std::optional<int64_t> bytes = size_limit.reached()) {
        size_limit.record_pause(*archive->faults, *bytes);
        give_back(*archive, unix_now_ms() + journal::kReserveRecheckMs, false);
        continue;
      }
      const int64_t started = unix_now_ms();
      PollReport report;
      try {
        if (!journal) journal = journal::Journal::open(config.journal.path, journal::sink_registrations(config.sinks));
        if (!archive->client) {
          archive->client = std::make_unique<esmond::Client>(settings.name, settings.url, client_options(settings));
        }
        report = poll_archive(config, settings, *archive->client, *journal, archive->backoffs, stop,
                              archive->poll_progress.get());
      } catch (const journal::JournalError& e) {  // opening the journal, or a damaged one
        if (e.fault() == journal::Fault::damaged) {
          spdlog::critical("collector: journal damaged archive={} error=\"{}\"", settings.name, e.what());
          halt(std::current_exception());
          give_back(*archive, unix_now_ms());
          return;
        }
        ++report.failures["journal"];
        report.journal_fault = journal::fault_on_disk(e, config.journal.path);
        report.journal_error = e.what();
        if (*report.journal_fault == journal::Fault::other)
          spdlog::error("collector: poll failed archive={} error=\"{}\"", settings.name, e.what());
      } catch (const std::exception& e) {  // a bad archive URL
        ++report.failures["journal"];
        spdlog::error("collector: poll failed archive={} error=\"{}\"", settings.name, e.what());
      }
      const int64_t finished = unix_now_ms();
      std::string failures;
      for (const auto& [kind, count] : report.failures)
        failures += (failures.empty() ? "" : ",") + kind + ":" + std::to_string(count);
      spdlog::info("collector: polled archive={} listed={} metadata={} series_read={} series_skipped={} "
                   "series_failed={} points_read={} points_journaled={} corrections={} messages={} "
                   "failures={} duration_ms={}",
                   settings.name, report.listed, report.metadata, report.series_read, report.series_skipped,
                   report.series_failed, report.points_read, report.points_journaled, report.corrections,
                   report.messages, failures.empty() ? "none" : failures, finished - started);

      int64_t next_due = started + settings.poll_interval.count();
      bool done = true;
      const std::optional<journal::Fault> fault = report.journal_fault;
      if (fault) {
        archive->faults->occurred(journal::fault_kind(*fault), report.journal_error);
        if (*fault == journal::Fault::full) release_reserve();  // delivery needs the space more
      } else {
        archive->faults->resolved();
      }
      if (fault && *fault != journal::Fault::other) {
        // Local and passing: tried again soon, and (once mode) not done.
        ++archive->journal_failures;
        next_due = finished + journal::journal_retry_delay_ms(archive->journal_failures);
        done = stop.load();
      } else if (!report.listed || report.failures.count("journal") != 0) {
        archive->journal_failures = 0;
        ++archive->listing_failures;
        next_due = finished + backoff_ms(config.collector, archive->listing_failures);
      } else {
        archive->journal_failures = 0;
        archive->listing_failures = 0;
      }
      give_back(*archive, std::max(next_due, finished), done);
    }
  }
};

Collector::Collector(const Config& config, const std::atomic<bool>& stop)
    : scheduler_(std::make_unique<Scheduler>(config, stop)) {}

Collector::~Collector() = default;

Heartbeat& Collector::progress() { return scheduler_->progress; }

void Collector::run_once() {
  scheduler_->once = true;
  run();
}

void Collector::run() {
  if (scheduler_->archives.empty()) return;
  const int threads = std::min<int>(scheduler_->config.collector.max_concurrent_requests,
                                    static_cast<int>(scheduler_->archives.size()));
  spdlog::info("collector: start archives={} threads={}", scheduler_->archives.size(), threads);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([this] {
      try {
        scheduler_->work();
      } catch (...) {  // a damaged journal found by a poll: every thread leaves
        scheduler_->halt(std::current_exception());
      }
    });
  for (std::thread& worker : workers) worker.join();
  if (scheduler_->damaged) {
    spdlog::critical("collector: stopped, the journal is damaged");
    std::rethrow_exception(scheduler_->damaged);
  }
  spdlog::info("collector: stopped");
}

}  // namespace gapless::collector
