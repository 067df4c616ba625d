// The collector end to end: the esmond-compatible test archive (in this
// process), the `gapless` daemon polling it, a real ActiveMQ, and an MQTT
// subscriber reading the OSG topics the way OSG's consumers do. What the
// subscriber received is compared with what the archive serves.
//   build/tests/integration/integration-tests '[collection]'
#include <signal.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/timestamp.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/mqtt_subscriber.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/timed_subscriber.hpp"
#include "harness/workspace.hpp"
#include "osg/message_builder.hpp"

using namespace std::chrono_literals;
using gapless::test::EsmondArchive;
using gapless::test::MqttSubscriber;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

constexpr int64_t hour = 3600;

// One datapoint as a consumer sees it: series, ts and the value's digest.
struct Point {
  std::string metadata_key;
  std::string event_type;
  int64_t ts = 0;
  std::string digest;
  auto operator<=>(const Point&) const = default;
};

// A raw message as a consumer received it.
struct Received {
  std::string event_type;  // from the topic
  std::string body;
  std::string gapless_id;  // "?" when unknown
};

// Reads raw messages as an OSG consumer does (network_analytics, DIRAC):
// body.meta.org_metadata_key and input_source, datapoints keyed by ts strings.
// Returns every point with the gapless-ids of the messages that carried it.
std::map<Point, std::set<std::string>> points_of(const std::vector<Received>& messages) {
  std::map<Point, std::set<std::string>> points;
  for (const Received& message : messages) {
    const json body = json::parse(message.body);
    REQUIRE(body.at("meta").at("input_source").is_string());
    const std::string key = body.at("meta").at("org_metadata_key").get<std::string>();
    for (const auto& [ts, value] : body.at("datapoints").items())
      points[Point{key, message.event_type, std::stoll(ts), gapless::osg::datapoint_digest(value)}].insert(
          message.gapless_id);
  }
  return points;
}

// MQTT carries no STOMP headers: the gapless-id comes from the journal, by body.
std::map<Point, std::set<std::string>> received_points(const MqttSubscriber& subscriber,
                                                       const std::map<std::string, std::string>& id_of_body) {
  std::vector<Received> raw;
  for (const auto& message : subscriber.snapshot()) {
    if (message.topic.rfind("perfsonar/raw/", 0) != 0) continue;
    const auto id = id_of_body.find(message.payload);
    raw.push_back({message.topic.substr(std::string("perfsonar/raw/").size()), message.payload,
                   id == id_of_body.end() ? "?" : id->second});
  }
  return points_of(raw);
}

// Every base datapoint the archive serves now, for the event types gapless
// collects by default.
std::set<Point> served_points(const EsmondArchive& archive) {
  std::set<Point> points;
  const auto& allowed = gapless::osg_event_types();
  for (const std::string& key : archive.metadata_keys()) {
    const json metadata = archive.metadata(key);
    for (const json& event : metadata.at("event-types")) {
      const std::string event_type = event.at("event-type").get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), event_type) == allowed.end()) continue;
      for (const json& point : archive.points(key, event_type))
        points.insert(Point{key, event_type, point.at("ts").get<int64_t>(),
                            gapless::osg::datapoint_digest(point.at("val"))});
    }
  }
  return points;
}

std::set<Point> keys_of(const std::map<Point, std::set<std::string>>& points) {
  std::set<Point> keys;
  for (const auto& [point, ids] : points) keys.insert(point);
  return keys;
}

