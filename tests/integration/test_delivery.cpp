// Proves messages journaled are delivered byte-exact, one daemon per journal, over TLS too, in memory that does not grow with the backlog.
//
// End-to-end delivery through a real ActiveMQ: the promises of issue 2 as a
// user would check them, by running the `gapless` binary and watching what
// subscribers receive.
//   build/tests/integration/integration-tests '[delivery]'
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "harness/broker.hpp"
#include "harness/mqtt_subscriber.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "ingest/ingest.hpp"

using namespace std::chrono_literals;
using gapless::test::BrokerOptions;
using gapless::test::messages_on;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;

TEST_CASE("ingested messages on several topics arrive byte-exact on the MQTT side", "[delivery]") {
  TestBroker broker;
  Workspace workspace(broker);
  gapless::test::MqttSubscriber mqtt(broker.mqtt_uri(), {"perfsonar/#", "test/#"});

  // The sample file: OSG raw and summary messages plus a base64 binary body.
  auto ingest = workspace.command({"ingest", GAPLESS_SOURCE_DIR "/etc/samples/perfsonar-sample.jsonl"});
  INFO(ingest.err);
  REQUIRE(ingest.ok());
  CHECK_THAT(ingest.out, Catch::Contains("7 journaled"));
  std::map<std::string, std::string> expected;  // MQTT topic -> body
  {
    std::ifstream samples(GAPLESS_SOURCE_DIR "/etc/samples/perfsonar-sample.jsonl");
    std::string line;
    while (std::getline(samples, line)) {
      auto message = gapless::ingest::parse_message_line(line);
      expected[gapless::test::MqttSubscriber::to_mqtt_topic(message.destination.substr(7))] = message.body;
    }
  }
  REQUIRE(expected.size() == 7);

  workspace.run_until_drained();
  REQUIRE(mqtt.wait_for(expected.size(), 30s));
  std::map<std::string, std::string> received;
  for (const auto& message : mqtt.snapshot()) received[message.topic] = message.payload;
  CHECK(received == expected);
  CHECK(received.at("test/binary") == std::string("\x00\x01" "binary\xff\xfe", 10));

  for (const auto& [destination, counts] : workspace.counts()) {
    INFO(destination);
    CHECK(counts == std::array<int64_t, 3>{0, 1, 0});
  }
  // Ingesting the same file again journals nothing and sends nothing.
  auto again = workspace.command({"ingest", GAPLESS_SOURCE_DIR "/etc/samples/perfsonar-sample.jsonl"});
  CHECK_THAT(again.out, Catch::Contains("0 journaled, 7 already journaled"));
}

TEST_CASE("one daemon per journal; status works beside it", "[delivery]") {
  TestBroker broker;
  Workspace workspace(broker);
  Process daemon = workspace.start_daemon();
  std::this_thread::sleep_for(1500ms);
  REQUIRE(daemon.running());
  auto second = workspace.command({"run"}, 30s);
  CHECK(second.status.code == 1);
  CHECK_THAT(second.err, Catch::Contains("pid " + std::to_string(daemon.pid())));
  CHECK(workspace.command({"status"}).ok());
  workspace.journal_messages(messages_on({"perfsonar.raw.throughput"}, 10));
  auto status = workspace.command({"status"});
  CHECK(status.ok());
  auto stopped = daemon.terminate(10s);
  CHECK(stopped.exited_normally());
  CHECK(stopped.code == 0);
}

TEST_CASE("stomp+ssl with a client certificate delivers; a broker certificate from another CA is refused",
          "[delivery]") {
  TestBroker broker(BrokerOptions{.ssl = true});
  const auto& tls = broker.tls();
  Workspace workspace(broker);
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();
  auto tls_keys = [&](const std::filesystem::path& ca) {
    return "ca_file = \"" + ca.string() + "\"\ncert_file = \"" + tls.client_cert.string() + "\"\nkey_file = \"" +
           tls.client_key.string() + "\"\nconnect_timeout = \"5s\"\n";
  };
  // login/passcode of the plain connector are ignored on the SSL one.
  workspace.write_config(broker.ssl_uri(), tls_keys(tls.other_ca_cert));
  workspace.journal_messages(messages_on({"perfsonar.raw.throughput"}, 50));
  {
    Process daemon = workspace.start_daemon();
    std::this_thread::sleep_for(4s);
    daemon.terminate();
  }
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("certificate verify failed"));
  CHECK(recorder.count() == 0);
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{50, 0, 0});

  workspace.write_config(broker.ssl_uri(), tls_keys(tls.ca_cert));
  workspace.run_until_drained(60s);
  REQUIRE(recorder.wait_for_distinct("gapless-id", 50, 30s));
}

