// Proves a run pushed by pScheduler's http archiver is checked field by field
// (a body that is not a run is refused naming the field), named for the
// sinks' filters, and mapped to the esmond-style points elmond would serve
// for it, so its OSG messages are the ones a backfill of the host would make.
#include <catch2/catch.hpp>
#include <simdjson.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "core/config.hpp"
#include "osg/message_builder.hpp"
#include "osg/pscheduler_run.hpp"
#include "osg/test_checksum.hpp"
#include "stomp/message_rules.hpp"

using gapless::osg::esmond_points;
using gapless::osg::logstash_canonical_json;
using gapless::osg::parse_run;
using gapless::osg::RunPoint;
using gapless::osg::run_destination;
using gapless::osg::RunError;
using nlohmann::json;

namespace {

// The smallest run the archiver could send, compact as it sends it.
const char* const kMinimalRun =
    R"({"id":"a44e447a-4cd0-429c-8937-cdcef742cc82","schedule":{"start":"2019-09-10T14:55:35Z","duration":"PT14S"},)"
    R"("test":{"type":"throughput","spec":{"schema":1,"source":"ps1.example.net","dest":"ps2.example.net"}},)"
    R"("tool":{"name":"iperf3","version":"1.0"},"participants":["ps1.example.net","ps2.example.net"],)"
    R"("result":{"succeeded":true},"reference":null,)"
    R"("task":{"href":"https://ps1.example.net/pscheduler/tasks/07e0d165-8c1e-4b7e-a4f0-7a5b2f6c5d3e"},)"
    R"("run":{"href":"https://ps1.example.net/pscheduler/tasks/07e0d165-8c1e-4b7e-a4f0-7a5b2f6c5d3e/runs/a44e447a-4cd0-429c-8937-cdcef742cc82",)"
    R"("start-time":"2019-09-10T14:55:35Z","state":"finished","participant":0}})";

// The minimal run with `edit` applied to its JSON.
template <typename Edit>
std::string edited(Edit edit) {
  json run = json::parse(kMinimalRun);
  edit(run);
  return run.dump();
}

const char* const kArchive = "https://ps1.example.net/esmond/perfsonar/archive/";
const char* const kObserver = "192.0.2.10";

// A run body as the archiver sends it (tests/data/pscheduler/).
std::string sample(const std::string& name) {
  std::ifstream in(std::string(GAPLESS_SOURCE_DIR) + "/tests/data/pscheduler/" + name);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every event type elmond can serve for the test types mapped.
const std::vector<std::string>& every_event_type() {
  static const std::vector<std::string> types = {
      "failures", "throughput", "throughput-subintervals", "packet-retransmits", "packet-retransmits-subintervals",
      "packet-loss-rate", "packet-count-lost", "packet-count-sent", "histogram-owdelay", "histogram-ttl",
      "packet-duplicates", "packet-reorders", "time-error-estimates", "packet-trace", "path-mtu",
      "packet-trace-multi", "histogram-rtt", "packet-duplicates-bidir", "packet-loss-rate-bidir",
      "packet-count-lost-bidir", "packet-reorders-bidir"};
  return types;
}

// event type -> canonical value text.
std::map<std::string, std::string> values_of(const std::vector<RunPoint>& points) {
  std::map<std::string, std::string> values;
  for (const RunPoint& point : points) values[point.series.event_type] = point.point.value;
  return values;
}

std::vector<RunPoint> osg_points(const std::string& file) {
  return esmond_points(parse_run(sample(file)), kArchive, kObserver);
}

std::vector<RunPoint> all_points(const std::string& file) {
  return esmond_points(parse_run(sample(file)), kArchive, kObserver, every_event_type());
}

// The field a RunError names for `body` ("" when the body is accepted).
std::string refused_field(const std::string& body) {
  try {
    parse_run(body);
  } catch (const RunError& e) {
    return e.field();
  }
  return "";
}

}  // namespace

TEST_CASE("a run as the http archiver sends it is read: id, test type, tool, start, outcome, host",
          "[pscheduler_run]") {
  const auto run = parse_run(kMinimalRun);
  CHECK(run.id == "a44e447a-4cd0-429c-8937-cdcef742cc82");
  CHECK(run.test_type == "throughput");
  CHECK(run.tool == "iperf3");
  CHECK(run.start_ts == 1568127335);
  CHECK(run.succeeded);
  CHECK(run.host == "ps1.example.net");
  CHECK(run.run_href.ends_with("/runs/a44e447a-4cd0-429c-8937-cdcef742cc82"));
  CHECK(run_destination(run) == "/pscheduler/run/throughput");
}

TEST_CASE("a body holding a number beyond a double is refused as not JSON (a 400 naming the body), not an "
          "escaped json error (a 500 the archiver retries for ever) (fuzz: pscheduler_run, 8e64501)",
          "[pscheduler_run]") {
  CHECK(refused_field("8e64501") == "body");
  CHECK(refused_field(R"({"id": "x", "result": {"succeeded": true, "throughput": -1e999}})") == "body");
}

TEST_CASE("a failed run is a run", "[pscheduler_run]") {
  const auto run = parse_run(edited([](json& r) { r["result"] = {{"succeeded", false}, {"error", "No route"}}; }));
  CHECK_FALSE(run.succeeded);
}

TEST_CASE("a transformed run without task, run or participants is still a run", "[pscheduler_run]") {
  const auto run = parse_run(edited([](json& r) {
    r.erase("task");
    r.erase("run");
    r.erase("participants");
    r.erase("reference");
  }));
  CHECK(run.id == "a44e447a-4cd0-429c-8937-cdcef742cc82");
  CHECK(run.host.empty());
  CHECK(run.start_ts == 1568127335);
}

TEST_CASE("a run without id takes it from run.href", "[pscheduler_run]") {
  const auto run = parse_run(edited([](json& r) { r.erase("id"); }));
  CHECK(run.id == "a44e447a-4cd0-429c-8937-cdcef742cc82");
}

TEST_CASE("times with an offset and microseconds land on elmond's whole second", "[pscheduler_run]") {
  const auto run = parse_run(edited([](json& r) {
    r["schedule"]["start"] = "2019-09-10T10:55:35.734211-04:00";
    r["run"]["start-time"] = "2019-09-10T10:55:35.734211-04:00";
  }));
  CHECK(run.start_ts == 1568127335);
}

TEST_CASE("a body that is not a run is refused naming the field at fault and what was expected", "[pscheduler_run]") {
  CHECK(refused_field("not json") == "body");
  CHECK(refused_field("[1,2]") == "body");
  CHECK(refused_field(edited([](json& r) { r.erase("id"); r["run"].erase("href"); })) == "id");
  CHECK(refused_field(edited([](json& r) { r["id"] = 42; })) == "id");
  CHECK(refused_field(edited([](json& r) { r.erase("test"); })) == "test");
  CHECK(refused_field(edited([](json& r) { r["test"].erase("type"); })) == "test.type");
  CHECK(refused_field(edited([](json& r) { r["test"]["spec"] = "x"; })) == "test.spec");
  CHECK(refused_field(edited([](json& r) { r.erase("tool"); })) == "tool");
  CHECK(refused_field(edited([](json& r) { r["tool"]["name"] = nullptr; })) == "tool.name");
  CHECK(refused_field(edited([](json& r) { r.erase("schedule"); })) == "schedule");
  CHECK(refused_field(edited([](json& r) { r["schedule"]["start"] = "yesterday"; })) == "schedule.start");
  CHECK(refused_field(edited([](json& r) { r["run"]["start-time"] = 5; })) == "run.start-time");
  CHECK(refused_field(edited([](json& r) { r.erase("result"); })) == "result");
  CHECK(refused_field(edited([](json& r) { r["result"]["succeeded"] = "yes"; })) == "result.succeeded");
  CHECK(refused_field(edited([](json& r) { r["participants"] = {"a", 3}; })) == "participants[1]");
  CHECK(refused_field(edited([](json& r) { r["task"] = "t"; })) == "task");

  try {
    parse_run(edited([](json& r) { r["result"].erase("succeeded"); }));
    FAIL("a run without result.succeeded was accepted");
  } catch (const RunError& e) {
    CHECK(std::string(e.what()) == "not a pScheduler run: \"result.succeeded\" is missing (expected true or false)");
  }
}

TEST_CASE("a test type that cannot be a destination segment is refused naming test.type", "[pscheduler_run]") {
  for (const char* type : {"", "Throughput", "through.put", "a/b", "x y", "tab\t", "-x"}) {
    INFO(type);
    CHECK(refused_field(edited([&](json& r) { r["test"]["type"] = type; })) == "test.type");
  }
  CHECK(refused_field(edited([](json& r) { r["test"]["type"] = "s3-throughput"; })).empty());
}

TEST_CASE("a TCP throughput run gives elmond's throughput, retransmits and their subintervals", "[pscheduler_run]") {
  const auto points = osg_points("throughput-tcp.json");
  const auto values = values_of(points);
  CHECK(values == std::map<std::string, std::string>{
                      {"throughput", "9400280960.25"},
                      // elmond looks for `throughput` in the interval summaries, which carry throughput-bits.
                      {"throughput-subintervals", "[]"},
                      {"packet-retransmits", "53"},
                      {"packet-retransmits-subintervals",
                       R"([{"duration":5.000147,"start":0,"val":31},{"duration":5.000116,"start":5.000147,"val":22}])"}});
  for (const RunPoint& point : points) {
    CHECK(point.point.ts == 1715698535);  // run.start-time, 10:55:35-04:00
    CHECK(point.series.archive_url == kArchive);
    CHECK(point.series.metadata_key == "fa2e818f0bbc46352e841e48b065fa658de1cf224607db9c778c58bbccc5874d");
    CHECK(point.series.summary_type.empty());
    CHECK(point.series.summary_window == 0);
    CHECK(point.point.digest == gapless::osg::datapoint_digest(json::parse(point.point.value)));
  }
  const json& meta = points.front().metadata;
  CHECK(meta["input-source"] == "ps1.example.net");
  CHECK(meta["input-destination"] == "ps2.example.net");
  CHECK(meta["source"] == "ps1.example.net");  // no DNS in the request path: the name stays
  CHECK(meta["destination"] == "ps2.example.net");
  CHECK(meta["subject-type"] == "point-to-point");
  CHECK(meta["measurement-agent"] == kObserver);
  CHECK(meta["tool-name"] == "pscheduler/iperf3");
  CHECK(meta["pscheduler-test-type"] == "throughput");
  CHECK(meta["ip-transport-protocol"] == "tcp");
  CHECK(meta["time-duration"] == 14);
  CHECK(meta["bw-ignore-first-seconds"] == 2);
  CHECK(meta["metadata-key"] == points.front().series.metadata_key);
  CHECK(meta["pscheduler-reference-display-task-name"] == "OSG throughput");
  CHECK(meta["pscheduler-reference-psconfig-created-by-agent-hostname"] == "ps1.example.net");
  CHECK_FALSE(meta.contains("pscheduler-reference-_meta-secret"));
}

TEST_CASE("a UDP throughput run gives packets sent, lost and the loss rate, and no retransmits", "[pscheduler_run]") {
  const auto points = osg_points("throughput-udp.json");
  CHECK(values_of(points) == std::map<std::string, std::string>{{"throughput", "999871234.5"},
                                                                {"throughput-subintervals", "[]"},
                                                                {"packet-count-sent", "863210"},
                                                                {"packet-count-lost", "12"},
                                                                {"packet-loss-rate", "1.3901599842448535e-05"}});
  const json& meta = points.front().metadata;
  CHECK(meta["ip-transport-protocol"] == "udp");
  CHECK(meta["source"] == "192.0.2.10");
  CHECK(meta["destination"] == "198.51.100.20");
  CHECK(meta["bw-target-bandwidth"] == 1000000000);
}

TEST_CASE("a latencybg run gives the one-way delay and ttl histograms, counts and loss rate", "[pscheduler_run]") {
  const auto osg = values_of(osg_points("latencybg.json"));
  CHECK(osg == std::map<std::string, std::string>{
                   {"packet-count-sent", "600"},
                   {"histogram-owdelay", R"({"10.10":12,"10.20":398,"10.30":180,"11.00":7})"},
                   {"histogram-ttl", R"({"249":597})"},
                   {"packet-loss-rate", "0.005"},
                   {"packet-count-lost", "3"}});
  // What elmond also serves, outside OSG's list.
  const auto all = values_of(all_points("latencybg.json"));
  CHECK(all.at("packet-duplicates") == "0");
  CHECK(all.at("packet-reorders") == "1");
  CHECK(all.at("time-error-estimates") == "0.47");
  const json meta = osg_points("latencybg.json").front().metadata;
  CHECK(meta["sample-size"] == 600);
  CHECK(meta["time-probe-interval"] == 0.1);
  CHECK(meta["sample-bucket-width"] == 0.0001);
  CHECK(meta["time-duration"] == 60);
}

TEST_CASE("a trace run gives elmond's packet-trace: hop rtt in ms, mtu carried forward, errors kept",
          "[pscheduler_run]") {
  const auto osg = values_of(osg_points("trace.json"));
  REQUIRE(osg.size() == 1);
  CHECK(json::parse(osg.at("packet-trace")) == json::parse(R"([
    {"ttl":1,"query":1,"success":1,"ip":"192.0.2.1","hostname":"gw.example.net","rtt":0.412,"mtu":9000},
    {"ttl":2,"query":1,"success":1,"ip":"203.0.113.5","as":{"number":64500,"owner":"EXAMPLE-NET"},"rtt":2.1,"mtu":9000},
    {"ttl":3,"query":1,"success":0,"error-message":"no-reply","mtu":9000},
    {"ttl":4,"query":1,"success":1,"ip":"198.51.100.30","hostname":"ps3.example.org",
     "as":{"number":64501,"owner":"EXAMPLE-ORG"},"rtt":12.345,"mtu":1500}])"));
  const auto all = values_of(all_points("trace.json"));
  CHECK(all.at("path-mtu") == "1500");
  CHECK_FALSE(all.contains("packet-trace-multi"));  // only for paris-traceroute
  const json meta = osg_points("trace.json").front().metadata;
  CHECK(meta["time-probe-interval"] == 1);
  CHECK(meta["time-test-timeout"] == 5);
}

TEST_CASE("an rtt run gives the bidirectional counts and loss rate; its histogram is the esmond archiver's",
          "[pscheduler_run]") {
  const auto osg = values_of(osg_points("rtt.json"));
  CHECK(osg == std::map<std::string, std::string>{{"packet-count-sent", "5"},
                                                  {"packet-count-lost-bidir", "1"},
                                                  {"packet-loss-rate-bidir", "0.2"}});
  const auto all = values_of(all_points("rtt.json"));
  CHECK(all.at("histogram-rtt") == R"({"12.30":2,"12.31":1,"13.50":1})");
  CHECK(all.at("packet-duplicates-bidir") == "0");
  CHECK(all.at("packet-reorders-bidir") == "0");
  const json meta = osg_points("rtt.json").front().metadata;
  CHECK(meta["sample-size"] == 5);
  CHECK(meta["time-probe-interval"] == 1.0);
}

TEST_CASE("a failed run gives failures only, with its error; without an error, nothing", "[pscheduler_run]") {
  const auto points = all_points("throughput-failed.json");
  REQUIRE(points.size() == 1);
  CHECK(points.front().series.event_type == "failures");
  CHECK(points.front().point.value ==
        R"({"error":"iperf3 returned an error: unable to connect to server: Connection refused"})");
  CHECK(points.front().point.ts == 1715705735);
  json body = json::parse(sample("throughput-failed.json"));
  body["result"].erase("error");
  CHECK(esmond_points(parse_run(body.dump()), kArchive, kObserver, every_event_type()).empty());
}

TEST_CASE("the same run in another key order and spacing gives the same points, digests and key", "[pscheduler_run]") {
  for (const char* file : {"throughput-tcp.json", "throughput-udp.json", "latencybg.json", "trace.json", "rtt.json",
                           "throughput-failed.json"}) {
    INFO(file);
    const std::string compact = sample(file);
    const std::string reordered = json::parse(compact).dump(3);  // keys sorted, indented
    REQUIRE(reordered != compact);
    const auto a = all_points(file);
    const auto b = esmond_points(parse_run(reordered), kArchive, kObserver, every_event_type());
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].series.metadata_key == b[i].series.metadata_key);
      CHECK(a[i].series.event_type == b[i].series.event_type);
      CHECK(a[i].point.value == b[i].point.value);
      CHECK(a[i].point.digest == b[i].point.digest);
      CHECK(a[i].metadata == b[i].metadata);
    }
  }
}

