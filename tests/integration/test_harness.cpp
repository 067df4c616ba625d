// Proves the integration harness works (processes, broker, recorder, TLS), so the other integration results mean something.
//
// Smoke test of the integration harness itself: if these fail, no other
// integration test result means anything. Run alone with
//   build/tests/integration/integration-tests '[harness]'
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "harness/broker.hpp"
#include "harness/mqtt_subscriber.hpp"
#include "harness/process.hpp"
#include "harness/rabbitmq_node.hpp"
#include "harness/stomp_helpers.hpp"
#include "harness/stomp_recorder.hpp"

using namespace std::chrono_literals;
using namespace std::string_literals;
using gapless::test::TestBroker;

namespace {

constexpr const char* kDeniedTopic = "perfsonar.summary.packet-loss-rate-bidir";
// ActiveMQ's words when it refused the OSG collector in 2016.
constexpr const char* kDeniedText =
    "User collector is not authorized to write to: topic://perfsonar.summary.packet-loss-rate-bidir";

std::unique_ptr<gapless::stomp::Connection> connect_collector(const TestBroker& broker) {
  return gapless::test::connect_stomp(broker.stomp_uri(), "collector", "collector-secret");
}

std::string header_or_empty(const gapless::stomp::Frame& frame, const char* name) {
  const std::string* value = frame.header(name);
  return value ? *value : std::string();
}

// The SSL options for gapless's client: verify the broker against our CA.
gapless::stomp::ConnectOptions tls_options(const gapless::test::TlsMaterial& tls) {
  gapless::stomp::ConnectOptions options;
  options.ca_file = tls.ca_cert.string();
  options.connect_timeout = 10s;
  return options;
}

}  // namespace

TEST_CASE("process helpers: run, capture, timeout, signals, free ports, memory", "[harness]") {
  using namespace gapless::test;

  auto result = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  CHECK(result.status.code == 3);
  CHECK(result.out == "out\n");
  CHECK(result.err == "err\n");
  CHECK_THROWS_AS(run({"sleep", "5"}, 200ms), gapless::Error);
  CHECK_THROWS_AS(run_checked({"false"}), gapless::Error);
  CHECK_THROWS_AS(Process::spawn({.args = {"/nonexistent/program"}}), gapless::Error);

  auto with_env = run(SpawnOptions{.args = {"sh", "-c", "echo \"$GAPLESS_X:${HOME:-unset}\""},
                                   .env = {{"GAPLESS_X", "42"}},
                                   .unset_env = {"HOME"}});
  CHECK(with_env.out == "42:unset\n");

  auto log = std::filesystem::temp_directory_path() / ("gapless-harness-" + std::to_string(::getpid()) + ".log");
  auto to_file = Process::spawn({.args = {"sh", "-c", "echo to-file; echo err >&2"},
                                 .out = Output::to_file(log),
                                 .err = Output::discard()});
  CHECK(to_file.wait(10s).code == 0);
  CHECK(run_checked({"cat", log.string()}) == "to-file\n");
  std::filesystem::remove(log);

  auto sleeper = Process::spawn({.args = {"sleep", "30"}});
  CHECK(sleeper.running());
  CHECK_FALSE(sleeper.wait_for(50ms).has_value());
  auto memory = read_memory_usage(sleeper.pid());
  CHECK(memory.rss_kib > 0);
  CHECK(memory.hwm_kib >= memory.rss_kib);
  auto ended = sleeper.terminate(5s);
  CHECK(ended.signal == SIGTERM);
  CHECK(ended.code == 128 + SIGTERM);

  auto ports = free_tcp_ports(3);
  CHECK(ports[0] != ports[1]);
  CHECK(ports[1] != ports[2]);
  CHECK(free_tcp_port() > 0);

  CHECK(std::filesystem::exists(gapless_binary()));
}

