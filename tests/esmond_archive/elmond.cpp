// elmond mode of the test archive: the answers of perfSONAR 5's elmond
// (perfsonar/elmond, elmond/perfsonar-elmond/elmond/: app.py routes,
// data.py EsmondData.fetch, metadata.py EsmondMetadata.search, util.py
// build_uri and handle_time_filters), read in the source; README.md "elmond
// mode" lists what differs from esmond and what is not modelled.
#include <httplib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <stdexcept>

#include "esmond_archive.hpp"
#include "hash.hpp"
#include "query.hpp"
#include "reply.hpp"
#include "summaries.hpp"

namespace gapless::test {

using esmond::EventType;
using esmond::Series;
using nlohmann::json;

namespace {

// elmond's PROXY_PATH (config/elmond.json), under which Apache mounts it
// (apache/apache-elmond.conf) and which build_uri puts in front of every uri.
constexpr std::string_view proxy_path = "/esmond/perfsonar/archive";
constexpr int64_t default_limit = 1000;  // data.py and metadata.py DEFAULT_RESULT_LIMIT
constexpr int64_t max_limit = 10000;     // MAX_RESULT_LIMIT: above it, 400
// OpenSearch's index.max_result_window: a search with from + size beyond it
// fails, and elmond lets the failure through as a 500.
constexpr int64_t max_result_window = 10000;
// time-updated is pscheduler.added of the test's latest run: pScheduler adds
// a run to the schedule a little before it starts.
constexpr int64_t run_added_lead = 60;

// The keys of data.py DATA_FIELD_MAP ("<event-type>/<summary-type as in the
// URL>"): a data URL with a window of 0 must name one of them (or the event
// type pscheduler-raw), otherwise 400 "Unrecognized event type".
constexpr std::array<std::string_view, 36> data_field_map_keys{{
    "failures/base",
    "histogram-owdelay/base",
    "histogram-owdelay/statistics",
    "histogram-ttl/base",
    "histogram-ttl/statistics",
    "histogram-rtt/base",
    "histogram-rtt/statistics",
    "packet-count-lost/aggregations",
    "packet-count-lost/base",
    "packet-count-lost-bidir/aggregations",
    "packet-count-lost-bidir/base",
    "packet-count-sent/aggregations",
    "packet-count-sent/base",
    "packet-duplicates/base",
    "packet-duplicates-bidir/base",
    "packet-loss-rate/aggregations",
    "packet-loss-rate/base",
    "packet-loss-rate-bidir/aggregations",
    "packet-loss-rate-bidir/base",
    "packet-reorders/base",
    "packet-reorders-bidir/base",
    "packet-retransmits/base",
    "packet-retransmits-subintervals/base",
    "packet-trace/base",
    "packet-trace-multi/base",
    "path-mtu/base",
    "streams-packet-retransmits/base",
    "streams-packet-retransmits-subintervals/base",
    "streams-throughput/base",
    "streams-throughput-subintervals/base",
    "throughput/averages",
    "throughput/base",
    "throughput-subintervals/base",
    "time-error-estimates/base",
    "pscheduler-run-href/base",
    "pscheduler-raw/base",
}};

bool in_data_field_map(const std::string& key) {
  return std::find(data_field_map_keys.begin(), data_field_map_keys.end(), key) != data_field_map_keys.end();
}

// A werkzeug HTTPException: Flask answers it with werkzeug's HTML page.
struct Abort : std::runtime_error {
  Abort(int status, const std::string& description) : std::runtime_error(description), status(status) {}
  int status;
};

constexpr std::string_view not_found_text =
    "The requested URL was not found on the server. If you entered the URL manually please check your spelling "
    "and try again.";

// (Templates: Reply is private to EsmondArchive, whose members instantiate them.)
template <typename Reply>
Reply werkzeug_page(int status, const std::string& description) {
  const std::string title = status == 400 ? "Bad Request" : status == 404 ? "Not Found" : "Internal Server Error";
  Reply reply;
  reply.status = status;
  reply.content_type = "text/html; charset=utf-8";
  reply.body = "<!doctype html>\n<html lang=en>\n<title>" + std::to_string(status) + " " + title +
               "</title>\n<h1>" + title + "</h1>\n<p>" + description + "</p>\n";
  return reply;
}

// Flask's json_response: sorted keys, indent 4, a final newline.
template <typename Reply>
Reply json_reply(const json& value) {
  Reply reply;
  reply.body = value.dump(4) + "\n";
  return reply;
}

// werkzeug's MultiDict.get: the first value of a name.
std::optional<std::string> first_value(const httplib::Request& req, const std::string& name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name, 0);
}

struct Paging {
  int64_t size = default_limit;
  int64_t offset = 0;
};

// data.py / metadata.py: an empty value means the default; "0" is a page of
// nothing (Python's "0" is a true string); more than the maximum is a 400,
// not clamped.
Paging paging_of(const httplib::Request& req) {
  Paging paging;
  for (const auto& [name, field] : {std::pair{"limit", &paging.size}, std::pair{"offset", &paging.offset}}) {
    const std::optional<std::string> text = first_value(req, name);
    if (!text || text->empty()) continue;
    const std::optional<int64_t> value = esmond::parse_python_int(*text);
    if (!value) throw Abort(400, std::string(name) + " parameter must be an integer");
    *field = *value;
  }
  if (paging.size > max_limit)
    throw Abort(400, "limit parameter cannot exceed " + std::to_string(max_limit));
  return paging;
}

std::vector<std::string> segments_of(std::string_view path) {
  std::vector<std::string> parts;
  size_t at = 1;  // after the leading '/'
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    parts.emplace_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return parts;
}

std::string root_of(const httplib::Request& req, const std::string& fallback) {
  const std::string host = req.get_header_value("Host");
  return host.empty() ? fallback : "http://" + host;
}

// metadata.py _get_next_link / _get_prev_link: the request's URL with limit
// and offset replaced (dict(parse_qsl) keeps each name's first place).
std::string page_url(const httplib::Request& req, const std::string& root, int64_t limit, int64_t offset) {
  std::vector<std::pair<std::string, std::string>> query;
  const size_t mark = req.target.find('?');
  if (mark != std::string::npos) {
    const std::string text = req.target.substr(mark + 1);
    for (size_t at = 0; at <= text.size();) {
      size_t amp = text.find('&', at);
      if (amp == std::string::npos) amp = text.size();
      const std::string piece = text.substr(at, amp - at);
      at = amp + 1;
      if (piece.empty()) continue;
      const size_t eq = piece.find('=');
      const std::string name = piece.substr(0, eq), value = eq == std::string::npos ? "" : piece.substr(eq + 1);
      auto it = std::find_if(query.begin(), query.end(), [&](const auto& p) { return p.first == name; });
      if (it == query.end()) query.emplace_back(name, value);
      else it->second = value;
    }
  }
  using Change = std::pair<std::string, int64_t>;
  for (const auto& [name, value] : {Change{"limit", limit}, Change{"offset", offset}}) {
    auto it = std::find_if(query.begin(), query.end(), [&](const auto& p) { return p.first == name; });
    if (it == query.end()) query.emplace_back(name, std::to_string(value));
    else it->second = std::to_string(value);
  }
  std::string url = root + req.path + "?";
  for (size_t i = 0; i < query.size(); ++i) url += (i ? "&" : "") + query[i].first + "=" + query[i].second;
  return url;
}

json next_link(const httplib::Request& req, const std::string& root, int64_t size, int64_t offset, int64_t count) {
  if (size + offset >= count) return nullptr;
  const int64_t next_offset = size + offset;
  const int64_t next_limit = next_offset + size > count && next_offset < count ? count - next_offset : size;
  return page_url(req, root, next_limit, next_offset);
}

json previous_link(const httplib::Request& req, const std::string& root, int64_t size, int64_t offset) {
  if (offset == 0) return nullptr;
  if (size > offset) return page_url(req, root, offset, 0);
  return page_url(req, root, size, offset - size);
}

// elmond gives the test spec's values, not esmond's strings.
json spec_value(const std::string& text) {
  if (const std::optional<int64_t> integer = esmond::parse_python_int(text)) return *integer;
  char* end = nullptr;
  const double number = std::strtod(text.c_str(), &end);
  if (!text.empty() && end == text.c_str() + text.size()) return number;
  return text;
}

std::string_view test_type_of(esmond::SeriesKind kind) {
  switch (kind) {
    case esmond::SeriesKind::latency: return "latencybg";
    case esmond::SeriesKind::throughput: return "throughput";
    case esmond::SeriesKind::trace: return "trace";
    case esmond::SeriesKind::rtt: return "rtt";
  }
  return "";
}

// data.py _extract_result_stats of one run: Logstash's statistics of the
// run's histogram, every one a float (mode a list of floats).
json run_statistics(const json& histogram) {
  json stats = esmond::histogram_statistics(histogram);
  const auto as_float = [](const json& v) -> json {
    if (v.is_string()) return std::stod(v.get<std::string>());
    if (v.is_number()) return v.get<double>();
    return v;
  };
  for (auto it = stats.begin(); it != stats.end(); ++it) {
    if (it.value().is_array()) {
      for (json& m : it.value()) m = as_float(m);
    } else {
      it.value() = as_float(it.value());
    }
  }
  return stats;
}

// The listing's filters as filters.py build_filters maps them onto the
// documents, for the fields the generated series have; any other
// non-reserved name is a term on test.spec.<name> (a parameter here).
bool listing_matches(const Series& s, const httplib::Request& req) {
  static const std::array<std::string_view, 11> reserved{{"format", "limit", "offset", "dns-match-rule", "time",
                                                          "time-start", "time-end", "time-range", "event-type",
                                                          "summary-type", "summary-window"}};
  const auto strip = [](std::string text) {
    return text.rfind("pscheduler/", 0) == 0 ? text.substr(11) : text;
  };
  for (const auto& [name, value] : req.params) {
    if (std::find(reserved.begin(), reserved.end(), name) != reserved.end()) {
      if (name == "event-type" && s.find(value) == nullptr) return false;
      continue;
    }
    const std::string* field = nullptr;
    if (name == "metadata-key") field = &s.key;
    else if (name == "source") field = &s.source;
    else if (name == "destination") field = &s.destination;
    else if (name == "measurement-agent") field = &s.measurement_agent;
    else if (name == "input-source") field = &s.input_source;
    else if (name == "input-destination") field = &s.input_destination;
    if (field != nullptr) {
      if (*field != value) return false;
      continue;
    }
    if (name == "tool-name") {
      if (strip(s.tool_name) != strip(value)) return false;
      continue;
    }
    if (name == "pscheduler-test-type") {
      if (test_type_of(s.kind) != value) return false;
      continue;
    }
    const std::pair<std::string, std::string> wanted{name, value};
    if (std::find(s.parameters.begin(), s.parameters.end(), wanted) == s.parameters.end()) return false;
  }
  return true;
}

}  // namespace