TEST_CASE("the metadata key follows the test and tool, not the observer nor the run", "[pscheduler_run]") {
  const auto run = parse_run(sample("throughput-tcp.json"));
  const std::string key = gapless::osg::test_checksum(run, kObserver);
  CHECK(gapless::osg::test_checksum(run, "") == key);
  // Another spec (no omit, no ip-version): another test.
  CHECK(gapless::osg::test_checksum(parse_run(sample("throughput-failed.json")), kObserver) != key);
  json other = json::parse(sample("throughput-tcp.json"));
  other["id"] = "11111111-2222-4333-8444-555555555555";
  other["schedule"]["start"] = "2024-05-15T10:55:35-04:00";
  CHECK(gapless::osg::test_checksum(parse_run(other.dump()), kObserver) == key);
  other["tool"]["name"] = "nuttcp";
  CHECK(gapless::osg::test_checksum(parse_run(other.dump()), kObserver) != key);
}

TEST_CASE("the checksum's canonical JSON writes numbers and keys as perfSONAR's Logstash does", "[pscheduler_run]") {
  const json numbers = json::parse("[1, 1.0, 0, 0.0, -2.5, 0.5, 9400280960.25, 1e21, 1e20, 1.5e-7, 0.000001]");
  CHECK(logstash_canonical_json(numbers) ==
        "[1,1,0,0,-2.5,0.5,9400280960.25,1e+21,100000000000000000000,1.5e-7,0.000001]");
  CHECK(logstash_canonical_json(json::parse(R"({"b":1,"a":{"d":[true,null],"c":"x/y\u00e9\n"}})")) ==
        "{\"a\":{\"c\":\"x/y\xc3\xa9\\n\",\"d\":[true,null]},\"b\":1}");
  // Keys by UTF-16 code units: U+1F600 (a surrogate pair, 0xD83D) sorts before U+FF21.
  CHECK(logstash_canonical_json(json::parse("{\"\xef\xbc\xa1\":1,\"\xf0\x9f\x98\x80\":2}")) ==
        "{\"\xf0\x9f\x98\x80\":2,\"\xef\xbc\xa1\":1}");
}

