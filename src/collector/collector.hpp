// The collector: polls every configured perfSONAR archive (esmond) and
// journals what is new, in OSG's message format, for the senders to deliver.
//
// Scheduling. `collector.max_concurrent_requests` threads share the archives:
// a thread takes the archive whose next poll is due soonest, polls it start to
// end (one request at a time, so an archive never sees more than one request
// from us), and schedules its next poll `poll_interval` after that poll began.
// A slow or broken archive therefore holds one thread, never the others, and
// the number of requests in flight never exceeds the thread count.
//
// One poll of an archive:
//   1. List its metadata with time-start only (docs/esmond.md 1.2), from the oldest point
//      any of its series may still need: the smallest cursor minus the overlap,
//      or now minus `lookback` on first contact. A listing that fails retries
//      the whole archive with backoff (retry_min doubling to retry_max).
//   2. For each metadata object and each configured event type it has: the
//      base data and, with `summaries`, each summary is a series (journal
//      table `series`). A series is read from its cursor minus `overlap` (late
//      data) or from now minus `lookback` the first time, by
//      collector::read_series. An event type whose `time-updated` is older than
//      that start holds nothing new and costs no request.
//   3. A series that fails (HTTP error, bad JSON, a value the message builder
//      refuses) is counted and skipped until its own backoff expires; the
//      other series go on. Its cursor stands after the last page journaled.
//      Its failures are a log-only FaultEpisode per series (so are the
//      archive's listing failures): the first of a kind logged with the
//      archive, URL and reason, the repeats counted once a minute, the end
//      logged; status shows them as the archive's failed polls and lags.
//   4. The poll is recorded in the journal's archive health (counters per
//      archive and failure kind, for `gapless status` and metrics). A failure
//      to record it is logged and never stops collection.
//
// Journal faults (journal/fault_retry.hpp). The collector is a producer: a
// poll starts only when the disk reserve is held (journal/disk_reserve.hpp);
// while it cannot be taken the archive's poll waits, checked again every
// couple of seconds, and collection resumes by itself when space is back.
// A poll that meets a full disk (SQLITE_FULL), a lock held past the busy
// timeout or an I/O error ends there (each page is journaled with its cursor,
// so nothing is skipped), releases the reserve on a full disk, and the
// archive is polled again after a short backoff (1 s doubling to 30 s). Each
// archive's faults are one FaultEpisode ("collector archive=NAME"): logged
// once per episode, listed by `gapless status` while open. Only a damaged
// journal stops the collector: run() throws its JournalError.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/fault_episode.hpp"
#include "core/heartbeat.hpp"
#include "journal/journal.hpp"

namespace gapless::esmond {
class Client;
}

namespace gapless::collector {

// What one poll of one archive did, for its log line and for tests.
struct PollReport {
  bool listed = false;  // the metadata listing succeeded
  int64_t metadata = 0;
  int64_t series_read = 0;
  int64_t series_skipped = 0;  // unchanged since their cursor, or backing off
  int64_t series_backing_off = 0;  // of series_skipped: failed earlier, not retried yet
  int64_t series_failed = 0;
  int64_t points_read = 0;
  int64_t points_journaled = 0;
  int64_t corrections = 0;
  int64_t messages = 0;
  std::map<std::string, int64_t> failures;  // by kind: "http-status", "timeout", ..., "journal", "data"
  std::string last_error;  // the last failure's message, naming the archive and the URL
  // The journal fault that ended the poll early (or failed its health record), and its message.
  std::optional<journal::Fault> journal_fault;
  std::string journal_error;
};

// Every kind PollReport::failures counts, so that a metric can show each at 0
// before its first failure (a counter that appears at 1 shows no increase).
std::vector<std::string> failure_kinds();

// The failure backoff of an archive's series, and the episodes of its
// failures (core/fault_episode.hpp, log-only), kept from one poll to the next.
struct SeriesBackoffs {
  struct Backoff {
    int failures = 0;
    int64_t next_try_ms = 0;
    std::unique_ptr<FaultEpisode> failing;  // open while the series fails
  };
  std::map<int64_t, Backoff> series;  // by series id
  std::unique_ptr<FaultEpisode> listing_failing;  // open while the metadata listing fails
};

// One poll of `archive`, in the calling thread, recorded in the journal's
// archive health. Failures are in the report and the log. A journal failure
// (disk full, say) ends the poll (failures["journal"], journal_fault); what
// was journaled before it stays, and the archive is polled again after the
// backoff. Throws only a JournalError of a damaged journal. `config` gives
// the collector's settings and what every message must satisfy (read_options).
// `progress`, when given, is beaten for each series and each page journaled
// (the service watchdog).
PollReport poll_archive(const Config& config, const ArchiveConfig& archive, esmond::Client& client,
                        journal::Journal& journal, SeriesBackoffs& backoffs, const std::atomic<bool>& stop,
                        Heartbeat* progress = nullptr);

class Collector {
 public:
  // Opens nothing yet; run() does.
  Collector(const Config& config, const std::atomic<bool>& stop);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Polls until `stop` is raised, then returns once every thread has left
  // (an HTTP request in progress is bounded by its timeout). Returns at once
  // when no archive is configured. Throws the JournalError of a damaged
  // journal, once every thread has left.
  void run();
  // Polls each archive once (up to max_concurrent_requests at a time), then
  // returns; `stop` ends it early.
  void run_once();

  // For the service watchdog. Beaten by the polling threads while they wait
  // for an archive to fall due; each poll in progress is a member of it
  // (core/heartbeat.hpp), beaten for each series it registers or finishes and
  // each page it journals. A poll that makes no progress (a request the
  // archive answers with nothing, a journal write that waits for a lock)
  // therefore silences the collector, whatever the other threads do; a
  // request is bounded by the archive's http_timeout, so an http_timeout
  // longer than WatchdogSec lets a silent archive get the service restarted.
  Heartbeat& progress();

 private:
  // The archives' schedule and all the polling threads share (collector.cpp).
  struct Scheduler;
  std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace gapless::collector