// "N missing, M unexpected; first missing: ..." for failure messages.
std::string difference(const std::set<Point>& expected, const std::set<Point>& received) {
  std::vector<Point> missing, unexpected;
  std::set_difference(expected.begin(), expected.end(), received.begin(), received.end(), std::back_inserter(missing));
  std::set_difference(received.begin(), received.end(), expected.begin(), expected.end(),
                      std::back_inserter(unexpected));
  std::string text = std::to_string(missing.size()) + " missing, " + std::to_string(unexpected.size()) +
                     " unexpected of " + std::to_string(expected.size());
  for (size_t i = 0; i < std::min<size_t>(5, missing.size()); ++i)
    text += "\n  missing " + missing[i].metadata_key + " " + missing[i].event_type + " " + std::to_string(missing[i].ts);
  for (size_t i = 0; i < std::min<size_t>(5, unexpected.size()); ++i)
    text += "\n  unexpected " + unexpected[i].metadata_key + " " + unexpected[i].event_type + " " +
            std::to_string(unexpected[i].ts);
  return text;
}

// body -> gapless-id, from the journal (MQTT carries no STOMP headers).
std::map<std::string, std::string> ids_by_body(const Workspace& workspace) {
  SQLite::Database db(workspace.journal_path(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db, "SELECT body, gapless_id FROM message");
  std::map<std::string, std::string> ids;
  while (query.executeStep())
    ids[std::string(static_cast<const char*>(query.getColumn(0).getBlob()),
                    static_cast<size_t>(query.getColumn(0).getBytes()))] = query.getColumn(1).getString();
  return ids;
}

// Datapoints carried by journaled raw messages, and how many distinct ones.
std::pair<int64_t, int64_t> journaled_datapoints(const Workspace& workspace) {
  SQLite::Database db(workspace.journal_path(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db,
                          "SELECT m.body, d.name FROM message m JOIN destination d ON d.id = m.destination_id "
                          "WHERE d.name LIKE '/topic/perfsonar.raw.%'");
  int64_t carried = 0;
  std::set<std::tuple<std::string, std::string, std::string>> distinct;  // key, destination, ts
  while (query.executeStep()) {
    const json body = json::parse(query.getColumn(0).getString());
    for (const auto& [ts, value] : body.at("datapoints").items()) {
      ++carried;
      distinct.emplace(body.at("meta").at("org_metadata_key").get<std::string>(), query.getColumn(1).getString(), ts);
    }
  }
  return {carried, static_cast<int64_t>(distinct.size())};
}

std::string archive_table(const EsmondArchive& archive, const std::string& extra = "",
                          const std::string& lookback = "3d") {
  return "[[archive]]\nname = \"test-archive\"\nurl = \"" + archive.base_url() +
         "\"\npoll_interval = \"1s\"\nlookback = \"" + lookback + "\"\nsummaries = false\n" + extra +
         "[collector]\nretry_min = \"1s\"\nretry_max = \"2s\"\n";
}

EsmondArchive::Options archive_options(int series, int64_t history) {
  EsmondArchive::Options options;
  options.series = series;
  options.now = gapless::unix_now_ms() / 1000;
  options.start = *options.now - history;
  return options;
}

// Waits until the subscriber holds every served point.
bool wait_for_points(const MqttSubscriber& subscriber, const Workspace& workspace, const std::set<Point>& expected,
                     std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (keys_of(received_points(subscriber, ids_by_body(workspace))) == expected) return true;
    std::this_thread::sleep_for(1s);
  }
  return false;
}

}  // namespace

TEST_CASE("the daemon polls an archive continuously and a subscriber receives exactly what it served",
          "[collection]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(3, 4 * hour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive));
  MqttSubscriber subscriber(broker.mqtt_uri(), {"perfsonar/#"});

  auto daemon = workspace.start_daemon();
  // The archive keeps producing while the daemon runs.
  for (int step = 0; step < 4; ++step) {
    std::this_thread::sleep_for(2s);
    archive.advance(10 * 60);
  }
  const std::set<Point> expected = served_points(archive);
  REQUIRE(expected.size() > 1000);
  const bool complete = wait_for_points(subscriber, workspace, expected, 120s);
  CHECK(complete);

  const auto received = received_points(subscriber, ids_by_body(workspace));
  INFO(difference(expected, keys_of(received)));
  CHECK(keys_of(received) == expected);
  for (const auto& [point, ids] : received) CHECK(ids.size() == 1);  // no duplicate without a crash
  CHECK(daemon.terminate(30s).code == 0);

  const auto [carried, distinct] = journaled_datapoints(workspace);
  CHECK(carried == distinct);
}

