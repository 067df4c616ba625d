// Proves messages are built in OSG's format as consumers read it, no datapoint dropped, each with a stable gapless-id.
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "osg/message_builder.hpp"

using gapless::osg::build_messages;
using gapless::osg::BuildOptions;
using gapless::osg::Datapoint;
using gapless::osg::datapoint_digest;
using gapless::osg::message_frame_size;
using gapless::journal::SeriesKey;
using nlohmann::json;

namespace {

const char* const kKey = "f6b732e9f351487a96126f0c25e5e546";
const char* const kArchive = "https://ps.example.net/esmond/perfsonar/archive/";

// The metadata object of the reference's esmond doc example (1.5), as the
// archive serves it, plus the absolute `url` DRF adds.
json doc_metadata() {
  return json::parse(R"({"source":"10.1.1.1","destination":"10.1.1.2",
    "event-types":[
     {"base-uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/throughput/base",
      "event-type":"throughput",
      "summaries":[{"summary-type":"average","summary-window":"86400","time-updated":1397482735,
                    "uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/throughput/averages/86400"}],
      "time-updated":1397482735},
     {"base-uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/failures/base",
      "event-type":"failures","summaries":[],"time-updated":1397315930}],
    "input-source":"host1.example.net","input-destination":"host2.example.net",
    "ip-transport-protocol":"tcp","measurement-agent":"10.1.1.1",
    "metadata-key":"f6b732e9f351487a96126f0c25e5e546","subject-type":"point-to-point",
    "time-duration":"20","tool-name":"bwctl/iperf3",
    "uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/",
    "url":"https://ps.example.net/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/"})");
}

SeriesKey raw_series(const std::string& event_type) {
  SeriesKey series;
  series.archive_url = kArchive;
  series.metadata_key = kKey;
  series.event_type = event_type;
  return series;
}

SeriesKey summary_series(const std::string& event_type, const std::string& type, int64_t window) {
  SeriesKey series = raw_series(event_type);
  series.summary_type = type;
  series.summary_window = window;
  return series;
}

BuildOptions options_at(double rsv_timestamp) {
  BuildOptions options;
  options.rsv_timestamp = rsv_timestamp;
  return options;
}

std::vector<Datapoint> numbered_points(int64_t first_ts, size_t count) {
  std::vector<Datapoint> points;
  for (size_t i = 0; i < count; ++i)
    points.push_back({first_ts + static_cast<int64_t>(i) * 60, json(static_cast<double>(i) / 7.0)});
  return points;
}

std::string header(const gapless::journal::NewMessage& message, const std::string& name) {
  for (const auto& [key, value] : message.headers)
    if (key == name) return value;
  FAIL("no header " << name);
  return "";
}

// A consumer written for the OSG format, as network_analytics'
// NetworkWeatherCollector and DIRAC's NetworkAgent.processMessage read it:
// headers["event-type"], body["meta"]["input_source"/"input_destination"],
// then `for ts, val in body['datapoints'].iteritems(): float(ts)`, sorted by ts.
struct Measurement {
  std::string event_type;
  std::string source;
  std::string destination;
  double time = 0;
  json value;
};

std::vector<Measurement> osg_raw_consumer(const gapless::journal::Headers& headers, const std::string& text) {
  std::map<std::string, std::string> head(headers.begin(), headers.end());
  json body = json::parse(text);
  std::vector<Measurement> out;
  for (const auto& [ts, value] : body["datapoints"].items()) {
    size_t used = 0;
    double time = std::stod(ts, &used);  // Python's float(ts)
    REQUIRE(used == ts.size());
    out.push_back({head.at("event-type"), body["meta"]["input_source"].get<std::string>(),
                   body["meta"]["input_destination"].get<std::string>(), time, value});
  }
  return out;
}

// network_analytics' NetworkMLTelemetryCollector: keeps the summaries whose
// window and type match as strings, reads r[0] (ts) and r[1] (value).
std::vector<std::pair<int64_t, json>> osg_summary_consumer(const std::string& text, const std::string& window,
                                                           const std::string& type) {
  json body = json::parse(text);
  std::vector<std::pair<int64_t, json>> out;
  for (const auto& summary : body["summaries"])
    if (summary["summary_window"] == window && summary["summary_type"] == type)
      for (const auto& row : summary["summary_data"]) out.emplace_back(row[0].get<int64_t>(), row[1]);
  return out;
}

