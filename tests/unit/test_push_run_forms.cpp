// Proves what a pushed run becomes (push/run_forms.hpp): the run itself,
// body unchanged, for a sink that takes /pscheduler/run/<test type>, with
// x-ps-observer and content-type and its start as window time; its OSG
// messages for a sink that takes /topic/perfsonar.raw.*, under the series
// key esmond_points gives; each form only when a sink takes it; nothing a
// sink takes refused, never journaled for nobody; the same body the same
// gapless-id, another body another.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "core/config.hpp"
#include "osg/pscheduler_run.hpp"
#include "push/run_forms.hpp"

using gapless::push::forms_of;
using gapless::push::FormsSettings;
using gapless::push::NoSinkTakes;

namespace {

std::string sample_run() {
  std::ifstream in(std::string(GAPLESS_SOURCE_DIR) + "/tests/data/pscheduler/throughput-tcp.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str()).dump();  // compact, as the archiver sends it
}

FormsSettings settings_for(const std::string& sinks) {
  return FormsSettings::of(gapless::parse_config(sinks, "test.toml"));
}

const std::string kStomp = "[[sink]]\nname = \"brokers\"\nbrokers = [\"stomp://localhost:61613\"]\n";
const std::string kHttp = "[[sink]]\nname = \"logstash\"\nprotocol = \"http\"\nurl = \"https://ls.example.org/\"\n";

}  // namespace

TEST_CASE("for an http sink the run is journaled unchanged with its observer, content-type and start", "[push]") {
  const std::string body = sample_run();
  const auto forms = forms_of(body, "192.0.2.10", settings_for(kHttp));
  REQUIRE(forms.pushed.appended.size() == 1);
  CHECK(forms.pushed.series.empty());  // no sink takes OSG's destinations
  const auto& run = forms.pushed.appended[0];
  CHECK(run.body == body);
  CHECK(run.destination == "/pscheduler/run/throughput");
  CHECK(run.headers == gapless::journal::Headers{{"x-ps-observer", "192.0.2.10"}, {"content-type", "application/json"}});
  CHECK(run.window_ts == gapless::osg::parse_run(body).start_ts);
  CHECK(run.gapless_id == gapless::push::run_gapless_id(forms.run_id, body));
}

TEST_CASE("the same body gets the same gapless-id; a changed body or another run another", "[push]") {
  const std::string body = sample_run();
  const auto settings = settings_for(kHttp);
  CHECK(forms_of(body, "", settings).pushed.appended[0].gapless_id ==
        forms_of(body, "192.0.2.10", settings).pushed.appended[0].gapless_id);
  nlohmann::json changed = nlohmann::json::parse(body);
  changed["reference"] = {{"note", "retried"}};
  CHECK(forms_of(changed.dump(), "", settings).pushed.appended[0].gapless_id !=
        forms_of(body, "", settings).pushed.appended[0].gapless_id);
}

TEST_CASE("for a stomp sink the run becomes its OSG messages, one series each, with the datapoint digest",
          "[push]") {
  const std::string body = sample_run();
  const auto forms = forms_of(body, "192.0.2.10", settings_for(kStomp));
  CHECK(forms.pushed.appended.empty());
  REQUIRE_FALSE(forms.pushed.series.empty());
  const auto points = gapless::osg::esmond_points(gapless::osg::parse_run(body),
                                                  "https://ps1.example.net/esmond/perfsonar/archive/", "192.0.2.10");
  REQUIRE(forms.pushed.series.size() == points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& series = forms.pushed.series[i];
    CHECK(series.key.metadata_key == points[i].series.metadata_key);
    CHECK(series.key.event_type == points[i].series.event_type);
    REQUIRE(series.messages.size() == 1);
    CHECK(series.messages[0].destination == "/topic/perfsonar.raw." + series.key.event_type);
    REQUIRE(series.datapoints.size() == 1);
    CHECK(series.datapoints[0].digest == points[i].point.digest);
  }
}

TEST_CASE("[push] archive_url names the archive of the OSG messages' series", "[push]") {
  auto settings = settings_for(kStomp);
  settings.archive_url = "https://gateway.example.org/esmond/perfsonar/archive/";
  for (const auto& series : forms_of(sample_run(), "", settings).pushed.series)
    CHECK(series.key.archive_url == "https://gateway.example.org/esmond/perfsonar/archive/");
}

TEST_CASE("a run no sink takes any form of is refused, naming the destinations", "[push]") {
  const std::string sinks = "[[sink]]\nname = \"queues\"\nbrokers = [\"stomp://localhost:61613\"]\naccept = [\"/queue/>\"]\n";
  CHECK_THROWS_AS(forms_of(sample_run(), "", settings_for(sinks)), NoSinkTakes);
  CHECK_FALSE(gapless::push::some_sink_takes_pushes(gapless::parse_config(sinks, "test.toml").sinks));
  CHECK(gapless::push::some_sink_takes_pushes(gapless::parse_config(kHttp, "test.toml").sinks));
}

TEST_CASE("a run whose OSG messages cannot be built is still journaled for a sink that forwards runs, and refused "
          "only when the brokers alone would take it", "[push]") {
  // No run.href, no task.href, no [push] archive_url: no archive to name the
  // OSG messages' series by. pScheduler gives a refused run up, so a 400 would
  // lose it for the Logstash too.
  nlohmann::json run = nlohmann::json::parse(sample_run());
  run.erase("run");
  run.erase("task");
  const std::string body = run.dump();

  const auto both = forms_of(body, "", settings_for(kStomp + kHttp));
  CHECK(both.pushed.appended.size() == 1);
  CHECK(both.pushed.series.empty());
  CHECK(both.osg_refusal.find("run.href") != std::string::npos);

  try {
    forms_of(body, "", settings_for(kStomp));
    FAIL("a run only the brokers take, without its OSG messages, was not refused");
  } catch (const gapless::osg::RunError& e) {
    CHECK(e.field() == "run.href");
  }
}
