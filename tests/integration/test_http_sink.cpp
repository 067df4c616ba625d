// Proves an http sink delivers to a Logstash (the stand-in of
// tests/harness/logstash_standin.hpp, real HTTP on loopback) what was
// journaled, exactly, and loses nothing whatever Logstash answers:
//   - each message's body byte for byte, its journaled headers, the configured
//     ones (winning on a clash), Basic authentication and gapless-id, by PUT,
//     over kept-alive connections;
//   - 503, then 429, then a hang past the timeout, then 200, runs journaled
//     meanwhile: every message arrives, pending meanwhile, one fault episode
//     in the log, not a line per retry (GAPLESS_LONG=1: each phase a minute more);
//   - 401: the sink pauses, status and /healthz raise the alarm naming the
//     status and URL, nothing is parked, and it resumes once accepted;
//   - 400, 413, 422: that message alone is parked with the status and the
//     answer's body, the others delivered; discard and retry-parked act on it;
//   - a stop while Logstash hangs: back within shutdown_timeout, nothing marked;
//   - https: verified against ca_file; a CA that did not sign the server's
//     certificate: nothing is sent, the sink is rejected; cert_file and
//     key_file answer a server that asks for a client certificate.
// No broker: the daemon's only sink is the http one.
//   build/tests/integration/integration-tests '[http-sink]'
#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/logstash_standin.hpp"
#include "harness/process.hpp"
#include "harness/tls_material.hpp"
#include "journal/journal.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using gapless::test::eventually;
using gapless::test::LogstashStandin;
using gapless::test::Process;
using nlohmann::json;
using Answer = LogstashStandin::Answer;

namespace {

constexpr const char* kSink = "central";
constexpr const char* kPassword = "logstash-s3cret";

// A journal and a configuration with one http sink, and the commands a user runs.
class HttpSinkWorkspace {
 public:
  // `sink_keys`: TOML lines added to the sink (url, headers, ...; @PASSWORD_FILE@
  // is a file holding kPassword); `tables`: after it.
  HttpSinkWorkspace(std::string sink_keys, const std::string& tables = "") {
    if (const size_t at = sink_keys.find("@PASSWORD_FILE@"); at != std::string::npos)
      sink_keys.replace(at, std::string("@PASSWORD_FILE@").size(), password_file());
    std::ofstream(dir_.file("password")) << kPassword << "\n";
    std::filesystem::permissions(dir_.file("password"), std::filesystem::perms::owner_read |
                                                            std::filesystem::perms::owner_write);
    std::ofstream(config_path()) << "[journal]\npath = \"" << journal_path() << "\"\n\n[[sink]]\nname = \"" << kSink
                                 << "\"\nprotocol = \"http\"\nreconnect_min = \"100ms\"\nreconnect_max = \"400ms\"\n"
                                 << "shutdown_timeout = \"2s\"\n"
                                 << sink_keys << "\n"
                                 << tables;
  }

  std::string config_path() const { return dir_.file("gapless.toml"); }
  std::string journal_path() const { return dir_.file("journal.db"); }
  std::string password_file() const { return dir_.file("password"); }
  std::string file(const std::string& name) const { return dir_.file(name); }

  gapless::test::RunResult command(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
    std::vector<std::string> full = {gapless::test::gapless_binary().string(), args.at(0), "--config", config_path()};
    full.insert(full.end(), args.begin() + 1, args.end());
    return gapless::test::run(full, timeout);
  }

  Process start_daemon() {
    return Process::spawn({.args = {gapless::test::gapless_binary().string(), "run", "--config", config_path()},
                           .out = gapless::test::Output::to_file(dir_.file("daemon.err")),
                           .err = gapless::test::Output::to_file(dir_.file("daemon.err"))});
  }

  std::string daemon_log() const {
    std::ifstream in(dir_.file("daemon.err"));
    return {std::istreambuf_iterator<char>(in), {}};
  }

  json status() {
    const auto result = command({"status", "--json"});
    if (!result.ok()) throw std::runtime_error("gapless status failed:\n" + result.err);
    return json::parse(result.out);
  }

  // pending, delivered, parked of the sink, over its destinations.
  std::array<int64_t, 3> counts() {
    std::array<int64_t, 3> total{};
    const json now = status();
    for (const json& sink : now["sinks"]) {
      if (sink["sink"] != kSink) continue;
      for (const json& destination : sink["destinations"]) {
        total[0] += destination["pending"].get<int64_t>();
        total[1] += destination["delivered"].get<int64_t>();
        total[2] += destination["parked"].get<int64_t>();
      }
    }
    return total;
  }

