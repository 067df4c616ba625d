// Proves a broker that is away, frozen, denying a topic or replaced by the next in the list delays delivery but loses nothing.
//
// A real ActiveMQ stopped, SIGSTOPped, restarted with a topic denied, or one
// of two brokers gone; the `gapless` binary as a user runs it, and a durable
// subscriber that says what arrived.
//   build/tests/integration/integration-tests '[delivery]'
#include <signal.h>

#include <catch2/catch.hpp>
#include <array>
#include <chrono>
#include <set>
#include <regex>
#include <string>
#include <thread>

#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"

using namespace std::chrono_literals;
using gapless::test::BrokerOptions;
using gapless::test::messages_on;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;

namespace {

constexpr const char* kDeniedTopic = "perfsonar.summary.packet-loss-rate-bidir";
constexpr const char* kDeniedText =
    "User collector is not authorized to write to: topic://perfsonar.summary.packet-loss-rate-bidir";

}  // namespace

TEST_CASE("the 2016 incident: a denied topic is parked, everything else flows, retry-parked delivers it",
          "[delivery]") {
  TestBroker broker(BrokerOptions{.deny_topics = {kDeniedTopic}});
  Workspace workspace(broker, "park_retry_interval = \"1s\"\npark_retry_max = \"2s\"\n");
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();

  const std::vector<std::string> topics = {"perfsonar.raw.packet-loss-rate", "perfsonar.raw.throughput",
                                           "perfsonar.summary.packet-loss-rate", kDeniedTopic};
  auto messages = messages_on(topics, 300);
  workspace.journal_messages(messages);
  std::set<std::string> denied_ids, allowed_ids;
  for (const auto& message : messages)
    (message.destination == std::string("/topic/") + kDeniedTopic ? denied_ids : allowed_ids)
        .insert(message.gapless_id);

  // Everything else is delivered while the denied topic waits.
  workspace.run_until_drained();
  REQUIRE(recorder.wait_for_distinct("gapless-id", allowed_ids.size(), 60s));
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{0, 300, 0});
  CHECK(workspace.counts(std::string("/topic/") + kDeniedTopic) == std::array<int64_t, 3>{0, 0, 300});
  auto status = workspace.status();
  bool reason_shown = false;
  for (const auto& destination : status["sinks"][0]["destinations"])
    if (destination["destination"] == std::string("/topic/") + kDeniedTopic)
      reason_shown = destination["parked_destination"]["reason"] == kDeniedText;
  CHECK(reason_shown);
  auto text_status = workspace.command({"status"});
  // The text wraps at 80 columns (status/problems.hpp): read as one line.
  CHECK_THAT(std::regex_replace(text_status.out, std::regex("\n +"), " "), Catch::Contains(kDeniedText));

  // A broker restart that still denies: the daemon probes on its slow
  // schedule and parks again; nothing is delivered early.
  broker.restart();
  {
    Process daemon = workspace.start_daemon();
    std::this_thread::sleep_for(6s);
    daemon.terminate();
  }
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("probing parked destination"));
  CHECK(workspace.counts(std::string("/topic/") + kDeniedTopic) == std::array<int64_t, 3>{0, 0, 300});
  for (const auto& id : recorder.values("gapless-id")) CHECK(denied_ids.count(id) == 0);

  // The ACL is fixed; the operator retries; everything arrives.
  broker.restart(BrokerOptions{});
  auto retry = workspace.command({"retry-parked", "--destination", std::string("/topic/") + kDeniedTopic});
  INFO(retry.err);
  REQUIRE(retry.ok());
  CHECK_THAT(retry.out, Catch::Contains("300 messages back to pending"));
  workspace.run_until_drained();
  REQUIRE(recorder.wait_for_distinct("gapless-id", messages.size(), 60s));
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(messages));
  CHECK(workspace.counts(std::string("/topic/") + kDeniedTopic) == std::array<int64_t, 3>{0, 300, 0});
}