std::string error_of(const SeriesKey& series, const json& metadata) {
  try {
    build_messages(series, metadata, numbered_points(1000, 1), options_at(1));
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "";
}

std::vector<int64_t> all_ts(const std::vector<gapless::journal::NewMessage>& messages) {
  std::vector<int64_t> out;
  for (const auto& message : messages) {
    json body = json::parse(message.body);
    for (const auto& [ts, value] : body["datapoints"].items()) out.push_back(std::stoll(ts));
  }
  return out;
}

}  // namespace

TEST_CASE("a raw throughput message looks as rsv-perfsonar published it", "[osg]") {
  std::vector<Datapoint> points = {{1397421672, json::parse("7016320000.0")}, {1397425272, json(9123456789.5)}};
  auto messages = build_messages(raw_series("throughput"), doc_metadata(), points, options_at(1473706480.1234));
  REQUIRE(messages.size() == 1);
  const auto& message = messages[0];
  CHECK(message.destination == "/topic/perfsonar.raw.throughput");
  gapless::journal::Headers expected = {{"event-type", "throughput"},
                                        {"input-source", "host1.example.net"},
                                        {"input-destination", "host2.example.net"},
                                        {"org_metadata_key", kKey},
                                        {"ts_start", "1397421672"},
                                        {"summaries", "0"},
                                        {"rsv-timestamp", "1473706480.12"}};
  CHECK(message.headers == expected);
  CHECK(message.gapless_id.size() == 32);
  CHECK(message.priority == gapless::journal::Priority::live);

  // The whole body, byte for byte: meta first, then datapoints in ts order,
  // and the float 7016320000.0 keeps its ".0".
  CHECK(message.body ==
        R"({"meta":{"destination":"10.1.1.2","input_destination":"host2.example.net",)"
        R"("input_source":"host1.example.net","ip_transport_protocol":"tcp","measurement_agent":"10.1.1.1",)"
        R"("metadata_key":"f6b732e9f351487a96126f0c25e5e546","source":"10.1.1.1","subject_type":"point-to-point",)"
        R"("time_duration":"20","tool_name":"bwctl/iperf3","org_metadata_key":"f6b732e9f351487a96126f0c25e5e546"},)"
        R"("datapoints":{"1397421672":7016320000.0,"1397425272":9123456789.5}})");
  json body = json::parse(message.body);
  CHECK(body["datapoints"]["1397421672"].is_number_float());
  CHECK(body["datapoints"]["1397421672"].get<double>() == 7016320000.0);
}

TEST_CASE("meta carries every measurement field with underscores, and no archive layout", "[osg]") {
  json metadata = doc_metadata();
  metadata["pscheduler-test-type"] = "throughput";
  metadata["bw-parallel-streams"] = "4";
  metadata["sample-size"] = 600;  // a non-string keeps its JSON type
  metadata["metadata-count-total"] = 2;  // esmond's paging keys on a listing's first element
  metadata["metadata-next-page"] = nullptr;
  metadata["metadata-previous-page"] = nullptr;
  auto messages = build_messages(raw_series("throughput"), metadata, numbered_points(1000, 1), options_at(1));
  json meta = json::parse(messages.at(0).body)["meta"];
  CHECK(meta["input_source"] == "host1.example.net");
  CHECK(meta["input_destination"] == "host2.example.net");
  CHECK(meta["time_duration"] == "20");
  CHECK(meta["metadata_key"] == kKey);
  CHECK(meta["org_metadata_key"] == kKey);
  CHECK(meta["pscheduler_test_type"] == "throughput");
  CHECK(meta["bw_parallel_streams"] == "4");
  CHECK(meta["sample_size"] == 600);
  for (const auto& key : {"event_types", "event-types", "uri", "url", "metadata_count_total",
                          "metadata_next_page", "metadata_previous_page"})
    CHECK_FALSE(meta.contains(key));
  for (const auto& [key, value] : meta.items()) CHECK(key.find('-') == std::string::npos);
}