  void journal(const std::vector<gapless::journal::NewMessage>& messages) {
    auto journal = gapless::journal::Journal::open(journal_path(), {kSink});
    journal->append(messages);
  }

 private:
  gapless::test::TempDir dir_{"http-sink"};
};

// The stand-in's options: answering `answer`, plain HTTP, no authentication.
LogstashStandin::Options answering(Answer answer) {
  LogstashStandin::Options options;
  options.answer = answer;
  return options;
}

// pScheduler-shaped runs: a JSON body with its run id, the archiver's headers.
std::vector<gapless::journal::NewMessage> runs(int count, const std::string& tag = "run") {
  std::vector<gapless::journal::NewMessage> messages;
  for (int i = 0; i < count; ++i) {
    gapless::journal::NewMessage message;
    message.gapless_id = tag + "-" + std::to_string(i);
    message.destination = "/pscheduler/run/throughput";
    message.headers = {{"x-ps-observer", "192.0.2.10"}, {"content-type", "application/json"}};
    message.body = R"({"id":")" + tag + "-" + std::to_string(i) +
                   R"(","test":{"type":"throughput","spec":{"source":"ps1.example.net","dest":"ps2.example.net"}},)"
                   R"("result":{"succeeded":true,"summary":{"summary":{"throughput-bits":1471287717.57}}}})";
    messages.push_back(std::move(message));
  }
  return messages;
}

// The gapless-ids the stand-in answered 200.
std::set<std::string> accepted_ids(const LogstashStandin& standin) {
  std::set<std::string> ids;
  for (const auto& request : standin.requests())
    if (request.status == 200) ids.insert(request.header("gapless-id").value_or(""));
  return ids;
}

std::set<std::string> ids_of(const std::vector<gapless::journal::NewMessage>& messages) {
  std::set<std::string> ids;
  for (const auto& message : messages) ids.insert(message.gapless_id);
  return ids;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

// The open fault of the sink in status --json, or null.
json sink_fault(const json& status) {
  for (const json& fault : status["daemon"]["faults"])
    if (fault["component"] == std::string("sender sink=") + kSink) return fault;
  return nullptr;
}

}  // namespace

TEST_CASE("an http sink sends each ingested run unchanged, with its headers, the configured ones, Basic auth and "
          "gapless-id, by PUT over kept-alive connections",
          "[http-sink]") {
  LogstashStandin::Options basic = answering(Answer::ok);
  basic.login = "perfsonar";
  basic.password = kPassword;
  LogstashStandin standin(basic);
  HttpSinkWorkspace workspace("url = \"" + standin.url() + "\"\n" +
                              "headers = { content-type = \"application/json; charset=utf-8\", x-forwarded-by = "
                              "\"gapless\" }\nlogin = \"perfsonar\"\nmax_requests_in_flight = 3\n" +
                              "password_file = \"@PASSWORD_FILE@\"\n");
  // Through `gapless ingest`, as a producer would: bodies with UTF-8, quotes,
  // a line break; the archiver's two headers.
  std::ofstream lines(workspace.file("runs.jsonl"));
  std::vector<std::string> bodies;
  for (int i = 0; i < 20; ++i) {
    const std::string body = R"({"id":"run-)" + std::to_string(i) +
                             R"(","participants":["ps1.example.net","Zürich"],)" +
                             "\"note\":\"line\\nbreak\"}";
    bodies.push_back(body);
    lines << json{{"header",
                   {{"destination", "/pscheduler/run/throughput"},
                    {"x-ps-observer", "192.0.2.10"},
                    {"content-type", "application/json"}}},
                  {"body", body},
                  {"text", true}}  // the body's characters as UTF-8 (docs/osg-format.md 3.3)
                     .dump()
          << "\n";
  }
  lines.close();
  const auto ingested = workspace.command({"ingest", workspace.file("runs.jsonl")});
  INFO(ingested.err);
  REQUIRE(ingested.ok());
  const auto drained = workspace.command({"run", "--until-drained"}, 60s);
  INFO(drained.err);
  REQUIRE(drained.ok());

  const auto requests = standin.requests();
  REQUIRE(requests.size() == 20);
  std::set<std::string> received_bodies, ids;
  std::set<int> connections;
  for (const auto& request : requests) {
    CHECK(request.method == "PUT");
    CHECK(request.path == "/logstash");
    CHECK(request.status == 200);
    received_bodies.insert(request.body);
    ids.insert(request.header("gapless-id").value_or(""));
    connections.insert(request.remote_port);
    CHECK(request.header("x-ps-observer") == std::optional<std::string>("192.0.2.10"));
    CHECK(request.header("x-forwarded-by") == std::optional<std::string>("gapless"));
    // The configured content-type replaced the journaled one: one header, the configured value.
    CHECK(request.header_count("content-type") == 1);
    CHECK(request.header("content-type") == std::optional<std::string>("application/json; charset=utf-8"));
    CHECK(request.header("Authorization").value_or("").rfind("Basic ", 0) == 0);
    CHECK(request.header_count("expect") == 0);
  }
  CHECK(received_bodies == std::set<std::string>(bodies.begin(), bodies.end()));
  CHECK(ids.size() == 20);
  CHECK(connections.size() <= 3);  // kept alive: at most one connection per request in flight
  CHECK(workspace.counts() == std::array<int64_t, 3>{0, 20, 0});
}

