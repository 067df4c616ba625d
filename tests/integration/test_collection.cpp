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

std::string archive_table(const EsmondArchive& archive, const std::string& extra = "") {
  return "[[archive]]\nname = \"test-archive\"\nurl = \"" + archive.base_url() +
         "\"\npoll_interval = \"1s\"\nlookback = \"3d\"\nsummaries = false\n" + extra +
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