EsmondArchive::Reply EsmondArchive::elmond_route(const httplib::Request& req, int64_t now) {
  const std::string_view path = std::string_view(req.path).substr(proxy_path.size());
  try {
    if (path.empty() || path == "/") return elmond_listing(req, now);
    // app.py has '/<metadata_key>' and '/<key>/<et>/<summary-type>/<window>'
    // only, without trailing slashes: no /<key>/<et>/base, no /<key>/<et>/.
    const std::vector<std::string> parts = segments_of(path);
    const bool blank = std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
    if (blank || (parts.size() != 1 && parts.size() != 4)) throw Abort(404, std::string(not_found_text));
    if (parts.size() == 4) return elmond_data(req, parts, now);
    const Series* s = find_series(parts[0]);
    if (s == nullptr || !elmond_latest_run(*s, now))
      throw Abort(404, "Unable to find metadata with key " + parts[0]);
    Reply reply = json_reply<Reply>(elmond_metadata_json(*s, root_of(req, root_url()), now));
    reply.listed_keys.push_back(s->key);
    return reply;
  } catch (const Abort& e) {
    return werkzeug_page<Reply>(e.status, e.what());
  } catch (const esmond::BadRequest& e) {  // util.py handle_time_filters raises werkzeug's BadRequest
    return werkzeug_page<Reply>(400, e.what());
  }
}

