// Proves the daemon's HTTP endpoint answers over real HTTP while the daemon
// collects and delivers: /metrics, /healthz, /v1/status and /v1/resend, and
// that /healthz turns 503 naming the sink while the broker is away and
// returns to 200 when it is back; over TLS ([http] cert_file, key_file) it
// answers HTTPS only, and a key file it cannot read stops the start naming
// http.key_file.
//
// A real daemon (`gapless run`) polls the test esmond archive (in this
// process) and delivers to the real ActiveMQ the harness starts; the test
// asks with cpp-httplib's client, as a scraper or an operator's curl would.
//   build/tests/integration/integration-tests '[http]'
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/tls_material.hpp"
#include "harness/workspace.hpp"
#include "support/eventually.hpp"
#include "support/polled_archive.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_table;
using gapless::test::EsmondArchive;
using gapless::test::eventually;
using gapless::test::kHour;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

constexpr const char* kToken = "test-token-4f9a";

// [http] on a free loopback port, a 2 s stalled_after, resend allowed with kToken.
std::string http_table(uint16_t port, const std::string& token_file) {
  return "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\nstalled_after = \"2s\"\ntoken_file = \"" +
         token_file + "\"\n";
}

// The sample's value in a Prometheus text, or "" when absent.
std::string metric_value(const std::string& text, const std::string& sample) {
  const size_t at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return "";
  const size_t start = at + sample.size() + 2;
  return text.substr(start, text.find('\n', start) - start);
}

}  // namespace

TEST_CASE("the daemon's endpoint serves metrics, health, status and resend while it collects and delivers",
          "[http]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(2, 2 * kHour));
  archive.start();
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "", archive_table(archive));
  const std::string token_file = (workspace.dir() / "token").string();
  std::ofstream(token_file) << kToken << "\n";
  workspace.write_config(broker.stomp_uri(), "", archive_table(archive) + http_table(port, token_file));

  Process daemon = workspace.start_daemon();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2s);
  client.set_read_timeout(10s);

  // Collected and delivered: the metrics show the archive polled and the
  // sink's deliveries with their latencies.
  std::string metrics;
  const bool delivered = eventually(60s, [&] {
    auto answer = client.Get("/metrics");
    if (!answer || answer->status != 200) return false;
    metrics = answer->body;
    const std::string count = metric_value(metrics, "gapless_sink_delivery_latency_seconds_count{sink=\"test\"}");
    return !count.empty() && std::stoll(count) > 0;
  });
  INFO(workspace.daemon_log());
  INFO(metrics);
  REQUIRE(delivered);
  CHECK(metrics.find("# TYPE gapless_sink_delivery_latency_seconds histogram") != std::string::npos);
  CHECK(metric_value(metrics, "gapless_sink_connected{sink=\"test\"}") == "1");
  CHECK(metric_value(metrics, "gapless_restart_required{journal=\"" + workspace.journal_path() + "\"}") == "0");
  CHECK(metrics.find("gapless_archive_polls_total{archive=\"test-archive\"") != std::string::npos);
  CHECK(metrics.find("gapless_archive_cursor_lag_seconds{archive=\"test-archive\"") != std::string::npos);
  CHECK(metrics.find("gapless_build_info{version=") != std::string::npos);

  auto health = client.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");

  // The same JSON as `gapless status --json`.
  auto status = client.Get("/v1/status");
  REQUIRE(status);
  REQUIRE(status->status == 200);
  const json served = json::parse(status->body);
  const json command = workspace.status();
  CHECK(served["journal"] == command["journal"]);
  CHECK(served["sinks"][0]["sink"] == "test");
  CHECK(served["archives"][0]["archive"] == "test-archive");
  CHECK(served["daemon"]["running"] == true);

  // Resend: refused without the token, or with another; done and recorded with it.
  const std::string now = std::to_string(gapless::unix_now_ms() / 1000 + 1);
  const std::string window = R"({"from": ")" + std::to_string(gapless::unix_now_ms() / 1000 - 3 * kHour) +
                             R"(", "to": ")" + now + R"(", "reason": "a consumer lost a day"})";
  auto anonymous = client.Post("/v1/resend", window, "application/json");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  auto wrong = client.Post("/v1/resend", {{"Authorization", "Bearer not-the-token"}}, window, "application/json");
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto bad = client.Post("/v1/resend", {{"Authorization", std::string("Bearer ") + kToken}},
                         R"({"from": "2016-08-23", "to": "2016-08-24", "sink": "nowhere"})", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["field"] == "sink");
  auto resend = client.Post("/v1/resend", {{"Authorization", std::string("Bearer ") + kToken}}, window,
                            "application/json");
  REQUIRE(resend);
  INFO(resend->body);
  REQUIRE(resend->status == 200);
  const json done = json::parse(resend->body);
  CHECK(done["messages"].get<int64_t>() > 0);
  auto requests = workspace.replay({"requests"});
  INFO(requests.out);
  CHECK(requests.out.find("resend") != std::string::npos);
  CHECK(requests.out.find("a consumer lost a day (POST /v1/resend from 127.0.0.1)") != std::string::npos);

  // The broker away for longer than stalled_after, with messages pending:
  // 503, naming the sink; back to 200 once it returns and delivers.
  broker.stop();
  workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.throughput"}, 20));
  std::string unhealthy;
  CHECK(eventually(30s, [&] {
    auto answer = client.Get("/healthz");
    if (!answer || answer->status != 503) return false;
    unhealthy = answer->body;
    return true;
  }));
  INFO(unhealthy);
  CHECK(unhealthy.rfind("sink test: ", 0) == 0);
  CHECK(unhealthy.find("messages pending, nothing delivered for") != std::string::npos);
  auto errors = client.Get("/metrics");
  REQUIRE(errors);
  CHECK(metric_value(errors->body, "gapless_sink_connected{sink=\"test\"}") == "0");
  const std::string lost = metric_value(errors->body, "gapless_sink_broker_errors_total{sink=\"test\",kind=\"connection-lost\"}");
  CHECK((!lost.empty() && lost != "0"));

  broker.start();
  CHECK(eventually(120s, [&] {
    auto answer = client.Get("/healthz");
    return answer && answer->status == 200;
  }));
  auto after = client.Get("/metrics");
  REQUIRE(after);
  const std::string reconnects = metric_value(after->body, "gapless_sink_reconnects_total{sink=\"test\"}");
  CHECK((!reconnects.empty() && reconnects != "0"));
  CHECK(daemon.terminate(30s).code == 0);
}

