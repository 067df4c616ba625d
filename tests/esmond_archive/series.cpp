#include "series.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "hash.hpp"

namespace gapless::test::esmond {

namespace {

struct EventTypeConfig {
  std::string_view name;
  ValueType type;
};

// esmond's EVENT_TYPE_CONFIG (types.py, 4.x), docs/esmond.md 1.6. A data URL naming any
// other event type gets 400 "Unsupported event type".
constexpr std::array<EventTypeConfig, 36> event_type_config{{
    {"failures", ValueType::json},
    {"histogram-owdelay", ValueType::histogram},
    {"histogram-rtt", ValueType::histogram},
    {"histogram-ttl", ValueType::histogram},
    {"histogram-ttl-reverse", ValueType::histogram},
    {"ntp-delay", ValueType::floating},
    {"ntp-dispersion", ValueType::floating},
    {"ntp-jitter", ValueType::floating},
    {"ntp-offset", ValueType::floating},
    {"ntp-polling-interval", ValueType::floating},
    {"ntp-reach", ValueType::integer},
    {"ntp-stratum", ValueType::integer},
    {"ntp-wander", ValueType::floating},
    {"packet-count-lost", ValueType::integer},
    {"packet-count-lost-bidir", ValueType::integer},
    {"packet-count-sent", ValueType::integer},
    {"packet-duplicates", ValueType::integer},
    {"packet-duplicates-bidir", ValueType::integer},
    {"packet-loss-rate", ValueType::percentage},
    {"packet-loss-rate-bidir", ValueType::percentage},
    {"packet-reorders", ValueType::integer},
    {"packet-reorders-bidir", ValueType::integer},
    {"packet-retransmits", ValueType::integer},
    {"packet-retransmits-subintervals", ValueType::subinterval},
    {"packet-rtt", ValueType::floating},
    {"packet-trace", ValueType::json},
    {"packet-trace-multi", ValueType::json},
    {"path-mtu", ValueType::integer},
    {"pscheduler-raw", ValueType::json},
    {"pscheduler-run-href", ValueType::json},
    {"streams-packet-retransmits", ValueType::json},
    {"streams-throughput", ValueType::json},
    {"streams-throughput-subintervals", ValueType::json},
    {"throughput", ValueType::integer},
    {"throughput-subintervals", ValueType::subinterval},
    {"time-error-estimates", ValueType::floating},
}};

using SummaryList = std::vector<Summary>;

// OSG-era archives (bwctl/owamp writers) carry the windows of docs/esmond.md 1.6
// "Typical windows"; pScheduler adds the 300 s windows and packet-count
// aggregations of esmond_util.py DEFAULT_SUMMARIES.
SummaryList summaries_for(std::string_view event_type, bool pscheduler) {
  if (event_type == "histogram-owdelay" || event_type == "histogram-rtt") {
    SummaryList list = {{"aggregation", 3600}, {"aggregation", 86400}, {"statistics", 0},
                        {"statistics", 3600}, {"statistics", 86400}};
    if (pscheduler && event_type == "histogram-owdelay") {
      list.push_back({"aggregation", 300});
      list.push_back({"statistics", 300});
    }
    return list;
  }
  if (event_type == "histogram-ttl" && !pscheduler) return {{"statistics", 0}};  // docs/osg-format.md 2.3
  if (event_type == "packet-loss-rate") {
    SummaryList list = {{"aggregation", 3600}, {"aggregation", 86400}};
    if (pscheduler) list.push_back({"aggregation", 300});
    return list;
  }
  if (event_type == "packet-loss-rate-bidir") return {{"aggregation", 3600}, {"aggregation", 86400}};
  if (pscheduler && (event_type == "packet-count-sent" || event_type == "packet-count-lost" ||
                     event_type == "packet-count-lost-bidir"))
    return {{"aggregation", 300}, {"aggregation", 3600}, {"aggregation", 86400}};
  if (event_type == "throughput") return {{"average", 86400}};
  return {};
}

// The summaries elmond lists for an event type: its summaries.py
// DEFAULT_SUMMARIES, whatever the host's pScheduler archived (perfsonar/elmond
// metadata.py, __add_event_type).
SummaryList elmond_summaries_for(std::string_view event_type) {
  const SummaryList windows = {{"aggregation", 300}, {"aggregation", 3600}, {"aggregation", 86400}};
  if (event_type == "throughput") return {{"average", 86400}};
  if (event_type == "histogram-owdelay" || event_type == "histogram-rtt")
    return {{"statistics", 0}, {"statistics", 300}, {"statistics", 3600}, {"statistics", 86400}};
  if (event_type == "packet-loss-rate" || event_type == "packet-loss-rate-bidir" ||
      event_type == "packet-count-sent" || event_type == "packet-count-lost" ||
      event_type == "packet-count-lost-bidir")
    return windows;
  return {};
}

std::vector<std::string_view> event_types_of(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::latency:
      return {"failures", "histogram-owdelay", "histogram-ttl", "packet-count-lost", "packet-count-sent",
              "packet-duplicates", "packet-loss-rate", "packet-reorders", "time-error-estimates"};
    case SeriesKind::throughput:
      return {"failures", "packet-retransmits", "packet-retransmits-subintervals", "throughput",
              "throughput-subintervals"};
    case SeriesKind::trace:
      return {"failures", "packet-trace", "path-mtu"};
    case SeriesKind::rtt:
      return {"failures", "histogram-rtt", "histogram-ttl-reverse", "packet-count-lost-bidir",
              "packet-count-sent", "packet-duplicates-bidir", "packet-loss-rate-bidir",
              "packet-reorders-bidir"};
  }
  return {};
}

std::string tool_name_of(SeriesKind kind, bool pscheduler) {
  switch (kind) {
    case SeriesKind::latency: return pscheduler ? "pscheduler/powstream" : "powstream";
    case SeriesKind::throughput: return pscheduler ? "pscheduler/iperf3" : "bwctl/iperf3";
    case SeriesKind::trace: return pscheduler ? "pscheduler/traceroute" : "bwctl/tracepath";
    case SeriesKind::rtt: return pscheduler ? "pscheduler/ping" : "bwctl/ping";
  }
  return "";
}

// Free-form parameters as the writers set them (esmond_util.py field maps).
// esmond returns every one as a string (docs/esmond.md 1.5).
std::vector<std::pair<std::string, std::string>> parameters_of(SeriesKind kind, bool pscheduler,
                                                               int64_t cadence) {
  std::vector<std::pair<std::string, std::string>> p;
  const std::string interval = std::to_string(cadence);
  switch (kind) {
    case SeriesKind::latency:
      p = {{"ip-transport-protocol", "udp"}, {"sample-bucket-width", "0.0001"}, {"sample-size", "600"},
           {"time-duration", interval},       {"time-interval", interval},      {"time-probe-interval", "0.1"},
           {"ip-packet-padding", "0"}};
      if (pscheduler) p.push_back({"pscheduler-test-type", "latencybg"});
      break;
    case SeriesKind::throughput:
      p = {{"ip-transport-protocol", "tcp"}, {"time-duration", "10"}, {"bw-parallel-streams", "1"},
           {"time-interval", interval}};
      if (pscheduler) p.push_back({"pscheduler-test-type", "throughput"});
      break;
    case SeriesKind::trace:
      p = {{"time-interval", interval}, {"trace-first-ttl", "1"}, {"trace-max-ttl", "30"}};
      if (pscheduler) {
        p.push_back({"pscheduler-test-type", "trace"});
        p.push_back({"trace-num-queries", "1"});
        p.push_back({"ip-packet-size", "40"});
      }
      break;
    case SeriesKind::rtt:
      p = {{"ip-transport-protocol", "icmp"}, {"sample-size", "10"}, {"time-probe-interval", "1"},
           {"time-interval", interval}};
      if (pscheduler) p.push_back({"pscheduler-test-type", "rtt"});
      break;
  }
  std::sort(p.begin(), p.end());
  return p;
}

std::string hex32(uint64_t a, uint64_t b) {
  char text[33];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return text;
}

// Every fifth series is measured over IPv6, like dual-stack meshes.
void set_addresses(Series& s) {
  const int i = s.index;
  const char* role = s.kind == SeriesKind::throughput ? "bw" : "lat";
  char text[96];
  if (i % 5 == 4) {
    std::snprintf(text, sizeof text, "2001:db8:1::%x", i + 1);
    s.source = text;
    std::snprintf(text, sizeof text, "2001:db8:2::%x", i + 1);
    s.destination = text;
  } else {
    std::snprintf(text, sizeof text, "10.1.%d.%d", i / 250, i % 250 + 1);
    s.source = text;
    std::snprintf(text, sizeof text, "10.2.%d.%d", i / 250, i % 250 + 1);
    s.destination = text;
  }
  s.measurement_agent = s.source;
  std::snprintf(text, sizeof text, "ps%s-src-%03d.example.net", role, i);
  s.input_source = text;
  std::snprintf(text, sizeof text, "ps%s-dst-%03d.example.net", role, i);
  s.input_destination = text;
}

bool wanted(const SeriesPlan& plan, std::string_view event_type) {
  if (plan.event_types.empty()) return true;
  return std::find(plan.event_types.begin(), plan.event_types.end(), event_type) != plan.event_types.end();
}

}  // namespace

