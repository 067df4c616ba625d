// Proves which sink takes which message: the accept rules (exact, prefix
// ending in >, nothing else special), the defaults per protocol, bad entries
// refused naming the key, and the door's refusal naming the destination and
// every sink with its list.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/destination_filter.hpp"
#include "core/error.hpp"

using gapless::accepts;
using gapless::parse_config;

namespace {

std::string config_error(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "";
}

const std::string kStompSink = "[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:61613\"]\n";

}  // namespace

TEST_CASE("accept: an exact entry takes that destination only, a prefix ending in > every one that starts with it",
          "[config][accept]") {
  const std::vector<std::string> accept = {"/topic/perfsonar.>", "/queue/exact"};
  CHECK(accepts(accept, "/topic/perfsonar.raw.throughput"));
  CHECK(accepts(accept, "/topic/perfsonar."));
  CHECK_FALSE(accepts(accept, "/topic/perfsonar"));  // the prefix includes the dot
  CHECK_FALSE(accepts(accept, "/topic/other"));
  CHECK(accepts(accept, "/queue/exact"));
  CHECK_FALSE(accepts(accept, "/queue/exact.more"));  // no > : exact only
  CHECK_FALSE(accepts(accept, "/queue/exac"));
  // Nothing else is special: * and . are plain characters.
  CHECK(accepts({"/topic/*"}, "/topic/*"));
  CHECK_FALSE(accepts({"/topic/*"}, "/topic/x"));
  CHECK_FALSE(accepts({}, "/topic/x"));
}

TEST_CASE("accept left out: a stomp sink takes /topic/ and /queue/, an http sink the pushed runs", "[config][accept]") {
  const auto config = parse_config(kStompSink, "test.toml");
  CHECK(config.sinks.front().accept == std::vector<std::string>{"/topic/>", "/queue/>"});
  CHECK(gapless::default_accept("http") == std::vector<std::string>{"/pscheduler/>"});
  CHECK(accepts(gapless::default_accept("http"), "/pscheduler/run/throughput"));
  CHECK_FALSE(accepts(gapless::default_accept("http"), "/topic/perfsonar.raw.throughput"));
  CHECK_FALSE(accepts(gapless::default_accept("stomp"), "/pscheduler/run/throughput"));
  CHECK(gapless::default_config().sinks.front().accept == gapless::default_accept("stomp"));
  // A sink built in code, accept empty: its protocol's default.
  gapless::SinkConfig built;
  built.protocol = "http";
  CHECK(gapless::accept_of(built) == gapless::default_accept("http"));
}

TEST_CASE("accept given replaces the default; a bad entry is refused naming the key and the entry",
          "[config][accept]") {
  const auto config = parse_config(kStompSink + "accept = [\"/topic/perfsonar.>\"]\n", "test.toml");
  CHECK(config.sinks.front().accept == std::vector<std::string>{"/topic/perfsonar.>"});

  const std::string two = kStompSink + "[[sink]]\nname = \"b\"\nbrokers = [\"stomp://127.0.0.1:61613\"]\n";
  CHECK_THAT(config_error(two + "accept = [\"topic/x\"]\n"), Catch::Contains("sink[1].accept[0]: \"topic/x\" must start with /"));
  CHECK_THAT(config_error(two + "accept = [\"/topic/x\", \"/topic/>.raw\"]\n"),
             Catch::Contains("sink[1].accept[1]: \"/topic/>.raw\" has > before its end"));
  CHECK_THAT(config_error(two + "accept = [\"\"]\n"), Catch::Contains("sink[1].accept[0]: \"\" must start with /"));
  CHECK_THAT(config_error(two + "accept = []\n"), Catch::Contains("sink[1].accept: empty, the sink would take no message"));
  CHECK_THAT(config_error(two + "accept = \"/topic/>\"\n"), Catch::Contains("sink[1].accept: expected an array of strings"));
}

TEST_CASE("the door names the sinks that take a destination, or refuses it naming it and every sink's list",
          "[accept]") {
  auto config = parse_config(kStompSink + "accept = [\"/topic/perfsonar.raw.>\"]\n" +
                                 "[[sink]]\nname = \"desy\"\nbrokers = [\"stomp://127.0.0.1:61613\"]\n",
                             "test.toml");
  CHECK(gapless::destination_takers(config.sinks, "/topic/perfsonar.raw.throughput").sinks ==
        std::vector<std::string>{"cern", "desy"});
  CHECK(gapless::destination_takers(config.sinks, "/topic/perfsonar.summary.throughput").sinks ==
        std::vector<std::string>{"desy"});
  const gapless::DestinationTakers none = gapless::destination_takers(config.sinks, "/pscheduler/run/rtt");
  CHECK_FALSE(none.taken());
  CHECK_THAT(none.refusal, Catch::Contains("no sink takes destination \"/pscheduler/run/rtt\""));
  CHECK_THAT(none.refusal, Catch::Contains("sink \"cern\" accepts [/topic/perfsonar.raw.>]"));
  CHECK_THAT(none.refusal, Catch::Contains("sink \"desy\" accepts [/topic/>, /queue/>]"));
  CHECK(gapless::destination_takers({}, "/topic/x").refusal.find("no sink is configured") != std::string::npos);
}