TEST_CASE("a port the endpoint cannot bind stops the daemon's start with an error naming http.listen", "[http]") {
  TestBroker broker;
  httplib::Server holder;  // takes the port first
  const int port = holder.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  Workspace workspace(broker);
  workspace.write_config(broker.stomp_uri(), "", "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  auto run = workspace.command({"run"}, 30s);
  CHECK_FALSE(run.ok());
  INFO(run.err);
  CHECK(run.err.find("http.listen: cannot listen on 127.0.0.1:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("with cert_file and key_file the endpoint answers over HTTPS only, the resend token included; a key file "
          "it cannot read stops the start naming http.key_file",
          "[http]") {
  TestBroker broker;
  Workspace workspace(broker);
  // The broker's certificate (SAN IP:127.0.0.1, signed by the test CA) serves the endpoint too.
  const gapless::test::TlsMaterial tls = gapless::test::generate_tls_material(workspace.dir() / "tls");
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  const std::string token_file = (workspace.dir() / "token").string();
  std::ofstream(token_file) << kToken << "\n";
  const auto tls_table = [&](const std::string& key_file) {
    return http_table(port, token_file) + "cert_file = \"" + tls.broker_cert.string() + "\"\nkey_file = \"" +
           key_file + "\"\n";
  };
  workspace.write_config(broker.stomp_uri(), "", tls_table(tls.broker_key.string()));
  workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.throughput"}, 5));

  Process daemon = workspace.start_daemon();
  httplib::SSLClient client("127.0.0.1", port);
  client.set_ca_cert_path(tls.ca_cert.c_str());
  client.enable_server_certificate_verification(true);
  client.set_connection_timeout(2s);
  client.set_read_timeout(10s);
  INFO(workspace.daemon_log());
  // Healthy once the five messages are delivered.
  REQUIRE(eventually(60s, [&] {
    auto answer = client.Get("/healthz");
    return answer && answer->status == 200 && answer->body == "ok\n";
  }));
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("gapless_build_info{version=") != std::string::npos);

  // Plain HTTP to the TLS port: no answer (a scraper misconfigured sees a failure, not a page).
  httplib::Client plain("127.0.0.1", port);
  plain.set_connection_timeout(2s);
  plain.set_read_timeout(5s);
  auto unencrypted = plain.Get("/healthz");
  CHECK_FALSE((unencrypted && unencrypted->status == 200));

  // The token travels encrypted: refused without it, done and recorded with it.
  const std::string window = R"({"from": ")" + std::to_string(gapless::unix_now_ms() / 1000 - kHour) +
                             R"(", "to": ")" + std::to_string(gapless::unix_now_ms() / 1000 + 1) +
                             R"(", "reason": "resent over TLS"})";
  auto anonymous = client.Post("/v1/resend", window, "application/json");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  auto resend = client.Post("/v1/resend", {{"Authorization", std::string("Bearer ") + kToken}}, window,
                            "application/json");
  REQUIRE(resend);
  INFO(resend->body);
  CHECK(resend->status == 200);
  CHECK(workspace.replay({"requests"}).out.find("resent over TLS (POST /v1/resend from 127.0.0.1)") !=
        std::string::npos);
  CHECK(daemon.terminate(30s).code == 0);

  // A key file that is not there: the start fails, naming the key and the file.
  const std::string missing = (workspace.dir() / "tls" / "missing.key").string();
  workspace.write_config(broker.stomp_uri(), "", tls_table(missing));
  auto run = workspace.command({"run"}, 30s);
  CHECK_FALSE(run.ok());
  INFO(run.err);
  CHECK(run.err.find("http.key_file: cannot read " + missing) != std::string::npos);
}
