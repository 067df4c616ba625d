// Proves the push endpoint ([push]) as pScheduler's http archiver meets it,
// over real HTTP on loopback, with a real daemon and a real ActiveMQ:
// - runs pushed on 25 kept-alive connections are all answered 200 and reach
//   a STOMP subscriber as OSG messages, the run itself journaled for the
//   http sink; the same runs pushed again are journaled once;
// - a 1.1 MB run, which libcurl sends with `Expect: 100-continue`, is taken
//   without curl's one-second wait; wrong path, method, credentials (Basic
//   and bearer) and a body that is not a run are refused saying why;
// - at [journal] max_size the answer is 503 with Retry-After, and every run
//   answered 200 is in the journal;
// - kill -9 of gapless while runs are pushed: every run answered 200 is in
//   the journal after it (a 2xx only after the commit).
// The client is tests/harness/archiver_client (what the archiver sends).
//   build/tests/integration/integration-tests '[push]'
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "harness/archiver_client.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "push/run_forms.hpp"
#include "support/eventually.hpp"
#include "support/journal_sql.hpp"
#include "support/pushed_runs.hpp"

using namespace std::chrono_literals;
using gapless::test::ArchiverOptions;
using gapless::test::archive_runs;
using gapless::test::archiver;
using gapless::test::eventually;
using gapless::test::JournalSql;
using gapless::test::Process;
using gapless::test::push_tables;
using gapless::test::run_bodies;
using gapless::test::run_body;
using gapless::test::run_id_of;
using gapless::test::StompRecorder;
using gapless::test::TestBroker;
using gapless::test::wait_listening;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

// The gapless-ids of the runs journaled as pushed.
std::set<std::string> journaled_runs(const Workspace& workspace) {
  JournalSql sql(workspace.journal_path());
  SQLite::Statement query(sql.database(), gapless::test::kJournaledRunsSql);
  std::set<std::string> ids;
  while (query.executeStep()) ids.insert(query.getColumn(0).getString());
  return ids;
}

}  // namespace

TEST_CASE("runs pushed on 25 kept-alive connections are answered 200, journaled once, and reach the broker as OSG "
          "messages",
          "[push]") {
  TestBroker broker;
  const std::vector<uint16_t> ports = gapless::test::free_tcp_ports(2);
  const uint16_t port = ports[0];
  Workspace workspace(broker, "",
                      push_tables(port) + "[http]\nlisten = \"127.0.0.1:" + std::to_string(ports[1]) + "\"\n");
  StompRecorder recorder(broker.stomp_uri(), {.destination = "/topic/perfsonar.raw.throughput"});
  recorder.start_and_wait_subscribed(30s);
  Process daemon = workspace.start_daemon();
  wait_listening(port, daemon, workspace);

  const std::vector<std::string> bodies = run_bodies(0, 200);
  const auto pushed = archive_runs(bodies, archiver(port));
  for (const auto& attempt : pushed.attempts) {
    INFO(attempt.error << attempt.body);
    REQUIRE(attempt.status == 200);
  }
  CHECK(pushed.connections <= 25);  // kept alive: one per worker

  std::set<std::string> expected;
  for (const std::string& body : bodies) expected.insert(gapless::push::run_gapless_id(run_id_of(body), body));
  CHECK(journaled_runs(workspace) == expected);  // the runs as pushed, for the http sink

  // Each run's throughput point reached the subscriber in OSG's format.
  INFO(workspace.daemon_log());
  REQUIRE(recorder.wait_for_distinct("gapless-id", bodies.size(), 60s));
  std::set<std::string> starts;
  for (const auto& message : recorder.snapshot()) {
    const json body = json::parse(message.body);
    REQUIRE(body["meta"]["input_source"].is_string());
    for (const auto& [ts, value] : body["datapoints"].items()) starts.insert(ts);
  }
  CHECK(starts.size() == bodies.size());

  // Sent again (a lost answer, a retry): 200, journaled nothing new.
  const auto again = archive_runs(std::vector<std::string>(bodies.begin(), bodies.begin() + 20), archiver(port, "/"));
  for (const auto& attempt : again.attempts) {
    REQUIRE(attempt.status == 200);
    CHECK(attempt.body.find("already journaled") != std::string::npos);
  }
  CHECK(journaled_runs(workspace).size() == bodies.size());
  std::this_thread::sleep_for(1s);
  CHECK(recorder.snapshot().size() == bodies.size());

  // The daemon's /metrics counts them.
  httplib::Client metrics_client("127.0.0.1", ports[1]);
  const auto metrics = metrics_client.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("\ngapless_push_runs_journaled_total 200\n") &&
                                Catch::Contains("\ngapless_push_duplicates_total 20\n") &&
                                Catch::Contains("gapless_push_answers_total{status=\"200\"} 220\n") &&
                                Catch::Contains("gapless_push_answer_latency_seconds_count 220\n"));
  const auto status = metrics_client.Get("/v1/status");
  REQUIRE(status);
  const json push = json::parse(status->body).at("push");
  CHECK(push["runs_journaled"] == 200);
  CHECK(push["duplicates"] == 20);
  CHECK(push["answers"]["200"] == 220);
}