TEST_CASE("daemon memory during a drain does not grow with the backlog (10 k vs 1 M pending)", "[memory]") {
  TestBroker broker;
  auto peak_rss_while_draining = [&](int pending) {
    Workspace workspace(broker);
    workspace.journal_messages(messages_on({"test.memory"}, pending, 256));
    Process daemon = workspace.start_daemon();
    // Sample while the drain is under way: memory must be bounded by the
    // window, not by what waits on disk.
    gapless::test::MemoryUsage usage;
    for (int i = 0; i < 16; ++i) {
      std::this_thread::sleep_for(500ms);
      usage = gapless::test::read_memory_usage(daemon.pid());
    }
    daemon.terminate();
    auto counts = workspace.counts("/topic/test.memory");
    INFO("pending " << pending << ": delivered " << counts[1] << ", peak RSS " << usage.hwm_kib << " KiB");
    CHECK(counts[1] > 0);
    return usage.hwm_kib;
  };
  const size_t small = peak_rss_while_draining(10'000);
  const size_t large = peak_rss_while_draining(1'000'000);
  WARN("peak RSS while draining: 10 k pending " << small << " KiB, 1 M pending " << large << " KiB");
  CHECK(large < small + 16 * 1024);  // "about the same": within 16 MiB
  CHECK(large < 64 * 1024);
}

TEST_CASE("two stomp sinks with different accept lists each deliver only the destinations they take; ingest refuses "
          "a line neither takes",
          "[delivery][accept]") {
  TestBroker broker;
  const std::string b_table = "[[sink]]\nname = \"b\"\nbrokers = [\"" + broker.stomp_uri() +
                              "\"]\nlogin = \"collector\"\npasscode = \"collector-secret\"\n"
                              "accept = [\"/topic/test.accept.b.>\"]\n";
  Workspace workspace(broker, "accept = [\"/topic/test.accept.a.>\"]", b_table);
  gapless::test::MqttSubscriber mqtt(broker.mqtt_uri(), {"test/#"});
  const std::string lines_path = (workspace.dir() / "accept.jsonl").string();
  {
    std::ofstream lines(lines_path);
    for (int i = 0; i < 10; ++i)
      for (const char* topic : {"a", "b"})
        lines << R"({"header":{"destination":"/topic/test.accept.)" << topic << R"(.x"},"body":"m)" << i << "\"}\n";
  }
  const auto ingest = workspace.command({"ingest", lines_path});
  INFO(ingest.err);
  REQUIRE(ingest.ok());

  workspace.run_until_drained();
  REQUIRE(mqtt.wait_for(20, 30s));
  std::this_thread::sleep_for(1s);  // a sink sending what it does not take would add 20 more
  std::map<std::string, int> received;
  for (const auto& message : mqtt.snapshot()) ++received[message.topic];
  CHECK(received == std::map<std::string, int>{{"test/accept/a/x", 10}, {"test/accept/b/x", 10}});
  const auto status = workspace.status();
  for (const auto& sink : status.at("sinks")) {
    INFO(sink.dump());
    REQUIRE(sink.at("destinations").size() == 1);  // rows for its own destination only
    const auto& destination = sink.at("destinations").front();
    CHECK(destination.at("destination") == (sink.at("sink") == "test" ? "/topic/test.accept.a.x" : "/topic/test.accept.b.x"));
    CHECK(destination.at("delivered") == 10);
  }

  std::ofstream(lines_path) << R"({"header":{"destination":"/topic/test.accept.c.x"},"body":"lost?"})" << "\n";
  const auto refused = workspace.command({"ingest", lines_path});
  CHECK_FALSE(refused.ok());
  CHECK_THAT(refused.err, Catch::Contains(lines_path + ":1: message refused: no sink takes destination "
                                                       "\"/topic/test.accept.c.x\""));
}