TEST_CASE("broker relays STOMP SENDs to an MQTT subscriber byte for byte", "[harness]") {
  TestBroker broker;
  std::cerr << "[harness] broker started in " << broker.last_start_duration().count() << " ms\n";
  auto broker_pid = broker.pid();
  REQUIRE(broker_pid.has_value());
  CHECK(gapless::test::read_memory_usage(*broker_pid).rss_kib > 10'000);
  // A second broker on the same directory would share kahaDB: refused.
  CHECK_THROWS_AS(broker.start(), gapless::Error);

  gapless::test::MqttSubscriber mqtt(broker.mqtt_uri(), {"test/#"});

  auto connection = connect_collector(broker);
  const std::string text = "plain text \xc3\xa9";
  const std::string binary = "\x00\x01\xff\xfe\x00 end"s;
  for (const auto& [body, receipt] : {std::pair{text, "r-text"s}, std::pair{binary, "r-binary"s}}) {
    auto reply = gapless::test::send_and_await(*connection, gapless::test::make_send("/topic/test.a", body, receipt));
    INFO(reply.command << " " << header_or_empty(reply, "message"));
    REQUIRE(reply.command == "RECEIPT");
  }

  REQUIRE(mqtt.wait_for(2, 10s));
  auto messages = mqtt.snapshot();
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].topic == "test/a");
  CHECK(messages[0].payload == text);
  CHECK(messages[1].topic == "test/a");
  CHECK(messages[1].payload == binary);
  connection->disconnect(2s);
}

TEST_CASE("deny-topic refuses one topic with the 2016 error text; a restart lifts it", "[harness]") {
  TestBroker broker({.deny_topics = {kDeniedTopic}});
  auto connection = connect_collector(broker);

  auto refused = gapless::test::send_and_await(
      *connection, gapless::test::make_send("/topic/"s + kDeniedTopic, "{}", "r-denied"));
  REQUIRE(refused.command == "ERROR");
  CHECK(header_or_empty(refused, "message") == kDeniedText);

  // ActiveMQ does not close the connection after a refused SEND (2.6): other
  // topics keep flowing on it.
  auto allowed = gapless::test::send_and_await(
      *connection, gapless::test::make_send("/topic/perfsonar.summary.packet-loss-rate", "{}", "r-allowed"));
  CHECK(allowed.command == "RECEIPT");
  connection->disconnect(2s);

  broker.restart({});
  connection = connect_collector(broker);
  auto lifted = gapless::test::send_and_await(
      *connection, gapless::test::make_send("/topic/"s + kDeniedTopic, "{}", "r-lifted"));
  INFO(header_or_empty(lifted, "message"));
  CHECK(lifted.command == "RECEIPT");
  connection->disconnect(2s);
}

TEST_CASE("durable recorder survives broker restarts and receives what was sent meanwhile", "[harness]") {
  TestBroker broker;
  gapless::test::StompRecorder recorder(broker.stomp_uri(), {.destination = "/topic/perfsonar.>"});
  recorder.start_and_wait_subscribed();

  auto send = [&](const std::string& id) {
    auto connection = connect_collector(broker);
    auto reply = gapless::test::send_and_await(
        *connection,
        gapless::test::make_send("/topic/perfsonar.raw.throughput", "{\"id\":\"" + id + "\"}", "r-" + id,
                                 {{"gapless-id", id}}));
    INFO(header_or_empty(reply, "message"));
    REQUIRE(reply.command == "RECEIPT");
    connection->disconnect(2s);
  };

  send("m1");
  REQUIRE(recorder.wait_for_distinct("gapless-id", 1, 10s));

  // The recorder is away while m2 and m3 are sent, and the broker restarts
  // before it comes back: kahaDB kept them for the durable subscription.
  recorder.stop();
  send("m2");
  send("m3");
  broker.restart();
  recorder.start();
  REQUIRE(recorder.wait_for_distinct("gapless-id", 3, 20s));
  CHECK(recorder.subscriptions() == 2);

  // The broker restarts under a running recorder, which reconnects by itself.
  // Whether m4 is sent before or after it is back, the subscription keeps it.
  broker.stop();
  broker.start();
  send("m4");
  REQUIRE(recorder.wait_subscriptions(3, 20s));
  REQUIRE(recorder.wait_for_distinct("gapless-id", 4, 20s));

  auto messages = recorder.snapshot();
  REQUIRE_FALSE(messages.empty());
  CHECK(messages.front().destination == "/topic/perfsonar.raw.throughput");
  CHECK(messages.front().body == "{\"id\":\"m1\"}");
  CHECK(messages.front().header("persistent") != nullptr);
}