TEST_CASE("a run whose measurements have the wrong shape is refused naming the field", "[pscheduler_run]") {
  const auto refused = [](const std::string& file, auto edit) {
    json body = json::parse(sample(file));
    edit(body);
    try {
      esmond_points(parse_run(body.dump()), kArchive, kObserver, every_event_type());
    } catch (const RunError& e) {
      return e.field();
    }
    return std::string();
  };
  CHECK(refused("throughput-tcp.json", [](json& b) { b["test"]["spec"].erase("dest"); }) == "test.spec.dest");
  CHECK(refused("throughput-tcp.json", [](json& b) { b["result"]["intervals"] = "x"; }) == "result.intervals");
  CHECK(refused("latencybg.json", [](json& b) { b["result"]["histogram-latency"] = "x"; }) ==
        "result.histogram-latency");
  CHECK(refused("latencybg.json", [](json& b) { b["result"]["histogram-ttl"]["249"] = "many"; }) ==
        "result.histogram-ttl.249");
  CHECK(refused("trace.json", [](json& b) { b["result"]["paths"][0][1]["rtt"] = "fast"; }) ==
        "result.paths[0][1].rtt");
  CHECK(refused("trace.json", [](json& b) { b["result"]["paths"] = {1}; }) == "result.paths[0]");
  CHECK(refused("rtt.json", [](json& b) { b["result"]["roundtrips"][0]["rtt"] = "soon"; }) ==
        "result.roundtrips[0].rtt");
}