TEST_CASE("kill -9 while polling: nothing lost, no datapoint journaled twice, bus duplicates share their id",
          "[collection]") {
  TestBroker broker;
  // Enough data that the first poll takes a while: 12 series x 2 days.
  EsmondArchive archive(archive_options(12, 48 * hour));
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

// ---------------------------------------------------------------------------
// gapless-replay: an outage of the collector, the gap report, the backfill,
// and a consumer's resend.

namespace {

gapless::test::RunResult replay(Workspace& workspace, std::vector<std::string> args) {
  std::vector<std::string> full = {(gapless::test::gapless_binary().parent_path().parent_path() / "tools" /
                                    "replay" / "gapless-replay")
                                       .string(),
                                   args.at(0), "--config", workspace.config_path()};
  full.insert(full.end(), args.begin() + 1, args.end());
  return gapless::test::run(full, 300s);
}

std::vector<Received> raw_messages(const gapless::test::StompRecorder& recorder, bool resent) {
  std::vector<Received> raw;
  for (const auto& message : recorder.snapshot()) {
    if (message.destination.rfind("/topic/perfsonar.raw.", 0) != 0) continue;
    if ((message.header("gapless-resend") != nullptr) != resent) continue;
    const std::string* id = message.header("gapless-id");
    raw.push_back({message.destination.substr(std::string("/topic/perfsonar.raw.").size()), message.body,
                   id == nullptr ? "?" : *id});
  }
  return raw;
}

// Waits until the recorder holds every expected point (first deliveries, not
// resends), then checks it got exactly those, each in one message.
std::map<Point, std::set<std::string>> check_received_once(const gapless::test::StompRecorder& recorder,
                                                           const std::set<Point>& expected,
                                                           std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (keys_of(points_of(raw_messages(recorder, false))) != expected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1s);
  const auto received = points_of(raw_messages(recorder, false));
  INFO(difference(expected, keys_of(received)));
  CHECK(keys_of(received) == expected);
  for (const auto& [point, ids] : received) CHECK(ids.size() == 1);
  return received;
}

}  // namespace

TEST_CASE("after a collector outage: gaps shows the window, backfill fills it once, resend re-delivers a range",
          "[replay]") {
  TestBroker broker;
  const int64_t now = gapless::unix_now_ms() / 1000;
  // The archive's clock starts 3 hours behind: the collector polls up to
  // then, stops (the outage), and the archive catches up with real time.
  EsmondArchive::Options options = archive_options(3, 8 * hour);
  options.now = now - 3 * hour;
  EsmondArchive archive(options);
  archive.start();
  Workspace workspace(broker, "", archive_table(archive));
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);

  workspace.run_until_drained();  // one poll, before the outage
  archive.set_now(now);           // the archive kept producing
  const std::string from = std::to_string(now - 8 * hour);
  const std::string to = std::to_string(now);

  // gaps: one gap per series, from the last datapoint before the outage to
  // (almost) now; nothing before it.
  auto gaps = replay(workspace, {"gaps", "--from", from, "--to", to});
  INFO(gaps.err);
  REQUIRE(gaps.ok());
  INFO(gaps.out);
  CHECK(gaps.out.find(gapless::format_timestamp(now - 3 * hour).substr(0, 13)) != std::string::npos);

  // --svg: the same gaps as a picture an operator opens in a browser, one
  // row per series, each gap a red bar titled with its window.
  const std::string picture = (workspace.dir() / "gaps.svg").string();
  auto svg = replay(workspace, {"gaps", "--from", from, "--to", to, "--svg", picture});
  REQUIRE(svg.ok());
  std::ifstream picture_file(picture);
  const std::string svg_text((std::istreambuf_iterator<char>(picture_file)), std::istreambuf_iterator<char>());
  CHECK(svg_text.rfind("<svg", 0) == 0);
  CHECK(svg_text.find("</svg>") != std::string::npos);
  CHECK(svg_text.find("<g class=\"series\">") != std::string::npos);
  CHECK(svg_text.find("fill=\"#d62728\"><title>gap " + gapless::format_timestamp(now - 3 * hour).substr(0, 10)) !=
        std::string::npos);

  // Dry run changes nothing.
  auto dry = replay(workspace, {"backfill", "--from", from, "--to", to, "--dry-run"});
  INFO(dry.err);
  REQUIRE(dry.ok());
  CHECK_THAT(dry.out, Catch::Contains("nothing was changed"));

  auto first = replay(workspace, {"backfill", "--from", from, "--to", to});
  INFO(first.out << first.err);
  REQUIRE(first.ok());
  workspace.run_until_drained();  // the daemon's sender delivers the backfill

  const auto received = check_received_once(recorder, served_points(archive), 120s);

  auto after = replay(workspace, {"gaps", "--from", from, "--to", to});
  REQUIRE(after.ok());
  CHECK_THAT(after.out, Catch::Contains("no gaps"));

  const size_t messages_before = recorder.snapshot().size();
  auto second = replay(workspace, {"backfill", "--from", from, "--to", to});
  INFO(second.out << second.err);
  REQUIRE(second.ok());
  CHECK_THAT(second.out, Catch::Contains(" 0 journaled"));
  workspace.run_until_drained();
  std::this_thread::sleep_for(2s);
  CHECK(recorder.snapshot().size() == messages_before);

  // resend of one hour: exactly the messages carrying its datapoints, again,
  // same gapless-ids, with the request's id in gapless-resend.
  const int64_t resend_from = now - 6 * hour;
  const int64_t resend_to = now - 5 * hour;
  auto resend = replay(workspace, {"resend", "--from", std::to_string(resend_from), "--to", std::to_string(resend_to),
                                   "--reason", "dashboard lost it"});
  INFO(resend.out << resend.err);
  REQUIRE(resend.ok());
  workspace.run_until_drained();
  std::this_thread::sleep_for(2s);
  const auto resent = points_of(raw_messages(recorder, true));
  REQUIRE_FALSE(resent.empty());
  std::set<std::string> original_ids;
  for (const auto& [point, ids] : received)
    if (point.ts >= resend_from && point.ts < resend_to) {
      CHECK(resent.count(point) == 1);  // every point of the range
      original_ids.insert(ids.begin(), ids.end());
    }
  std::set<std::string> resent_ids;
  for (const auto& [point, ids] : resent) resent_ids.insert(ids.begin(), ids.end());
  CHECK(resent_ids == original_ids);  // the same messages, with their ids
  for (const auto& message : recorder.snapshot())
    if (const std::string* request = message.header("gapless-resend")) CHECK(*request != "");

  auto listed = replay(workspace, {"requests"});
  REQUIRE(listed.ok());
  CHECK_THAT(listed.out, Catch::Contains("resend") && Catch::Contains("dashboard lost it") &&
                             Catch::Contains("backfill"));
}