TEST_CASE("packet-loss-rate floats round-trip exactly", "[osg]") {
  std::vector<Datapoint> points = {{1397555532, json::parse("0.04666666666666667")},
                                   {1397555592, json::parse("0.0")},
                                   {1397555652, json::parse("1.0")},
                                   {1397555712, json(1.0 / 3.0)}};
  auto messages = build_messages(raw_series("packet-loss-rate"), doc_metadata(), points, options_at(1));
  REQUIRE(messages.size() == 1);
  const std::string& text = messages[0].body;
  CHECK(text.find(R"("1397555532":0.04666666666666667)") != std::string::npos);
  CHECK(text.find(R"("1397555592":0.0,)") != std::string::npos);
  CHECK(text.find(R"("1397555652":1.0,)") != std::string::npos);
  json body = json::parse(text);
  for (const auto& point : points) {
    const json& value = body["datapoints"][std::to_string(point.ts)];
    CHECK(value.is_number_float());
    CHECK(value.get<double>() == json::parse(point.value).get<double>());  // bit-exact, not approximately
  }
}

TEST_CASE("every esmond value shape passes through unchanged", "[osg]") {
  struct Case {
    const char* event_type;
    const char* value;
  };
  const Case cases[] = {
      {"histogram-owdelay", R"({"34.4":506,"34.5":85,"34.6":5})"},
      {"histogram-ttl", R"({"59":600})"},
      {"packet-trace",  // bwctl era
       R"([{"error_message":null,"ip":"198.124.238.65","mtu":"9000","query":"1","rtt":"0.246","success":1,"ttl":"1"},)"
       R"({"error_message":null,"ip":"198.124.238.66","mtu":"9000","query":"1","rtt":"1.5","success":1,"ttl":"2"}])"},
      {"packet-trace",  // pScheduler: int ttl/query, float rtt, dashed error-message, as object
       R"([{"ttl":1,"query":1,"success":1,"ip":"10.0.0.1","hostname":"r1.example.net",)"
       R"("as":{"number":64512,"owner":"EXAMPLE"},"rtt":0.345,"mtu":9000},)"
       R"({"ttl":2,"query":1,"success":0,"error-message":"requestTimedOut"}])"},
      {"failures", R"({"error":"bwctl: Unable to contact remote server"})"},
      {"throughput-subintervals",
       R"([{"duration":"1.000000","start":"0.000000","val":0},{"duration":"1.000000","start":"1.000000","val":9413120000.0}])"},
      {"packet-retransmits", "600"},
      {"packet-count-sent", "0"},
      {"time-error-estimates", "0.000124"},
  };
  for (const Case& c : cases) {
    INFO(c.event_type << " " << c.value);
    json value = json::parse(c.value);
    auto messages = build_messages(raw_series(c.event_type), doc_metadata(), {{1397566094, value}}, options_at(1));
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].destination == std::string("/topic/perfsonar.raw.") + c.event_type);
    json body = json::parse(messages[0].body);
    CHECK(body["datapoints"]["1397566094"] == value);
    CHECK(body["datapoints"]["1397566094"].type() == value.type());
  }
  // The float inside a subinterval array keeps its text too.
  auto messages = build_messages(raw_series("throughput-subintervals"), doc_metadata(),
                                 {{1, json::parse(R"([{"val":9413120000.0}])")}}, options_at(1));
  CHECK(messages[0].body.find(R"({"val":9413120000.0})") != std::string::npos);
}

