#include "runs.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>

namespace gapless::test::esmond {

using nlohmann::json;

namespace {

// ------------------------------------------------------------ the key

std::string c14n_number(const json& number) {
  const double value = number.get<double>();
  if (value == 0) return "0";
  char text[40];
  std::snprintf(text, sizeof text, "%.15E", std::fabs(value));  // d.ddddddddddddddddE±xx
  const std::string printed = text;
  const size_t e = printed.find('E');
  std::string digits = printed.substr(0, 1) + printed.substr(2, e - 2);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int point = std::stoi(printed.substr(e + 1)) + 1;  // digits = 0.DIGITS x 10^point
  const int k = static_cast<int>(digits.size());
  std::string out = value < 0 ? "-" : "";
  if (k <= point && point <= 21) {
    out += digits + std::string(static_cast<size_t>(point - k), '0');
  } else if (0 < point && point <= 21) {
    out += digits.substr(0, static_cast<size_t>(point)) + "." + digits.substr(static_cast<size_t>(point));
  } else if (-6 < point && point <= 0) {
    out += "0." + std::string(static_cast<size_t>(-point), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += (point - 1 >= 0 ? "e+" : "e-") + std::to_string(std::abs(point - 1));
  }
  return out;
}

std::string c14n_string(const std::string& text) {  // Ruby's JSON generator
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("esmond archive: SHA-256 failed");
  std::string hex;
  char two[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(two, sizeof two, "%02x", digest[i]);
    hex += two;
  }
  return hex;
}

// ------------------------------------------------------------ times

// dateutil's parse of pScheduler's ISO 8601 times, then int(timestamp()):
// the fraction dropped, the offset applied (none given: UTC).
std::optional<int64_t> unix_seconds(const json& value) {
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t seconds = timegm(&tm);
  size_t at = static_cast<size_t>(consumed);
  if (at < text.size() && text[at] == '.')
    for (++at; at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])); ++at) {
    }
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int hours = 0, minutes = 0;
    if (std::sscanf(text.c_str() + at + 1, "%2d:%2d", &hours, &minutes) < 1) return std::nullopt;
    const int64_t offset = hours * 3600 + minutes * 60;
    seconds += text[at] == '+' ? -offset : offset;
  }
  return seconds;
}

// util.py iso8601_to_seconds: isodate's timedelta (microseconds, rounded
// half to even), then (us + s * 1e6) / 1e6.
std::optional<double> duration_seconds(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.rfind("PT", 0) != 0 && text.rfind("P", 0) != 0) return std::nullopt;
  double total = 0;
  bool in_time = false;
  std::string number;
  for (size_t i = 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'T') {
      in_time = true;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      number += c;
    } else {
      if (number.empty()) return std::nullopt;
      const double n = std::stod(number);
      number.clear();
      if (c == 'D' && !in_time) total += n * 86400;
      else if (c == 'H' && in_time) total += n * 3600;
      else if (c == 'M' && in_time) total += n * 60;
      else if (c == 'S' && in_time) total += n;
      else return std::nullopt;
    }
  }
  const double whole = std::floor(total);
  std::fesetround(FE_TONEAREST);
  double micros = std::nearbyint((total - whole) * 1e6);
  double seconds = whole;
  if (micros >= 1e6) {
    micros -= 1e6;
    seconds += 1;
  }
  return (micros + seconds * 1e6) / 1e6;
}

// ------------------------------------------------------------ values

const json* at(const json& object, std::initializer_list<const char*> path) {
  const json* here = &object;
  for (const char* name : path) {
    if (!here->is_object()) return nullptr;
    const auto it = here->find(name);
    if (it == here->end() || it->is_null()) return nullptr;
    here = &*it;
  }
  return here;
}

// data.py _extract_packet_trace on one path: ttl and query numbered, the
// error as error-message, rtt in ms, mtu carried forward.
json formatted_path(const json& path) {
  json hops = json::array();
  std::optional<json> mtu;
  for (size_t i = 0; i < path.size(); ++i) {
    const json& hop = path[i];
    json out = {{"ttl", i + 1}, {"query", 1}};
    const json* error = at(hop, {"error"});
    const bool failed = error != nullptr && !(error->is_string() && error->get_ref<const std::string&>().empty());
    out["success"] = failed ? 0 : 1;
    if (failed) out["error-message"] = *error;
    for (const char* field : {"ip", "hostname", "as"})
      if (const json* v = at(hop, {field}); v != nullptr && !(v->is_string() && v->get<std::string>().empty()))
        out[field] = *v;
    if (const json* rtt = at(hop, {"rtt"}))
      if (const std::optional<double> seconds = duration_seconds(*rtt)) out["rtt"] = *seconds * 1000;
    if (const json* m = at(hop, {"mtu"})) mtu = *m;
    if (mtu) out["mtu"] = *mtu;
    hops.push_back(std::move(out));
  }
  return hops;
}