TEST_CASE("the push endpoint takes a 1.1 MB run with Expect, and refuses a wrong path, method, credentials or body "
          "saying why",
          "[push]") {
  TestBroker broker;
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "");
  const std::string password_file = (workspace.dir() / "push-password").string();
  std::ofstream(password_file) << "s3cret\n";
  workspace.write_config(broker.stomp_uri(), "",
                         push_tables(port, "login = \"archiver\"\npassword_file = \"" + password_file + "\"\n"));
  Process daemon = workspace.start_daemon();
  wait_listening(port, daemon, workspace);

  ArchiverOptions basic = archiver(port);
  basic.workers = 1;
  const auto refused = archive_runs({run_body(1)}, basic).attempts.at(0);
  CHECK(refused.status == 401);
  CHECK(refused.headers.find("WWW-Authenticate: Basic realm=") != std::string::npos);
  basic.authorization = gapless::test::basic_authorization("archiver", "wrong");
  CHECK(archive_runs({run_body(1)}, basic).attempts.at(0).status == 401);
  basic.authorization = gapless::test::basic_authorization("archiver", "s3cret");
  CHECK(archive_runs({run_body(1)}, basic).attempts.at(0).status == 200);

  // libcurl sends a body over 1 MiB with Expect: 100-continue and waits up
  // to 1 s for the 100: answered at once, the whole push takes less.
  const auto large = archive_runs({run_body(2, 1'100'000)}, basic).attempts.at(0);
  CHECK(large.status == 200);
  CHECK(large.latency < 900ms);
  ArchiverOptions stranger = archiver(port);
  stranger.workers = 1;
  const auto large_stranger = archive_runs({run_body(3, 1'100'000)}, stranger).attempts.at(0);
  CHECK(large_stranger.status == 401);  // refused before the body is sent
  CHECK(large_stranger.latency < 900ms);

  ArchiverOptions post = basic;
  post.op = "post";
  CHECK(archive_runs({run_body(4)}, post).attempts.at(0).status == 200);

  ArchiverOptions elsewhere = archiver(port, "/elsewhere");
  elsewhere.workers = 1;
  elsewhere.authorization = basic.authorization;
  CHECK(archive_runs({run_body(5)}, elsewhere).attempts.at(0).status == 404);

  json no_start = json::parse(run_body(6));
  no_start["schedule"].erase("start");
  const auto bad = archive_runs({no_start.dump()}, basic).attempts.at(0);
  CHECK(bad.status == 400);
  CHECK(bad.body.find("schedule.start") != std::string::npos);
  CHECK(journaled_runs(workspace).size() == 3);

  // The bearer form, after a restart ([push] needs one).
  daemon.signal(SIGTERM);
  daemon.wait(30s);
  const std::string token_file = (workspace.dir() / "push-token").string();
  std::ofstream(token_file) << "t0ken-9f\n";
  workspace.write_config(broker.stomp_uri(), "", push_tables(port, "token_file = \"" + token_file + "\"\n"));
  Process bearer_daemon = workspace.start_daemon();
  wait_listening(port, bearer_daemon, workspace);
  ArchiverOptions bearer = archiver(port);
  bearer.workers = 1;
  CHECK(archive_runs({run_body(7)}, bearer).attempts.at(0).status == 401);
  bearer.authorization = "Bearer t0ken-9";
  CHECK(archive_runs({run_body(7)}, bearer).attempts.at(0).status == 401);
  bearer.authorization = "Bearer t0ken-9f";
  CHECK(archive_runs({run_body(7)}, bearer).attempts.at(0).status == 200);
}