TEST_CASE("a summary message has summaries:1 and a string summary_window", "[osg]") {
  std::vector<Datapoint> points = {{1473706440, json::parse("0.0")}, {1473710040, json::parse("0.0016666666666666668")}};
  auto messages = build_messages(summary_series("packet-loss-rate", "aggregation", 3600), doc_metadata(), points,
                                 options_at(1473706480.5));
  REQUIRE(messages.size() == 1);
  const auto& message = messages[0];
  CHECK(message.destination == "/topic/perfsonar.summary.packet-loss-rate");
  gapless::journal::Headers expected = {{"event-type", "packet-loss-rate"},
                                        {"input-source", "host1.example.net"},
                                        {"input-destination", "host2.example.net"},
                                        {"org_metadata_key", kKey},
                                        {"ts_start", "1473706440"},
                                        {"summaries", "1"},
                                        {"rsv-timestamp", "1473706480.50"}};
  CHECK(message.headers == expected);
  CHECK(message.body.find(
            R"(,"summaries":[{"event_type":"packet-loss-rate","summary_type":"aggregation","summary_window":"3600",)"
            R"("summary_data":[[1473706440,0.0],[1473710040,0.0016666666666666668]]}]})") != std::string::npos);
  json body = json::parse(message.body);
  CHECK(body["meta"]["input_source"] == "host1.example.net");
  CHECK(body["meta"]["org_metadata_key"] == kKey);
  CHECK_FALSE(body.contains("datapoints"));
  REQUIRE(body["summaries"].size() == 1);
  CHECK(body["summaries"][0]["summary_window"].is_string());

  auto rows = osg_summary_consumer(message.body, "3600", "aggregation");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].first == 1473706440);
  CHECK(rows[1].second.get<double>() == 0.0016666666666666668);

  // statistics/0, the summary consumers filter on, with a histogram-shaped value.
  json statistics = json::parse(R"({"maximum":"34.4","mean":34.38,"median":34.4,"minimum":"34.3","mode":["34.4"]})");
  auto stats = build_messages(summary_series("histogram-owdelay", "statistics", 0), doc_metadata(),
                              {{1397504013, statistics}}, options_at(1));
  REQUIRE(stats.size() == 1);
  CHECK(header(stats[0], "summaries") == "1");
  auto stat_rows = osg_summary_consumer(stats[0].body, "0", "statistics");
  REQUIRE(stat_rows.size() == 1);
  CHECK(stat_rows[0].second == statistics);
}

TEST_CASE("a consumer written for the OSG format reads the messages unchanged", "[osg]") {
  std::vector<Datapoint> points = {{1473706479, json::parse("0.0")},
                                   {1473706539, json::parse("0.04666666666666667")},
                                   {1473706599, json::parse("0.01")}};
  auto messages = build_messages(raw_series("packet-loss-rate"), doc_metadata(), points, options_at(1473706480.12));
  REQUIRE(messages.size() == 1);
  auto measurements = osg_raw_consumer(messages[0].headers, messages[0].body);
  REQUIRE(measurements.size() == 3);
  for (size_t i = 0; i < points.size(); ++i) {
    CHECK(measurements[i].event_type == "packet-loss-rate");
    CHECK(measurements[i].source == "host1.example.net");
    CHECK(measurements[i].destination == "host2.example.net");
    CHECK(measurements[i].time == static_cast<double>(points[i].ts));
    CHECK(measurements[i].value == json::parse(points[i].value));
  }
}

TEST_CASE("datapoints are sliced 100 to a message, consecutive, with each slice's ts_start", "[osg]") {
  auto points = numbered_points(1473700000, 250);
  auto messages = build_messages(raw_series("packet-loss-rate"), doc_metadata(), points, options_at(1));
  REQUIRE(messages.size() == 3);
  const size_t sizes[] = {100, 100, 50};
  size_t next = 0;
  std::set<std::string> ids;
  for (size_t m = 0; m < 3; ++m) {
    json body = json::parse(messages[m].body);
    CHECK(body["datapoints"].size() == sizes[m]);
    CHECK(header(messages[m], "ts_start") == std::to_string(points[next].ts));
    for (const auto& [ts, value] : body["datapoints"].items()) {
      CHECK(ts == std::to_string(points[next].ts));
      CHECK(value == json::parse(points[next].value));
      ++next;
    }
    ids.insert(messages[m].gapless_id);
  }
  CHECK(next == points.size());
  CHECK(ids.size() == 3);

  BuildOptions options = options_at(1);
  options.datapoints_per_message = 200;  // ps-collector's step
  CHECK(build_messages(raw_series("packet-loss-rate"), doc_metadata(), points, options).size() == 2);
  CHECK(build_messages(raw_series("packet-loss-rate"), doc_metadata(), {}, options).empty());
}

TEST_CASE("the datapoints of a message are in ascending ts order whatever the input order", "[osg]") {
  std::vector<Datapoint> points = {{300, json(3)}, {100, json(1)}, {200, json(2)}, {100, json(1)}};
  auto messages = build_messages(raw_series("packet-count-sent"), doc_metadata(), points, options_at(1));
  REQUIRE(messages.size() == 1);
  CHECK(all_ts(messages) == std::vector<int64_t>{100, 200, 300});  // the exact repeat collapses
  CHECK(header(messages[0], "ts_start") == "100");
  CHECK(messages[0].body.find(R"("datapoints":{"100":1,"200":2,"300":3})") != std::string::npos);

  points.push_back({200, json(5)});
  CHECK_THROWS_AS(build_messages(raw_series("packet-count-sent"), doc_metadata(), points, options_at(1)),
                  gapless::Error);
}

