// Proves kill -9 loses nothing: killed mid-drain, mid-poll or mid-backfill and started again, gapless delivers everything.
//
// Nothing is journaled twice, and a message the bus sees twice keeps its
// gapless-id. Each case also carries the tag of the part it kills, so CI runs
// it in that part's group ([delivery], [collection], [replay]); all of them:
//   build/tests/integration/integration-tests '[recovery]'
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/mqtt_subscriber.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "support/consumer_points.hpp"
#include "support/polled_archive.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_table;
using gapless::test::check_received_once;
using gapless::test::difference;
using gapless::test::EsmondArchive;
using gapless::test::ids_by_body;
using gapless::test::journaled_datapoints;
using gapless::test::keys_of;
using gapless::test::kHour;
using gapless::test::messages_on;
using gapless::test::MqttSubscriber;
using gapless::test::Point;
using gapless::test::Process;
using gapless::test::received_points;
using gapless::test::served_points;
using gapless::test::TestBroker;
using gapless::test::wait_for_points;
using gapless::test::Workspace;

TEST_CASE("kill -9 during a drain loses nothing; duplicates keep their gapless-id", "[recovery][delivery]") {
  TestBroker broker;
  Workspace workspace(broker);
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();
  auto messages = messages_on({"perfsonar.raw.histogram-owdelay", "perfsonar.raw.packet-loss-rate"}, 4'000, 512);
  workspace.journal_messages(messages);

  for (size_t target : {size_t(1'000), size_t(4'000)}) {
    Process daemon = workspace.start_daemon();
    REQUIRE(recorder.wait_for(target, 120s));
    daemon.kill();
  }
  workspace.run_until_drained();
  REQUIRE(recorder.wait_for_distinct("gapless-id", messages.size(), 60s));
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(messages));
  // Every message's body matches the one journaled under its id.
  std::map<std::string, std::string> body_of;
  for (const auto& message : messages) body_of[message.gapless_id] = message.body;
  for (const auto& received : recorder.snapshot()) CHECK(received.body == body_of.at(*received.header("gapless-id")));
  INFO("received " << recorder.count() << " messages for " << messages.size() << " ids");
  CHECK(workspace.counts("/topic/perfsonar.raw.packet-loss-rate") == std::array<int64_t, 3>{0, 4'000, 0});
}

TEST_CASE("kill -9 while polling: nothing lost, no datapoint journaled twice, bus duplicates share their id",
          "[recovery][collection]") {
  TestBroker broker;
  // Enough data that the first poll takes a while: 12 series x 2 days.
  EsmondArchive archive(archive_options(12, 48 * kHour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "page_size = 500\n"));
  MqttSubscriber subscriber(broker.mqtt_uri(), {"perfsonar/#"});

  for (int round = 0; round < 2; ++round) {
    auto daemon = workspace.start_daemon();
    // Kill once the collector is journaling, in the middle of its first poll.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline &&
           workspace.daemon_log().find("collector: start") == std::string::npos)
      std::this_thread::sleep_for(100ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500 + 700 * round));
    daemon.signal(SIGKILL);
    daemon.wait(30s);
    archive.advance(5 * 60);
  }
  auto daemon = workspace.start_daemon();
  const std::set<Point> expected = served_points(archive);
  const bool complete = wait_for_points(subscriber, workspace, expected, 300s);
  CHECK(complete);
  CHECK(daemon.terminate(30s).code == 0);

  const auto received = received_points(subscriber, ids_by_body(workspace));
  INFO(difference(expected, keys_of(received)));
  CHECK(keys_of(received) == expected);
  for (const auto& [point, ids] : received) {
    INFO(point.metadata_key << " " << point.event_type << " " << point.ts);
    CHECK(ids.size() == 1);  // a point seen twice on the bus came in the same message (same gapless-id)
  }
  const auto [carried, distinct] = journaled_datapoints(workspace);
  CHECK(carried == distinct);
}

TEST_CASE("kill -9 in the middle of a backfill, then the same command again: no loss, no duplicate",
          "[recovery][replay]") {
  TestBroker broker;
  const int64_t now = gapless::unix_now_ms() / 1000;
  // Nothing collected before: the whole window is the outage.
  EsmondArchive archive(archive_options(12, 48 * kHour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "page_size = 500\n"));
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  const std::string from = std::to_string(now - 49 * kHour);
  const std::string to = std::to_string(now);

  const std::string replay_binary = gapless::test::gapless_replay_binary().string();
  {
    auto interrupted = gapless::test::Process::spawn(
        // --rate keeps it busy long enough for the kill to land mid-way.
        {.args = {replay_binary, "backfill", "--config", workspace.config_path(), "--from", from, "--to", to,
                  "--rate", "200"},
         .out = gapless::test::Output::to_file(workspace.dir() / "backfill.out"),
         .err = gapless::test::Output::to_file(workspace.dir() / "backfill.err")});
    std::this_thread::sleep_for(3s);
    REQUIRE(interrupted.running());  // still reading: the kill lands mid-way
    interrupted.signal(SIGKILL);
    interrupted.wait(30s);
  }
  auto resumed = workspace.replay({"backfill", "--from", from, "--to", to});
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.ok());
  workspace.run_until_drained();

  const auto received = check_received_once(recorder, served_points(archive), 180s);
  const auto [carried, distinct] = journaled_datapoints(workspace);
  CHECK(carried == distinct);

  auto listed = workspace.replay({"requests"});
  REQUIRE(listed.ok());
  CHECK_THAT(listed.out, Catch::Contains("running"));  // the killed one, as it was left
  CHECK_THAT(listed.out, Catch::Contains("done"));
}