TEST_CASE("a backlog journaled while the broker is down is delivered when it returns", "[delivery]") {
  TestBroker broker;
  Workspace workspace(broker);
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();

  Process daemon = workspace.start_daemon();
  broker.stop();
  auto messages = messages_on({"perfsonar.raw.throughput", "perfsonar.raw.packet-trace"}, 5'000, 1024);
  workspace.journal_messages(messages);
  std::this_thread::sleep_for(2s);  // the daemon retries against a dead broker meanwhile
  CHECK(daemon.running());
  broker.start();
  REQUIRE(recorder.wait_for_distinct("gapless-id", messages.size(), 240s));
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(messages));
  daemon.terminate();
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{0, 5'000, 0});
}

TEST_CASE("SIGTERM exits within the shutdown timeout even when the broker is frozen", "[delivery]") {
  TestBroker broker;
  Workspace workspace(broker, "shutdown_timeout = \"3s\"\n");
  workspace.journal_messages(messages_on({"perfsonar.raw.throughput"}, 20'000, 1024));
  Process daemon = workspace.start_daemon();
  std::this_thread::sleep_for(1500ms);
  REQUIRE(broker.pid());
  ::kill(*broker.pid(), SIGSTOP);
  std::this_thread::sleep_for(500ms);
  auto started = std::chrono::steady_clock::now();
  daemon.signal(SIGTERM);
  auto exited = daemon.wait_for(15s);
  ::kill(*broker.pid(), SIGCONT);
  REQUIRE(exited.has_value());
  CHECK(std::chrono::steady_clock::now() - started < 8s);
  // Whatever was not confirmed is still pending: nothing lost.
  auto counts = workspace.counts("/topic/perfsonar.raw.throughput");
  CHECK(counts[0] + counts[1] == 20'000);
}

TEST_CASE("brokers are tried in order, and the sender returns to the first when it is back", "[delivery]") {
  TestBroker first;
  TestBroker second;
  Workspace workspace(first, "failback_interval = \"2s\"\n");
  workspace.write_config(first.stomp_uri() + "\", \"" + second.stomp_uri(),
                         "failback_interval = \"2s\"\n");
  gapless::test::StompRecorder on_first(first.stomp_uri());
  gapless::test::StompRecorder on_second(second.stomp_uri());
  on_first.start_and_wait_subscribed();
  on_second.start_and_wait_subscribed();

  first.stop();
  Process daemon = workspace.start_daemon();
  auto before = messages_on({"perfsonar.raw.throughput"}, 100);
  workspace.journal_messages(before);
  if (!on_second.wait_for_distinct("gapless-id", 100, 60s)) FAIL("nothing on the second broker; daemon log:\n" << workspace.daemon_log());

  first.start();
  std::this_thread::sleep_for(5s);  // failback_interval, plus a reconnect
  auto after = messages_on({"perfsonar.raw.packet-trace"}, 100);
  workspace.journal_messages(after);
  if (!on_first.wait_for_distinct("gapless-id", 100, 60s)) FAIL("no failback to the first broker; daemon log:\n" << workspace.daemon_log());
  CHECK(on_first.values("gapless-id") == gapless::test::gapless_ids_of(after));
  CHECK(on_second.values("gapless-id") == gapless::test::gapless_ids_of(before));
  daemon.terminate();
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("failing back"));
}

TEST_CASE("a frozen broker is found dead by heart-beats; the sender reconnects and delivers", "[delivery]") {
  TestBroker broker;
  Workspace workspace(broker);  // heartbeat = "2s"
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();
  Process daemon = workspace.start_daemon();
  std::this_thread::sleep_for(1500ms);
  REQUIRE(broker.pid());
  ::kill(*broker.pid(), SIGSTOP);  // TCP stays open, nothing answers
  std::this_thread::sleep_for(8s);
  ::kill(*broker.pid(), SIGCONT);
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("no data from broker"));
  auto messages = messages_on({"perfsonar.raw.throughput"}, 200);
  workspace.journal_messages(messages);
  REQUIRE(recorder.wait_for_distinct("gapless-id", 200, 60s));
  daemon.terminate();
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{0, 200, 0});
}