TEST_CASE("a Logstash that answers 503, then 429, then hangs, then recovers gets every message, none lost",
          "[http-sink]") {
  // Each phase lasts a few requests in CI; GAPLESS_LONG=1 holds each a minute more.
  const auto hold = std::getenv("GAPLESS_LONG") != nullptr ? std::chrono::seconds(60) : std::chrono::seconds(0);
  LogstashStandin standin(answering(Answer::down));
  HttpSinkWorkspace workspace("url = \"" + standin.url() + "\"\ntimeout = \"1s\"\nmax_requests_in_flight = 4\n");
  std::vector<gapless::journal::NewMessage> messages = runs(30, "down");
  workspace.journal(messages);
  Process daemon = workspace.start_daemon();
  // Runs keep arriving while Logstash is away.
  const auto more = [&](const std::string& tag) {
    const auto arriving = runs(10, tag);
    workspace.journal(arriving);
    messages.insert(messages.end(), arriving.begin(), arriving.end());
  };

  // 503 (Apache, Logstash stopped): pending, the sink down in status.
  REQUIRE(eventually(20s, [&] { return standin.request_count() >= 3; }));
  std::this_thread::sleep_for(hold);
  CHECK(workspace.counts() == std::array<int64_t, 3>{30, 0, 0});
  json down;  // the health file the daemon rewrites about once a second
  REQUIRE(eventually(10s, [&] {
    down = sink_fault(workspace.status());
    return down.is_object();
  }));
  CHECK(down["kind"] == "broker-unreachable");
  CHECK_THAT(down["last_error"].get<std::string>(), Catch::Contains("HTTP 503") && Catch::Contains(standin.url()));
  CHECK_THAT(workspace.command({"status"}).out, Catch::Contains("sink central down for") &&
                                                    Catch::Contains("requests failed"));

  // 429 (Logstash's queue full): still pending.
  standin.answer(Answer::busy);
  more("busy");
  const size_t before_busy = standin.request_count();
  REQUIRE(eventually(20s, [&] { return standin.request_count() >= before_busy + 3; }));
  std::this_thread::sleep_for(hold);
  CHECK(workspace.counts() == std::array<int64_t, 3>{40, 0, 0});

  // Hung: nothing answers; the requests time out after 1 s and stay pending.
  standin.answer(Answer::hang);
  more("hang");
  const size_t before_hang = standin.request_count();
  REQUIRE(eventually(20s, [&] { return standin.request_count() >= before_hang + 2; }));
  std::this_thread::sleep_for(1500ms + hold);
  CHECK(workspace.counts() == std::array<int64_t, 3>{50, 0, 0});

  standin.answer(Answer::ok);
  const bool all = eventually(30s, [&] { return workspace.counts() == std::array<int64_t, 3>{0, 50, 0}; });
  INFO(workspace.daemon_log());
  REQUIRE(all);
  const std::set<std::string> expected = ids_of(messages);
  const std::set<std::string> accepted = accepted_ids(standin);
  CHECK(expected.size() == 50);
  CHECK(std::includes(accepted.begin(), accepted.end(), expected.begin(), expected.end()));
  CHECK(eventually(10s, [&] { return sink_fault(workspace.status()).is_null(); }));
  // The failures were episodes (one per kind of answer), not a line per retry.
  const std::string log = workspace.daemon_log();
  CHECK(count_of(log, "fault: begins") <= 3);
  CHECK(count_of(log, "fault: resolved") >= 1);
  CHECK(daemon.terminate(10s).code == 0);
}

