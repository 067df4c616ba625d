// GET /healthz's decision (src/http/health.hpp), without sockets: each
// reason turns it 503 on its own, and a daemon with nothing wrong, or with
// a problem younger than stalled_after, answers "ok".
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/restart_watch.hpp"
#include "http/health.hpp"
#include "journal/size_limit.hpp"

using gapless::FaultSnapshot;
using gapless::HttpConfig;
using gapless::http::health_reasons;
using gapless::http::HealthInputs;
namespace journal = gapless::journal;

namespace {

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kMinute = 60'000;

HttpConfig rules() {
  HttpConfig config;
  config.stalled_after = std::chrono::minutes(15);
  config.failed_polls = 3;
  return config;
}

// Nothing parked: the oldest undelivered message is the oldest pending one.
journal::DestinationStatus destination(const std::string& name, int64_t pending, int64_t delivered,
                                       std::optional<int64_t> oldest_ms) {
  journal::DestinationStatus status;
  status.destination = name;
  status.pending = pending;
  status.delivered = delivered;
  status.oldest_undelivered_ms = oldest_ms;
  if (pending > 0) status.oldest_pending_ms = oldest_ms;
  return status;
}

// A daemon up for an hour, one sink that delivered a minute ago, one archive
// polled fine: all well.
HealthInputs healthy() {
  HealthInputs in;
  in.now_ms = kNow;
  in.daemon_started_ms = kNow - 60 * kMinute;
  in.sinks = {{"cern", {destination("/topic/a", 0, 100, std::nullopt)}}};
  in.last_delivered_ms["cern"] = kNow - kMinute;
  journal::ArchiveHealth archive;
  archive.name = "psds";
  archive.archive_url = "http://psds/esmond/perfsonar/archive/";
  archive.polls_total = 10;
  in.archives = {archive};
  return in;
}

FaultSnapshot fault(const std::string& component, const std::string& kind, const std::string& error) {
  return FaultSnapshot{component, kind, error, kNow - 2 * kMinute, kNow, 5};
}

std::string joined(const std::vector<std::string>& reasons) {
  std::string text;
  for (const auto& reason : reasons) text += reason + "\n";
  return text;
}

}  // namespace

TEST_CASE("healthz: a daemon with nothing wrong is healthy", "[http]") {
  CHECK(health_reasons(healthy(), rules()).empty());
}

TEST_CASE("healthz: a journal that takes no writes (a full disk, a lock held elsewhere) is unhealthy at once",
          "[http]") {
  for (const std::string kind : {"disk-full", "journal-busy", "journal-io"}) {
    HealthInputs in = healthy();
    in.faults = {fault("collector archive=psds", kind, "database or disk is full")};
    const auto reasons = health_reasons(in, rules());
    REQUIRE(reasons.size() == 1);
    CHECK_THAT(reasons[0], Catch::StartsWith("journal not writable (collector archive=psds, " + kind + ")"));
    CHECK_THAT(reasons[0], Catch::Contains("database or disk is full"));
  }
}

TEST_CASE("healthz: a journal at its size limit says so", "[http]") {
  HealthInputs in = healthy();
  in.faults = {fault("collector", std::string(gapless::journal::kSizeLimitKind), "the journal reached max_size 1 GiB")};
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);
  CHECK_THAT(reasons[0], Catch::StartsWith("journal at its size limit"));
  CHECK_THAT(reasons[0], Catch::Contains("max_size"));
}

TEST_CASE("healthz: a fault that is not the journal's (a broker refusing) does not count as one", "[http]") {
  HealthInputs in = healthy();
  in.faults = {fault("sender sink=cern", "broker-refused", "not authorized")};
  CHECK(health_reasons(in, rules()).empty());
}

TEST_CASE("healthz: a required restart is a reason, naming the replaced file", "[http]") {
  HealthInputs in = healthy();
  in.faults = {fault("daemon", std::string(gapless::kRestartRequiredKind), "/usr/bin/gapless was replaced on disk")};
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0] == "restart required: /usr/bin/gapless was replaced on disk");
}