TEST_CASE("a frame above max_frame_bytes is split, never dropped, order kept", "[osg]") {
  std::vector<Datapoint> points;
  for (int i = 0; i < 100; ++i) points.push_back({1000 + i, json(std::string(90, static_cast<char>('a' + i % 26)))});
  auto series = summary_series("failures", "aggregation", 3600);  // summaries too, to exercise both layouts
  for (const auto& identity : {raw_series("failures"), series}) {
    auto whole = build_messages(identity, doc_metadata(), points, options_at(1));
    REQUIRE(whole.size() == 1);
    const size_t full = message_frame_size(whole[0]);
    REQUIRE(full > whole[0].body.size() + 200);  // the headers count

    // The size rule is exact: a frame of exactly the limit fits, one byte less splits.
    BuildOptions options = options_at(1);
    options.max_frame_bytes = full;
    CHECK(build_messages(identity, doc_metadata(), points, options).size() == 1);
    options.max_frame_bytes = full - 1;
    CHECK(build_messages(identity, doc_metadata(), points, options).size() == 2);

    const size_t headers = full - whole[0].body.size();
    options.max_frame_bytes = headers + 3200;  // about 25 points fit
    auto split = build_messages(identity, doc_metadata(), points, options);
    CHECK(split.size() == 4);  // 100 -> 50 + 50 -> 4 x 25
    std::vector<int64_t> seen;
    for (const auto& message : split) {
      CHECK(message_frame_size(message) <= options.max_frame_bytes);
      json body = json::parse(message.body);
      const json& entries = identity.summary_type.empty() ? body["datapoints"] : body["summaries"][0]["summary_data"];
      bool first = true;
      for (const auto& entry : entries.items()) {
        int64_t ts = identity.summary_type.empty() ? std::stoll(entry.key()) : entry.value()[0].get<int64_t>();
        if (first) CHECK(header(message, "ts_start") == std::to_string(ts));
        first = false;
        seen.push_back(ts);
      }
    }
    std::vector<int64_t> expected;
    for (const auto& point : points) expected.push_back(point.ts);
    CHECK(seen == expected);
  }
}

TEST_CASE("a single datapoint larger than max_frame_bytes still becomes its own message", "[osg]") {
  std::vector<Datapoint> points = {{1, json(1)}, {2, json(std::string(5000, 'x'))}, {3, json(3)}, {4, json(4)}};
  BuildOptions options = options_at(1);
  options.max_frame_bytes = 1500;
  auto messages = build_messages(raw_series("failures"), doc_metadata(), points, options);
  CHECK(all_ts(messages) == std::vector<int64_t>{1, 2, 3, 4});
  bool oversized_alone = false;
  for (const auto& message : messages) {
    auto ts = all_ts({message});
    if (message_frame_size(message) > 1500) {
      CHECK(ts == std::vector<int64_t>{2});
      oversized_alone = true;
    }
  }
  CHECK(oversized_alone);

  options.max_frame_bytes = 0;  // nothing fits: one message per point
  CHECK(build_messages(raw_series("failures"), doc_metadata(), points, options).size() == 4);
}

