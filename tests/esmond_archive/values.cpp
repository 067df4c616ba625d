#include "values.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "hash.hpp"

namespace gapless::test::esmond {

using nlohmann::json;

namespace {

// Randomness of one run: every field draws from its own salt so that, e.g.,
// the loss of a run does not correlate with its delay.
struct Draw {
  uint64_t run;
  uint64_t operator()(std::string_view salt, uint64_t extra = 0) const { return mix(run, name_hash(salt), extra); }
  double unit_of(std::string_view salt, uint64_t extra = 0) const { return unit((*this)(salt, extra)); }
};

// Per-series constants: the same path always has about the same delay,
// bandwidth and hop count.
uint64_t series_hash(uint64_t seed, const Series& s, std::string_view salt) {
  return mix(seed, static_cast<uint64_t>(s.index), name_hash(salt));
}

Draw draw_for(uint64_t seed, const Series& s, int64_t ts) {
  return Draw{mix(seed, static_cast<uint64_t>(s.index), static_cast<uint64_t>(ts))};
}

double one_way_delay_ms(uint64_t seed, const Series& s) { return 2.0 + 80.0 * unit(series_hash(seed, s, "delay")); }

int hop_count(uint64_t seed, const Series& s) { return 4 + static_cast<int>(series_hash(seed, s, "hops") % 9); }

int path_mtu(uint64_t seed, const Series& s) { return series_hash(seed, s, "mtu") % 3 == 0 ? 1500 : 9000; }

// Most runs lose nothing; a lossy path loses a few packets now and then, and a
// burst of loss is rare.
int64_t lost_packets(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  const double r = d.unit_of("loss");
  const bool lossy = unit(series_hash(seed, s, "lossy")) < 0.3;
  if (s.kind == SeriesKind::rtt) return r < (lossy ? 0.8 : 0.95) ? 0 : 1 + static_cast<int64_t>(d("loss-n") % 3);
  if (r < (lossy ? 0.6 : 0.9)) return 0;
  if (r < 0.98) return 1 + static_cast<int64_t>(d("loss-n") % 5);
  return 5 + static_cast<int64_t>(d("loss-n") % 60);
}

std::string tenths_key(int64_t tenths) {
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10);
}

std::string hundredths_key(int64_t hundredths) {
  char text[32];
  std::snprintf(text, sizeof text, "%lld.%02lld", static_cast<long long>(hundredths / 100),
                static_cast<long long>(hundredths % 100));
  return text;
}

// One-way delays in 0.1 ms buckets with string keys such as "34.4" (docs/esmond.md 1.6):
// a peak bucket and a few neighbours holding every received packet.
json owdelay_histogram(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  const int64_t received = packets_per_run(s) - lost_packets(seed, s, ts);
  const double centre = one_way_delay_ms(seed, s) + 0.6 * d.unit_of("centre");
  const int buckets = 2 + static_cast<int>(d("buckets") % 5);
  const int64_t first = std::llround(centre * 10) - buckets / 2;
  std::vector<int64_t> weights(buckets);
  int64_t total = 0;
  for (int j = 0; j < buckets; ++j) {
    weights[j] = (1 + static_cast<int64_t>(d("weight", j) % 100)) * (j == buckets / 2 ? 6 : 1);
    total += weights[j];
  }
  json histogram = json::object();
  int64_t assigned = 0;
  for (int j = 0; j < buckets; ++j) {
    const int64_t count = received * weights[j] / total;
    assigned += count;
    if (count > 0) histogram[tenths_key(first + j)] = count;
  }
  const std::string peak = tenths_key(first + buckets / 2);
  histogram[peak] = histogram.value(peak, int64_t{0}) + (received - assigned);
  return histogram;
}

// Round-trip times in 0.01 ms buckets ("%.2f", as pScheduler's ping archiver
// writes them), one sample per received ping.
json rtt_histogram(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  const int64_t received = packets_per_run(s) - lost_packets(seed, s, ts);
  const double rtt = 2 * one_way_delay_ms(seed, s) + 0.2 * d.unit_of("rtt");
  const int64_t base = std::llround(rtt * 100);
  json histogram = json::object();
  for (int64_t i = 0; i < received; ++i) {
    const std::string key = hundredths_key(base + static_cast<int64_t>(d("sample", i) % 4));
    histogram[key] = histogram.value(key, int64_t{0}) + 1;
  }
  return histogram;
}

// Hop counts as TTL buckets such as {"59": 600}; a route flap sometimes
// splits the packets over two TTLs.
json ttl_histogram(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  const int64_t received = packets_per_run(s) - lost_packets(seed, s, ts);
  const int ttl = 64 - hop_count(seed, s);
  json histogram = json::object();
  if (d("flap") % 50 == 0 && received > 1) {
    histogram[std::to_string(ttl)] = received - 1;
    histogram[std::to_string(ttl - 1)] = 1;
  } else {
    histogram[std::to_string(ttl)] = received;
  }
  return histogram;
}

int64_t rare_count(const Draw& d, std::string_view salt) {
  return d.unit_of(salt) < 0.97 ? 0 : 1 + static_cast<int64_t>(d(salt, 1) % 3);
}

// Bandwidth in bits per second: a float with no fractional part, served as
// e.g. 7016320000.0 (docs/esmond.md 1.6).
double throughput_bps(uint64_t seed, const Series& s, int64_t ts) {
  const double capacity = 1e6 * std::floor(1000 + 9000 * unit(series_hash(seed, s, "capacity")));
  return std::floor(capacity * (0.55 + 0.45 * draw_for(seed, s, ts).unit_of("throughput")));
}

int64_t retransmits(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  return d.unit_of("retransmits") < 0.6 ? 0 : static_cast<int64_t>(d("retransmits-n") % 500);
}

constexpr int subinterval_count = 10;  // the series' time-duration

// Per-second intervals of a throughput test. bwctl wrote start and duration as
// strings (docs/esmond.md 1.6); pScheduler writes numbers (esmond_util.py).
json subintervals(uint64_t seed, const Series& s, int64_t ts, bool bandwidth) {
  const Draw d = draw_for(seed, s, ts);
  const double total_bps = throughput_bps(seed, s, ts);
  const int64_t total_retransmits = retransmits(seed, s, ts);
  json list = json::array();
  double start = 0;
  for (int j = 0; j < subinterval_count; ++j) {
    const double duration = 1.0 + static_cast<double>(d("duration", j) % 200) / 1e6;
    json interval;
    if (s.pscheduler) {
      interval["start"] = start;
      interval["duration"] = duration;
    } else {
      char text[32];
      std::snprintf(text, sizeof text, "%.6f", start);
      interval["start"] = text;
      std::snprintf(text, sizeof text, "%.6f", duration);
      interval["duration"] = text;
    }
    if (bandwidth)
      interval["val"] = std::floor(total_bps * (0.8 + 0.4 * d.unit_of("interval-bps", j)));
    else
      interval["val"] = j == 0 ? total_retransmits : 0;  // slow start retransmits early
    list.push_back(std::move(interval));
    start += duration;
  }
  return list;
}

struct AutonomousSystem {
  int number;
  const char* owner;
};

constexpr std::array<AutonomousSystem, 4> autonomous_systems{{
    {293, "ESNET - ESnet, US"},
    {11537, "INTERNET2-RESEARCH-EDU - Internet2, US"},
    {20965, "GEANT The GEANT IP Service, EU"},
    {2200, "FR-RENATER Reseau National de telecommunications pour la Technologie, FR"},
}};

std::string hop_ip(const Series& s, int ttl, int hops, bool alternate_route) {
  if (ttl == hops) return s.destination;
  char text[32];
  std::snprintf(text, sizeof text, "198.%d.%d.%d", 100 + (s.index * 7 + ttl) % 100,
                (ttl * 31 + s.index + (alternate_route ? 50 : 0)) % 250, 1 + (ttl * 17 + s.index * 3) % 250);
  return text;
}

// One traceroute. Hop keys follow the writer (docs/esmond.md 1.6): bwctl hops have
// error_message/ip/mtu/query/rtt/success/ttl with strings; pScheduler hops have
// ints, a hostname and an AS, and "error-message" only on failure. A
// pScheduler hop that got no reply has neither ip nor error (success 1).
json packet_trace(uint64_t seed, const Series& s, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  const int hops = hop_count(seed, s);
  // The route changes now and then, for hours at a time.
  const bool alternate = mix(seed, static_cast<uint64_t>(s.index), static_cast<uint64_t>(ts / 21600)) % 10 == 0;
  const int mtu = path_mtu(seed, s);
  const double rtt_total = 2 * one_way_delay_ms(seed, s);
  json trace = json::array();
  for (int ttl = 1; ttl <= hops; ++ttl) {
    const bool silent = ttl < hops && d("silent", ttl) % 20 == 0;
    const double rtt = std::round((rtt_total * ttl / hops + 0.3 * d.unit_of("hop-rtt", ttl)) * 1000) / 1000;
    json hop;
    if (s.pscheduler) {
      hop["ttl"] = ttl;
      hop["query"] = 1;
      hop["success"] = 1;
      if (!silent) {
        const AutonomousSystem& as = autonomous_systems[(s.index + ttl) % autonomous_systems.size()];
        hop["ip"] = hop_ip(s, ttl, hops, alternate);
        hop["hostname"] = ttl == hops ? s.input_destination
                                      : "ae-" + std::to_string(ttl) + ".rtr" + std::to_string(s.index % 7) +
                                            ".example.net";
        hop["as"] = {{"number", as.number}, {"owner", as.owner}};
        hop["rtt"] = rtt;
        hop["mtu"] = mtu;
      } else if (d("unreachable", ttl) % 4 == 0) {
        hop["success"] = 0;
        hop["error-message"] = "host-unreachable";
      }
    } else {
      char text[32];
      hop["ttl"] = std::to_string(ttl);
      hop["query"] = "1";
      hop["mtu"] = std::to_string(mtu);
      if (silent) {
        hop["success"] = 0;
        hop["error_message"] = "requestTimedOut";
      } else {
        hop["success"] = 1;
        hop["error_message"] = nullptr;
        hop["ip"] = hop_ip(s, ttl, hops, alternate);
        std::snprintf(text, sizeof text, "%.3f", rtt);
        hop["rtt"] = text;
      }
    }
    trace.push_back(std::move(hop));
  }
  return trace;
}

json failure(uint64_t seed, const Series& s, int64_t ts) {
  static constexpr std::array<const char*, 3> bwctl_errors{{
      "Unable to contact the remote BWCTL server",
      "bwctl: Unable to initiate peer handshake: Connection refused",
      "No results were returned by the tool",
  }};
  static constexpr std::array<const char*, 3> pscheduler_errors{{
      "Run never started",
      "The test failed for an unspecified reason. See the server logs of the testing host(s).",
      "iperf3 returned an error: error - unable to connect to server: Connection refused",
  }};
  const auto& errors = s.pscheduler ? pscheduler_errors : bwctl_errors;
  return {{"error", errors[draw_for(seed, s, ts)("error") % errors.size()]}};
}

}  // namespace