TEST_CASE("healthz: a sink with pending messages that delivered nothing for longer than stalled_after is stalled",
          "[http]") {
  HealthInputs in = healthy();
  in.sinks = {{"cern", {destination("/topic/a", 42, 100, kNow - 40 * kMinute)}}};
  in.last_delivered_ms["cern"] = kNow - 20 * kMinute;
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);
  CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: 42 messages pending, nothing delivered for 20m"));

  SECTION("not when it delivered within stalled_after") {
    in.last_delivered_ms["cern"] = kNow - 14 * kMinute;
    CHECK(health_reasons(in, rules()).empty());
  }
  SECTION("not when its oldest pending message is younger than stalled_after (idle until then)") {
    in.sinks = {{"cern", {destination("/topic/a", 1, 100, kNow - 10 * kMinute)}}};
    in.last_delivered_ms["cern"] = kNow - 50 * kMinute;
    CHECK(health_reasons(in, rules()).empty());
  }
  SECTION("not when the daemon started less than stalled_after ago") {
    in.daemon_started_ms = kNow - 5 * kMinute;
    in.last_delivered_ms.erase("cern");
    CHECK(health_reasons(in, rules()).empty());
  }
  SECTION("nothing delivered since the start is said") {
    in.last_delivered_ms.erase("cern");
    const auto since_start = health_reasons(in, rules());
    REQUIRE(since_start.size() == 1);
    CHECK_THAT(since_start[0], Catch::Contains("nothing delivered since the daemon started"));
  }
}

// Counted from the oldest undelivered message, a message parked a day ago made
// a sink that had nothing to send for an hour "stalled" as soon as one new
// message was pending.
TEST_CASE("healthz: an idle sink with a message parked long ago is not stalled, but the parked message is a reason",
          "[http]") {
  HealthInputs in = healthy();
  journal::DestinationStatus topic = destination("/topic/a", 0, 100, kNow - 24 * 60 * kMinute);
  topic.parked = 1;
  in.sinks = {{"cern", {topic}}};
  in.last_delivered_ms["cern"] = kNow - 60 * kMinute;  // nothing to deliver since
  in.parked_messages["cern"] = {
      journal::ParkedMessage{7, "g-7", "/topic/a", "too large", 3, kNow - 24 * 60 * kMinute}};

  SECTION("nothing pending") {
    const auto reasons = health_reasons(in, rules());
    INFO(joined(reasons));
    REQUIRE(reasons.size() == 1);
    CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: message 7 (g-7) to /topic/a parked for 1d"));
  }
  SECTION("a message journaled a moment ago is pending") {
    in.sinks[0].destinations[0].pending = 1;
    in.sinks[0].destinations[0].oldest_pending_ms = kNow - 10'000;
    const auto reasons = health_reasons(in, rules());
    INFO(joined(reasons));
    REQUIRE(reasons.size() == 1);
    CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: message 7 (g-7) to /topic/a parked for 1d"));
  }
  SECTION("but stalled when its pending message waits longer than stalled_after") {
    in.sinks[0].destinations[0].pending = 1;
    in.sinks[0].destinations[0].oldest_pending_ms = kNow - 20 * kMinute;
    const auto reasons = health_reasons(in, rules());
    INFO(joined(reasons));
    REQUIRE(reasons.size() == 2);
    CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: 1 messages pending, nothing delivered for 20m (since "));
  }
}

TEST_CASE("healthz: a sink with nothing pending is never stalled, however long since its last delivery", "[http]") {
  HealthInputs in = healthy();
  in.last_delivered_ms["cern"] = kNow - 600 * kMinute;
  CHECK(health_reasons(in, rules()).empty());
}

TEST_CASE("healthz: a destination parked for longer than stalled_after is a reason, with the broker's words",
          "[http]") {
  HealthInputs in = healthy();
  journal::DestinationStatus parked = destination("/topic/denied", 1, 0, kNow - 30 * kMinute);
  parked.parked = 7;
  parked.parked_destination = journal::ParkedDestination{"cern", "/topic/denied", "User collector is not authorized to write to: topic://denied",
                                                         kNow - 16 * kMinute, kNow + kMinute, 3};
  in.sinks[0].destinations.push_back(parked);
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);  // its probe (pending 1) does not make the sink "stalled"
  CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: destination /topic/denied parked for 16m"));
  CHECK_THAT(reasons[0], Catch::Contains("not authorized to write to"));

  SECTION("not while it has been parked for less") {
    in.sinks[0].destinations.back().parked_destination->parked_at_ms = kNow - 14 * kMinute;
    CHECK(health_reasons(in, rules()).empty());
  }
}

