// What needs a person, as the first lines of `gapless status`: one problem
// per line, most urgent first, each fitted to 80 columns.
//
// The problems, and what each is read from:
//   - a required restart: the daemon's restart-required fault episode (core/restart_watch.hpp);
//   - a daemon running other code than this gapless: its version and revision
//     from the health file (journal/health_file.hpp) against this build's;
//   - a journal near its size limit: the file's bytes above 90 % of [journal] max_size;
//   - every other open fault episode of the daemon; a sink's broker-unreachable
//     episode reads "sink S down since T", an http sink's sink-rejected one
//     "sink S rejected by its endpoint" (sender/counters.hpp);
//   - an orphaned sink: in the journal, not in the configuration;
//   - parked destinations and parked messages, with the broker's reason;
//   - a failing archive: failed polls since its last success;
//   - lagging cursors (kLaggingPollIntervals below).
// A reason is the broker's or the archive's own words and may be long: it
// wraps, and beyond kReasonChars its middle is cut, keeping the start (what
// failed) and the end (the final cause); `status --json` has it whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "journal/health_file.hpp"
#include "journal/journal.hpp"

namespace gapless::status {

constexpr size_t kTextWidth = 80;
constexpr size_t kReasonChars = 240;

// A series is lagging when its cursor (the next point to read) is further
// behind now than kLaggingPollIntervals poll intervals of its archive plus
// its own cadence (its summary window, or the test's time-interval): the
// collector reads every series to its newest point at each poll, so a cursor
// further behind means polls that fail, a series left to its backoff, or a
// test that stopped sending data.
constexpr int64_t kLaggingPollIntervals = 3;

// One line per problem, not yet fitted to the width; empty when all is well.
// `archives` as status lists them (configured archives included); `now_ms`
// the time ages are counted from.
std::vector<std::string> find_problems(const Config& config, journal::Journal& journal,
                                       const std::optional<journal::DaemonHealth>& daemon,
                                       const std::vector<journal::SinkStatus>& sinks,
                                       const std::vector<journal::ArchiveHealth>& archives, int64_t now_ms);

// `text` in lines of at most `width` columns, the first starting with
// `first_indent`, the others with `indent`, broken at spaces (a word longer
// than a line is broken where the line ends). Each line ends with "\n".
std::string fit_to_width(std::string_view text, std::string_view first_indent, std::string_view indent,
                         size_t width = kTextWidth);

// A duration for a person: its two largest units, "0s", "42s", "5m3s",
// "2h5m", "3d4h" (negative durations count as 0).
std::string elapsed_text(int64_t ms);

// How long since `since_ms`, and since when: "2h5m (since 2026-12-05T18:00:05Z)"
// (status's problems and GET /healthz's reasons say it alike).
std::string since_text(int64_t since_ms, int64_t now_ms);

// `reason` with its middle cut beyond `limit` characters (see the top).
std::string shortened_reason(std::string_view reason, size_t limit = kReasonChars);

}  // namespace gapless::status
