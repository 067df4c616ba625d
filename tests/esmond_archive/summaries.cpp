#include "summaries.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace gapless::test::esmond {

using nlohmann::json;

namespace {

json merge_histograms(const std::vector<json>& histograms) {
  json merged = json::object();
  for (const json& h : histograms) {
    if (!h.is_object()) continue;
    for (auto it = h.begin(); it != h.end(); ++it)
      if (it.value().is_number()) merged[it.key()] = merged.value(it.key(), int64_t{0}) + it.value().get<int64_t>();
  }
  return merged;
}

double as_double(const json& v) { return v.is_number() ? v.get<double>() : 0.0; }

// A loss rate served as a float came from numerator/denominator; recover the
// numerator so that the window's rate is sum(lost) / sum(sent) exactly.
double numerator_of(const json& rate, int64_t denominator) {
  const double n = as_double(rate) * static_cast<double>(denominator);
  return std::abs(n - std::round(n)) < 1e-6 ? std::round(n) : n;
}

json aggregation(ValueType type, const std::vector<json>& values, int64_t packets_per_run) {
  switch (type) {
    case ValueType::histogram:
      return merge_histograms(values);
    case ValueType::percentage: {
      double numerator = 0;
      for (const json& v : values) numerator += numerator_of(v, packets_per_run);
      return numerator / static_cast<double>(packets_per_run * static_cast<int64_t>(values.size()));
    }
    case ValueType::integer: {
      // throughput is an esmond "integer" served as floats; keep the type of
      // what was summed.
      bool floating = false;
      int64_t isum = 0;
      double fsum = 0;
      for (const json& v : values) {
        floating = floating || v.is_number_float();
        if (v.is_number_integer()) isum += v.get<int64_t>();
        fsum += as_double(v);
      }
      return floating ? json(fsum) : json(isum);
    }
    case ValueType::floating: {
      double sum = 0;
      for (const json& v : values) sum += as_double(v);
      return sum;
    }
    default:
      return nullptr;
  }
}

json average(const std::vector<json>& values) {
  double sum = 0;
  for (const json& v : values) sum += as_double(v);
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

struct Bucket {
  double value;
  std::string key;
  int64_t count;
};

// The NIST percentile (esmond validators.py Percentile): rank n = p(N+1)/100,
// k = floor(n), d = n - k; v[k] + d (v[k+1] - v[k]) over the sorted samples.
double percentile(const std::vector<Bucket>& sorted, int64_t samples, double p) {
  const double n = p / 100.0 * static_cast<double>(samples + 1);
  const auto k = static_cast<int64_t>(std::floor(n));
  const double d = n - static_cast<double>(k);
  auto sample = [&](int64_t rank) {  // 1-based rank into the expanded samples
    int64_t seen = 0;
    for (const Bucket& b : sorted) {
      seen += b.count;
      if (seen >= rank) return b.value;
    }
    return sorted.back().value;
  };
  if (k <= 0) return sample(1);
  if (k >= samples) return sample(samples);
  const double low = sample(k);
  return low + d * (sample(k + 1) - low);
}

}  // namespace

json histogram_statistics(const json& histogram) {
  std::vector<Bucket> buckets;
  if (histogram.is_object()) {
    for (auto it = histogram.begin(); it != histogram.end(); ++it) {
      if (!it.value().is_number()) continue;
      try {
        buckets.push_back({std::stod(it.key()), it.key(), it.value().get<int64_t>()});
      } catch (const std::exception&) {
        return json::object();  // esmond stores {} for non-numeric buckets
      }
    }
  }
  int64_t samples = 0;
  for (const Bucket& b : buckets) samples += b.count;
  if (samples <= 0) return json::object();
  std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return a.value < b.value; });

  double weighted = 0;
  int64_t top = 0;
  for (const Bucket& b : buckets) {
    weighted += b.value * static_cast<double>(b.count);
    top = std::max(top, b.count);
  }
  const double mean = weighted / static_cast<double>(samples);
  double squares = 0;
  json mode = json::array();
  for (const Bucket& b : buckets) {
    squares += std::pow(b.value - mean, 2) * static_cast<double>(b.count);
    if (b.count == top) mode.push_back(b.key);
  }
  const double variance = squares / static_cast<double>(samples);
  return {
      {"minimum", buckets.front().key},
      {"maximum", buckets.back().key},
      {"mean", mean},
      {"median", percentile(buckets, samples, 50)},
      {"mode", mode},
      {"percentile-25", percentile(buckets, samples, 25)},
      {"percentile-75", percentile(buckets, samples, 75)},
      {"percentile-95", percentile(buckets, samples, 95)},
      {"variance", variance},
      {"standard-deviation", std::sqrt(variance)},
  };
}

json summarise(ValueType type, const Summary& summary, const std::vector<json>& values, int64_t packets_per_run) {
  if (summary.type == "aggregation") return aggregation(type, values, packets_per_run);
  if (summary.type == "average") return average(values);
  if (summary.type == "statistics") return histogram_statistics(merge_histograms(values));
  return nullptr;
}

}  // namespace gapless::test::esmond
