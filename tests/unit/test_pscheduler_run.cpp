// Proves a run pushed by pScheduler's http archiver is checked field by field
// (a body that is not a run is refused naming the field), named for the
// sinks' filters, and mapped to the esmond-style points elmond would serve
// for it, so its OSG messages are the ones a backfill of the host would make.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "osg/pscheduler_run.hpp"

using gapless::osg::parse_run;
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

TEST_CASE("a run as the http archiver sends it is read: id, test type, tool, start, outcome, host", "[pscheduler_run]") {
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