// {values, counts} as Logstash keeps a pScheduler histogram, read back by
// data.py _build_esmond_histogram: the run's bucket keys, integer counts.
std::optional<json> histogram(const json* buckets) {
  if (buckets == nullptr || !buckets->is_object() || buckets->empty()) return std::nullopt;
  json out = json::object();
  for (auto it = buckets->begin(); it != buckets->end(); ++it)
    out[it.key()] = it.value().is_number() ? json(it.value().get<int64_t>()) : it.value();
  return out;
}

struct Mapped {
  SeriesKind kind;
  std::vector<std::string> event_types;  // what elmond lists (metadata.py)
  std::vector<RunPoint> points;
};

std::optional<Mapped> map_run(const json& run, const std::string& type, const json& spec, int64_t ts) {
  Mapped m;
  const json& result = run.at("result");
  const bool succeeded = result.at("succeeded").get<bool>();
  const auto add = [&](const char* event_type, std::optional<json> val) {
    if (succeeded && val) m.points.push_back({event_type, ts, std::move(*val)});
  };
  const auto field = [&](std::initializer_list<const char*> path) -> std::optional<json> {
    if (const json* v = at(result, path)) return *v;
    return std::nullopt;
  };
  if (type == "throughput") {
    m.kind = SeriesKind::throughput;
    const bool udp = spec.value("udp", false);
    m.event_types = {"failures", "throughput", "throughput-subintervals"};
    if (udp) {  // Logstash writes packets_sent/packets_lost; elmond reads result.packets.*: served none
      m.event_types.insert(m.event_types.end(), {"packet-loss-rate", "packet-count-lost", "packet-count-sent"});
    } else {
      m.event_types.insert(m.event_types.end(), {"packet-retransmits", "packet-retransmits-subintervals"});
    }
    add("throughput", field({"summary", "summary", "throughput-bits"}));
    if (const json* intervals = at(result, {"intervals"}); intervals != nullptr && intervals->is_array()) {
      // elmond looks for "throughput" in each interval summary, which has throughput-bits: []
      add("throughput-subintervals", json::array());
      if (!udp) {
        json retransmits = json::array();
        for (const json& interval : *intervals) {
          const json* s = at(interval, {"summary"});
          if (s == nullptr) continue;
          const json* start = at(*s, {"start"});
          const json* end = at(*s, {"end"});
          const json* val = at(*s, {"retransmits"});
          if (start == nullptr || end == nullptr || val == nullptr) continue;
          const json duration = start->is_number_integer() && end->is_number_integer()
                                    ? json(end->get<int64_t>() - start->get<int64_t>())
                                    : json(end->get<double>() - start->get<double>());
          retransmits.push_back({{"start", *start}, {"duration", duration}, {"val", *val}});
        }
        add("packet-retransmits-subintervals", retransmits);
      }
    }
    if (!udp) add("packet-retransmits", field({"summary", "summary", "retransmits"}));
  } else if (type == "latency" || type == "latencybg") {
    m.kind = SeriesKind::latency;
    m.event_types = {"failures",        "packet-count-sent", "histogram-owdelay", "histogram-ttl",
                     "packet-duplicates", "packet-loss-rate", "packet-count-lost", "packet-reorders",
                     "time-error-estimates"};
    add("packet-count-sent", field({"packets-sent"}));
    add("packet-count-lost", field({"packets-lost"}));
    add("packet-duplicates", field({"packets-duplicated"}));
    add("packet-reorders", field({"packets-reordered"}));
    add("time-error-estimates", field({"max-clock-error"}));
    const json* sent = at(result, {"packets-sent"});
    const json* lost = at(result, {"packets-lost"});
    if (sent != nullptr && lost != nullptr && sent->is_number() && sent->get<double>() > 0)
      add("packet-loss-rate", json(lost->get<double>() / sent->get<double>()));
    add("histogram-owdelay", histogram(at(result, {"histogram-latency"})));
    add("histogram-ttl", histogram(at(result, {"histogram-ttl"})));
  } else if (type == "trace") {
    m.kind = SeriesKind::trace;
    m.event_types = {"failures", "packet-trace", "path-mtu"};
    if (spec.value("algorithm", "") == "paris-traceroute") m.event_types.push_back("packet-trace-multi");
    if (const json* paths = at(result, {"paths"}); paths != nullptr && paths->is_array()) {
      json all = json::array();
      std::optional<json> first;
      for (const json& path : *paths) {
        json formatted = formatted_path(path);
        if (!first && !formatted.empty()) first = formatted;
        all.push_back(std::move(formatted));
      }
      add("packet-trace", first);
      if (spec.value("algorithm", "") == "paris-traceroute") add("packet-trace-multi", all);
      // result.mtu: the smallest mtu on the first path (Logstash's trace filter)
      std::optional<int64_t> smallest;
      if (!paths->empty())
        for (const json& hop : paths->at(0))
          if (const json* mtu = at(hop, {"mtu"}); mtu != nullptr && mtu->is_number_integer())
            smallest = std::min(smallest.value_or(INT64_MAX), mtu->get<int64_t>());
      if (smallest) add("path-mtu", json(*smallest));
    }
  } else if (type == "rtt") {
    m.kind = SeriesKind::rtt;
    m.event_types = {"failures",          "packet-count-sent",       "histogram-rtt",
                     "histogram-ttl-reverse", "packet-duplicates-bidir", "packet-loss-rate-bidir",
                     "packet-count-lost-bidir", "packet-reorders-bidir"};
    add("packet-count-sent", field({"sent"}));
    add("packet-count-lost-bidir", field({"lost"}));
    add("packet-duplicates-bidir", field({"duplicates"}));
    add("packet-reorders-bidir", field({"reorders"}));
    add("packet-loss-rate-bidir", field({"loss"}));
    // histogram-rtt: Logstash keeps no rtt histogram, so elmond serves none.
  } else {
    return std::nullopt;  // elmond: pscheduler-raw only
  }
  if (!succeeded)
    if (const json* error = at(result, {"error"})) m.points.push_back({"failures", ts, json{{"error", *error}}});
  return m;
}