TEST_CASE("healthz: messages parked for longer than stalled_after make one line per sink", "[http]") {
  HealthInputs in = healthy();
  for (int64_t i = 1; i <= 3; ++i)
    in.parked_messages["cern"].push_back(
        journal::ParkedMessage{i, "g-" + std::to_string(i), "/topic/a", "too large", 3, kNow - (15 + i) * kMinute});
  in.parked_messages["cern"].push_back(journal::ParkedMessage{4, "g-4", "/topic/a", "too large", 3, kNow - kMinute});
  const auto reasons = health_reasons(in, rules());
  INFO(joined(reasons));
  REQUIRE(reasons.size() == 1);
  CHECK_THAT(reasons[0], Catch::StartsWith("sink cern: message 3 (g-3) to /topic/a parked for 18m"));
  CHECK_THAT(reasons[0], Catch::EndsWith("(and 2 more parked that long)"));
}

TEST_CASE("healthz: an archive whose last failed_polls polls failed is a reason, with its last error", "[http]") {
  HealthInputs in = healthy();
  in.archives[0].consecutive_failed_polls = 3;
  in.archives[0].last_error = "GET http://psds/...: HTTP 500";
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);
  CHECK(reasons[0] == "archive psds (http://psds/esmond/perfsonar/archive/): its last 3 polls failed: GET "
                      "http://psds/...: HTTP 500");

  SECTION("not after fewer failed polls") {
    in.archives[0].consecutive_failed_polls = 2;
    CHECK(health_reasons(in, rules()).empty());
  }
}

TEST_CASE("healthz: several problems are all listed, the journal first", "[http]") {
  HealthInputs in = healthy();
  in.archives[0].consecutive_failed_polls = 9;
  in.faults = {fault("sender sink=cern", "disk-full", "full"),
               fault("daemon", std::string(gapless::kRestartRequiredKind), "replaced")};
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 3);
  CHECK_THAT(reasons[0], Catch::StartsWith("journal not writable"));
  CHECK_THAT(reasons[1], Catch::StartsWith("restart required"));
  CHECK_THAT(reasons[2], Catch::StartsWith("archive psds"));
}

TEST_CASE("an http sink its endpoint rejects (401, wrong URL) is a reason at once, naming the status and URL",
          "[http]") {
  HealthInputs in = healthy();
  in.faults = {fault("sender sink=central", "sink-rejected",
                     "https://logstash.example.org/logstash answered HTTP 401: Unauthorized")};
  const auto reasons = health_reasons(in, rules());
  REQUIRE(reasons.size() == 1);
  CHECK_THAT(reasons[0], Catch::Contains("sink=central") && Catch::Contains("HTTP 401") &&
                             Catch::Contains("https://logstash.example.org/logstash"));
  // A Logstash that is down is a stalled sink once stalled_after passed, not at once.
  in.faults = {fault("sender sink=central", "broker-unreachable", "answered HTTP 503")};
  CHECK(health_reasons(in, rules()).empty());
}