TEST_CASE("stomp+ssl: the client certificate logs in as collector; no certificate is refused", "[harness]") {
  TestBroker broker({.ssl = true});
  const auto& tls = broker.tls();

  {  // client certificate from our CA: CONNECTED, no login needed, writes as collector
    auto options = tls_options(tls);
    options.cert_file = tls.client_cert.string();
    options.key_file = tls.client_key.string();
    auto connection = gapless::test::connect_stomp(broker.ssl_uri(), options);
    auto reply = gapless::test::send_and_await(*connection, gapless::test::make_send("/topic/test.tls", "x", "r1"));
    INFO(header_or_empty(reply, "message"));
    CHECK(reply.command == "RECEIPT");
    // The certificate user has collector's groups, and no more.
    auto refused = gapless::test::send_and_await(*connection, gapless::test::make_send("/topic/other.x", "x", "r2"));
    CHECK(refused.command == "ERROR");
    CHECK_THAT(header_or_empty(refused, "message"),
               Catch::Contains("User "s + gapless::test::TlsMaterial::client_dn + " is not authorized"));
    connection->disconnect(2s);
  }

  {  // no client certificate: refused, even with a valid password
    auto options = tls_options(tls);
    options.login = "collector";
    options.passcode = "collector-secret";
    CHECK_THROWS_AS(gapless::test::connect_stomp(broker.ssl_uri(), options), gapless::stomp::ConnectionError);
  }

  {  // client certificate from an unrelated CA: refused
    auto options = tls_options(tls);
    options.cert_file = tls.other_client_cert.string();
    options.key_file = tls.other_client_key.string();
    CHECK_THROWS_AS(gapless::test::connect_stomp(broker.ssl_uri(), options), gapless::stomp::ConnectionError);
  }

  {  // a broker certificate our CA did not sign: the client refuses it
    auto options = tls_options(tls);
    options.ca_file = tls.other_ca_cert.string();
    options.cert_file = tls.client_cert.string();
    options.key_file = tls.client_key.string();
    CHECK_THROWS_AS(gapless::test::connect_stomp(broker.ssl_uri(), options), gapless::stomp::ConnectionError);
  }
}

namespace {

// True if some process's command line mentions `text` (a node's directory).
bool any_process_mentions(const std::string& text) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    if (cmdline.find(text) != std::string::npos) return true;
  }
  return false;
}

// Sends `frame` and returns the RECEIPT for it, or an ERROR: RabbitMQ's
// refusals carry no receipt-id and close the connection after them.
gapless::stomp::Frame receipt_or_error(gapless::stomp::Connection& connection, const gapless::stomp::Frame& frame) {
  connection.send(frame);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto reply = connection.poll(500ms);
    if (reply && (reply->command == "ERROR" || reply->command == "RECEIPT")) return std::move(*reply);
  }
  throw gapless::Error("no RECEIPT or ERROR within 20 s");
}

}  // namespace

