// Gap report (`gapless-replay gaps`): where the journal holds no data for a
// measurement series although the series' cadence says it should.
//
// GAP RULE (the one description; gaps.cpp and the tests follow it)
//   Per base series (summary_type empty) and report window [from, to):
//   - Cadence: the metadata's `time-interval` (esmond sends it as a string,
//     e.g. "60") when it is a positive number; else the median interval
//     between the series' datapoints journaled in [from, to), which needs at
//     least 3 of them; else unknown. Let T = cadence_multiple x cadence.
//   - A stretch between consecutive journaled datapoints a < b (or between
//     `from` and the first, or the last and `to`) longer than T is a
//     candidate. Its empty part, [a + 1, b) in unix seconds, minus every
//     coverage range of the series, is missing: where the archive was read
//     and held nothing (a test that was not running) is not a gap. Coverage
//     is only ever written with the datapoints it covers (journal invariant
//     13), so the report agrees with what the archive held, and pruning
//     delivered messages (datapoint and coverage rows stay) changes nothing.
//   - Coverage may cut a candidate into pieces. A piece is reported only when
//     it is at least T long (for a whole candidate that is the same as the
//     stretch being longer than T): a shorter uncovered sliver, e.g. between a
//     datapoint and the start of the next read, can hide no more missing
//     points than the tolerance accepts between two datapoints anyway.
//   - Not yet due: nothing after now - T is reported, so when `to` reaches
//     now the tail stretch never reports its last T seconds (the archive may
//     not have them yet), and a tail gap shows once the newest datapoint is
//     more than 2 x T old. A window that ended more than T ago is reported up
//     to `to`: its data was due.
//   - A series the journal has never covered before some time (it was added
//     later, or the collector's first read started there) shows a gap there:
//     the journal cannot tell "the archive had nothing" from "never read".
//     A backfill over it records coverage, and the gap goes away.
//   - Unknown cadence: no gaps are reported; the series is still listed.
//   - Unrecoverable: the part of a gap before now - retention_seconds(
//     series) (esmond's default expiry, docs/esmond.md 1.4) is reported
//     separately, marked unrecoverable: the archive has deleted it, a
//     backfill cannot fetch it. A gap across that boundary is
//     split in two there. It is the same horizon below which the pruner
//     drops the series' digests (journal invariant 12): one rule says how
//     long the archive serves a point.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::replay {

struct GapOptions {
  double cadence_multiple = 3.0;
};

struct Gap {
  int64_t from = 0;  // [from, to), unix seconds
  int64_t to = 0;
  // Older than the archive's retention for this series (retention_seconds):
  // a backfill cannot fetch it.
  bool unrecoverable = false;
};

struct SeriesGaps {
  journal::Series series;          // base data series only: gaps are about measurements
  std::optional<int64_t> cadence;  // seconds; nothing when unknown
  std::string cadence_source;      // "time-interval", "median" or "unknown"
  int64_t datapoints = 0;          // journaled in [from, to)
  std::vector<Gap> gaps;           // ascending, disjoint
  std::vector<journal::CoveredRange> coverage;  // clipped to [from, to), for the picture
};

// Every base series of the archive (journal.series_of_archive(archive_url)),
// over [from, to); `now` (unix seconds) decides what is not yet due and what
// is past the archive's retention. Throws gapless::Error on an empty window or
// a cadence_multiple that is not a positive number.
std::vector<SeriesGaps> find_gaps(journal::Journal& journal, const std::string& archive_url, int64_t from,
                                  int64_t to, int64_t now, const GapOptions& options = {});

// [from, to) minus the `covered` ranges (ascending and disjoint, as
// journal::Journal::coverage returns them, journal invariant 13), ascending;
// nothing for an empty window. The one rule for "not covered": the gap rule
// above subtracts coverage with it and a backfill reads exactly what it
// returns, so the two agree by construction.
std::vector<std::pair<int64_t, int64_t>> uncovered(int64_t from, int64_t to,
                                                   const std::vector<journal::CoveredRange>& covered);

// How long the archive can still serve a point of `series`, in seconds:
// esmond's default retention (docs/esmond.md 1.4), 180 days for the base
// data of the OWAMP types, 365 for other base data, 1825 for a daily summary
// (window 86400), 365 for any other summary. The one rule for both of its
// readers: the gap rule's unrecoverable part, and the pruner, which keeps a
// series' digests at least that long (journal invariant 12, daemon/pruner.hpp).
int64_t retention_seconds(const journal::SeriesKey& series);

// The human table: one line per gap (series, cadence, from, to, length,
// unrecoverable mark), the series whose cadence is unknown, and a "no gaps"
// line when there is none.
std::string gaps_table(const std::vector<SeriesGaps>& all);

// A self-contained SVG timeline over [from, to): one row per series, covered
// time green, gaps red, unrecoverable gaps dark red and hatched, each with a
// <title> tooltip giving the exact window.
std::string gaps_svg(const std::vector<SeriesGaps>& all, int64_t from, int64_t to);

}  // namespace gapless::replay