TEST_CASE("kill -9 in the middle of a backfill, then the same command again: no loss, no duplicate", "[replay]") {
  TestBroker broker;
  const int64_t now = gapless::unix_now_ms() / 1000;
  // Nothing collected before: the whole window is the outage.
  EsmondArchive archive(archive_options(12, 48 * hour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "page_size = 500\n"));
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  const std::string from = std::to_string(now - 49 * hour);
  const std::string to = std::to_string(now);

  const auto replay_binary = (gapless::test::gapless_binary().parent_path().parent_path() / "tools" / "replay" /
                              "gapless-replay")
                                 .string();
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
  auto resumed = replay(workspace, {"backfill", "--from", from, "--to", to});
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.ok());
  workspace.run_until_drained();

  const auto received = check_received_once(recorder, served_points(archive), 180s);
  const auto [carried, distinct] = journaled_datapoints(workspace);
  CHECK(carried == distinct);

  auto listed = replay(workspace, {"requests"});
  REQUIRE(listed.ok());
  CHECK_THAT(listed.out, Catch::Contains("running"));  // the killed one, as it was left
  CHECK_THAT(listed.out, Catch::Contains("done"));
}

TEST_CASE("gapless-replay refuses bad arguments with a clear error before changing anything", "[replay]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(1, hour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive));
  const struct {
    std::vector<std::string> args;
    const char* words;
  } cases[] = {
      {{"backfill", "--from", "2016-09-12", "--to", "2016-08-23"}, "is not before --to"},
      {{"backfill", "--from", "2016-08-23", "--to", "2016-09-12", "--archive", "psds"}, "unknown archive \"psds\""},
      {{"resend", "--from", "2016-08-23", "--to", "2016-09-12", "--sink", "cern"}, "unknown sink \"cern\""},
      {{"gaps", "--from", "last tuesday", "--to", "2016-09-12"}, "--from: cannot read \"last tuesday\""},
      {{"resend", "--from", "2016-08-23", "--to", "2016-08-23"}, "is not before --to"},
  };
  for (const auto& c : cases) {
    auto result = replay(workspace, c.args);
    INFO(c.args.at(0) << ": " << result.err);
    CHECK(result.status.code == 2);
    CHECK_THAT(result.err, Catch::Contains(c.words));
  }
  CHECK_FALSE(std::filesystem::exists(workspace.journal_path()));  // nothing was even opened
}

