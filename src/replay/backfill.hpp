// Backfill and resend: the operator's acts after an outage (gapless-replay).
//
// Backfill re-reads the archives over a window with the collector's own rules
// (collector::read_series: paging by time, datapoint de-duplication, summary
// windows), at backfill priority, without moving any cursor. What it has to
// read is what the journal's coverage does not hold yet (journal invariant
// 13): coverage is written only in the transaction that journals the
// datapoints, so a backfill interrupted at any instant (Ctrl-C, kill -9)
// continues where it stopped when run again, and a finished one reads and
// sends nothing when run again. Each run is recorded in the request table.
//
// Resend queues already-delivered messages of a window again for one sink
// (journal::Journal::queue_resend): same gapless-id, a gapless-resend header
// with the request's id, claimed after live and backfill data. It selects the
// collected messages (collector, backfill) by the datapoints they carry, in
// the series of the selected archives, and, unless the selection names
// archives, the messages `gapless ingest` journaled by their ts_start header
// or journal time (journal::Journal::appended_messages, ingested_selection).
// It needs no configured archive.
//
// --rate paces what a request puts in front of the sender: a backfill journals
// at most `rate` messages per second, a resend requeues at most that many per
// second, so the sender (which drains as soon as rows are pending) sends them
// at that rate while live data keeps its priority.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"

namespace gapless::replay {

// Which series of a window a request concerns.
struct Selection {
  int64_t from = 0;  // unix s, inclusive
  int64_t to = 0;    // exclusive
  std::vector<std::string> archives;     // names; empty: every configured archive (resend: and ingested messages)
  std::vector<std::string> event_types;  // empty: each archive's configured event types
  std::string source_host;       // matches the metadata's input-source or source; empty: any
  std::string destination_host;  // matches input-destination or destination; empty: any
};

// An argument of a backfill or a resend refused before anything is opened
// or changed. `option` names it without dashes ("from", "sink", "archive"),
// so that POST /v1/resend can name the body's field; the text spells it as
// the caller spells its options (`prefix` below).
class BadArgument : public Error {
 public:
  BadArgument(std::string option, const std::string& text) : Error(text), option_(std::move(option)) {}
  const std::string& option() const { return option_; }

 private:
  std::string option_;
};

// Every front end's check of a window and the archives it names: from
// before to, each archive configured. Throws BadArgument. `prefix` is how the
// caller spells an option: "--" on the command line, "" in the HTTP body.
void check_selection(const Config& config, const Selection& selection, std::string_view prefix = "--");

// check_selection, then the sink a resend goes to: `sink`, or the only
// configured one when `sink` is empty. Returns it; throws BadArgument.
std::string checked_resend_sink(const Config& config, const Selection& selection, const std::string& sink,
                                std::string_view prefix = "--");

struct Progress {
  int64_t series_total = 0;
  int64_t series_done = 0;
  int64_t seconds_total = 0;  // of archive time to read (backfill) / messages to queue (resend)
  int64_t seconds_done = 0;
  int64_t points_journaled = 0;
  int64_t messages = 0;
};
using ProgressCallback = std::function<void(const Progress&)>;

struct BackfillResult {
  std::optional<int64_t> request_id;  // nothing on a dry run
  int64_t series = 0;
  int64_t windows = 0;            // uncovered windows read (dry run: to read)
  int64_t uncovered_seconds = 0;  // their total length
  int64_t points_read = 0;
  int64_t points_journaled = 0;
  int64_t messages = 0;
  int64_t failures = 0;  // series that failed (logged); running again retries them
  bool interrupted = false;
};

// Throws BadArgument (check_selection) before changing anything for bad
// arguments. Archive failures are logged and counted; the
// request ends "incomplete" then, "interrupted" when `stop` was raised.
BackfillResult backfill(const Config& config, const Selection& selection, double rate, bool dry_run,
                        const std::atomic<bool>& stop, const ProgressCallback& progress);

struct ResendResult {
  std::optional<int64_t> request_id;
  int64_t series = 0;
  int64_t ingested = 0;  // of the window's messages, those `gapless ingest` journaled
  int64_t messages = 0;  // messages of the window (dry run) or queued again
};

// Resend's selection of what `gapless ingest` journaled (journal invariant
// 15), in OSG's terms (docs/osg-format.md 2.2, 2.3), as conditions that must
// all hold: the destination is one of `destinations` (when given); the
// selection's event types, source host and destination host, each when given,
// as OSG's format states them (osg/resend_conditions.hpp). The window is the
// selection's, by each message's ts_start (ingest sets it, osg::message_time)
// or journal time.
journal::AppendedSelection ingested_selection(const Selection& selection,
                                              const std::vector<std::string>& destinations);

// `destinations`: only messages to these (e.g. /topic/perfsonar.raw.throughput);
// empty: all. `sink` empty: the only configured one. Throws BadArgument
// (checked_resend_sink) before changing anything for bad arguments; no
// configured archive is not one.
ResendResult resend(const Config& config, const Selection& selection, const std::string& sink,
                    const std::vector<std::string>& destinations, double rate, const std::string& reason,
                    bool dry_run, const std::atomic<bool>& stop, const ProgressCallback& progress);

}  // namespace gapless::replay