TEST_CASE("RabbitMQ node: a raw STOMP SEND to /topic/x reaches a durable subscriber byte for byte, across a kill -9; "
          "topic permissions, the 4 MiB limit and certificate login work; nothing runs after stop",
          "[harness]") {
  using gapless::test::RabbitNode;
  std::optional<RabbitNode> node(std::in_place, gapless::test::RabbitNodeOptions{.ssl = true});
  std::cerr << "[harness] RabbitMQ node started in " << node->last_start_duration().count() << " ms\n";
  const std::string dir = node->dir().string();
  auto collector = [&] { return gapless::test::connect_stomp(node->stomp_uri(), node->connect_options()); };
  CHECK_THAT(collector()->server(), Catch::StartsWith("RabbitMQ/"));

  gapless::test::StompRecorder recorder(node->stomp_uri(), RabbitNode::durable_recorder_options("harness-x", "x"));
  recorder.start_and_wait_subscribed();
  const std::string binary = "\x00\x01\xff\xfe\x00 end"s;
  auto connection = collector();
  auto reply =
      receipt_or_error(*connection, gapless::test::make_send("/topic/x", binary, "r1", {{"gapless-id", "g1"}}));
  INFO(header_or_empty(reply, "message") << " " << reply.body);
  REQUIRE(reply.command == "RECEIPT");
  REQUIRE(recorder.wait_for(1, 10s));
  auto received = recorder.snapshot().at(0);
  CHECK(received.destination == "/topic/x");
  CHECK(received.body == binary);
  REQUIRE(received.header("gapless-id") != nullptr);
  CHECK(*received.header("gapless-id") == "g1");

  // Sent while the subscriber is away, then the node crashes: the durable
  // queue keeps the persistent message the node confirmed.
  recorder.stop();
  reply = receipt_or_error(*connection, gapless::test::make_send("/topic/x", "kept", "r2", {{"gapless-id", "g2"}}));
  REQUIRE(reply.command == "RECEIPT");
  node->kill();
  CHECK_FALSE(node->running());
  node->start();
  std::cerr << "[harness] RabbitMQ node restarted in " << node->last_start_duration().count() << " ms\n";
  recorder.start();
  CHECK(recorder.wait_for_distinct("gapless-id", 2, 20s));

  // The 2016 ACL incident: one routing key refused, with the broker's words.
  node->deny_topic_writes({"perfsonar.summary.packet-loss-rate-bidir"});
  connection = collector();
  auto refused = receipt_or_error(
      *connection, gapless::test::make_send("/topic/perfsonar.summary.packet-loss-rate-bidir", "{}", "r3"));
  CHECK(refused.command == "ERROR");
  CHECK_THAT(refused.body, Catch::Contains("access to topic 'perfsonar.summary.packet-loss-rate-bidir' in exchange "
                                           "'amq.topic' in vhost '/' refused for user 'collector'"));
  connection = collector();
  CHECK(receipt_or_error(*connection, gapless::test::make_send("/topic/perfsonar.summary.throughput", "{}", "r4"))
            .command == "RECEIPT");
  node->allow_all_topic_writes();
  connection = collector();
  CHECK(receipt_or_error(
            *connection, gapless::test::make_send("/topic/perfsonar.summary.packet-loss-rate-bidir", "{}", "r5"))
            .command == "RECEIPT");

  // A message over the node's 4 MiB limit is refused.
  auto too_large = receipt_or_error(
      *connection, gapless::test::make_send("/topic/x", std::string(4 * 1024 * 1024 + 1, 'x'), "r6"));
  CHECK(too_large.command == "ERROR");
  CHECK_THAT(too_large.body, Catch::Contains("larger than configured max size 4194304"));

  {  // certificate login: no login or passcode, the CN is the user
    const auto& tls = node->tls();
    gapless::stomp::ConnectOptions options = tls_options(tls);
    options.virtual_host = RabbitNode::kVirtualHost;
    options.cert_file = tls.client_cert.string();
    options.key_file = tls.client_key.string();
    auto secure = gapless::test::connect_stomp(node->ssl_uri(), options);
    CHECK(receipt_or_error(*secure, gapless::test::make_send("/topic/x", "tls", "r7")).command ==
          "RECEIPT");
    secure->disconnect(2s);
    options.cert_file = tls.other_client_cert.string();
    options.key_file = tls.other_client_key.string();
    CHECK_THROWS_AS(gapless::test::connect_stomp(node->ssl_uri(), options), gapless::stomp::ConnectionError);
  }

  recorder.stop();
  connection.reset();
  auto pid = node->pid();
  REQUIRE(pid.has_value());
  node->stop();
  CHECK_FALSE(node->running());
  CHECK(::kill(*pid, 0) != 0);
  node.reset();
  CHECK_FALSE(any_process_mentions(dir));
}