std::string_view kind_name(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::latency: return "latency";
    case SeriesKind::throughput: return "throughput";
    case SeriesKind::trace: return "trace";
    case SeriesKind::rtt: return "rtt";
  }
  return "";
}

std::optional<SeriesKind> kind_from_name(std::string_view name) {
  for (SeriesKind kind : all_kinds())
    if (kind_name(kind) == name) return kind;
  return std::nullopt;
}

std::vector<SeriesKind> all_kinds() {
  return {SeriesKind::latency, SeriesKind::throughput, SeriesKind::trace, SeriesKind::rtt};
}

const Summary* EventType::find_summary(std::string_view summary_type, int64_t window) const {
  for (const Summary& s : summaries)
    if (s.type == summary_type && s.window == window) return &s;
  return nullptr;
}

const EventType* Series::find(std::string_view event_type) const {
  for (const EventType& et : event_types)
    if (et.name == event_type) return &et;
  return nullptr;
}

std::optional<ValueType> value_type_of(std::string_view event_type) {
  for (const EventTypeConfig& c : event_type_config)
    if (c.name == event_type) return c.type;
  return std::nullopt;
}

std::optional<std::string> summary_type_from_plural(std::string_view plural) {
  if (plural == "base") return "base";
  if (plural == "aggregations") return "aggregation";
  if (plural == "statistics") return "statistics";
  if (plural == "averages") return "average";
  return std::nullopt;
}

