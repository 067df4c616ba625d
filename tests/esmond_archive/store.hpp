// Which datapoints exist at a given "now", and their values. Generated points
// are never stored: a series runs at start + phase + k * cadence, and the run
// at ts is visible once ts <= now - ingest_delay. Only points written
// explicitly (late points, corrections) are kept, in an overlay that wins over
// the generated value at the same ts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "series.hpp"

namespace gapless::test::esmond {

struct StoreConfig {
  uint64_t seed = 0;
  int64_t start = 0;    // no run before this time
  int64_t cadence = 60;
  int64_t ingest_delay = 0;
  bool retention = true;  // expire old points per esmond's default policy (docs/esmond.md 1.4)
};

// Receives points in ascending ts; returns false to stop the walk.
using Emit = std::function<bool(int64_t ts, const nlohmann::json& val)>;

class Store {
 public:
  explicit Store(StoreConfig config) : config_(config) {}

  // Base points of `et` with begin <= ts <= end that exist at `now`.
  void base_points(const Series& s, const EventType& et, int64_t begin, int64_t end, int64_t now,
                   const Emit& emit) const;

  // Summary points (ts = window start) with begin <= ts <= end, computed from
  // the base points that exist at `now`: a window still filling has a partial
  // value (docs/esmond.md 1.6, last paragraph).
  void summary_points(const Series& s, const EventType& et, const Summary& summary, int64_t begin,
                      int64_t end, int64_t now, const Emit& emit) const;

  // When the event type was last written (esmond sets time-updated to the
  // time of the write); nullopt before its first point.
  std::optional<int64_t> time_updated(const Series& s, const EventType& et, int64_t now) const;

  // Writes a point at `ts` as of `now`, replacing any value there.
  void put(const Series& s, const EventType& et, int64_t ts, nlohmann::json val, int64_t now);

  // The value at ts as of now, if a point exists there.
  std::optional<nlohmann::json> value_at(const Series& s, const EventType& et, int64_t ts, int64_t now) const;

  const StoreConfig& config() const { return config_; }

 private:
  struct Written {
    nlohmann::json val;
    int64_t written_at;
  };
  using Overlay = std::map<int64_t, Written>;

  bool generated_exists(const Series& s, const EventType& et, int64_t ts) const;
  int64_t first_run(const Series& s) const { return config_.start + s.phase; }
  int64_t last_visible(const Series& s, int64_t now) const;
  Overlay overlay_between(const Series& s, const EventType& et, int64_t begin, int64_t end, int64_t now) const;
  void walk(const Series& s, const EventType& et, int64_t begin, int64_t end, int64_t now, const Emit& emit) const;

  StoreConfig config_;
  mutable std::shared_mutex mutex_;
  std::map<std::pair<int, std::string>, Overlay> overlays_;  // (series index, event type)
};

// Retention of esmond's default cleaner policy, in seconds (docs/esmond.md 1.4).
int64_t retention_seconds(std::string_view event_type, int64_t summary_window);

}  // namespace gapless::test::esmond