TEST_CASE("gapless-ids are a pure function of the series and the slice's content", "[osg]") {
  auto points = numbered_points(1473700000, 250);
  auto ids = [](const SeriesKey& series, const json& metadata, const std::vector<Datapoint>& data,
                double rsv_timestamp) {
    std::vector<std::string> out;
    for (const auto& message : build_messages(series, metadata, data, options_at(rsv_timestamp)))
      out.push_back(message.gapless_id);
    return out;
  };
  auto base = ids(raw_series("packet-loss-rate"), doc_metadata(), points, 1473706480.12);
  REQUIRE(base.size() == 3);

  // Stable across calls, re-collection time and metadata changes.
  CHECK(ids(raw_series("packet-loss-rate"), doc_metadata(), points, 1473706480.12) == base);
  CHECK(ids(raw_series("packet-loss-rate"), doc_metadata(), points, 1600000000.99) == base);
  json changed = doc_metadata();
  changed["tool-name"] = "pscheduler/iperf3";
  CHECK(ids(raw_series("packet-loss-rate"), changed, points, 1) == base);

  // A corrected value changes its slice's id, and only that one.
  auto corrected = points;
  corrected[150] = Datapoint(corrected[150].ts, json(0.5));
  auto after = ids(raw_series("packet-loss-rate"), doc_metadata(), corrected, 1);
  CHECK(after[0] == base[0]);
  CHECK(after[1] != base[1]);
  CHECK(after[2] == base[2]);
  // An int where a float was is a different value as sent.
  corrected = points;
  corrected[0] = Datapoint(corrected[0].ts, json(0));
  CHECK(ids(raw_series("packet-loss-rate"), doc_metadata(), corrected, 1)[0] != base[0]);

  // Each part of the series' identity counts.
  auto other_archive = raw_series("packet-loss-rate");
  other_archive.archive_url = "https://ps2.example.net/esmond/perfsonar/archive/";
  CHECK(ids(other_archive, doc_metadata(), points, 1)[0] != base[0]);
  auto other_key = raw_series("packet-loss-rate");
  other_key.metadata_key = "0123456789abcdef0123456789abcdef";
  CHECK(ids(other_key, doc_metadata(), points, 1)[0] != base[0]);
  CHECK(ids(raw_series("packet-loss-rate-bidir"), doc_metadata(), points, 1)[0] != base[0]);
  auto hourly = ids(summary_series("packet-loss-rate", "aggregation", 3600), doc_metadata(), points, 1);
  auto daily = ids(summary_series("packet-loss-rate", "aggregation", 86400), doc_metadata(), points, 1);
  auto average = ids(summary_series("packet-loss-rate", "average", 3600), doc_metadata(), points, 1);
  CHECK(hourly[0] != base[0]);
  CHECK(hourly[0] != daily[0]);
  CHECK(hourly[0] != average[0]);

  // Slicing differently is a different message.
  BuildOptions options = options_at(1);
  options.datapoints_per_message = 50;
  CHECK(build_messages(raw_series("packet-loss-rate"), doc_metadata(), points, options)[0].gapless_id != base[0]);
}

TEST_CASE("the gapless-id derivation never changes", "[osg]") {
  // Pinned values, checked once against an independent Python rendering of
  // the derivation documented at slice_id (message_builder.cpp). If this
  // fails, existing ids (in journals and at consumers) would no longer match
  // re-collected data. Add a new scheme instead.
  CHECK(datapoint_digest(json::parse("7016320000.0")) == "84d4103e47a64f4e2298528660d51d9e");
  CHECK(datapoint_digest(json::parse(R"({"34.5":85,"34.4":506})")) == "41bf9caf1b36de025fc34d489983dea6");
  std::vector<Datapoint> points = {{1397421672, json::parse("7016320000.0")}, {1397425272, json(600)}};
  CHECK(build_messages(raw_series("throughput"), doc_metadata(), points, options_at(1))[0].gapless_id == "9bd7becf71722c331511907998106975");
  CHECK(build_messages(summary_series("throughput", "average", 86400), doc_metadata(), points, options_at(1))[0]
            .gapless_id == "adc86ac5b820a9f29da9ab6ebcbb68f4");
}

TEST_CASE("datapoint_digest identifies a value as sent", "[osg]") {
  CHECK(datapoint_digest(json(0.5)) == datapoint_digest(json::parse("0.5")));
  CHECK(datapoint_digest(json::parse(R"({"a":1,"b":2})")) == datapoint_digest(json::parse(R"({"b":2,"a":1})")));
  CHECK(datapoint_digest(json(1)) != datapoint_digest(json(1.0)));
  CHECK(datapoint_digest(json(1)) != datapoint_digest(json("1")));
  CHECK(datapoint_digest(json::parse(R"([{"ttl":"1"}])")) != datapoint_digest(json::parse(R"([{"ttl":1}])")));
  CHECK(datapoint_digest(json(0.04666666666666667)).size() == 32);
}

