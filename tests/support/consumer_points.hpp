// Collected datapoints as an OSG consumer sees them, for the integration
// tests that compare what a subscriber received with what the test archive
// served: every point once, and a point seen twice on the bus only in
// messages that share a gapless-id.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/mqtt_subscriber.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "osg/message_builder.hpp"

namespace gapless::test {

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
inline std::map<Point, std::set<std::string>> points_of(const std::vector<Received>& messages) {
  std::map<Point, std::set<std::string>> points;
  for (const Received& message : messages) {
    const nlohmann::json body = nlohmann::json::parse(message.body);
    REQUIRE(body.at("meta").at("input_source").is_string());
    const std::string key = body.at("meta").at("org_metadata_key").get<std::string>();
    for (const auto& [ts, value] : body.at("datapoints").items())
      points[Point{key, message.event_type, std::stoll(ts), gapless::osg::datapoint_digest(value)}].insert(
          message.gapless_id);
  }
  return points;
}

// MQTT carries no STOMP headers: the gapless-id comes from the journal, by body.
inline std::map<Point, std::set<std::string>> received_points(const MqttSubscriber& subscriber,
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
inline std::set<Point> served_points(const EsmondArchive& archive) {
  std::set<Point> points;
  const auto& allowed = gapless::osg_event_types();
  for (const std::string& key : archive.metadata_keys()) {
    const nlohmann::json metadata = archive.metadata(key);
    for (const nlohmann::json& event : metadata.at("event-types")) {
      const std::string event_type = event.at("event-type").get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), event_type) == allowed.end()) continue;
      for (const nlohmann::json& point : archive.points(key, event_type))
        points.insert(Point{key, event_type, point.at("ts").get<int64_t>(),
                            gapless::osg::datapoint_digest(point.at("val"))});
    }
  }
  return points;
}

inline std::set<Point> keys_of(const std::map<Point, std::set<std::string>>& points) {
  std::set<Point> keys;
  for (const auto& [point, ids] : points) keys.insert(point);
  return keys;
}

// "N missing, M unexpected; first missing: ..." for failure messages.
inline std::string difference(const std::set<Point>& expected, const std::set<Point>& received) {
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
inline std::map<std::string, std::string> ids_by_body(const Workspace& workspace) {
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
inline std::pair<int64_t, int64_t> journaled_datapoints(const Workspace& workspace) {
  SQLite::Database db(workspace.journal_path(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db,
                          "SELECT m.body, d.name FROM message m JOIN destination d ON d.id = m.destination_id "
                          "WHERE d.name LIKE '/topic/perfsonar.raw.%'");
  int64_t carried = 0;
  std::set<std::tuple<std::string, std::string, std::string>> distinct;  // key, destination, ts
  while (query.executeStep()) {
    const nlohmann::json body = nlohmann::json::parse(query.getColumn(0).getString());
    for (const auto& [ts, value] : body.at("datapoints").items()) {
      ++carried;
      distinct.emplace(body.at("meta").at("org_metadata_key").get<std::string>(), query.getColumn(1).getString(), ts);
    }
  }
  return {carried, static_cast<int64_t>(distinct.size())};
}

// Waits until the subscriber holds every served point.
inline bool wait_for_points(const MqttSubscriber& subscriber, const Workspace& workspace,
                            const std::set<Point>& expected, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (keys_of(received_points(subscriber, ids_by_body(workspace))) == expected) return true;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return false;
}

// The raw messages a STOMP recorder holds: first deliveries, or resends
// (those with a gapless-resend header).
inline std::vector<Received> raw_messages(const StompRecorder& recorder, bool resent) {
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
inline std::map<Point, std::set<std::string>> check_received_once(const StompRecorder& recorder,
                                                                  const std::set<Point>& expected,
                                                                  std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (keys_of(points_of(raw_messages(recorder, false))) != expected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto received = points_of(raw_messages(recorder, false));
  INFO(difference(expected, keys_of(received)));
  CHECK(keys_of(received) == expected);
  for (const auto& [point, ids] : received) CHECK(ids.size() == 1);
  return received;
}

// A datapoint without its value: metadata key, event type, ts.
using DatapointKey = std::tuple<std::string, std::string, int64_t>;

// Every base datapoint the archive serves now, for the event types gapless
// collects by default, without values.
inline std::set<DatapointKey> served_datapoints(const EsmondArchive& archive) {
  std::set<DatapointKey> points;
  const auto& allowed = gapless::osg_event_types();
  for (const std::string& key : archive.metadata_keys()) {
    const nlohmann::json metadata = archive.metadata(key);  // outlives the loop over its event types
    for (const nlohmann::json& event : metadata.at("event-types")) {
      const std::string event_type = event.at("event-type").get<std::string>();
      if (std::find(allowed.begin(), allowed.end(), event_type) == allowed.end()) continue;
      for (const nlohmann::json& point : archive.points(key, event_type))
        points.emplace(key, event_type, point.at("ts").get<int64_t>());
    }
  }
  return points;
}

// What a consumer of the raw topics received, the same way (resends included).
inline std::set<DatapointKey> received_datapoints(const StompRecorder& recorder) {
  std::set<DatapointKey> points;
  const std::string raw = "/topic/perfsonar.raw.";
  for (const auto& message : recorder.snapshot()) {
    if (message.destination.rfind(raw, 0) != 0) continue;
    const nlohmann::json body = nlohmann::json::parse(message.body);
    for (const auto& [ts, value] : body.at("datapoints").items())
      points.emplace(body.at("meta").at("org_metadata_key").get<std::string>(),
                     message.destination.substr(raw.size()), std::stoll(ts));
  }
  return points;
}

}  // namespace gapless::test
