// Proves a poll journals every datapoint the archive serves exactly once, and what the door refuses or the journal cannot record stops nothing else.
//
// The collector's polling rules against the esmond-compatible test archive
// over real HTTP, into a real journal: what the journal holds after each poll
// is compared with what the archive serves. An archive's faults:
// test_archive_faults.cpp.
#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <string>

#include <nlohmann/json.hpp>

#include "collector/collector.hpp"
#include "collector/series_reader.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"
#include "replay/backfill.hpp"
#include "support/collector_fixture.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

namespace {

using gapless::ArchiveConfig;
using gapless::CollectorConfig;
using gapless::collector::SeriesBackoffs;
using gapless::collector::PollReport;
using gapless::journal::Journal;
using gapless::test::EsmondArchive;
using gapless::test::Fault;
using gapless::test::FaultKind;
using gapless::test::TempDir;
using gapless::test::esmond::SeriesKind;
using nlohmann::json;

using gapless::test::collector_poll::allowed_event_types;
using gapless::test::collector_poll::Fixture;
using gapless::test::collector_poll::hour;

}  // namespace

TEST_CASE("a poll journals every datapoint of every allowed series, and a second poll adds nothing",
          "[collector]") {
  Fixture f;
  const PollReport first = f.poll();
  CHECK(first.listed);
  CHECK(first.failures.empty());
  CHECK(first.points_journaled > 0);
  {  // recorded as a success, with the points it journaled
    const auto health = f.health();
    CHECK(health.name == "test-archive");
    CHECK(health.polls_total == 1);
    CHECK(health.consecutive_failed_polls == 0);
    REQUIRE(health.last_success_ms.has_value());
    CHECK(*health.last_success_ms == health.last_poll_ms);
    CHECK(health.failures.empty());
    CHECK(health.last_error.empty());
    CHECK(health.points_journaled_total == first.points_journaled);
  }

  const auto series = f.series();
  CHECK(series.size() == allowed_event_types(*f.archive, f.config));
  for (const auto& s : series) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    CHECK(f.journaled(s) == f.served(s));
    CHECK(s.cursor_ts.has_value());
  }

  const PollReport again = f.poll();
  CHECK(again.points_journaled == 0);
  CHECK(again.messages == 0);
  CHECK(again.failures.empty());
}

TEST_CASE("new data appears: the next poll journals exactly it", "[collector]") {
  Fixture f;
  f.poll();
  const int64_t before = f.poll().points_journaled;
  REQUIRE(before == 0);
  f.archive->advance(30 * 60);
  const PollReport report = f.poll();
  CHECK(report.points_journaled > 0);
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    CHECK(f.journaled(s) == f.served(s));
  }
}

TEST_CASE("late and corrected points behind the cursor are journaled once each", "[collector]") {
  Fixture f(4, 6 * hour, {SeriesKind::latency});
  f.poll();
  const std::string key = f.archive->metadata_keys().front();
  const auto loss = f.find(key, "packet-loss-rate");
  REQUIRE(loss.has_value());
  const auto journaled = f.journaled(*loss);
  REQUIRE(journaled.size() > 10);
  const int64_t last = journaled.rbegin()->first;

  // A point that arrives late, 20 minutes behind the newest one (inside the
  // default one-hour overlap), and a correction of an older point.
  f.archive->insert_point(key, "packet-loss-rate", last - 20 * 60 + 7, json(0.25));
  const int64_t corrected_ts = std::prev(journaled.end(), 3)->first;
  f.archive->correct_point(key, "packet-loss-rate", corrected_ts, json(0.5));

  const PollReport report = f.poll();
  CHECK(report.points_journaled == 2);
  CHECK(report.corrections == 1);
  CHECK(report.messages >= 1);
  const auto after = f.journaled(*loss);
  CHECK(after == f.served(*loss));
  CHECK(after.at(corrected_ts) == gapless::osg::datapoint_digest(json(0.5)));

  CHECK(f.poll().points_journaled == 0);  // and nothing twice
}

TEST_CASE("a backfill read in short transactions journals the window whole and covers it once done",
          "[collector]") {
  Fixture f(1, 6 * hour, {SeriesKind::latency});
  const std::string key = f.archive->metadata_keys().front();
  const json metadata = f.archive->metadata(key);
  const auto series =
      f.journal->register_series({f.client->base_url(), key, "packet-loss-rate", "", 0}, metadata.dump());
  int64_t commits = 0;
  sqlite3_commit_hook(
      f.journal->connection_for_tests().getHandle(),
      [](void* counter) {
        ++*static_cast<int64_t*>(counter);
        return 0;
      },
      &commits);

  gapless::collector::ReadOptions options;
  options.datapoints_per_message = 4;
  options.messages_per_transaction = 3;
  options.advance_cursor = false;
  options.priority = gapless::journal::Priority::backfill;
  const int64_t from = f.now - 5 * hour;
  const int64_t to = f.now - hour;
  const auto read =
      gapless::collector::read_series(*f.client, *f.journal, series, metadata, from, to, f.now, options, f.stop);
  sqlite3_commit_hook(f.journal->connection_for_tests().getHandle(), nullptr, nullptr);

  std::map<int64_t, std::string> window;
  for (const auto& [ts, digest] : f.served(series))
    if (ts >= from && ts < to) window[ts] = digest;
  REQUIRE(window.size() > 100);
  CHECK(f.journaled(series) == window);
  CHECK(read.messages == static_cast<int64_t>((window.size() + 3) / 4));
  // At most 3 messages per transaction (and the read's own few).
  CHECK(commits >= read.messages / 3);
  const auto coverage = f.journal->coverage(series.id, INT64_MIN, INT64_MAX);
  REQUIRE(coverage.size() == 1);
  CHECK(coverage.front().ts_from == from);
  CHECK(coverage.front().ts_to == to);
  CHECK_FALSE(f.series().front().cursor_ts.has_value());  // a backfill leaves the cursor alone
}