int64_t packets_per_run(const Series& series) { return series.kind == SeriesKind::rtt ? 10 : 600; }

bool run_failed(uint64_t seed, const Series& series, int64_t ts) { return draw_for(seed, series, ts)("failed") % 25 == 0; }

json generate_value(uint64_t seed, const Series& s, std::string_view et, int64_t ts) {
  const Draw d = draw_for(seed, s, ts);
  if (et == "failures") return failure(seed, s, ts);
  if (et == "histogram-owdelay") return owdelay_histogram(seed, s, ts);
  if (et == "histogram-rtt") return rtt_histogram(seed, s, ts);
  if (et == "histogram-ttl" || et == "histogram-ttl-reverse") return ttl_histogram(seed, s, ts);
  if (et == "packet-count-sent") return packets_per_run(s);
  if (et == "packet-count-lost" || et == "packet-count-lost-bidir") return lost_packets(seed, s, ts);
  // esmond stores {numerator, denominator} and returns their ratio as a
  // float in [0, 1] (docs/esmond.md 1.6).
  if (et == "packet-loss-rate" || et == "packet-loss-rate-bidir")
    return static_cast<double>(lost_packets(seed, s, ts)) / static_cast<double>(packets_per_run(s));
  if (et == "packet-duplicates" || et == "packet-duplicates-bidir") return rare_count(d, "duplicates");
  if (et == "packet-reorders" || et == "packet-reorders-bidir") return rare_count(d, "reorders");
  // Floats are stored at 4-decimal precision (docs/esmond.md 1.6).
  if (et == "time-error-estimates") return static_cast<double>(1 + d("time-error") % 400) / 10000.0;
  if (et == "throughput") return throughput_bps(seed, s, ts);
  if (et == "packet-retransmits") return retransmits(seed, s, ts);
  if (et == "throughput-subintervals") return subintervals(seed, s, ts, true);
  if (et == "packet-retransmits-subintervals") return subintervals(seed, s, ts, false);
  if (et == "packet-trace") return packet_trace(seed, s, ts);
  if (et == "path-mtu") return path_mtu(seed, s);
  return nullptr;  // an esmond event type no generated series carries
}

namespace {

// Changes the first number (or, lacking one, the first string) found.
bool perturb(json& value) {
  if (value.is_number_integer()) {
    value = value.get<int64_t>() + 1;
    return true;
  }
  if (value.is_number_float()) {
    value = value.get<double>() * 2 + 1;
    return true;
  }
  if (value.is_string()) {
    value = value.get<std::string>() + " (corrected)";
    return true;
  }
  if (value.is_structured()) {
    for (auto& element : value)
      if (perturb(element)) return true;
  }
  if (value.is_null()) {
    value = 0;
    return true;
  }
  return false;
}

}  // namespace

json corrected_value(const Series& series, std::string_view event_type, const json& value) {
  if (event_type == "packet-loss-rate" || event_type == "packet-loss-rate-bidir") {
    // Stay a ratio in [0, 1]: one packet more or fewer lost.
    const double step = 1.0 / static_cast<double>(packets_per_run(series));
    const double v = value.is_number() ? value.get<double>() : 0.0;
    return v + step <= 1.0 ? v + step : v - step;
  }
  json changed = value;
  if (!perturb(changed)) changed = json{{"corrected", true}};
  return changed;
}

}  // namespace gapless::test::esmond
