// pScheduler runs as a perfSONAR 5 host's elmond serves them back: each run
// (the body pScheduler's http archiver sends) through what Logstash keeps of
// it (perfsonar/logstash pipeline, docs/perfsonar5.md) to the event types
// and values elmond's data.py reads from those fields. Written apart from
// gapless's own mapping (src/osg/pscheduler_run), so that a test comparing
// the two compares two readings of the same sources.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "series.hpp"

namespace gapless::test::esmond {

// One point elmond serves for a run.
struct RunPoint {
  std::string event_type;
  int64_t ts = 0;
  nlohmann::json val;
};

// The runs of one test (one metadata-key) and what elmond serves of them.
struct RunSeries {
  Series series;
  std::vector<RunPoint> points;
};

// Groups `runs` by Logstash's test checksum (SHA-256 of the canonical JSON
// of {"observer_ip": null, "test": ..., "tool": <tool name>}) into series
// numbered from `first_index`. Runs of test types elmond serves only as
// pscheduler-raw (not latency, latencybg, throughput, trace, rtt) are left
// out. Throws std::invalid_argument naming the run for a body without
// test.type, test.spec, tool.name, a start time or result.succeeded.
std::vector<RunSeries> series_from_runs(const std::vector<nlohmann::json>& runs, int first_index);

// The canonical JSON Logstash hashes (to_json_c14n): sorted keys, no
// blanks, numbers in the shortest of "%.15E" written as JavaScript would.
std::string canonical_json(const nlohmann::json& value);

}  // namespace gapless::test::esmond
