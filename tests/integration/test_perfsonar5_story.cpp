// Proves the 2016 incident cannot happen again in its perfSONAR 5 form: a
// perfSONAR host's pScheduler pushes its runs to gapless on loopback (the
// archiver client of tests/harness, 25 connections, runs of every test type)
// while the central Logstash (the stand-in of tests/harness) answers 503,
// then 429, then hangs; every push is still answered 2xx, and once Logstash
// answers 200 again every run reaches it at least once, byte for byte as
// pushed, with its x-ps-observer, while a STOMP subscriber on the real
// ActiveMQ has each run's OSG messages (/topic/perfsonar.raw.<event type>)
// all along. Without gapless each of those runs would be one failed POST,
// lost (the stock archive specifications carry no retry-policy).
//
// And the same measurement reaching gapless twice: runs pushed, then read
// back from the host's elmond (the test archive's elmond mode holding the
// same runs) by `gapless-replay backfill`, journal no new message.
//
// Each outage phase lasts 15 s (about a minute in all); GAPLESS_LONG=1 makes each
// 5 minutes (tests/README.md).
//   build/tests/integration/integration-tests '[perfsonar5-story]'
#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness/archiver_client.hpp"
#include "harness/broker.hpp"
#include "harness/logstash_standin.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "core/config.hpp"
#include "osg/pscheduler_run.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "support/eventually.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using gapless::test::ArchiverOptions;
using gapless::test::archive_runs;
using gapless::test::EsmondArchive;
using gapless::test::eventually;
using gapless::test::JournalSql;
using gapless::test::LogstashStandin;
using gapless::test::Process;
using gapless::test::StompRecorder;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;
using Answer = LogstashStandin::Answer;

namespace {

constexpr const char* kObserver = "192.0.2.10";
constexpr int64_t kFirstStart = 1'760'000'000;  // 2025-10-09

std::chrono::seconds phase_length() {
  return std::getenv("GAPLESS_LONG") != nullptr ? 300s : 15s;
}

// The sample runs of tests/data/pscheduler: every test type OSG publishes, and a failed run.
const std::vector<json>& samples() {
  static const std::vector<json> loaded = [] {
    std::vector<json> runs;
    for (const char* name : {"throughput-tcp", "throughput-udp", "throughput-failed", "latencybg", "trace", "rtt"}) {
      std::ifstream in(std::string(GAPLESS_SOURCE_DIR) + "/tests/data/pscheduler/" + name + ".json");
      runs.push_back(json::parse(in));
    }
    return runs;
  }();
  return loaded;
}

std::string iso_time(int64_t ts) {
  const std::time_t time = ts;
  char iso[32];
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&time));
  return iso;
}

// The `index`th run of the host: a sample in turn, made a run of its own (its
// own id, href and start, a minute after the previous one), so that each run
// has points of its own in each series.
std::string run_body(int index) {
  json run = samples()[static_cast<size_t>(index) % samples().size()];
  char id[40];
  std::snprintf(id, sizeof id, "%08x-5e0c-4a1b-9d2e-0c1d2e3f4a5b", static_cast<unsigned>(index));
  const std::string href = run["run"]["href"].get<std::string>();
  run["id"] = id;
  run["run"]["href"] = href.substr(0, href.rfind('/') + 1) + id;
  const int64_t start = kFirstStart + 60 * index;
  run["schedule"]["start"] = iso_time(start);
  run["run"]["start-time"] = iso_time(start);
  if (run["run"].contains("end-time")) run["run"]["end-time"] = iso_time(start + 14);
  return run.dump();
}

// The archiver pointed at gapless's [push] on `port`, as the stock archive spec sends.
ArchiverOptions archiver_to(uint16_t port) {
  ArchiverOptions archiver;
  archiver.url = "http://127.0.0.1:" + std::to_string(port) + "/logstash";
  archiver.observer = kObserver;
  return archiver;
}