// ---------------------------------------------------------------------------
// --rate (issue 4): a request's messages reach a consumer no faster than the
// operator asked, and not much slower either.

namespace {

using ArrivalClock = std::chrono::system_clock;

constexpr int kRate = 20;  // messages per second
// Backfill paces after each journaled page, so the messages of one page may
// come together on top of the rate: page_size / datapoints_per_message.
constexpr int kPageSize = 1000;
constexpr int kDatapointsPerMessage = 100;
constexpr size_t kMessagesPerPage = kPageSize / kDatapointsPerMessage;

struct Pacing {
  double span_seconds = 0;        // first arrival to last
  size_t most_in_one_second = 0;  // in any sliding 1 s window
};

Pacing pacing_of(std::vector<ArrivalClock::time_point> arrivals) {
  Pacing pacing;
  if (arrivals.empty()) return pacing;
  std::sort(arrivals.begin(), arrivals.end());
  pacing.span_seconds = std::chrono::duration<double>(arrivals.back() - arrivals.front()).count();
  size_t first = 0;
  for (size_t last = 0; last < arrivals.size(); ++last) {
    while (arrivals[last] - arrivals[first] >= 1s) ++first;
    pacing.most_in_one_second = std::max(pacing.most_in_one_second, last - first + 1);
  }
  return pacing;
}

// "backfill request 3 [...]: ..." / "resend request 4: ..." -> 3 / 4.
int64_t request_id_in(const std::string& out) {
  const size_t at = out.find("request ");
  REQUIRE(at != std::string::npos);
  return std::stoll(out.substr(at + std::string("request ").size()));
}

std::set<std::string> ids_of_request(const Workspace& workspace, int64_t request_id) {
  SQLite::Database db(workspace.journal_path(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db, "SELECT gapless_id FROM message WHERE request_id = ?");
  query.bind(1, request_id);
  std::set<std::string> ids;
  while (query.executeStep()) ids.insert(query.getColumn(0).getString());
  return ids;
}

// The slowest a paced request may reasonably take, so that a pacer that
// stalls fails too: three times the nominal duration, plus room for a
// loaded machine.
std::chrono::milliseconds pacing_deadline(size_t messages) {
  return std::chrono::milliseconds(static_cast<int64_t>((3.0 * static_cast<double>(messages) / kRate + 20) * 1000));
}

// Everything the subscriber holds now and receives until `complete` says the
// request's messages are all in, or `deadline` passed.
void gather(gapless::test::TimedSubscriber& subscriber, std::vector<gapless::test::TimedMessage>& seen,
            ArrivalClock::time_point deadline,
            const std::function<bool(const std::vector<gapless::test::TimedMessage>&)>& complete) {
  for (;;) {
    for (auto& message : subscriber.take()) seen.push_back(std::move(message));
    if (complete(seen) || ArrivalClock::now() >= deadline) return;
    std::this_thread::sleep_for(200ms);
  }
}

using Arrivals = std::map<std::string, std::vector<ArrivalClock::time_point>>;  // gapless-id -> when, each time

// What --rate promises for one request of `expected` messages started at
// `started`: each arrives once, spread over at least most of expected / rate
// seconds, never more than the rate plus `burst` in one second, and all of
// them in reasonable time.
void check_paced(const std::string& request, const Arrivals& arrivals, const std::set<std::string>& expected,
                 size_t burst, ArrivalClock::time_point started) {
  INFO(request << ": " << expected.size() << " messages at --rate " << kRate);
  std::set<std::string> arrived;
  std::vector<ArrivalClock::time_point> times;
  for (const auto& [id, when] : arrivals) {
    INFO("gapless-id " << id << " arrived " << when.size() << " times");
    CHECK(when.size() == 1);
    arrived.insert(id);
    times.insert(times.end(), when.begin(), when.end());
  }
  CHECK(arrived == expected);
  REQUIRE_FALSE(times.empty());

  const Pacing pacing = pacing_of(times);
  const double nominal_seconds = static_cast<double>(expected.size()) / kRate;
  const double seconds_to_last =
      std::chrono::duration<double>(*std::max_element(times.begin(), times.end()) - started).count();
  INFO("first to last arrival " << pacing.span_seconds << " s, at most " << pacing.most_in_one_second
                                << " in one second, last arrival " << seconds_to_last << " s after the command");
  CHECK(pacing.span_seconds >= 0.8 * nominal_seconds);
  CHECK(pacing.most_in_one_second <= kRate + burst);
  CHECK(seconds_to_last < 3 * nominal_seconds + 20);
}

}  // namespace

TEST_CASE("backfill and resend with --rate deliver at that rate beside the running daemon", "[replay]") {
  TestBroker broker;
  const int64_t now = gapless::unix_now_ms() / 1000;
  // Ten packet-loss-rate series: one destination, one message per 100
  // datapoints, so a window's message count follows from its length. The
  // daemon collects the last hour only; the backfill window ends well before
  // that hour, so the daemon's overlap re-reads never touch it.
  EsmondArchive::Options options = archive_options(10, 47 * hour);
  options.kinds = {gapless::test::esmond::SeriesKind::latency};
  options.event_types = {"packet-loss-rate"};
  EsmondArchive archive(options);
  archive.start();
  Workspace workspace(broker, "",
                      archive_table(archive,
                                    "page_size = " + std::to_string(kPageSize) +
                                        "\ndatapoints_per_message = " + std::to_string(kDatapointsPerMessage) + "\n",
                                    "1h"));
  gapless::test::TimedSubscriber subscriber(broker.stomp_uri());

  auto daemon = workspace.start_daemon();
  // The daemon's own hour delivered first, so the backfill runs beside an
  // idle daemon rather than racing its first poll.
  const std::string destination = "/topic/perfsonar.raw.packet-loss-rate";
  const auto collected_by = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    const auto counts = workspace.counts();
    const auto it = counts.find(destination);
    if (it != counts.end() && it->second[0] == 0 && it->second[1] > 0 &&
        subscriber.received() >= static_cast<size_t>(it->second[1]))
      break;
    REQUIRE(std::chrono::steady_clock::now() < collected_by);
    std::this_thread::sleep_for(500ms);
  }
  std::vector<gapless::test::TimedMessage> seen = subscriber.take();

