// Reading one series of an esmond archive into the journal: the rules shared
// by the collector's continuous polling and by gapless-replay's backfill.
//
//   - Pages by time (docs/esmond.md 1.3): an explicit `limit`, then time-start = last ts
//     + 1, until the archive has no more: a short page from esmond, an empty
//     one from elmond, whose `limit` is also capped at 10000 (docs/esmond.md
//     2; the data URLs are those the listing gives,
//     esmond/data_location.hpp). Each page is journaled in its own transaction
//     (messages, datapoints, coverage and, when polling, the cursor together:
//     journal invariants 11 to 13), so memory is bounded by a few pages and a
//     crash loses at most the page being read, which is read again. A
//     backfill splits a page into shorter transactions
//     (ReadOptions::messages_per_transaction), the last with the coverage.
//   - De-duplication at datapoint level: a point whose (ts, digest) is already
//     journaled is skipped; a point whose value changed is a correction and is
//     journaled again (in a message with a new gapless-id).
//   - Summaries: esmond updates a summary point until its window has closed
//     (docs/esmond.md 1.6). Only points with ts + window + grace <= now are read; the
//     first open one stops the read, and the cursor stays there.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "core/error.hpp"
#include "esmond/client.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"

namespace gapless::collector {

// The archive's data cannot become messages (e.g. metadata without the
// input-source consumers need, two values at one ts, a message the door
// refuses: stomp::journal_refusal, or a destination no sink takes:
// destination_takers). Names the archive and the series.
class DataError : public Error {
 public:
  using Error::Error;
};

struct ReadOptions {
  int page_size = 1000;
  size_t datapoints_per_message = 100;
  size_t max_frame_bytes = 10'000'000;  // osg::BuildOptions::max_frame_bytes; read_options says how it is chosen
  std::vector<std::string> refused_headers = MessageRulesConfig{}.refused_headers;  // the door's R5
  // The door's accept check (core/destination_filter.hpp): a series whose
  // destination none of these sinks takes is a DataError, before any message
  // of it is built. Empty: not checked here (the journal still refuses a
  // message no registered sink takes, as a journal failure).
  std::vector<SinkConfig> sinks;
  int64_t summary_grace_seconds = 300;
  journal::Priority priority = journal::Priority::live;
  std::optional<int64_t> request_id;  // the backfill request the messages belong to
  // Polling moves the series' cursor; a backfill behind it leaves it alone.
  bool advance_cursor = true;
  // A page's messages are journaled in transactions of at most this many
  // (0: the whole page in one). A backfill beside the daemon keeps its
  // transactions short, so the daemon never waits long for the write lock.
  size_t messages_per_transaction = 0;
  // Called after each page is journaled, with the totals so far (progress
  // display, pacing a backfill's --rate).
  std::function<void(const struct ReadResult&)> after_page;
};

// An archive's configuration as the client and the reader take it: the one
// place the collector and a backfill turn ArchiveConfig into settings, so
// both read an archive alike. The reader's also take what every message must
// satisfy whatever its archive: the door's refused headers ([messages]), the
// sinks' accept lists and their frame limit (the smallest max_message_size).
esmond::ClientOptions client_options(const ArchiveConfig& archive);
ReadOptions read_options(const Config& config, const ArchiveConfig& archive);
// How the reader builds its messages from `options` (the message builder's
// share of them), `rsv_timestamp` being the collection time.
osg::BuildOptions build_options(const ReadOptions& options, double rsv_timestamp);

struct ReadResult {
  int64_t pages = 0;
  int64_t points_read = 0;       // served by the archive (closed summary points only)
  int64_t points_journaled = 0;  // new or corrected
  int64_t corrections = 0;       // of those, a changed value at a ts journaled before
  int64_t messages = 0;          // journaled (new gapless-ids)
  bool stopped = false;          // `stop` was raised between two pages
};

// A series a metadata object offers: base data of each listed event type in
// `event_types` and, with `summaries`, each of its summaries, with the
// archive's time-updated (nothing if it sent none).
struct SeriesInMetadata {
  journal::SeriesKey key;
  std::optional<int64_t> time_updated;
};
std::vector<SeriesInMetadata> series_in_metadata(const nlohmann::json& metadata, const std::string& archive_url,
                                                 const std::vector<std::string>& event_types, bool summaries);

// One series to read over [from, to) (to: nothing = up to the archive's open
// end). `metadata` is the series' metadata object as the archive lists it.
struct SeriesRead {
  journal::Series series;
  const nlohmann::json& metadata;  // outlives the read
  int64_t from = 0;
  std::optional<int64_t> to;
};

// Called once per read that ended, in order: with what was journaled, and the
// failure that ended it early (esmond::FetchError from the archive,
// DataError from its data), if any. A read that `stop` cut short ends with
// result.stopped; reads after it are not reported.
using ReadDone = std::function<void(size_t index, const ReadResult& result, std::exception_ptr failure)>;

// Reads `reads` in order and journals what is new, each page in its own
// transaction. One request at a time to the archive, but a thread runs up to
// two pages ahead of the journal, across series: while one page is
// journaled (and fsynced), the next is served, parsed and digested. A
// failing read ends on its own (`done` says why) and the next one goes on.
// `now` is unix seconds (summary windows close against it). A journal failure
// ends the whole run: gapless::Error is thrown, pages journaled before it stay
// journaled and each cursor stands after them.
void read_in_order(esmond::Client& client, journal::Journal& journal, const std::vector<SeriesRead>& reads,
                   int64_t now, const ReadOptions& options, const std::atomic<bool>& stop, const ReadDone& done);

// One read (read_in_order of a single series), throwing its failure.
ReadResult read_series(esmond::Client& client, journal::Journal& journal, const journal::Series& series,
                       const nlohmann::json& metadata, int64_t from, std::optional<int64_t> to, int64_t now,
                       const ReadOptions& options, const std::atomic<bool>& stop);

}  // namespace gapless::collector