EsmondArchive::Reply EsmondArchive::elmond_listing(const httplib::Request& req, int64_t now) {
  const Paging paging = paging_of(req);
  const esmond::TimeFilter time = esmond::parse_time_filter(esmond::Params(req.params.begin(), req.params.end()), now);
  // Time filters test the runs' start_time (filters.py build_time_filter),
  // not esmond's time-updated: a test is listed when a run of it started in
  // the window.
  const auto ran_between = [&](const Series& s) {
    bool found = false;
    for (const EventType& et : s.event_types) {
      store_.base_points(s, et, time.begin, time.end.value_or(INT64_MAX), now, [&](int64_t, const json&) {
        found = true;
        return false;
      });
      if (found) break;
    }
    return found;
  };
  std::vector<std::pair<int64_t, const Series*>> matched;
  for (const Series& s : series_) {
    const std::optional<int64_t> latest = elmond_latest_run(s, now);
    if (!latest || !listing_matches(s, req)) continue;
    if (time.has_filters && !ran_between(s)) continue;
    matched.emplace_back(*latest, &s);
  }
  // bucket_sort on the latest run, newest first.
  std::stable_sort(matched.begin(), matched.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  if (paging.size < 0 || paging.offset < 0) throw Abort(500, "The server encountered an internal error.");

  const std::string root = root_of(req, root_url());
  const auto count = static_cast<int64_t>(matched.size());
  json list = json::array();
  std::vector<std::string> keys;
  for (int64_t i = paging.offset; i < std::min(count, paging.offset + paging.size); ++i) {
    list.push_back(elmond_metadata_json(*matched[i].second, root, now));
    keys.push_back(matched[i].second->key);
  }
  if (!list.empty()) {  // "this is how esmond did it": the counts on the first element
    list[0]["metadata-count-total"] = count;
    list[0]["metadata-previous-page"] = previous_link(req, root, paging.size, paging.offset);
    list[0]["metadata-next-page"] = next_link(req, root, paging.size, paging.offset, count);
  }
  Reply reply = json_reply<Reply>(list);
  reply.listed_keys = std::move(keys);
  return reply;
}

EsmondArchive::Reply EsmondArchive::elmond_data(const httplib::Request& req, const std::vector<std::string>& parts,
                                                int64_t now) {
  const std::string& key = parts[0];
  const std::string& event_type = parts[1];
  const std::string& summary_type = parts[2];
  const std::optional<int64_t> window = esmond::parse_python_int(parts[3]);
  if (!window) throw Abort(400, "Summary window must be an int");
  const Paging paging = paging_of(req);
  if (*window > 0) {
    static const std::array<int64_t, 3> rollups{{300, 3600, 86400}};  // DEFAULT_SUMMARY_WINDOW_ROLLUP_NAME
    if (std::find(rollups.begin(), rollups.end(), *window) == rollups.end())
      throw Abort(400, std::to_string(*window) + " is not a supported summary_window");
    if (summary_type != "aggregations" && summary_type != "averages" && summary_type != "statistics")
      throw Abort(400, "Unable to build aggregation for " + event_type + "/" + summary_type);
  } else if (!in_data_field_map(event_type + "/" + summary_type) && event_type != "pscheduler-raw") {
    throw Abort(400, "Unrecognized event type " + event_type);
  }
  const esmond::TimeFilter time = esmond::parse_time_filter(esmond::Params(req.params.begin(), req.params.end()), now);

  Reply reply;
  reply.listed_keys.push_back(key);
  json list = json::array();
  // Rollups (window > 0): data.py's loop skips every date_histogram bucket
  // (its `psched_result` stays empty for them), so elmond serves [].
  if (*window <= 0) {
    if (paging.size < 0 || paging.offset < 0 || paging.offset + paging.size > max_result_window)
      throw Abort(500, "The server encountered an internal error and was unable to complete your request. Either "
                       "the server is overloaded or there is an error in the application.");
    const Series* s = find_series(key);
    int64_t seen = 0;
    if (s != nullptr && paging.size > 0) {
      // OpenSearch returns `size` documents from `from`; elmond then drops
      // those that lack the field, so the page can come back short.
      elmond_documents(*s, event_type, summary_type, time.begin, time.end.value_or(INT64_MAX), now,
                       [&](int64_t ts, const json* val) {
                         if (seen++ < paging.offset) return true;
                         if (val != nullptr) {
                           list.push_back({{"ts", ts}, {"val", *val}});
                           ++reply.points;
                         }
                         return seen < paging.offset + paging.size;
                       });
    }
  }
  reply.body = list.dump(4) + "\n";
  return reply;
}

void EsmondArchive::elmond_documents(const Series& s, const std::string& event_type, const std::string& summary_type,
                                     int64_t begin, int64_t end, int64_t now,
                                     const std::function<bool(int64_t, const json*)>& emit) const {
  const EventType* et = s.find(event_type);
  if (et == nullptr) return;
  const bool statistics = summary_type == "statistics";
  if (!statistics && summary_type != "base") return;  // other window-0 combinations: not modelled (README.md)
  if (statistics && et->type != esmond::ValueType::histogram) return;
  const double rate = options_.elmond_missing_field_rate;
  store_.base_points(s, *et, begin, end, now, [&](int64_t ts, const json& val) {
    const bool lacks_field =
        event_type != "failures" && !s.from_runs &&
        esmond::unit(esmond::mix(options_.seed, static_cast<uint64_t>(s.index), esmond::name_hash(event_type),
                                 static_cast<uint64_t>(ts), esmond::name_hash("elmond-missing-field"))) < rate;
    if (lacks_field) return emit(ts, nullptr);
    if (!statistics) return emit(ts, &val);
    const json stats = run_statistics(val);
    return emit(ts, &stats);
  });
}

std::optional<int64_t> EsmondArchive::elmond_latest_run(const Series& s, int64_t now) const {
  std::optional<int64_t> latest;
  for (const EventType& et : s.event_types)
    if (const std::optional<int64_t> written = store_.time_updated(s, et, now))
      latest = std::max(latest.value_or(INT64_MIN), *written - options_.ingest_delay);
  return latest;
}

// metadata.py EsmondMetadata.search, one bucket: the test's fields from its
// latest run, event types from the test type, each with util.py build_uri's
// base-uri (/<key>/<et>/base/0) and the summaries of elmond's summaries.py.
json EsmondArchive::elmond_metadata_json(const Series& s, const std::string& root, int64_t now) const {
  const std::string uri = std::string(proxy_path) + "/" + s.key;
  const std::optional<int64_t> latest = elmond_latest_run(s, now);
  json event_types = json::array();
  for (const EventType& et : s.event_types) {
    json summaries = json::array();
    for (const esmond::Summary& summary : et.summaries)
      summaries.push_back({{"event-type", et.name},
                           {"summary-type", summary.type},
                           {"summary-window", summary.window},  // an integer, unlike esmond's string
                           {"uri", uri + "/" + et.name + "/" + esmond::summary_type_plural(summary.type) + "/" +
                                       std::to_string(summary.window)}});
    json entry = {{"event-type", et.name}, {"base-uri", uri + "/" + et.name + "/base/0"}, {"summaries", summaries}};
    if (latest) entry["time-updated"] = *latest - run_added_lead;
    event_types.push_back(std::move(entry));
  }
  json m = {
      {"metadata-key", s.key},
      {"uri", uri},
      {"url", root + uri},
      {"measurement-agent", s.measurement_agent},
      {"subject-type", "point-to-point"},
      {"source", s.source},
      {"destination", s.destination},
      {"tool-name", s.tool_name},
      {"time-duration", nullptr},
      {"pscheduler-test-type", test_type_of(s.kind)},
      {"input-source", s.input_source},
      {"input-destination", s.input_destination},
      {"event-types", event_types},
  };
  for (const auto& [name, value] : s.parameters) {
    if (name == "time-interval") continue;  // esmond's, not elmond's
    m[name] = spec_value(value);
  }
  return m;
}

}  // namespace gapless::test