TEST_CASE("a 401 pauses the http sink with an alarm in status and /healthz, parks nothing, and it resumes once "
          "accepted",
          "[http-sink]") {
  LogstashStandin standin(answering(Answer::unauthorized));
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  HttpSinkWorkspace workspace("url = \"" + standin.url() + "\"\n",
                              "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  const auto messages = runs(12);
  workspace.journal(messages);
  Process daemon = workspace.start_daemon();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2s);

  json fault;
  REQUIRE(eventually(20s, [&] {
    fault = sink_fault(workspace.status());
    return fault.is_object();
  }));
  CHECK(fault["kind"] == "sink-rejected");
  CHECK_THAT(fault["last_error"].get<std::string>(), Catch::Contains("HTTP 401") && Catch::Contains(standin.url()));
  std::string health;
  CHECK(eventually(10s, [&] {
    auto answer = client.Get("/healthz");
    if (!answer || answer->status != 503) return false;
    health = answer->body;
    return true;
  }));
  CHECK_THAT(health, Catch::Contains("sink=central") && Catch::Contains("HTTP 401") && Catch::Contains(standin.url()));
  const auto text = workspace.command({"status"});
  CHECK_THAT(text.out, Catch::Contains("sink central rejected by its endpoint"));
  const auto prometheus = workspace.command({"status", "--prometheus"});
  CHECK_THAT(prometheus.out, Catch::Contains("kind=\"sink-rejected\""));
  // The sink's counters as /metrics has them, in the STOMP sinks' terms.
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body,
             Catch::Contains("gapless_sink_connected{sink=\"central\"} 0") &&
                 Catch::Contains("gapless_sink_broker_errors_total{sink=\"central\",kind=\"not-authorized\"}"));
  CHECK_FALSE(Catch::Contains("kind=\"not-authorized\"} 0").match(metrics->body));
  // Paused, nothing parked: a probe per backoff, not a request per message.
  std::this_thread::sleep_for(1s);
  CHECK(workspace.counts() == std::array<int64_t, 3>{12, 0, 0});

  standin.answer(Answer::ok);
  CHECK(eventually(30s, [&] { return workspace.counts() == std::array<int64_t, 3>{0, 12, 0}; }));
  CHECK(eventually(10s, [&] {
    auto answer = client.Get("/healthz");
    return answer && answer->status == 200;
  }));
  metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("gapless_sink_connected{sink=\"central\"} 1") &&
                                Catch::Contains("gapless_sink_delivered_total{sink=\"central\"} 12"));
  CHECK(daemon.terminate(10s).code == 0);
}

TEST_CASE("a message Logstash refuses (400, 413, 422) is parked alone with the answer, the others delivered; "
          "discard and retry-parked act on it",
          "[http-sink]") {
  LogstashStandin standin(answering(Answer::ok));
  standin.answer_bodies_containing("\"id\":\"run-3\"", Answer::bad_request);
  standin.answer_bodies_containing("\"id\":\"run-5\"", Answer::too_large);
  standin.answer_bodies_containing("\"id\":\"run-7\"", Answer::unprocessable);
  HttpSinkWorkspace workspace("url = \"" + standin.url() + "\"\n");
  workspace.journal(runs(10));
  const auto first = workspace.command({"run", "--until-drained"}, 60s);
  INFO(first.err);
  REQUIRE(first.ok());
  CHECK(workspace.counts() == std::array<int64_t, 3>{0, 7, 3});
  std::map<std::string, std::string> reasons;
  const json status = workspace.status();
  for (const json& sink : status["sinks"])
    for (const json& parked : sink["parked_messages"])
      reasons[parked["gapless_id"].get<std::string>()] = parked["reason"].get<std::string>();
  CHECK_THAT(reasons["run-3"], Catch::Contains("HTTP 400") && Catch::Contains("JSON parse error"));
  CHECK_THAT(reasons["run-5"], Catch::Contains("HTTP 413") && Catch::Contains("Payload Too Large"));
  CHECK_THAT(reasons["run-7"], Catch::Contains("HTTP 422") && Catch::Contains("not a pScheduler run"));

  // An operator discards one (journal operations, as for a STOMP sink), and
  // sends the others again once Logstash takes them.
  int64_t run_7 = 0;
  for (const json& sink : status["sinks"])
    for (const json& parked : sink["parked_messages"])
      if (parked["gapless_id"] == "run-7") run_7 = parked["id"].get<int64_t>();
  const auto discarded = workspace.command({"discard", "--sink", kSink, "--message-id", std::to_string(run_7),
                                            "--reason", "not a run, refused by Logstash"});
  INFO(discarded.err);
  REQUIRE(discarded.ok());
  for (const char* marker : {"\"id\":\"run-3\"", "\"id\":\"run-5\"", "\"id\":\"run-7\""})
    standin.answer_bodies_containing(marker, Answer::ok);
  const auto retried = workspace.command({"retry-parked", "--sink", kSink});
  INFO(retried.err);
  REQUIRE(retried.ok());
  const auto second = workspace.command({"run", "--until-drained"}, 60s);
  INFO(second.err);
  REQUIRE(second.ok());
  CHECK(workspace.counts() == std::array<int64_t, 3>{0, 9, 0});
  std::set<std::string> expected = ids_of(runs(10));
  expected.erase("run-7");
  CHECK(accepted_ids(standin) == expected);
}