TEST_CASE("each run's OSG messages go to /topic/perfsonar.raw.<event type> and pass the door", "[pscheduler_run]") {
  const gapless::osg::BuildOptions options;
  for (const char* file : {"throughput-tcp.json", "throughput-udp.json", "latencybg.json", "trace.json", "rtt.json",
                           "throughput-failed.json"}) {
    INFO(file);
    const auto points = osg_points(file);
    REQUIRE_FALSE(points.empty());
    for (const RunPoint& point : points) {
      const auto messages = gapless::osg::build_messages(point.series, point.metadata, {point.point}, options);
      REQUIRE(messages.size() == 1);
      const auto& message = messages.front();
      CHECK(message.destination == "/topic/perfsonar.raw." + point.series.event_type);
      auto headers = message.headers;
      headers.emplace_back("gapless-id", message.gapless_id);
      CHECK_FALSE(gapless::stomp::journal_refusal(message.destination, headers, options.refused_headers));
      const json body = json::parse(message.body);
      CHECK(body["datapoints"][std::to_string(point.point.ts)] == json::parse(point.point.value));
      CHECK(body["meta"]["input_source"] == point.metadata["input-source"]);
      CHECK(std::find(gapless::osg_event_types().begin(), gapless::osg_event_types().end(),
                      point.series.event_type) != gapless::osg_event_types().end());
    }
  }
}

