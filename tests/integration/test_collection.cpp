// Proves what the archive served reaches a subscriber exactly once, live or backfilled, and resend and --rate do what they promise.
//
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
#include "support/consumer_points.hpp"
#include "support/polled_archive.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_table;
using gapless::test::check_received_once;
using gapless::test::EsmondArchive;
using gapless::test::kHour;
using gapless::test::MqttSubscriber;
using gapless::test::Point;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;

TEST_CASE("the daemon polls an archive continuously and a subscriber receives exactly what it served",
          "[collection]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(3, 4 * kHour));
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

// ---------------------------------------------------------------------------
// gapless-replay: an outage of the collector, the gap report, the backfill,
// and a consumer's resend.


TEST_CASE("after a collector outage: gaps shows the window, backfill fills it once, resend re-delivers a range",
          "[replay]") {
  TestBroker broker;
  const int64_t now = gapless::unix_now_ms() / 1000;
  // The archive's clock starts 3 hours behind: the collector polls up to
  // then, stops (the outage), and the archive catches up with real time.
  EsmondArchive::Options options = archive_options(3, 8 * kHour);
  options.now = now - 3 * kHour;
  EsmondArchive archive(options);
  archive.start();
  Workspace workspace(broker, "", archive_table(archive));
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);

  workspace.run_until_drained();  // one poll, before the outage
  archive.set_now(now);           // the archive kept producing
  const std::string from = std::to_string(now - 8 * kHour);
  const std::string to = std::to_string(now);

  // gaps: one gap per series, from the last datapoint before the outage to
  // (almost) now; nothing before it.
  auto gaps = workspace.replay({"gaps", "--from", from, "--to", to});
  INFO(gaps.err);
  REQUIRE(gaps.ok());
  INFO(gaps.out);
  CHECK(gaps.out.find(gapless::format_timestamp(now - 3 * kHour).substr(0, 13)) != std::string::npos);

  // --svg: the same gaps as a picture an operator opens in a browser, one
  // row per series, each gap a red bar titled with its window.
  const std::string picture = (workspace.dir() / "gaps.svg").string();
  auto svg = workspace.replay({"gaps", "--from", from, "--to", to, "--svg", picture});
  REQUIRE(svg.ok());
  std::ifstream picture_file(picture);
  const std::string svg_text((std::istreambuf_iterator<char>(picture_file)), std::istreambuf_iterator<char>());
  CHECK(svg_text.rfind("<svg", 0) == 0);
  CHECK(svg_text.find("</svg>") != std::string::npos);
  CHECK(svg_text.find("<g class=\"series\">") != std::string::npos);
  CHECK(svg_text.find("fill=\"#d62728\"><title>gap " + gapless::format_timestamp(now - 3 * kHour).substr(0, 10)) !=
        std::string::npos);

  // Dry run changes nothing.
  auto dry = workspace.replay({"backfill", "--from", from, "--to", to, "--dry-run"});
  INFO(dry.err);
  REQUIRE(dry.ok());
  CHECK_THAT(dry.out, Catch::Contains("nothing was changed"));

  auto first = workspace.replay({"backfill", "--from", from, "--to", to});
  INFO(first.out << first.err);
  REQUIRE(first.ok());
  workspace.run_until_drained();  // the daemon's sender delivers the backfill

  const auto received = check_received_once(recorder, served_points(archive), 120s);

  auto after = workspace.replay({"gaps", "--from", from, "--to", to});
  REQUIRE(after.ok());
  CHECK_THAT(after.out, Catch::Contains("no gaps"));

  const size_t messages_before = recorder.snapshot().size();
  auto second = workspace.replay({"backfill", "--from", from, "--to", to});
  INFO(second.out << second.err);
  REQUIRE(second.ok());
  CHECK_THAT(second.out, Catch::Contains(" 0 journaled"));
  workspace.run_until_drained();
  std::this_thread::sleep_for(2s);
  CHECK(recorder.snapshot().size() == messages_before);

  // resend of one hour: exactly the messages carrying its datapoints, again,
  // same gapless-ids, with the request's id in gapless-resend.
  const int64_t resend_from = now - 6 * kHour;
  const int64_t resend_to = now - 5 * kHour;
  auto resend = workspace.replay({"resend", "--from", std::to_string(resend_from), "--to", std::to_string(resend_to),
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

  auto listed = workspace.replay({"requests"});
  REQUIRE(listed.ok());
  CHECK_THAT(listed.out, Catch::Contains("resend") && Catch::Contains("dashboard lost it") &&
                             Catch::Contains("backfill"));
}

TEST_CASE("gapless-replay refuses bad arguments with a clear error before changing anything", "[replay]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(1, kHour));
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
    auto result = workspace.replay(c.args);
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
  EsmondArchive::Options options = archive_options(10, 47 * kHour);
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
  const int64_t backfill_to = now - 2 * kHour;
  const int64_t backfill_from = backfill_to - 44 * kHour;
  const auto backfill_started = ArrivalClock::now();
  auto backfill = workspace.replay({"backfill", "--from", std::to_string(backfill_from), "--to",
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
  const int64_t resend_from = backfill_from + 8 * kHour;
  const int64_t resend_to = backfill_from + 38 * kHour;
  std::set<std::string> in_resend_range;
  for (const auto& message : seen) {
    if (backfilled.count(message.gapless_id) == 0) continue;
    const json body = json::parse(message.body);
    for (const auto& [ts, value] : body.at("datapoints").items())
      if (std::stoll(ts) >= resend_from && std::stoll(ts) < resend_to) in_resend_range.insert(message.gapless_id);
  }
  REQUIRE(in_resend_range.size() >= 150);

  const auto resend_started = ArrivalClock::now();
  auto resend = workspace.replay({"resend", "--from", std::to_string(resend_from), "--to", std::to_string(resend_to),
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
