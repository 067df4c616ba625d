// Proves collected data is split into messages every sink accepts, and no datapoint is dropped.
//
// The collector's split rule (collector::read_options, shared with backfill):
// messages built from an archive's data stay below the smallest sink's
// max_message_size as the sender will encode them, whatever the size of the
// series' headers, and no datapoint is dropped.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector/series_reader.hpp"
#include "core/config.hpp"
#include "osg/message_builder.hpp"
#include "stomp/frame.hpp"
#include "stomp/message_rules.hpp"

using gapless::collector::build_options;
using gapless::collector::read_options;
using gapless::osg::build_messages;
using gapless::osg::Datapoint;
using nlohmann::json;

namespace {

// The SEND a sender builds from a journaled message (src/sender: destination,
// transaction, receipt, persistent, gapless-id, gapless-resend, the
// message's headers, then content-length from the encoder), with the
// longest values its counters can take.
gapless::stomp::Frame send_frame_of(const gapless::journal::NewMessage& message) {
  const std::string counter = "9223372036854775807";
  gapless::stomp::Frame send{"SEND", {}, message.body};
  send.add("destination", message.destination);
  send.add("transaction", counter);
  send.add("receipt", counter + ":" + counter);
  send.add("persistent", "true");
  send.add("gapless-id", message.gapless_id);
  send.add("gapless-resend", counter);
  for (const auto& header : message.headers) send.add(header.first, header.second);
  return send;
}

gapless::SinkConfig sink_with_limit(const std::string& name, int64_t max_message_size) {
  gapless::SinkConfig sink;
  sink.name = name;
  sink.max_message_size = max_message_size;
  return sink;
}

// A series' metadata whose input-source is long: it is in every message
// twice, in a header and in the body's meta.
json metadata_with_long_names() {
  return json{{"metadata-key", "k1"},
              {"input-source", std::string(3000, 's') + ".example.net"},
              {"input-destination", "host2.example.net"},
              {"subject-type", "point-to-point"}};
}

}  // namespace

TEST_CASE("a series too large for the smallest sink is split below its max_message_size as encoded, nothing dropped",
          "[message-split]") {
  gapless::Config config;
  config.sinks = {sink_with_limit("large", 100'000), sink_with_limit("small", 20'000),
                  sink_with_limit("medium", 50'000)};
  gapless::ArchiveConfig archive;  // max_message_size 10 000 000: the sinks decide
  const gapless::collector::ReadOptions options = read_options(config, archive);
  REQUIRE(options.max_frame_bytes < 20'000);

  gapless::journal::SeriesKey series{"https://ps.example.net/esmond/perfsonar/archive/", "k1", "throughput", "", 0};
  std::vector<Datapoint> points;
  for (int64_t i = 0; i < 100; ++i)  // one slice of 100 datapoints, about 100 KB of values
    points.emplace_back(1'700'000'000 + i * 60, json(std::string(1000, static_cast<char>('a' + i % 26))));

  const auto messages = build_messages(series, metadata_with_long_names(), points, build_options(options, 1.5));
  REQUIRE(messages.size() > 5);
  std::set<int64_t> carried;
  for (const auto& message : messages) {
    const gapless::stomp::Frame send = send_frame_of(message);
    std::string wire;
    gapless::stomp::encode(send, wire);
    INFO("message of " << message.body.size() << " body bytes, " << wire.size() << " on the wire");
    CHECK(gapless::stomp::encoded_size(send) == wire.size());
    CHECK(wire.size() <= 20'000);
    // Also a message the builder filled up to its limit would fit: the room
    // left covers what the sender adds to each SEND.
    CHECK(options.max_frame_bytes + (wire.size() - gapless::osg::message_frame_size(message)) <= 20'000);
    gapless::stomp::SinkLimits limits;
    limits.max_message_size = 20'000;
    CHECK_FALSE(gapless::stomp::sink_refusal(send, limits));
    const json body = json::parse(message.body);
    for (const auto& entry : body.at("datapoints").items()) carried.insert(std::stoll(entry.key()));
  }
  CHECK(carried.size() == points.size());  // every datapoint, once
}

TEST_CASE("the archive's max_message_size bounds the split when it is below every sink's", "[message-split]") {
  gapless::Config config;
  config.sinks = {sink_with_limit("local", 4 * 1024 * 1024)};
  gapless::ArchiveConfig archive;
  archive.max_message_size = 30'000;
  const auto options = read_options(config, archive);
  CHECK(options.max_frame_bytes < 30'000);
  CHECK(options.max_frame_bytes > 29'000);  // only the sender's headers' room is taken off
  archive.max_message_size = 10'000'000;
  CHECK(read_options(config, archive).max_frame_bytes < 4 * 1024 * 1024);
  CHECK(read_options(config, archive).refused_headers == config.messages.refused_headers);
}

TEST_CASE("a series whose messages the door refuses fails naming the archive and the series", "[message-split]") {
  gapless::Config config;
  const auto options = read_options(config, gapless::ArchiveConfig{});
  gapless::journal::SeriesKey series{"https://ps.example.net/esmond/perfsonar/archive/", "k1", "through\nput", "", 0};
  json metadata = metadata_with_long_names();
  const std::vector<Datapoint> points = {Datapoint(1'700'000'000, json(1))};
  CHECK_THROWS_WITH(build_messages(series, metadata, points, build_options(options, 1.5)),
                    Catch::Contains("archive https://ps.example.net/esmond/perfsonar/archive/ metadata-key k1") &&
                        Catch::Contains("message refused") && Catch::Contains("rule R2"));
  series.event_type = "throughput";
  metadata["input-destination"] = std::string("host\0two", 8);
  CHECK_THROWS_WITH(build_messages(series, metadata, points, build_options(options, 1.5)),
                    Catch::Contains("metadata-key k1") && Catch::Contains("\"input-destination\"") &&
                        Catch::Contains("rule R4"));
}
