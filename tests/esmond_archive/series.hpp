// The metadata side of the test archive: which series (esmond "metadata
// objects") exist, which event types and summaries each one carries, and the
// esmond tables (event-type value types, summary-type names) the server needs
// to answer like esmond does. Everything here is fixed when the archive starts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gapless::test::esmond {

// The value types of esmond's EVENT_TYPE_CONFIG (docs/esmond.md 1.6). They decide the JSON
// shape of a value and which summaries can exist.
enum class ValueType { floating, integer, percentage, histogram, json, subinterval };

// Which perfSONAR test wrote a series. Each kind has the event types that test
// writes (pScheduler esmond_util.py get_event_types).
enum class SeriesKind { latency, throughput, trace, rtt };

std::string_view kind_name(SeriesKind kind);
std::optional<SeriesKind> kind_from_name(std::string_view name);
std::vector<SeriesKind> all_kinds();

struct Summary {
  std::string type;    // JSON name: "aggregation", "statistics" or "average"
  int64_t window = 0;  // seconds; statistics/0 summarises every base point alone
};

struct EventType {
  std::string name;
  ValueType type = ValueType::json;
  std::vector<Summary> summaries;

  const Summary* find_summary(std::string_view summary_type, int64_t window) const;
};

struct Series {
  int index = 0;
  std::string key;  // metadata-key: 32 lowercase hex digits
  SeriesKind kind = SeriesKind::latency;
  // pScheduler (perfSONAR 4.x) writers rather than bwctl/owamp-era ones: tool
  // names, summaries and the JSON shapes of packet-trace hops and
  // subintervals differ (docs/esmond.md 1.6), and a consumer must accept both.
  bool pscheduler = false;
  std::string subject_type = "point-to-point";
  std::string source, destination, measurement_agent;  // IP addresses
  std::string input_source, input_destination;        // host names
  std::string tool_name;
  std::vector<std::pair<std::string, std::string>> parameters;  // free-form; values are strings (docs/esmond.md 1.5)
  std::vector<EventType> event_types;                           // sorted by name
  int64_t phase = 0;            // where this series' runs fall within a cadence
  std::optional<int64_t> end;   // a finished test: no run after this time
  // Built from pScheduler runs (runs.hpp): its points are those runs'
  // values, never generated ones.
  bool from_runs = false;

  const EventType* find(std::string_view event_type) const;
};

// nullopt when esmond would answer "Unsupported event type" (docs/esmond.md 1.6 table).
std::optional<ValueType> value_type_of(std::string_view event_type);

// URL plural <-> JSON singular (docs/esmond.md 1.1): aggregations/aggregation,
// statistics/statistics, averages/average. "base" maps to itself.
std::optional<std::string> summary_type_from_plural(std::string_view plural);
std::string summary_type_plural(std::string_view type);

struct SeriesPlan {
  int count = 8;
  std::vector<SeriesKind> kinds = all_kinds();  // rotated over the series
  std::vector<std::string> event_types;         // non-empty: keep only these
  int64_t cadence = 60;
  uint64_t seed = 0;
  std::map<int, int64_t> ends;  // series index -> time its test stopped
  // Series as a perfSONAR 5 host's elmond lists them (README.md "elmond
  // mode"): pScheduler writers only, the metadata-key a 64-hex test
  // checksum, and elmond's own summaries.
  bool elmond = false;
};

std::vector<Series> build_series(const SeriesPlan& plan);

// The summaries elmond lists for an event type (its DEFAULT_SUMMARIES).
std::vector<Summary> elmond_summaries(std::string_view event_type);

}  // namespace gapless::test::esmond
