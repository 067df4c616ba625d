#include "osg/run_metadata.hpp"

#include <map>

#include "osg/run_duration.hpp"

namespace gapless::osg {

namespace {

using nlohmann::json;

// Logstash's parse_endpoint: the host of a URL or of "host:port", brackets
// removed; anything else as given.
std::string endpoint_host(std::string endpoint) {
  if (const size_t scheme = endpoint.find("://"); scheme != std::string::npos) {
    endpoint.erase(0, scheme + 3);
    endpoint = endpoint.substr(0, endpoint.find_first_of("/?#"));
    if (const size_t at = endpoint.rfind('@'); at != std::string::npos) endpoint.erase(0, at + 1);
  }
  if (!endpoint.empty() && endpoint.front() == '[') {
    const size_t close = endpoint.find(']');
    if (close != std::string::npos) return endpoint.substr(1, close - 1);
  }
  // host:port (one colon only: more is an IPv6 address)
  const size_t colon = endpoint.find(':');
  if (colon != std::string::npos && endpoint.find(':', colon + 1) == std::string::npos) endpoint.erase(colon);
  return endpoint;
}

const json* spec_field(const json& spec, const char* key) {
  const auto it = spec.find(key);
  return it == spec.end() || it->is_null() ? nullptr : &*it;
}

bool truthy(const json* value) {
  if (!value || value->is_null()) return false;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_number()) return value->get<double>() != 0;
  if (value->is_string() || value->is_array() || value->is_object()) return !value->empty();
  return true;
}

// elmond's _parse_metadata_field: lists and objects flattened into
// "<key>-<index>" and "<key>-<sub key>" (sub keys starting with '_' left out).
void flatten_into(const std::string& key, const json& value, json& target) {
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) target[key + "-" + std::to_string(i)] = value[i];
  } else if (value.is_object()) {
    for (const auto& [sub, item] : value.items())
      if (!sub.starts_with('_')) flatten_into(key + "-" + sub, item, target);
  } else {
    target[key] = value;
  }
}

// Spec fields copied under esmond's names (metadata.py's field maps). For
// throughput, Logstash has turned `omit` into whole seconds first.
const std::map<std::string, std::map<std::string, std::string>>& field_maps() {
  static const std::map<std::string, std::map<std::string, std::string>> maps = {
      {"throughput",
       {{"tos", "ip-tos"}, {"dscp", "ip-dscp"}, {"buffer-length", "bw-buffer-size"},
        {"parallel", "bw-parallel-streams"}, {"bandwidth", "bw-target-bandwidth"}, {"window-size", "tcp-window-size"},
        {"dynamic-window-size", "tcp-dynamic-window-size"}, {"mss", "tcp-max-segment-size"},
        {"omit", "bw-ignore-first-seconds"}}},
      {"latency",
       {{"packet-count", "sample-size"}, {"bucket-width", "sample-bucket-width"},
        {"packet-interval", "time-probe-interval"}, {"packet-timeout", "time-probe-timeout"}, {"ip-tos", "ip-tos"},
        {"flip", "mode-flip"}, {"packet-padding", "ip-packet-padding"},
        {"single-participant-mode", "mode-single-participant"}}},
      {"trace",
       {{"algorithm", "trace-algorithm"}, {"first-ttl", "trace-first-ttl"}, {"fragment", "ip-fragment"},
        {"hops", "trace-max-ttl"}, {"length", "ip-packet-size"}, {"probe-type", "ip-transport-protocol"},
        {"queries", "trace-num-queries"}, {"tos", "ip-tos"}}},
      {"rtt",
       {{"count", "sample-size"}, {"flowlabel", "ip-packet-flowlabel"}, {"tos", "ip-tos"},
        {"length", "ip-packet-size"}, {"ttl", "ip-ttl"}}},
  };
  return maps;
}

// A duration field as Logstash leaves it: whole seconds, or the text when it
// does not convert.
json logstash_duration(const json& value) {
  if (value.is_string())
    if (const auto seconds = logstash_seconds(value.get_ref<const std::string&>())) return *seconds;
  return value;
}