TEST_CASE("at max_size a push is answered 503 with Retry-After, and every run answered 200 is journaled", "[push]") {
  TestBroker broker;
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "");
  // Sinks that never deliver (a broker port nothing listens on), so nothing is pruned.
  std::ofstream(workspace.config_path())
      << "[journal]\npath = \"" << workspace.journal_path() << "\"\nmax_size = 2097152\ndisk_reserve = 0\n"
      << "[[sink]]\nname = \"test\"\nbrokers = [\"stomp://127.0.0.1:9\"]\n" << push_tables(port, "retry_after = \"7s\"\n");
  Process daemon = workspace.start_daemon();
  wait_listening(port, daemon, workspace);

  // The limit is measured at most once a second, so runs pushed within
  // that second may pass it (journaled, answered 200); after it, 503.
  ArchiverOptions options = archiver(port);
  options.workers = 4;
  std::vector<std::string> bodies = run_bodies(0, 40, 100'000);  // 4 MB of runs for 2 MB
  auto pushed = archive_runs(bodies, options);
  std::this_thread::sleep_for(1500ms);
  const std::vector<std::string> later = run_bodies(40, 10, 100'000);
  const auto refused_later = archive_runs(later, options);
  bodies.insert(bodies.end(), later.begin(), later.end());
  pushed.attempts.insert(pushed.attempts.end(), refused_later.attempts.begin(), refused_later.attempts.end());

  std::set<std::string> answered_200;
  int refused = 0;
  for (size_t i = 0; i < bodies.size(); ++i) {
    const auto& attempt = pushed.attempts[i];
    if (attempt.status == 200) {
      answered_200.insert(gapless::push::run_gapless_id(run_id_of(bodies[i]), bodies[i]));
    } else {
      INFO(attempt.error << attempt.body);
      REQUIRE(attempt.status == 503);
      CHECK(attempt.body.find("max_size") != std::string::npos);
      CHECK(attempt.headers.find("Retry-After: 7\r\n") != std::string::npos);
      ++refused;
    }
  }
  for (const auto& attempt : refused_later.attempts) CHECK(attempt.status == 503);
  CHECK(refused >= 10);
  CHECK_FALSE(answered_200.empty());
  const std::set<std::string> journaled = journaled_runs(workspace);
  for (const std::string& id : answered_200) CHECK(journaled.count(id) == 1);
  CHECK(journaled.size() == answered_200.size());
}

TEST_CASE("kill -9 of gapless during pushes: every run answered 200 is in the journal", "[push][recovery]") {
  TestBroker broker;
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "", push_tables(port));
  Process daemon = workspace.start_daemon();
  wait_listening(port, daemon, workspace);

  const std::vector<std::string> bodies = run_bodies(0, 3000);
  gapless::test::ArchiveRun pushed;
  std::thread pushing([&] { pushed = archive_runs(bodies, archiver(port)); });
  REQUIRE(eventually(30s, [&] { return journaled_runs(workspace).size() >= 200; }));
  daemon.signal(SIGKILL);
  daemon.wait(10s);
  pushing.join();

  std::set<std::string> answered_200;
  size_t failed = 0;
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (pushed.attempts[i].status == 200)
      answered_200.insert(gapless::push::run_gapless_id(run_id_of(bodies[i]), bodies[i]));
    else
      ++failed;
  }
  REQUIRE(failed > 0);  // the kill landed mid-way
  REQUIRE(answered_200.size() >= 200);
  const std::set<std::string> journaled = journaled_runs(workspace);  // as a restarted daemon opens it
  size_t missing = 0;
  for (const std::string& id : answered_200) missing += journaled.count(id) == 0 ? 1 : 0;
  CHECK(missing == 0);
  CHECK(workspace.command({"check"}).ok());
}