  // 44 hours of ten series: about 2500 datapoints, 26 messages each, so
  // about 260 messages, 13 s at 20 per second.
  const int64_t backfill_to = now - 2 * hour;
  const int64_t backfill_from = backfill_to - 44 * hour;
  const auto backfill_started = ArrivalClock::now();
  auto backfill = replay(workspace, {"backfill", "--from", std::to_string(backfill_from), "--to",
                                     std::to_string(backfill_to), "--rate", std::to_string(kRate)});
  {
    INFO(backfill.out << backfill.err);
    REQUIRE(backfill.ok());
  }
  const std::set<std::string> backfilled = ids_of_request(workspace, request_id_in(backfill.out));
  REQUIRE(backfilled.size() >= 200);  // long enough (10 s) for a second-by-second rate to mean something
  REQUIRE(backfilled.size() <= 320);

  const auto backfilled_arrivals = [&](const std::vector<gapless::test::TimedMessage>& messages) {
    Arrivals arrivals;
    for (const auto& message : messages)
      if (message.header("gapless-resend") == nullptr && backfilled.count(message.gapless_id) == 1)
        arrivals[message.gapless_id].push_back(message.arrived);
    return arrivals;
  };
  gather(subscriber, seen, backfill_started + pacing_deadline(backfilled.size()),
         [&](const auto& messages) { return backfilled_arrivals(messages).size() == backfilled.size(); });
  check_paced("backfill", backfilled_arrivals(seen), backfilled, kMessagesPerPage, backfill_started);