void add_test_fields(const std::string& type, const json& spec, json& metadata) {
  const std::string family = type == "latencybg" ? "latency" : type;
  if (const auto map = field_maps().find(family); map != field_maps().end()) {
    for (const auto& [field, name] : map->second)
      if (const auto it = spec.find(field); it != spec.end())
        metadata[name] = family == "throughput" && field == "omit" ? logstash_duration(*it) : *it;
  }
  if (family == "throughput") {
    metadata["ip-transport-protocol"] = truthy(spec_field(spec, "udp")) ? "udp" : "tcp";
  } else if (family == "trace") {
    // Logstash has turned these into whole seconds; elmond then takes int().
    for (const auto& [field, name] : {std::pair{"sendwait", "time-probe-interval"}, {"wait", "time-test-timeout"}})
      if (const json* value = spec_field(spec, field)) {
        const json converted = logstash_duration(*value);
        if (!truthy(&converted)) continue;
        if (converted.is_number_integer()) metadata[name] = converted;  // int(val) of whole seconds
        else if (const auto seconds = elmond_seconds(converted)) metadata[name] = *seconds;
      }
  } else if (family == "rtt") {
    for (const auto& [field, name] : {std::pair{"interval", "time-probe-interval"}, {"timeout", "time-test-timeout"},
                                      {"deadline", "time-probe-timeout"}})
      if (const json* value = spec_field(spec, field); truthy(value))
        if (const auto seconds = elmond_seconds(*value)) metadata[name] = *seconds;
  } else if (family != "latency") {
    // elmond's raw parser: every spec field as pscheduler-<type>-<field>.
    for (const auto& [field, value] : spec.items()) flatten_into("pscheduler-" + type + "-" + field, value, metadata);
  }
}

}  // namespace

std::string run_observer(const Run& run, std::string_view observer) {
  if (!observer.empty()) return endpoint_host(std::string(observer));
  if (const auto task = run.document.find("task"); task != run.document.end() && task->is_object())
    if (const auto href = task->find("href"); href != task->end() && href->is_string())
      return endpoint_host(href->get<std::string>());
  return run.host;
}

json run_metadata(const Run& run, const std::string& observer, const std::string& metadata_key) {
  const json& test = run.document.at("test");
  const json& spec = test.at("spec");
  json metadata = json::object();
  metadata["metadata-key"] = metadata_key;

  // Addresses: elmond has the IPs Logstash resolved; a push is answered
  // without DNS, so an address is kept as the run gives it (an IP literal
  // stays one, a host name stays a name).
  if (!observer.empty()) metadata["measurement-agent"] = observer;
  const json* source_field = spec_field(spec, "source");
  const json* dest_field = spec_field(spec, "dest");
  const auto host_in = [](const json* value) {
    return value && value->is_string() ? endpoint_host(value->get<std::string>()) : std::string();
  };
  const std::string source = host_in(source_field);
  const std::string dest = host_in(dest_field);
  const std::string source_address = source.empty() && !dest.empty() ? observer : source;
  if (!source_address.empty() && !dest.empty()) {
    metadata["subject-type"] = "point-to-point";
    metadata["source"] = source_address;
    metadata["destination"] = dest;
  } else if (!source_address.empty() || !observer.empty()) {
    metadata["subject-type"] = "network-element";
    metadata["source"] = source_address.empty() ? observer : source_address;
  }

  metadata["tool-name"] = "pscheduler/" + run.tool;
  // pscheduler.duration: task.detail.duration in whole seconds (Logstash).
  json duration = nullptr;
  if (const auto task = run.document.find("task"); task != run.document.end() && task->is_object())
    if (const auto detail = task->find("detail"); detail != task->end() && detail->is_object())
      if (const auto it = detail->find("duration"); it != detail->end()) duration = logstash_duration(*it);
  metadata["time-duration"] = duration;
  metadata["pscheduler-test-type"] = run.test_type;

  // input-source: the spec's source as written, else the measurement agent.
  if (source_field && truthy(source_field)) metadata["input-source"] = *source_field;
  else if (!observer.empty()) metadata["input-source"] = observer;
  else
    throw RunError("test.spec.source", "not a pScheduler run that can be named: \"test.spec.source\" is missing and "
                                       "no observer is known (no x-ps-observer header, no task.href)");
  if (dest_field && truthy(dest_field)) metadata["input-destination"] = *dest_field;
  else
    throw RunError("test.spec.dest", "not a pScheduler run whose measurements can be sent: \"test.spec.dest\" is "
                                     "missing (OSG's messages need an input-destination)");

  add_test_fields(run.test_type, spec, metadata);

  if (const auto reference = run.document.find("reference");
      reference != run.document.end() && reference->is_object())
    for (const auto& [field, value] : reference->items())
      if (!field.starts_with('_')) flatten_into("pscheduler-reference-" + field, value, metadata);
  return metadata;
}

}  // namespace gapless::osg