TEST_CASE("a test type OSG never published gives no points, failed or not, and is not refused", "[pscheduler_run]") {
  // An http test has no dest: mapping it would refuse the run for a field it never needed.
  for (const bool succeeded : {true, false}) {
    json body = json::parse(sample("throughput-failed.json"));
    body["test"] = {{"type", "http"}, {"spec", {{"schema", 1}, {"url", "https://www.example.org/"}}}};
    body["tool"]["name"] = "curl";
    body["result"]["succeeded"] = succeeded;
    CHECK(esmond_points(parse_run(body.dump()), kArchive, kObserver, every_event_type()).empty());
  }
}

TEST_CASE("a backfill reading elmond's answer for the run finds each pushed point's value and digest",
          "[pscheduler_run]") {
  // elmond's answers as Python's json writes them (", " and ": ", keys in the
  // order elmond builds them), read the way the collector reads a data page.
  const std::map<std::pair<std::string, std::string>, std::string> answers = {
      {{"throughput-tcp.json", "throughput"}, R"([{"ts": 1715698535, "val": 9400280960.25}])"},
      {{"throughput-tcp.json", "packet-retransmits-subintervals"},
       R"([{"ts": 1715698535, "val": [{"start": 0, "duration": 5.000147, "val": 31}, {"start": 5.000147, "duration": 5.000116, "val": 22}]}])"},
      {{"throughput-tcp.json", "throughput-subintervals"}, R"([{"ts": 1715698535, "val": []}])"},
      {{"throughput-udp.json", "packet-loss-rate"}, R"([{"ts": 1715695802, "val": 1.3901599842448535e-05}])"},
      {{"latencybg.json", "histogram-owdelay"},
       R"([{"ts": 1715698800, "val": {"10.10": 12, "10.20": 398, "10.30": 180, "11.00": 7}}])"},
      {{"latencybg.json", "packet-loss-rate"}, R"([{"ts": 1715698800, "val": 0.005}])"},
      {{"trace.json", "packet-trace"},
       R"([{"ts": 1715700013, "val": [{"ttl": 1, "query": 1, "success": 1, "ip": "192.0.2.1", "hostname": "gw.example.net", "rtt": 0.412, "mtu": 9000}, )"
       R"({"ttl": 2, "query": 1, "success": 1, "ip": "203.0.113.5", "as": {"number": 64500, "owner": "EXAMPLE-NET"}, "rtt": 2.1, "mtu": 9000}, )"
       R"({"ttl": 3, "query": 1, "success": 0, "error-message": "no-reply", "mtu": 9000}, )"
       R"({"ttl": 4, "query": 1, "success": 1, "ip": "198.51.100.30", "hostname": "ps3.example.org", "as": {"number": 64501, "owner": "EXAMPLE-ORG"}, "rtt": 12.345, "mtu": 1500}]}])"},
      {{"rtt.json", "packet-loss-rate-bidir"}, R"([{"ts": 1715700607, "val": 0.2}])"},
      {{"throughput-failed.json", "failures"},
       R"([{"ts": 1715705735, "val": {"error": "iperf3 returned an error: unable to connect to server: Connection refused"}}])"},
  };
  simdjson::dom::parser parser;
  for (const auto& [which, answer] : answers) {
    const auto& [file, event_type] = which;
    INFO(file << " " << event_type);
    const auto points = all_points(file);
    const auto pushed = std::find_if(points.begin(), points.end(),
                                     [&](const RunPoint& p) { return p.series.event_type == event_type; });
    REQUIRE(pushed != points.end());
    simdjson::dom::element page = parser.parse(answer);
    simdjson::dom::element first = page.at(0);
    const auto read = gapless::osg::Datapoint::from_canonical_text(first["ts"].get_int64().value(),
                                                                   gapless::osg::canonical_text(first["val"]));
    CHECK(read.ts == pushed->point.ts);
    CHECK(read.value == pushed->point.value);
    CHECK(read.digest == pushed->point.digest);
  }
}