// Waits until the push endpoint answers (the daemon is up); `log` says why not.
void wait_push_listening(uint16_t port, Process& daemon, const std::function<std::string()>& log) {
  ArchiverOptions probe = archiver_to(port);
  probe.url = "http://127.0.0.1:" + std::to_string(port) + "/not-a-path";
  probe.workers = 1;
  probe.timeout = 2s;
  const bool listening = eventually(30s, [&] {
    REQUIRE(daemon.running());
    return archive_runs({"{}"}, probe).attempts[0].status == 404;
  });
  INFO(log());
  REQUIRE(listening);
}

// What the subscriber must have of one run: destination -> ts -> the value's canonical text.
using OsgPoints = std::map<std::string, std::map<int64_t, std::string>>;

void add_expected_points(const std::string& body, OsgPoints& expected) {
  const gapless::osg::Run run = gapless::osg::parse_run(body);
  for (const auto& point : gapless::osg::esmond_points(run, "", kObserver))
    expected["/topic/perfsonar.raw." + point.series.event_type][point.point.ts] = point.point.value;
}

OsgPoints received_points(const StompRecorder& recorder) {
  OsgPoints received;
  for (const auto& message : recorder.snapshot()) {
    const json body = json::parse(message.body);
    for (const auto& [ts, value] : body["datapoints"].items())
      received[message.destination][std::stoll(ts)] = value.dump();
  }
  return received;
}

// What of `expected` the subscriber lacks or got with another value, as lines for a failure message.
std::vector<std::string> missing_points(const OsgPoints& expected, const OsgPoints& received) {
  std::vector<std::string> missing;
  for (const auto& [destination, points] : expected) {
    const auto got = received.find(destination);
    for (const auto& [ts, value] : points) {
      if (got == received.end() || got->second.count(ts) == 0)
        missing.push_back(destination + " ts=" + std::to_string(ts) + ": none");
      else if (got->second.at(ts) != value)
        missing.push_back(destination + " ts=" + std::to_string(ts) + ": " + got->second.at(ts) + " for " + value);
    }
  }
  return missing;
}

// Pending and delivered rows of the http sink, from `gapless status --json`.
std::pair<int64_t, int64_t> logstash_rows(Workspace& workspace) {
  int64_t pending = 0;
  int64_t delivered = 0;
  const json status = workspace.status();
  for (const json& sink : status["sinks"]) {
    if (sink["sink"] != "logstash") continue;
    for (const json& destination : sink["destinations"]) {
      pending += destination["pending"].get<int64_t>();
      delivered += destination["delivered"].get<int64_t>();
    }
  }
  return {pending, delivered};
}

}  // namespace