namespace {

// What the collector's fast reading gives for `text`, or "(refused)".
std::string simdjson_canonical(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  if (parser.parse(text).get(element) != simdjson::SUCCESS) return "(refused)";
  try {
    return gapless::osg::canonical_text(element);
  } catch (const gapless::Error&) {
    return "(refused)";
  }
}

}  // namespace

TEST_CASE("canonical_text of a simdjson value is nlohmann's text of it, byte for byte", "[osg]") {
  // Every value shape of the reference (floats, ints, histograms, both
  // packet-trace shapes, failures, subintervals) and the edges where two JSON
  // libraries could write a value differently. A difference would give an
  // existing datapoint a new digest and its message a new gapless-id.
  const std::vector<std::string> values = {
      "7016320000.0", "7016320000", "0.04666666666666667", "0.0016666666666666668", "0.0", "0", "-5",
      "18446744073709551615", "9223372036854775807", "-9223372036854775808", "1e-05", "1E+300", "2.5e-8",
      "123456789012345678", "0.1", "1.10", "100.000", "5e3", "-0.0", "-0", "3.141592653589793", "1.7976931348623157e308",
      "4.9e-324", "true", "false", "null", R"("text")", R"("")",
      R"({"34.5":85,"34.4":506})", R"({"b":2,"a":1,"a":3})", R"({"59":600, "60" : 12})",
      R"({"error":"unable to reach \"host\":\n timeout\t\u0001 \u00e9 \/ end"})", R"("caf\u00e9 \ud83d\ude00")",
      R"([{"ttl":"1","query":"1","success":"1","ip":"10.0.0.1","rtt":"0.5","mtu":"1500","error_message":null}])",
      R"([{"ip":"198.51.100.7","hostname":"router.example.net","rtt":0.47,"ttl":1,"as":{"number":64512,"owner":"EXAMPLE"}},{"error":"no reply"}])",
      R"([{"start":0,"duration":1.000038,"val":941651200},{"start":1.000038,"duration":0.999966,"val":9.4e8}])",
      R"({"a":{"z":[1,2.0,{"y":null,"x":[]}],"b":{}},"A":"Z"})", R"([])", R"({})", "  [ 1 , 2 ]  "};
  for (const std::string& text : values) {
    INFO(text);
    CHECK(simdjson_canonical(text) == json::parse(text).dump());
  }
  // Numbers beyond a double or a 64-bit integer: simdjson refuses the page
  // and the exact reading (nlohmann) takes it.
  CHECK(simdjson_canonical("1e400") == "(refused)");
  CHECK(simdjson_canonical("123456789012345678901234567890") == "(refused)");

  // Doubles across the whole range, written as archives write them.
  std::mt19937_64 random(20161114);
  std::uniform_int_distribution<uint64_t> bits;
  for (int i = 0; i < 20000; ++i) {
    uint64_t raw = bits(random);
    double number;
    std::memcpy(&number, &raw, sizeof number);
    if (!std::isfinite(number) || number == 0) continue;
    char text[64];
    std::snprintf(text, sizeof text, i % 2 ? "%.17g" : "%.6g", number);
    INFO(text);
    REQUIRE(simdjson_canonical(text) == json::parse(text).dump());
  }
}

TEST_CASE("a series without the fields consumers need is refused, naming it", "[osg]") {
  json metadata = doc_metadata();
  metadata.erase("input-source");
  std::string error = error_of(raw_series("throughput"), metadata);
  CHECK(error.find("input-source") != std::string::npos);
  CHECK(error.find(kArchive) != std::string::npos);
  CHECK(error.find(kKey) != std::string::npos);
  CHECK(error.find("throughput") != std::string::npos);

  metadata = doc_metadata();
  metadata["input-destination"] = nullptr;
  error = error_of(summary_series("packet-loss-rate", "aggregation", 3600), metadata);
  CHECK(error.find("input-destination") != std::string::npos);
  CHECK(error.find("packet-loss-rate") != std::string::npos);
  CHECK(error.find("aggregation 3600") != std::string::npos);

  error = error_of(raw_series(""), doc_metadata());
  CHECK(error.find("empty event type") != std::string::npos);
  CHECK(error.find(kKey) != std::string::npos);

  // Refused even before any data arrives.
  metadata.erase("input-destination");
  CHECK_THROWS_AS(build_messages(raw_series("throughput"), metadata, {}, options_at(1)), gapless::Error);
}