std::string host_of(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  const size_t begin = scheme + 3;
  const size_t end = url.find_first_of(":/", begin);
  return url.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

}  // namespace

std::string canonical_json(const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {  // std::map: keys in byte order
        if (!first) out += ",";
        first = false;
        out += c14n_string(it.key()) + ":" + canonical_json(it.value());
      }
      return out + "}";
    }
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) out += (i ? "," : "") + canonical_json(value[i]);
      return out + "]";
    }
    case json::value_t::string: return c14n_string(value.get<std::string>());
    case json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case json::value_t::null: return "null";
    default: return c14n_number(value);
  }
}

std::vector<RunSeries> series_from_runs(const std::vector<json>& runs, int first_index) {
  std::vector<RunSeries> all;
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& run = runs[i];
    const std::string name = "run " + std::to_string(i) + (run.contains("id") ? " (" + run.value("id", "") + ")" : "");
    const json* type = at(run, {"test", "type"});
    const json* spec = at(run, {"test", "spec"});
    const json* tool = at(run, {"tool", "name"});
    const json* succeeded = at(run, {"result", "succeeded"});
    std::optional<int64_t> ts = unix_seconds(at(run, {"run", "start-time"}) ? *at(run, {"run", "start-time"}) : json());
    if (!ts && at(run, {"schedule", "start"})) ts = unix_seconds(*at(run, {"schedule", "start"}));
    if (type == nullptr || !type->is_string() || spec == nullptr || !spec->is_object() || tool == nullptr ||
        !tool->is_string() || succeeded == nullptr || !succeeded->is_boolean() || !ts)
      throw std::invalid_argument("esmond archive: " + name +
                                  " lacks test.type, test.spec, tool.name, result.succeeded or a start time");
    const std::optional<Mapped> mapped = map_run(run, type->get<std::string>(), *spec, *ts);
    if (!mapped) continue;
    const std::string key = sha256_hex(canonical_json(
        json{{"observer_ip", nullptr}, {"test", run.at("test")}, {"tool", tool->get<std::string>()}}));
    auto found = by_key.find(key);
    if (found == by_key.end()) {
      RunSeries fresh;
      Series& s = fresh.series;
      s.index = first_index + static_cast<int>(all.size());
      s.key = key;
      s.kind = mapped->kind;
      s.pscheduler = true;
      s.from_runs = true;
      s.tool_name = "pscheduler/" + tool->get<std::string>();
      // No DNS here: the hosts stand for their addresses; the observer is
      // the host of the task's (else the run's) href.
      std::string observer;
      if (const json* href = at(run, {"task", "href"})) observer = host_of(href->get<std::string>());
      if (observer.empty())
        if (const json* href = at(run, {"run", "href"})) observer = host_of(href->get<std::string>());
      s.measurement_agent = observer;
      s.input_source = spec->value("source", observer);
      s.source = s.input_source;
      s.input_destination = spec->value("dest", "");
      s.destination = s.input_destination.empty() ? s.source : s.input_destination;
      s.parameters = {{"pscheduler-test-type", type->get<std::string>()}};
      for (const std::string& name_of : mapped->event_types)
        if (const std::optional<ValueType> value_type = value_type_of(name_of))
          s.event_types.push_back({name_of, *value_type, {}});
      std::sort(s.event_types.begin(), s.event_types.end(),
                [](const EventType& a, const EventType& b) { return a.name < b.name; });
      found = by_key.emplace(key, all.size()).first;
      all.push_back(std::move(fresh));
    }
    RunSeries& target = all[found->second];
    target.points.insert(target.points.end(), mapped->points.begin(), mapped->points.end());
  }
  return all;
}

}  // namespace gapless::test::esmond
