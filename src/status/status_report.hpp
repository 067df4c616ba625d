// What `gapless status` shows, rendered three ways: text for a person, JSON
// for a script, Prometheus' text exposition format for a metrics scraper.
// Each reads the journal's delivery counts, parked messages and archive
// health, and the running daemon's open faults from its health file
// (journal/health_file.hpp).
//
// A module of its own, below the daemon and the command line: `gapless
// status` renders it without a daemon running, and the daemon will serve the
// same Prometheus text over HTTP (issue 12), so neither the CLI nor the
// daemon is the place for it. It reads only the journal and the health file,
// so any process may render it beside a running daemon.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "journal/journal.hpp"

namespace gapless::status {

// `gapless status`: the daemon's open faults, each sink's destinations with
// their counts and parked messages, each archive's health. To stdout.
void print_text(const Config& config, journal::Journal& journal);

// `gapless status --json`: the same, with exact times (unix ms) and counts.
nlohmann::json to_json(const Config& config, journal::Journal& journal);

// `gapless status --prometheus`, for node_exporter's textfile collector: each
// family's HELP and TYPE, then all its samples together. To `out`; the
// daemon's GET /metrics (src/http) starts with the same text.
void write_prometheus(const Config& config, journal::Journal& journal, std::ostream& out);
// A Prometheus label value: backslash, double quote and line feed escaped.
std::string label_value(std::string_view text);

// Milliseconds as a Prometheus value in seconds, "%.3f".
std::string prometheus_seconds(int64_t ms);

// write_prometheus to stdout.
void print_prometheus(const Config& config, journal::Journal& journal);

}  // namespace gapless::status
