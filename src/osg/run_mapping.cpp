// From a pushed run to the esmond-style points elmond would serve for it.
//
// elmond (perfsonar/elmond data.py) reads the OpenSearch document that
// perfSONAR's Logstash made of the run: it serves a succeeded run's fields
// and a failed run's `failures`, at pscheduler.start_time, in whole seconds.
// Each rule below is that chain, run field -> Logstash field -> elmond
// value, written out (docs/perfsonar5.md, "From a run to OSG's messages",
// has the table and says which links are readings). Values keep the JSON
// type the run gave them: the Datapoint's canonical text, and so its digest,
// is then the one a backfill computes from elmond's answer.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "core/config.hpp"
#include "osg/pscheduler_run.hpp"
#include "osg/run_duration.hpp"
#include "osg/run_metadata.hpp"
#include "osg/test_checksum.hpp"

namespace gapless::osg {

namespace {

using nlohmann::json;

// One event type's value for the run, or nothing when elmond serves none.
using ValueRule = std::function<std::optional<json>(const Run&)>;

struct EventRule {
  const char* event_type;
  ValueRule value;
};

const json& result_of(const Run& run) { return run.document.at("result"); }
const json& spec_of(const Run& run) { return run.document.at("test").at("spec"); }

// A member that is present and not null (Python's `.get(k) is not None`).
const json* field(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const json* path(const json& object, std::initializer_list<const char*> keys) {
  const json* at = &object;
  for (const char* key : keys)
    if (!(at = field(*at, key))) return nullptr;
  return at;
}

// Python truth: null, false, 0, "", [] and {} are false.
bool truthy(const json* value) {
  if (!value || value->is_null()) return false;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_number()) return value->get<double>() != 0;
  if (value->is_string() || value->is_array() || value->is_object()) return !value->empty();
  return true;
}

[[noreturn]] void refuse(const std::string& where, const std::string& expected) {
  throw RunError(where, "not a pScheduler run whose measurements can be read: \"" + where + "\" " + expected);
}

// A field copied as it is (elmond's _extract_result_field).
ValueRule copied(std::initializer_list<const char*> keys) {
  std::vector<const char*> names(keys);
  return [names](const Run& run) -> std::optional<json> {
    const json* at = &result_of(run);
    for (const char* key : names)
      if (!(at = field(*at, key))) return std::nullopt;
    return *at;
  };
}

// Python's `end - start`: integers stay integers, else doubles.
json difference(const json& end, const json& start, const std::string& where) {
  if (!end.is_number() || !start.is_number()) refuse(where, "has a start or end that is not a number");
  if (end.is_number_integer() && start.is_number_integer()) return end.get<int64_t>() - start.get<int64_t>();
  return end.get<double>() - start.get<double>();
}

// elmond's subintervals: for each interval's summary with start and end,
// {start, duration: end - start, val: summary[<key>]}; intervals without the
// key are left out, so a missing key gives [] (not nothing).
std::optional<json> subintervals(const Run& run, const char* key) {
  const json* intervals = field(result_of(run), "intervals");
  if (!intervals) return std::nullopt;
  if (!intervals->is_array()) refuse("result.intervals", "is not a list");
  json out = json::array();
  for (size_t i = 0; i < intervals->size(); ++i) {
    const json* summary = field((*intervals)[i], "summary");
    if (!truthy(summary)) continue;
    const json* start = field(*summary, "start");
    const json* end = field(*summary, "end");
    if (!start || !end) continue;
    const json* value = field(*summary, key);
    if (!value) continue;
    const std::string where = "result.intervals[" + std::to_string(i) + "].summary";
    out.push_back({{"start", *start}, {"duration", difference(*end, *start, where)}, {"val", *value}});
  }
  return out;
}

// Logstash's histogram (pscheduler_histogram.rb): values = the run's bucket
// keys as written, counts = the counts; no histogram when they sum to 0.
// elmond then serves {str(value): int(count)}, i.e. the run's keys with
// integer counts.
std::optional<json> histogram(const Run& run, const char* key) {
  const json* buckets = field(result_of(run), key);
  if (!buckets) return std::nullopt;
  if (!buckets->is_object()) refuse(std::string("result.") + key, "is not an object of bucket -> count");
  json out = json::object();
  double total = 0;
  for (const auto& [bucket, count] : buckets->items()) {
    if (!count.is_number()) refuse(std::string("result.") + key + "." + bucket, "is not a count");
    total += count.get<double>();
    out[bucket] = count.is_number_float() ? json(static_cast<int64_t>(std::trunc(count.get<double>()))) : count;
  }
  if (total == 0) return std::nullopt;
  return out;
}

// lost / sent as a double, nothing when sent is 0 or either is missing.
std::optional<json> loss_rate(const json* lost, const json* sent) {
  if (!lost || !sent || !lost->is_number() || !sent->is_number() || sent->get<double>() == 0) return std::nullopt;
  return lost->get<double>() / sent->get<double>();
}

// elmond's _extract_packet_trace: each hop as {ttl, query, success,
// error-message, ip, hostname, as, rtt (ms), mtu (carried forward)}.
json trace_path(const json& hops, size_t path_index) {
  json out = json::array();
  std::optional<json> mtu;
  for (size_t i = 0; i < hops.size(); ++i) {
    const json& hop = hops[i];
    const std::string where = "result.paths[" + std::to_string(path_index) + "][" + std::to_string(i) + "]";
    if (!hop.is_object()) refuse(where, "is not a hop object");
    json formatted = json::object();
    formatted["ttl"] = static_cast<int64_t>(i + 1);
    formatted["query"] = 1;
    if (const json* error = field(hop, "error"); truthy(error)) {
      formatted["success"] = 0;
      formatted["error-message"] = *error;
    } else {
      formatted["success"] = 1;
    }
    for (const char* key : {"ip", "hostname", "as"})
      if (const json* value = field(hop, key); truthy(value)) formatted[key] = *value;
    if (const json* rtt = field(hop, "rtt")) {
      const std::optional<double> seconds = elmond_seconds(*rtt);
      if (!seconds) refuse(where + ".rtt", "is not an ISO 8601 duration");
      formatted["rtt"] = *seconds * 1000;
    }
    if (const json* hop_mtu = field(hop, "mtu")) {
      formatted["mtu"] = *hop_mtu;
      mtu = *hop_mtu;
    } else if (mtu) {
      formatted["mtu"] = *mtu;
    }
    out.push_back(std::move(formatted));
  }
  return out;
}

// result.json as Logstash stores it: the paths, when there is at least one.
const json* trace_paths(const Run& run) {
  const json* paths = field(result_of(run), "paths");
  if (!paths) return nullptr;
  if (!paths->is_array()) refuse("result.paths", "is not a list of paths");
  if (paths->empty()) return nullptr;
  for (size_t i = 0; i < paths->size(); ++i)
    if (!(*paths)[i].is_array()) refuse("result.paths[" + std::to_string(i) + "]", "is not a list of hops");
  return paths;
}

std::optional<json> packet_trace(const Run& run) {
  const json* paths = trace_paths(run);
  if (!paths) return std::nullopt;
  // The first path, or the first non-empty one after it (elmond replaces
  // an empty first path by the next).
  std::optional<json> first;
  for (size_t i = 0; i < paths->size(); ++i) {
    json formatted = trace_path((*paths)[i], i);
    if (!first || first->empty()) first = std::move(formatted);
  }
  return first;
}

std::optional<json> packet_trace_multi(const Run& run) {
  const json* paths = trace_paths(run);
  if (!paths) return std::nullopt;
  json out = json::array();
  for (size_t i = 0; i < paths->size(); ++i) out.push_back(trace_path((*paths)[i], i));
  return out;
}

// Logstash's result.mtu (pscheduler_trace.rb): the smallest mtu of the first
// path's hops that have an ip.
std::optional<json> path_mtu(const Run& run) {
  const json* paths = trace_paths(run);
  if (!paths) return std::nullopt;
  std::optional<json> smallest;
  for (const json& hop : (*paths)[0]) {
    if (!truthy(field(hop, "ip"))) continue;
    const json* mtu = field(hop, "mtu");
    if (!mtu || !mtu->is_number()) continue;
    if (!smallest || mtu->get<double>() < smallest->get<double>()) smallest = *mtu;
  }
  return smallest;
}

// The esmond archiver's histogram-rtt (esmond_util.py): round trips' rtt in
// ms, "%.2f" buckets. elmond serves none for rtt (Logstash keeps no rtt
// histogram), so a backfill never competes with it.
std::optional<json> rtt_histogram(const Run& run) {
  const json* roundtrips = field(result_of(run), "roundtrips");
  if (!roundtrips || !roundtrips->is_array()) return std::nullopt;
  std::map<std::string, int64_t> buckets;
  for (size_t i = 0; i < roundtrips->size(); ++i) {
    const json* rtt = field((*roundtrips)[i], "rtt");
    if (!truthy(rtt)) continue;
    const std::optional<double> seconds = elmond_seconds(*rtt);
    if (!seconds) refuse("result.roundtrips[" + std::to_string(i) + "].rtt", "is not an ISO 8601 duration");
    char bucket[64];
    std::snprintf(bucket, sizeof bucket, "%.2f", *seconds * 1000);
    ++buckets[bucket];
  }
  if (buckets.empty()) return std::nullopt;
  json out = json::object();
  for (const auto& [bucket, count] : buckets) out[bucket] = count;
  return out;
}

// The event types elmond lists for the test (metadata.py), in its order,
// each with the value it serves for a succeeded run.
std::vector<EventRule> rules_for(const Run& run) {
  const json& spec = spec_of(run);
  const std::string& type = run.test_type;
  if (type == "throughput") {
    const bool udp = truthy(field(spec, "udp"));
    std::vector<EventRule> rules = {
        {"throughput", copied({"summary", "summary", "throughput-bits"})},
        // The interval summaries carry throughput-bits, elmond looks for
        // `throughput`: it serves [] for every run.
        {"throughput-subintervals", [](const Run& r) { return subintervals(r, "throughput"); }},
    };
    if (udp) {
      // Logstash keeps these as packets_sent / packets_lost, where elmond
      // does not look: elmond serves none, so the esmond archiver's values
      // are given (no backfill can give them another way).
      const auto summary = [](const Run& r) { return path(result_of(r), {"summary", "summary"}); };
      rules.push_back({"packet-loss-rate", [summary](const Run& r) -> std::optional<json> {
                         const json* s = summary(r);
                         return s ? loss_rate(field(*s, "lost"), field(*s, "sent")) : std::nullopt;
                       }});
      rules.push_back({"packet-count-lost", copied({"summary", "summary", "lost"})});
      rules.push_back({"packet-count-sent", copied({"summary", "summary", "sent"})});
    } else {
      rules.push_back({"packet-retransmits", copied({"summary", "summary", "retransmits"})});
      rules.push_back({"packet-retransmits-subintervals", [](const Run& r) { return subintervals(r, "retransmits"); }});
    }
    return rules;
  }
  if (type == "latency" || type == "latencybg") {
    return {
        {"packet-count-sent", copied({"packets-sent"})},
        {"histogram-owdelay", [](const Run& r) { return histogram(r, "histogram-latency"); }},
        {"histogram-ttl", [](const Run& r) { return histogram(r, "histogram-ttl"); }},
        {"packet-duplicates", copied({"packets-duplicated"})},
        // Logstash computes result.packets.loss = lost / sent.
        {"packet-loss-rate", [](const Run& r) {
           return loss_rate(field(result_of(r), "packets-lost"), field(result_of(r), "packets-sent"));
         }},
        {"packet-count-lost", copied({"packets-lost"})},
        {"packet-reorders", copied({"packets-reordered"})},
        {"time-error-estimates", copied({"max-clock-error"})},
    };
  }
  if (type == "trace") {
    std::vector<EventRule> rules = {{"packet-trace", packet_trace}, {"path-mtu", path_mtu}};
    const json* algorithm = field(spec, "algorithm");
    if (algorithm && algorithm->is_string() && algorithm->get<std::string>() == "paris-traceroute")
      rules.push_back({"packet-trace-multi", packet_trace_multi});
    return rules;
  }
  if (type == "rtt") {
    return {
        {"packet-count-sent", copied({"sent"})},
        {"histogram-rtt", rtt_histogram},
        {"packet-duplicates-bidir", copied({"duplicates"})},
        {"packet-loss-rate-bidir", copied({"loss"})},
        {"packet-count-lost-bidir", copied({"lost"})},
        {"packet-reorders-bidir", copied({"reorders"})},
    };
  }
  return {};  // other tests: elmond serves them as pscheduler-raw, which OSG never published
}

bool wanted(const std::vector<std::string>& event_types, const char* event_type) {
  return std::find(event_types.begin(), event_types.end(), event_type) != event_types.end();
}

}  // namespace

std::string test_checksum(const Run& run, std::string_view /*observer: not in the key as read*/) {
  // The pipeline computes the checksum (02-pscheduler_common.conf) before it
  // resolves the observer (03-normalize_endpoints.conf): meta.observer.ip is
  // still unset, so the key is the same whoever observed the test.
  return logstash_test_checksum(run.document.at("test"), run.tool, nullptr);
}

std::vector<RunPoint> esmond_points(const Run& run, std::string_view archive_url, std::string_view observer) {
  return esmond_points(run, archive_url, observer, osg_event_types());
}

std::vector<RunPoint> esmond_points(const Run& run, std::string_view archive_url, std::string_view observer,
                                    const std::vector<std::string>& event_types) {
  const std::vector<EventRule> rules = rules_for(run);
  if (rules.empty()) return {};  // elmond lists not even `failures` for such a test
  std::vector<std::pair<std::string, json>> values;
  if (!run.succeeded) {
    // elmond serves a failed run as `failures` only, and only with an error.
    if (const json* error = field(result_of(run), "error"); error && wanted(event_types, "failures"))
      values.emplace_back("failures", json{{"error", *error}});
  } else {
    for (const EventRule& rule : rules) {
      if (!wanted(event_types, rule.event_type)) continue;
      if (std::optional<json> value = rule.value(run)) values.emplace_back(rule.event_type, std::move(*value));
    }
  }
  if (values.empty()) return {};

  const std::string key = test_checksum(run, observer);
  const json metadata = run_metadata(run, run_observer(run, observer), key);
  std::vector<RunPoint> points;
  points.reserve(values.size());
  for (auto& [event_type, value] : values) {
    RunPoint point;
    point.series = journal::SeriesKey{std::string(archive_url), key, event_type, "", 0};
    point.metadata = metadata;
    point.point = Datapoint(run.start_ts, value);
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace gapless::osg
