// A pScheduler run as perfSONAR 5's http archiver sends it (one run per
// request, the run object as the body: docs/perfsonar5.md 1.3-1.5), checked
// field by field, and the esmond-style measurements it holds: the event types,
// series and values elmond serves back for it from the document Logstash
// made of it (elmond's, where they differ from what pScheduler's esmond
// archiver wrote; docs/perfsonar5.md, "From a run to OSG's messages", states
// which field maps where). The push endpoint journals a run's OSG messages from
// these points with the same builder the collector uses (message_builder.hpp),
// under the series key and datapoint digests a backfill from the host's
// elmond would find: a run pushed and later backfilled is journaled once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "journal/journal.hpp"
#include "osg/datapoint.hpp"

namespace gapless::osg {

// A body that is not a pScheduler run. field() is the JSON path at fault
// ("test.type", "schedule.start", "result"), what() the whole sentence naming
// it and what was expected; the push endpoint answers it with a 400.
class RunError : public Error {
 public:
  RunError(std::string field, const std::string& message) : Error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

struct Run {
  std::string id;         // the run's UUID: `id`, else the last segment of run.href
  std::string test_type;  // test.type
  std::string tool;       // tool.name
  int64_t start_ts = 0;   // run.start-time, else schedule.start: unix seconds, elmond's time axis
  bool succeeded = false; // result.succeeded
  std::string run_href;   // run.href (may be empty in a transformed run)
  std::string host;       // the host of run.href, else of task.href; empty when neither is given
  nlohmann::json document;  // the whole run as parsed
};

// Parses and checks a body. Throws RunError naming the first field that is
// missing or of the wrong type. Failed runs (result.succeeded false) are runs.
// The minimum (what the mapping reads): `id` (else a run.href ending in it),
// test{type, spec (object)}, tool{name}, schedule{start (ISO 8601)},
// result{succeeded (boolean)}. task, run and participants may be missing (a
// transformed run), but when present they must have the archiver's shape
// (objects, a list of host names); other fields are not looked at here.
// test.type must be lower-case letters, digits, '-' or '_' (it becomes a
// destination segment).
Run parse_run(std::string_view body);

// One value of one series: what an esmond-style read of the host's elmond
// returns at run.start_ts for that event type.
struct RunPoint {
  journal::SeriesKey series;  // archive_url as given; metadata_key: test_checksum; base data (summary "" / 0)
  nlohmann::json metadata;    // the esmond-style metadata object (input-source, input-destination, ...)
  Datapoint point;
};

// The points elmond would serve for the run, limited to `event_types`
// (default: OSG's, osg_event_types(), as [[archive]] event_types defaults,
// so a push publishes the series a backfill of the host reads). A failed
// run gives `failures` only (none when result.error is missing, as elmond).
// Test types other than throughput, latency, latencybg, trace and rtt give
// none (elmond serves them as pscheduler-raw, which OSG never published).
// Values are elmond's, not the esmond archiver's where the two differ
// (docs/perfsonar5.md, "From a run to OSG's messages").
// `archive_url`: the esmond-style base URL a backfill of this host reads;
// `observer`: the x-ps-observer header, else empty (the host of task.href,
// else run.href, stands in, as in Logstash).
// Throws RunError when a field the mapping needs has the wrong shape (a
// missing test.spec.dest, an rtt that is not a duration, ...).
std::vector<RunPoint> esmond_points(const Run& run, std::string_view archive_url, std::string_view observer);
std::vector<RunPoint> esmond_points(const Run& run, std::string_view archive_url, std::string_view observer,
                                    const std::vector<std::string>& event_types);

// The metadata key elmond gives the run's test: perfSONAR's Logstash
// pscheduler.test_checksum (osg/test_checksum.hpp), computed, as the
// pipeline does, before the observer is resolved: `observer` does not enter
// it (docs/perfsonar5.md says why this is a reading).
std::string test_checksum(const Run& run, std::string_view observer);

// The destination the run itself is journaled under, for sinks that take
// runs as they were pushed: /pscheduler/run/<test type>.
std::string run_destination(const Run& run);

}  // namespace gapless::osg
