#include "store.hpp"

#include <algorithm>
#include <array>
#include <mutex>

#include "summaries.hpp"
#include "values.hpp"

namespace gapless::test::esmond {

using nlohmann::json;

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

constexpr int64_t day = 86400;

// How far back time-updated looks for the last point of a sparse event type
// (failures) before calling the event type never written.
constexpr int64_t time_updated_search_runs = 20000;

}  // namespace

int64_t retention_seconds(std::string_view event_type, int64_t summary_window) {
  // util/ps_remove_data.conf: raw OWAMP-like data 180 days, daily summaries
  // five years, everything else a year.
  static constexpr std::array<std::string_view, 9> short_lived{{
      "histogram-owdelay", "histogram-rtt", "histogram-ttl", "packet-loss-rate", "packet-count-sent",
      "packet-count-lost", "packet-duplicates", "packet-reorders", "time-error-estimates",
  }};
  if (summary_window == 86400) return 1825 * day;
  if (summary_window == 0 && std::find(short_lived.begin(), short_lived.end(), event_type) != short_lived.end())
    return 180 * day;
  return 365 * day;
}

bool Store::generated_exists(const Series& s, const EventType& et, int64_t ts) const {
  return run_failed(config_.seed, s, ts) == (et.name == "failures");
}

int64_t Store::last_visible(const Series& s, int64_t now) const {
  const int64_t visible = now - config_.ingest_delay;
  return s.end ? std::min(visible, *s.end) : visible;
}

Store::Overlay Store::overlay_between(const Series& s, const EventType& et, int64_t begin, int64_t end,
                                      int64_t now) const {
  Overlay copy;
  std::shared_lock lock(mutex_);
  auto found = overlays_.find({s.index, et.name});
  if (found == overlays_.end()) return copy;
  for (auto it = found->second.lower_bound(begin); it != found->second.end() && it->first <= end; ++it)
    if (it->second.written_at <= now) copy.insert(*it);
  return copy;
}

// Merges the generated runs with the overlay, ascending; an overlay point
// replaces the generated one at the same ts.
void Store::walk(const Series& s, const EventType& et, int64_t begin, int64_t end, int64_t now,
                 const Emit& emit) const {
  if (end < begin) return;
  const Overlay overlay = overlay_between(s, et, begin, end, now);
  auto written = overlay.begin();
  const int64_t first = first_run(s);
  const int64_t last = std::min(end, last_visible(s, now));
  int64_t k = std::max<int64_t>(0, ceil_div(begin - first, config_.cadence));
  for (int64_t ts = first + k * config_.cadence; ts <= last; ts += config_.cadence) {
    for (; written != overlay.end() && written->first < ts; ++written)
      if (!emit(written->first, written->second.val)) return;
    if (written != overlay.end() && written->first == ts) {
      if (!emit(ts, written->second.val)) return;
      ++written;
      continue;
    }
    if (!generated_exists(s, et, ts)) continue;
    if (!emit(ts, generate_value(config_.seed, s, et.name, ts))) return;
  }
  for (; written != overlay.end(); ++written)
    if (!emit(written->first, written->second.val)) return;
}

void Store::base_points(const Series& s, const EventType& et, int64_t begin, int64_t end, int64_t now,
                        const Emit& emit) const {
  if (config_.retention) begin = std::max(begin, now - retention_seconds(et.name, 0));
  walk(s, et, begin, end, now, emit);
}

void Store::summary_points(const Series& s, const EventType& et, const Summary& summary, int64_t begin,
                           int64_t end, int64_t now, const Emit& emit) const {
  const int64_t window = summary.window;
  if (config_.retention) begin = std::max(begin, now - retention_seconds(et.name, window));
  const int64_t per_run = packets_per_run(s);
  if (window <= 0) {  // statistics/0: one summary per base point, at its ts
    walk(s, et, begin, end, now, [&](int64_t ts, const json& val) {
      return emit(ts, summarise(et.type, summary, {val}, per_run));
    });
    return;
  }
  // Windows start at multiples of the window (esmond: floor(ts / w) * w).
  const int64_t first_window = ceil_div(begin, window) * window;
  const int64_t last_window = floor_div(end, window) * window;
  if (last_window < first_window) return;
  int64_t current = 0;
  std::vector<json> values;
  bool stopped = false;
  walk(s, et, first_window, last_window + window - 1, now, [&](int64_t ts, const json& val) {
    const int64_t w = floor_div(ts, window) * window;
    if (!values.empty() && w != current) {
      if (!emit(current, summarise(et.type, summary, values, per_run))) {
        stopped = true;
        return false;
      }
      values.clear();
    }
    current = w;
    values.push_back(val);
    return true;
  });
  if (!stopped && !values.empty()) emit(current, summarise(et.type, summary, values, per_run));
}

std::optional<int64_t> Store::time_updated(const Series& s, const EventType& et, int64_t now) const {
  std::optional<int64_t> updated;
  const int64_t first = first_run(s);
  const int64_t last_k = floor_div(last_visible(s, now) - first, config_.cadence);
  for (int64_t k = last_k; k >= 0 && k > last_k - time_updated_search_runs; --k) {
    const int64_t ts = first + k * config_.cadence;
    if (generated_exists(s, et, ts)) {
      // Written when the run's data arrived, ingest_delay after the run.
      updated = std::min(now, ts + config_.ingest_delay);
      break;
    }
  }
  std::shared_lock lock(mutex_);
  if (auto found = overlays_.find({s.index, et.name}); found != overlays_.end())
    for (const auto& [ts, point] : found->second)
      if (point.written_at <= now) updated = std::max(updated.value_or(point.written_at), point.written_at);
  return updated;
}

void Store::put(const Series& s, const EventType& et, int64_t ts, json val, int64_t now) {
  std::unique_lock lock(mutex_);
  overlays_[{s.index, et.name}][ts] = Written{std::move(val), now};
}

std::optional<json> Store::value_at(const Series& s, const EventType& et, int64_t ts, int64_t now) const {
  std::optional<json> found;
  walk(s, et, ts, ts, now, [&](int64_t, const json& val) {
    found = val;
    return false;
  });
  return found;
}

}  // namespace gapless::test::esmond
