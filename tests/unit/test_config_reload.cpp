// Proves a SIGHUP reload changes what changed and nothing else, and refuses a
// bad configuration or a changed restart-only key naming the key
// (daemon/config_reload.hpp); the daemon carrying the plan out is
// integration/test_reload.cpp.
#include <catch2/catch.hpp>

#include <string>

#include "core/config.hpp"
#include "core/error.hpp"
#include "daemon/config_reload.hpp"

using gapless::Config;
using gapless::parse_config;
using gapless::daemon::decide_reload;
using gapless::daemon::plan_reload;
using gapless::daemon::ReloadDecision;
using gapless::daemon::ReloadPlan;

namespace {

const char* const kRunning = R"(
[journal]
path = "/var/lib/gapless/journal.db"
[[sink]]
name = "cern"
brokers = ["stomp://cern.example:61613"]
[[sink]]
name = "fnal"
brokers = ["stomp://fnal.example:61613"]
[[archive]]
name = "ps1"
url = "http://ps1.example/esmond/perfsonar/archive/"
[[archive]]
name = "ps2"
url = "http://ps2.example/esmond/perfsonar/archive/"
)";

ReloadPlan plan_for(const std::string& next_text) {
  const ReloadDecision decision = plan_reload(parse_config(kRunning, "running.toml"), parse_config(next_text, "next.toml"));
  INFO(decision.refusal);
  REQUIRE(decision.plan);
  return *decision.plan;
}

std::string refusal_for(const std::string& next_text) {
  const ReloadDecision decision = plan_reload(parse_config(kRunning, "running.toml"), parse_config(next_text, "next.toml"));
  REQUIRE_FALSE(decision.plan);
  return decision.refusal;
}

std::string with(const std::string& extra) { return std::string(kRunning) + extra; }