TEST_CASE("a daemon stopped while Logstash hangs returns within shutdown_timeout, the unanswered messages pending",
          "[http-sink]") {
  LogstashStandin standin(answering(Answer::hang));
  HttpSinkWorkspace workspace("url = \"" + standin.url() + "\"\n");  // timeout 30 s, shutdown_timeout 2 s
  workspace.journal(runs(3));
  Process daemon = workspace.start_daemon();
  REQUIRE(eventually(20s, [&] { return standin.request_count() == 3; }));
  const auto asked = std::chrono::steady_clock::now();
  const auto ended = daemon.terminate(15s);
  const auto took = std::chrono::steady_clock::now() - asked;
  INFO(workspace.daemon_log());
  CHECK(ended.code == 0);
  CHECK(took < 6s);
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("stopping with requests unanswered"));
  CHECK(workspace.counts() == std::array<int64_t, 3>{3, 0, 0});
}

TEST_CASE("https to Logstash is verified against ca_file, a CA that did not sign its certificate sends nothing, and "
          "a client certificate is given when asked",
          "[http-sink]") {
  gapless::test::TempDir tls_dir("http-sink-tls");
  const auto tls = gapless::test::generate_tls_material(tls_dir.path());
  LogstashStandin::Options https = answering(Answer::ok);
  https.cert_file = tls.broker_cert.string();
  https.key_file = tls.broker_key.string();
  LogstashStandin standin(https);
  REQUIRE(standin.url().rfind("https://", 0) == 0);

  HttpSinkWorkspace verified("url = \"" + standin.url() + "\"\nca_file = \"" + tls.ca_cert.string() + "\"\n");
  verified.journal(runs(5));
  const auto drained = verified.command({"run", "--until-drained"}, 60s);
  INFO(drained.err);
  REQUIRE(drained.ok());
  CHECK(verified.counts() == std::array<int64_t, 3>{0, 5, 0});
  CHECK(standin.request_count() == 5);

  HttpSinkWorkspace wrong_ca("url = \"" + standin.url() + "\"\nca_file = \"" + tls.other_ca_cert.string() + "\"\n");
  wrong_ca.journal(runs(5, "other"));
  Process daemon = wrong_ca.start_daemon();
  json fault;
  const bool rejected = eventually(20s, [&] {
    fault = sink_fault(wrong_ca.status());
    return fault.is_object();
  });
  INFO(wrong_ca.daemon_log());
  REQUIRE(rejected);
  CHECK(fault["kind"] == "sink-rejected");
  CHECK_THAT(fault["last_error"].get<std::string>(), Catch::Contains("TLS"));
  CHECK(wrong_ca.counts() == std::array<int64_t, 3>{5, 0, 0});
  CHECK(standin.request_count() == 5);  // no request of the second journal reached the server
  CHECK(daemon.terminate(10s).code == 0);

  // A Logstash that asks for a client certificate gets the sink's cert_file.
  LogstashStandin::Options mutual = https;
  mutual.client_ca_file = tls.ca_cert.string();
  LogstashStandin asking(mutual);
  HttpSinkWorkspace with_certificate("url = \"" + asking.url() + "\"\nca_file = \"" + tls.ca_cert.string() +
                                     "\"\ncert_file = \"" + tls.client_cert.string() + "\"\nkey_file = \"" +
                                     tls.client_key.string() + "\"\n");
  with_certificate.journal(runs(2, "mutual"));
  const auto sent = with_certificate.command({"run", "--until-drained"}, 60s);
  INFO(sent.err);
  REQUIRE(sent.ok());
  CHECK(with_certificate.counts() == std::array<int64_t, 3>{0, 2, 0});
  CHECK(asking.request_count() == 2);
}