  // resend of 30 of those hours: every delivered message carrying one of
  // their datapoints, as the consumer saw it, comes again with its gapless-id.
  const int64_t resend_from = backfill_from + 8 * hour;
  const int64_t resend_to = backfill_from + 38 * hour;
  std::set<std::string> in_resend_range;
  for (const auto& message : seen) {
    if (backfilled.count(message.gapless_id) == 0) continue;
    const json body = json::parse(message.body);
    for (const auto& [ts, value] : body.at("datapoints").items())
      if (std::stoll(ts) >= resend_from && std::stoll(ts) < resend_to) in_resend_range.insert(message.gapless_id);
  }
  REQUIRE(in_resend_range.size() >= 150);

  const auto resend_started = ArrivalClock::now();
  auto resend = replay(workspace, {"resend", "--from", std::to_string(resend_from), "--to", std::to_string(resend_to),
                                   "--rate", std::to_string(kRate), "--reason", "paced resend"});
  {
    INFO(resend.out << resend.err);
    REQUIRE(resend.ok());
  }
  const std::string resend_request = std::to_string(request_id_in(resend.out));
  const auto resent_arrivals = [&](const std::vector<gapless::test::TimedMessage>& messages) {
    Arrivals arrivals;
    for (const auto& message : messages) {
      const std::string* request = message.header("gapless-resend");
      if (request != nullptr && *request == resend_request) arrivals[message.gapless_id].push_back(message.arrived);
    }
    return arrivals;
  };
  gather(subscriber, seen, resend_started + pacing_deadline(in_resend_range.size()),
         [&](const auto& messages) { return resent_arrivals(messages).size() == in_resend_range.size(); });
  // Resend queues a tenth of a second's worth at a time, but the sender,
  // idle in between, looks for pending rows every 200 ms, so the consumer
  // sees them in clumps on top of the rate all the same; the page's
  // allowance covers that.
  check_paced("resend", resent_arrivals(seen), in_resend_range, kMessagesPerPage, resend_started);

  CHECK(daemon.terminate(30s).code == 0);
}