std::string summary_type_plural(std::string_view type) {
  if (type == "aggregation") return "aggregations";
  if (type == "average") return "averages";
  return std::string(type);  // "statistics", "base"
}

std::vector<Summary> elmond_summaries(std::string_view event_type) { return elmond_summaries_for(event_type); }

std::vector<Series> build_series(const SeriesPlan& plan) {
  std::vector<Series> all;
  const std::vector<SeriesKind> kinds = plan.kinds.empty() ? all_kinds() : plan.kinds;
  const int rounds_of = static_cast<int>(kinds.size());
  for (int i = 0; i < plan.count; ++i) {
    Series s;
    s.index = i;
    s.kind = kinds[i % rounds_of];
    // Alternate writer generations round by round so every kind shows up in
    // both the bwctl/owamp and the pScheduler shapes.
    s.pscheduler = plan.elmond || (i / rounds_of) % 2 == 1;
    s.key = hex32(mix(plan.seed, name_hash("metadata-key"), i), mix(plan.seed, name_hash("metadata-key-2"), i));
    if (plan.elmond)  // Logstash's test checksum: a SHA-256, 64 hex digits
      s.key += hex32(mix(plan.seed, name_hash("metadata-key-3"), i), mix(plan.seed, name_hash("metadata-key-4"), i));
    s.tool_name = tool_name_of(s.kind, s.pscheduler);
    set_addresses(s);
    s.parameters = parameters_of(s.kind, s.pscheduler, plan.cadence);
    for (std::string_view name : event_types_of(s.kind)) {
      if (!wanted(plan, name)) continue;
      s.event_types.push_back({std::string(name), *value_type_of(name),
                               plan.elmond ? elmond_summaries_for(name) : summaries_for(name, s.pscheduler)});
    }
    std::sort(s.event_types.begin(), s.event_types.end(),
              [](const EventType& a, const EventType& b) { return a.name < b.name; });
    s.phase = static_cast<int64_t>(mix(plan.seed, name_hash("phase"), i) % static_cast<uint64_t>(plan.cadence));
    if (auto it = plan.ends.find(i); it != plan.ends.end()) s.end = it->second;
    all.push_back(std::move(s));
  }
  return all;
}

}  // namespace gapless::test::esmond