// kRunning with the first `from` replaced by `to`.
std::string replaced(const std::string& from, const std::string& to) {
  std::string text = kRunning;
  text.replace(text.find(from), from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("reload: the same file again changes nothing (no sender or collector restarted for nothing)", "[reload]") {
  const ReloadPlan plan = plan_for(kRunning);
  CHECK(plan.changes_nothing());
  CHECK_FALSE(plan.restart_collector);
}

TEST_CASE("reload: an added sink is started, a removed one stopped, the others untouched", "[reload]") {
  const ReloadPlan plan = plan_for(replaced("name = \"fnal\"", "name = \"infn\""));
  CHECK(plan.sinks_added == std::vector<std::string>{"infn"});
  CHECK(plan.sinks_removed == std::vector<std::string>{"fnal"});
  CHECK(plan.sinks_changed.empty());  // cern goes on
  CHECK_FALSE(plan.restart_collector);
}

TEST_CASE("reload: a sink with any setting changed is restarted with its new settings", "[reload]") {
  const ReloadPlan plan = plan_for(replaced("brokers = [\"stomp://fnal.example:61613\"]",
                                            "brokers = [\"stomp://fnal.example:61613\"]\nwindow = 8"));
  CHECK(plan.sinks_changed == std::vector<std::string>{"fnal"});
  CHECK(plan.sinks_added.empty());
  CHECK(plan.sinks_removed.empty());
  CHECK_FALSE(plan.restart_collector);
}

TEST_CASE("reload: archives added, removed or changed restart the collector with the new list", "[reload]") {
  SECTION("added") {
    const ReloadPlan plan = plan_for(with("[[archive]]\nname = \"ps3\"\nurl = \"http://ps3.example/esmond/perfsonar/archive/\"\n"));
    CHECK(plan.archives_added == std::vector<std::string>{"ps3"});
    CHECK(plan.restart_collector);
    CHECK(plan.sinks_changed.empty());
  }
  SECTION("removed") {
    std::string next = kRunning;
    next.erase(next.find("[[archive]]\nname = \"ps2\""));
    const ReloadPlan plan = plan_for(next);
    CHECK(plan.archives_removed == std::vector<std::string>{"ps2"});
    CHECK(plan.restart_collector);
  }
  SECTION("changed") {
    const ReloadPlan plan = plan_for(with("poll_interval = \"1m\"\n"));  // appended to ps2's table
    CHECK(plan.archives_changed == std::vector<std::string>{"ps2"});
    CHECK(plan.restart_collector);
  }
  SECTION("[collector] changed") {
    CHECK(plan_for(with("[collector]\nmax_concurrent_requests = 2\n")).restart_collector);
  }
  SECTION("the smallest sink max_message_size changed (the collector splits below it)") {
    const ReloadPlan plan = plan_for(replaced("brokers = [\"stomp://cern.example:61613\"]",
                                              "brokers = [\"stomp://cern.example:61613\"]\nmax_message_size = 1000000"));
    CHECK(plan.sinks_changed == std::vector<std::string>{"cern"});
    CHECK(plan.restart_collector);
  }
}

TEST_CASE("reload: log_level applies", "[reload]") {
  const ReloadPlan plan = plan_for(std::string("log_level = \"debug\"\n") + kRunning);
  CHECK(plan.log_level_changed);
  CHECK_FALSE(plan.changes_nothing());
}

TEST_CASE("reload: a changed restart-only key refuses the whole reload, naming the key and why", "[reload]") {
  SECTION("journal.path") {
    const std::string next = replaced("/var/lib/gapless/journal.db", "/srv/journal.db");
    // A sink added in the same file is not started either: all or nothing.
    const std::string refusal = refusal_for(next + "[[sink]]\nname = \"infn\"\nbrokers = [\"stomp://i:1\"]\n");
    CHECK_THAT(refusal, Catch::Contains("next.toml") && Catch::Contains("journal.path: restart needed"));
  }
  SECTION("journal.group") {
    CHECK_THAT(refusal_for(std::string("[journal]\npath = \"/var/lib/gapless/journal.db\"\ngroup = \"adm\"\n") +
                           std::string(kRunning).substr(std::string(kRunning).find("[[sink]]"))),
               Catch::Contains("journal.group: restart needed"));
  }
  SECTION("http.listen") {
    CHECK_THAT(refusal_for(with("[http]\nlisten = \"127.0.0.1:9464\"\n")), Catch::Contains("http.listen: restart needed"));
  }
  SECTION("push.listen, push.token_file") {
    CHECK_THAT(refusal_for(with("[push]\nlisten = \"127.0.0.1:11284\"\ntoken_file = \"/etc/gapless/push-token\"\n")),
               Catch::Contains("push.listen: restart needed") && Catch::Contains("push.token_file: restart needed"));
  }
}

TEST_CASE("reload: a configuration that does not load is refused with its error, which names the key", "[reload]") {
  const Config running = parse_config(kRunning, "running.toml");
  Config next;
  const ReloadDecision decision = decide_reload(
      running, [] { return parse_config(with("[[sink]]\nname = \"infn\"\nbrokers = [\"stomp://i:1\"]\nwindow = \"four\"\n"), "next.toml"); },
      next);
  REQUIRE_FALSE(decision.plan);
  CHECK_THAT(decision.refusal, Catch::Contains("next.toml") && Catch::Contains("sink[2].window"));
}

TEST_CASE("reload: an unknown log_level is refused at load, naming the key", "[reload]") {
  CHECK_THROWS_WITH(parse_config(std::string("log_level = \"verbose\"\n") + kRunning, "next.toml"),
                    Catch::Contains("log_level: unknown level \"verbose\""));
}

TEST_CASE("reload: a sink's changed accept list restarts its sender and the collector, whose door reads the lists",
          "[reload][accept]") {
  const ReloadPlan plan = plan_for(replaced("name = \"fnal\"\n", "name = \"fnal\"\naccept = [\"/topic/perfsonar.>\"]\n"));
  CHECK(plan.sinks_changed == std::vector<std::string>{"fnal"});  // registered again with the list (daemon.cpp)
  CHECK(plan.restart_collector);
  // The default written out is no change at all.
  const ReloadPlan same = plan_for(replaced("name = \"fnal\"\n", "name = \"fnal\"\naccept = [\"/topic/>\", \"/queue/>\"]\n"));
  CHECK(same.changes_nothing());
}

TEST_CASE("reload: an http sink is added, and restarted when its url, headers or method change, as any sink",
          "[reload][http-sink]") {
  const std::string http = "[[sink]]\nname = \"logstash\"\nprotocol = \"http\"\nurl = \"https://ls.example/logstash\"\n";
  const ReloadPlan added = plan_for(with(http));
  CHECK(added.sinks_added == std::vector<std::string>{"logstash"});
  CHECK(added.sinks_changed.empty());
  const Config running = parse_config(with(http), "running.toml");
  for (const std::string& change : {std::string("url = \"https://other.example/logstash\"\n"),
                                    std::string("headers = { x-ps-observer = \"192.0.2.10\" }\n"),
                                    std::string("method = \"post\"\n")}) {
    INFO(change);
    std::string next = with(http);
    if (change.rfind("url", 0) == 0)
      next.replace(next.find("url = \"https://ls.example/logstash\"\n"),
                   std::string("url = \"https://ls.example/logstash\"\n").size(), change);
    else
      next += change;
    const ReloadDecision decision = plan_reload(running, parse_config(next, "next.toml"));
    REQUIRE(decision.plan);
    CHECK(decision.plan->sinks_changed == std::vector<std::string>{"logstash"});
    CHECK(decision.plan->sinks_added.empty());
  }
}