TEST_CASE("series whose messages the door refuses fail as data errors naming archive, series and rule",
          "[collector]") {
  Fixture f(2);
  f.messages.refused_headers = {"input-source"};
  const PollReport refused = f.poll();
  CHECK(refused.listed);
  CHECK(refused.series_failed > 0);
  CHECK(refused.series_read == 0);
  CHECK(refused.failures.at("data") == refused.series_failed);
  CHECK(refused.messages == 0);
  CHECK_THAT(refused.last_error, Catch::Contains("archive " + f.client->base_url()) &&
                                     Catch::Contains("metadata-key") && Catch::Contains("message refused") &&
                                     Catch::Contains("rule R5"));
  for (const auto& s : f.series()) CHECK(f.journaled(s).empty());  // nothing of a refused series is journaled

  // Mended (here: the rule lifted), the same series are read in full.
  f.messages = {};
  const PollReport mended = f.poll();
  CHECK(mended.failures.empty());
  CHECK(mended.series_read == refused.series_failed);
  for (const auto& s : f.series()) CHECK(f.journaled(s) == f.served(s));
}

TEST_CASE("a journal that cannot record the archive's health does not stop collection", "[collector]") {
  Fixture f;
  gapless::test::JournalSql(f.dir.file("journal.db")).exec("DROP TABLE archive_failure; DROP TABLE archive_poll");
  const PollReport report = f.poll();
  CHECK(report.listed);
  CHECK(report.failures.empty());
  CHECK(report.points_journaled > 0);
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    CHECK(f.journaled(s) == f.served(s));
  }
}

TEST_CASE("summary points are journaled once their window has closed", "[collector]") {
  Fixture f(2, 30 * hour, {SeriesKind::latency});
  f.config.summaries = true;
  f.config.summary_grace = std::chrono::minutes(5);
  f.poll();
  size_t summaries = 0;
  const int64_t polled_at = gapless::unix_now_ms() / 1000;
  for (const auto& s : f.series()) {
    if (s.key.summary_type.empty()) continue;
    ++summaries;
    INFO(s.key.metadata_key << " " << s.key.event_type << " " << s.key.summary_type << " " << s.key.summary_window);
    std::map<int64_t, std::string> closed;
    for (const auto& [ts, digest] : f.served(s))
      if (ts + s.key.summary_window + 300 <= f.now) closed[ts] = digest;
    const auto journaled = f.journaled(s);
    for (const auto& [ts, digest] : journaled) CHECK(ts + s.key.summary_window + 300 <= polled_at);
    // Every point closed when the test began is in; at most the one closing
    // during the poll differs.
    for (const auto& [ts, digest] : closed) CHECK(journaled.count(ts) == 1);
  }
  CHECK(summaries > 0);
}

TEST_CASE("a series whose destination no sink takes is skipped as a data error naming it and the destination; the "
          "others are read",
          "[collector][accept]") {
  Fixture f(4);
  gapless::Config whole;
  whole.collector = f.settings;
  gapless::SinkConfig sink;
  sink.name = "local";
  sink.accept = {"/topic/perfsonar.raw.throughput"};
  whole.sinks = {sink};
  const PollReport report = gapless::collector::poll_archive(whole, f.config, *f.client, *f.journal, f.state, f.stop);
  CHECK(report.listed);
  REQUIRE(report.series_failed > 0);
  CHECK(report.failures.at("data") == report.series_failed);
  CHECK_THAT(report.last_error, Catch::Contains("archive " + f.client->base_url()) &&
                                    Catch::Contains("no sink takes destination \"/topic/perfsonar.raw.") &&
                                    Catch::Contains("sink \"local\" accepts [/topic/perfsonar.raw.throughput]"));
  int taken = 0;
  for (const auto& s : f.series()) {
    INFO(s.key.event_type);
    if (s.key.event_type == "throughput") {
      ++taken;
      CHECK(f.journaled(s) == f.served(s));  // the series a sink takes is read in full
    } else {
      CHECK(f.journaled(s).empty());  // nothing journaled for nobody
    }
  }
  CHECK(taken > 0);
  CHECK(report.series_read == taken);
}

TEST_CASE("a backfill of event types no sink takes is refused before anything is read or recorded, naming the "
          "destinations",
          "[collector][accept]") {
  gapless::test::TempDir dir("backfill-accept");
  const gapless::Config config = gapless::parse_config(
      "[journal]\npath = \"" + dir.file("journal.db") + "\"\n"
      "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\naccept = [\"/topic/perfsonar.raw.>\"]\n"
      "[[archive]]\nname = \"ps\"\nurl = \"http://127.0.0.1:1/esmond/perfsonar/archive/\"\n"
      "event_types = [\"throughput\"]\n",  // summaries on: /topic/perfsonar.summary.throughput too
      "backfill-accept.toml");
  gapless::replay::Selection selection;
  selection.from = 1'600'000'000;
  selection.to = selection.from + 3600;
  const std::atomic<bool> stop{false};
  CHECK_THROWS_WITH(gapless::replay::backfill(config, selection, 0, false, stop, nullptr),
                    Catch::Contains("backfill refused, nothing was read or journaled") &&
                        Catch::Contains("no sink takes destination \"/topic/perfsonar.summary.throughput\"") &&
                        Catch::Contains("sink \"local\" accepts [/topic/perfsonar.raw.>]"));
  CHECK_FALSE(std::filesystem::exists(dir.file("journal.db")));  // not even opened: no request recorded
}