TEST_CASE("while the central Logstash answers 503, then 429, then hangs, every pushed run is answered 2xx and "
          "later reaches it as pushed, and the brokers get its OSG messages all along",
          "[perfsonar5-story]") {
  TestBroker broker;
  StompRecorder recorder(broker.stomp_uri(), {.destination = "/topic/perfsonar.raw.>"});
  recorder.start_and_wait_subscribed(30s);
  LogstashStandin::Options down;
  down.answer = Answer::down;
  LogstashStandin logstash(down);
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "",
                      "[[sink]]\nname = \"logstash\"\nprotocol = \"http\"\nurl = \"" + logstash.url() +
                          "\"\ntimeout = \"2s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n"
                          "[push]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  Process daemon = workspace.start_daemon();

  wait_push_listening(port, daemon, [&] { return workspace.daemon_log(); });
  const ArchiverOptions archiver = archiver_to(port);

  // pScheduler's pace on a busy host, compressed: a run on each of the 25
  // connections every second, for the length of each phase.
  std::vector<std::string> pushed;
  OsgPoints expected;
  const auto push_during = [&](Answer answer, const char* name) {
    logstash.answer(answer);
    const auto end = std::chrono::steady_clock::now() + phase_length();
    while (std::chrono::steady_clock::now() < end) {
      const auto next = std::chrono::steady_clock::now() + 1s;
      std::vector<std::string> bodies;
      for (int i = 0; i < archiver.workers; ++i) bodies.push_back(run_body(static_cast<int>(pushed.size()) + i));
      const auto answered = archive_runs(bodies, archiver);
      for (size_t i = 0; i < bodies.size(); ++i) {
        INFO("phase " << name << ", run " << pushed.size() << ": " << answered.attempts[i].error
                      << answered.attempts[i].body);
        REQUIRE(answered.attempts[i].status / 100 == 2);
        add_expected_points(bodies[i], expected);
        pushed.push_back(bodies[i]);
      }
      std::this_thread::sleep_until(next);
    }
    // Logstash took nothing yet: the runs wait in the journal, as status shows.
    const auto [pending, delivered] = logstash_rows(workspace);
    INFO("phase " << name);
    CHECK(delivered == 0);
    CHECK(pending == static_cast<int64_t>(pushed.size()));
  };
  push_during(Answer::down, "503");
  push_during(Answer::busy, "429");
  const size_t before_hang = logstash.request_count();
  push_during(Answer::hang, "hang");
  CHECK(logstash.request_count() > before_hang);  // the sink kept asking, each request timed out
  std::map<int, size_t> answers;                   // status -> requests so answered
  for (const auto& request : logstash.requests()) ++answers[request.status];
  CHECK(answers[503] > 0);  // the sink met each fault
  CHECK(answers[429] > 0);

  // The outage never held up the brokers: each run's OSG messages are there already.
  REQUIRE_FALSE(expected.empty());
  {
    const bool all = eventually(60s, [&] { return missing_points(expected, received_points(recorder)).empty(); });
    const auto missing = missing_points(expected, received_points(recorder));
    INFO(missing.size() << " points missing, first: " << (missing.empty() ? "" : missing.front()));
    CHECK(all);
  }

  // Logstash is back: every run reaches it at least once, as pushed.
  logstash.answer(Answer::ok);
  const auto delivery_timeout = 60s + std::chrono::seconds(pushed.size() / 20);
  const bool drained = eventually(std::chrono::duration_cast<std::chrono::seconds>(delivery_timeout),
                                  [&] { return logstash_rows(workspace).first == 0; });
  INFO(workspace.daemon_log().substr(0, 20'000));
  REQUIRE(drained);
  CHECK(logstash_rows(workspace).second == static_cast<int64_t>(pushed.size()));

  std::map<std::string, int> accepted;  // body -> times answered 200
  std::vector<std::string> wrong;        // requests answered 200 that Logstash would read otherwise
  for (const auto& request : logstash.requests()) {
    if (request.status != 200) continue;
    const std::string observer = request.header("x-ps-observer").value_or("none");
    if (request.method != "PUT" || observer != kObserver) wrong.push_back(request.method + " x-ps-observer: " + observer);
    ++accepted[request.body];
  }
  INFO(wrong.size() << " requests not a PUT with x-ps-observer: " << kObserver
                    << ", first: " << (wrong.empty() ? "" : wrong.front()));
  CHECK(wrong.empty());
  size_t lost = 0;
  for (const std::string& body : pushed) lost += accepted.count(body) == 0 ? 1 : 0;
  INFO(pushed.size() << " runs pushed, " << accepted.size() << " distinct bodies accepted");
  CHECK(lost == 0);
  CHECK(accepted.size() == pushed.size());  // nothing altered arrived beside them
  CHECK(daemon.running());
}

TEST_CASE("runs pushed, then backfilled from the host's elmond holding the same runs, journal no new message",
          "[perfsonar5-story]") {
  constexpr int kRuns = 60;  // ten of each sample
  std::vector<std::string> bodies;
  std::vector<json> runs;
  for (int i = 0; i < kRuns; ++i) {
    bodies.push_back(run_body(i));
    runs.push_back(json::parse(bodies.back()));
  }
  const int64_t first = kFirstStart;
  const int64_t last = kFirstStart + 60 * (kRuns - 1);

  // The host's elmond is not reachable while the runs are pushed (so the
  // daemon's collector covers nothing the backfill would then skip); the
  // push endpoint names it by the very URL the [[archive]] table gives.
  const auto ports = gapless::test::free_tcp_ports(2);
  const uint16_t push_port = ports[0];
  const std::string elmond_url = "http://127.0.0.1:" + std::to_string(ports[1]) + "/esmond/perfsonar/archive/";
  gapless::test::TempDir dir("perfsonar5-backfill");
  const std::string config = dir.file("gapless.toml");
  const std::string journal = dir.file("journal.db");
  // summaries = false: a push holds one run, not a window, so esmond's
  // summaries come from reading the archive only (docs/perfsonar5.md).
  std::ofstream(config) << "[journal]\npath = \"" << journal << "\"\n"
                        << "[[sink]]\nname = \"test\"\nbrokers = [\"stomp://127.0.0.1:9\"]\n"
                        << "[[sink]]\nname = \"logstash\"\nprotocol = \"http\"\nurl = \"http://127.0.0.1:9/logstash\"\n"
                        << "[[archive]]\nname = \"ps1\"\nurl = \"" << elmond_url << "\"\nsummaries = false\n"
                        << "[push]\nlisten = \"127.0.0.1:" << push_port << "\"\narchive_url = \"" << elmond_url
                        << "\"\n";
  const auto gapless_command = [&](const std::string& program, std::vector<std::string> args) {
    std::vector<std::string> full = {program, args.at(0), "--config", config};
    full.insert(full.end(), args.begin() + 1, args.end());
    return gapless::test::run(full, 120s);
  };
  Process daemon = Process::spawn({.args = {gapless::test::gapless_binary().string(), "run", "--config", config},
                                   .out = gapless::test::Output::to_file(dir.file("daemon.err")),
                                   .err = gapless::test::Output::to_file(dir.file("daemon.err"))});
  const auto daemon_log = [&] {
    std::ifstream in(dir.file("daemon.err"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  wait_push_listening(push_port, daemon, daemon_log);
  const auto pushed = archive_runs(bodies, archiver_to(push_port));
  for (const auto& attempt : pushed.attempts) {
    INFO(attempt.error << attempt.body);
    REQUIRE(attempt.status == 200);
  }
  daemon.signal(SIGTERM);
  REQUIRE(daemon.wait(30s).code == 0);

  const auto count_messages = [&](const std::string& destination_like) {
    JournalSql sql(journal);
    return sql.integer("SELECT count(*) FROM message JOIN destination ON destination.id = message.destination_id "
                       "WHERE destination.name LIKE '" + destination_like + "'");
  };
  const int64_t raw_before = count_messages("/topic/perfsonar.raw.%");
  const int64_t all_before = count_messages("%");
  REQUIRE(raw_before > kRuns);  // each run's OSG messages were journaled by the push

  EsmondArchive::Options options;
  options.flavour = gapless::test::ArchiveFlavour::elmond;
  options.port = ports[1];
  options.series = 0;
  options.runs = runs;
  options.now = last + 3600;
  options.retention = false;
  EsmondArchive elmond(options);
  elmond.start();
  REQUIRE(elmond.base_url() == elmond_url);

  const auto backfill = gapless_command(gapless::test::gapless_replay_binary().string(),
                                        {"backfill", "--from", std::to_string(first - 60), "--to",
                                         std::to_string(last + 60)});
  INFO(backfill.out << backfill.err);
  REQUIRE(backfill.ok());
  // The backfill read every point of the window (none was skipped as
  // already covered) and found each one journaled.
  int64_t points_served = 0;
  for (const std::string& key : elmond.metadata_keys())
    for (const std::string& event_type : gapless::osg_event_types())
      points_served += static_cast<int64_t>(elmond.points(key, event_type).size());
  REQUIRE(points_served > kRuns);
  CHECK_THAT(backfill.out, Catch::Contains(" " + std::to_string(points_served) + " datapoints read, 0 journaled (new), "
                                           "0 messages"));
  CHECK(count_messages("/topic/perfsonar.raw.%") == raw_before);
  CHECK(count_messages("%") == all_before);
}
