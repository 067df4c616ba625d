// A poll journals every datapoint the archive serves exactly once, and an archive's failures cost only what failed.
//
// The collector's polling rules against the esmond-compatible test archive
// over real HTTP, into a real journal: what the journal holds after each poll
// is compared with what the archive serves.
#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <climits>
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

constexpr int64_t hour = 3600;

// An archive whose clock starts at the real "now" (the collector closes
// summary windows against real time) and holds `history` seconds of data.
struct Fixture {
  explicit Fixture(int series = 4, int64_t history = 6 * hour, std::vector<SeriesKind> kinds = {})
      : now(gapless::unix_now_ms() / 1000), dir("collector-test") {
    EsmondArchive::Options options;
    options.series = series;
    options.now = now;
    options.start = now - history;
    if (!kinds.empty()) options.kinds = kinds;
    archive = std::make_unique<EsmondArchive>(options);
    archive->start();

    config.name = "test-archive";
    config.url = archive->base_url();
    config.lookback = std::chrono::seconds(history + hour);  // everything the archive holds
    config.summaries = false;
    settings.retry_min = std::chrono::milliseconds(0);
    settings.retry_max = std::chrono::milliseconds(0);
    journal = Journal::open(dir.file("journal.db"), {"local"});
    gapless::esmond::ClientOptions client_options;
    client_options.timeout = std::chrono::seconds(5);
    client = std::make_unique<gapless::esmond::Client>(config.name, config.url, client_options);
  }

  PollReport poll() {
    gapless::Config whole;  // no sink: messages split at the archive's max_message_size
    whole.collector = settings;
    whole.messages = messages;
    PollReport report = gapless::collector::poll_archive(whole, config, *client, *journal, state, stop);
    std::string failures;
    for (const auto& [kind, count] : report.failures) failures += kind + ":" + std::to_string(count) + " ";
    INFO("failures: " << failures);
    return report;
  }

  // What the journal holds for a series, ts -> digest.
  std::map<int64_t, std::string> journaled(const gapless::journal::Series& series) {
    return journal->datapoint_digests(series.id, INT64_MIN, INT64_MAX);
  }

  // What the archive serves for it now, ts -> digest.
  std::map<int64_t, std::string> served(const gapless::journal::Series& series) {
    const auto& key = series.key;
    const json points = archive->points(key.metadata_key, key.event_type,
                                        key.summary_type.empty() ? "base" : key.summary_type, key.summary_window);
    std::map<int64_t, std::string> digests;
    for (const json& point : points)
      digests[point.at("ts").get<int64_t>()] = gapless::osg::datapoint_digest(point.at("val"));
    return digests;
  }

  std::vector<gapless::journal::Series> series() { return journal->series_of_archive(client->base_url()); }

  // The archive's health as the journal records it (for status and metrics).
  gapless::journal::ArchiveHealth health() {
    for (const auto& health : journal->archive_health())
      if (health.archive_url == client->base_url()) return health;
    FAIL("no archive health recorded for " << client->base_url());
    return {};
  }

  std::optional<gapless::journal::Series> find(const std::string& key, const std::string& event_type) {
    return journal->find_series({client->base_url(), key, event_type, "", 0});
  }

  int64_t now;
  TempDir dir;
  std::unique_ptr<EsmondArchive> archive;
  ArchiveConfig config;
  CollectorConfig settings;
  gapless::MessageRulesConfig messages;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<gapless::esmond::Client> client;
  SeriesBackoffs state;
  std::atomic<bool> stop{false};
};

size_t allowed_event_types(const EsmondArchive& archive, const ArchiveConfig& config) {
  size_t count = 0;
  for (const std::string& key : archive.metadata_keys()) {
    const json metadata = archive.metadata(key);
    for (const json& event : metadata.at("event-types"))
      if (std::find(config.event_types.begin(), config.event_types.end(),
                    event.at("event-type").get<std::string>()) != config.event_types.end())
        ++count;
  }
  return count;
}

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
      f.journal->database().getHandle(),
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
  sqlite3_commit_hook(f.journal->database().getHandle(), nullptr, nullptr);

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

TEST_CASE("a failing series is skipped and retried while the others are journaled", "[collector]") {
  Fixture f;
  const std::string broken = f.archive->metadata_keys().front();
  const FaultKind kind = GENERATE(FaultKind::http_error, FaultKind::malformed, FaultKind::truncated, FaultKind::html,
                                  FaultKind::close, FaultKind::wrong_type);
  INFO("fault " << gapless::test::fault_kind_name(kind));
  // Data requests only: the listing (no key in its target) stays healthy.
  const int fault = f.archive->add_fault(Fault::of(kind).matching(broken + "/"));

  const PollReport report = f.poll();
  CHECK(report.listed);
  CHECK(report.series_failed > 0);
  CHECK_FALSE(report.failures.empty());
  CHECK(f.archive->fault_fired(fault) > 0);
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    if (s.key.metadata_key == broken) {
      CHECK(f.journaled(s).empty());  // nothing partial
      CHECK_FALSE(s.cursor_ts.has_value());
    } else {
      CHECK(f.journaled(s) == f.served(s));
    }
  }

  // The archive's health shows the same failures, by kind.
  const auto failing = f.health();
  CHECK(failing.consecutive_failed_polls == 1);
  CHECK_FALSE(failing.last_success_ms.has_value());
  CHECK_THAT(failing.last_error, Catch::Matchers::Contains(f.client->base_url() + broken));
  std::map<std::string, int64_t> recorded;
  for (const auto& [failure_kind, failures] : failing.failures) recorded[failure_kind] = failures.count;
  CHECK(recorded == report.failures);

  f.archive->clear_faults();
  const PollReport retried = f.poll();
  CHECK(retried.failures.empty());
  CHECK(f.health().consecutive_failed_polls == 0);
  CHECK(f.health().last_success_ms.has_value());
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    CHECK(f.journaled(s) == f.served(s));
  }
}

TEST_CASE("a listing that fails leaves every cursor where it was", "[collector]") {
  Fixture f;
  f.poll();
  const auto before = f.series();
  f.archive->advance(30 * 60);
  f.archive->add_fault(Fault::of(FaultKind::http_error).with_status(503));
  const PollReport report = f.poll();
  CHECK_FALSE(report.listed);
  CHECK(report.failures.count("http-status") == 1);
  const auto after = f.series();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].cursor_ts == before[i].cursor_ts);
}

TEST_CASE("an archive's failures accumulate by kind in its health until a poll succeeds", "[collector]") {
  Fixture f;
  const int64_t healthy_points = f.poll().points_journaled;
  REQUIRE(healthy_points > 0);
  const int64_t first_success = f.health().last_success_ms.value_or(0);

  // Two polls whose listing fails, then one whose listing works and a series fails.
  f.archive->add_fault(Fault::of(FaultKind::http_error).with_status(503).times(2));
  CHECK_FALSE(f.poll().listed);
  CHECK_FALSE(f.poll().listed);
  auto health = f.health();
  CHECK(health.consecutive_failed_polls == 2);
  CHECK(health.failures.at("http-status").count == 2);
  CHECK(health.last_success_ms == first_success);
  CHECK_THAT(health.last_error, Catch::Matchers::Contains(f.client->base_url()));
  CHECK_THAT(health.last_error, Catch::Matchers::Contains("503"));

  f.archive->advance(30 * 60);
  const std::string broken = f.archive->metadata_keys().front();
  f.archive->add_fault(Fault::of(FaultKind::malformed).matching(broken + "/"));
  const PollReport partly = f.poll();
  REQUIRE(partly.listed);
  REQUIRE(partly.series_failed > 0);
  health = f.health();
  CHECK(health.consecutive_failed_polls == 3);
  CHECK(health.failed_polls_total == 3);
  CHECK(health.failures.at("http-status").count == 2);
  int64_t series_failures = 0;
  for (const auto& [kind, count] : partly.failures) series_failures += count;
  CHECK(series_failures == partly.series_failed);
  CHECK(health.failures.size() == 1 + partly.failures.size());
  CHECK(health.points_journaled_total == healthy_points + partly.points_journaled);

  f.archive->clear_faults();
  const PollReport recovered = f.poll();
  REQUIRE(recovered.failures.empty());
  health = f.health();
  CHECK(health.consecutive_failed_polls == 0);
  CHECK(health.last_success_ms > first_success);
  CHECK(health.polls_total == 5);
  CHECK(health.failed_polls_total == 3);
  CHECK(health.failures.at("http-status").count == 2);  // counters keep the history
  CHECK(health.points_journaled_total == healthy_points + partly.points_journaled + recovered.points_journaled);
}

// Every OSG message carries input-source, so refusing that header at the
// door refuses every series: the collector's path for a message the door
// refuses, which real archive data reaches with, say, a NUL in a metadata field.
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

TEST_CASE("a poll that skips a series still backing off is no success", "[collector]") {
  Fixture f;
  f.settings.retry_min = std::chrono::hours(1);
  f.settings.retry_max = std::chrono::hours(1);
  const std::string broken = f.archive->metadata_keys().front();
  f.archive->add_fault(Fault::of(FaultKind::http_error).matching(broken + "/"));
  REQUIRE(f.poll().series_failed > 0);
  f.archive->clear_faults();

  const PollReport skipping = f.poll();  // the broken series waits for its backoff
  CHECK(skipping.failures.empty());
  CHECK(skipping.series_backing_off > 0);
  const auto health = f.health();
  CHECK(health.polls_total == 2);
  CHECK(health.consecutive_failed_polls == 1);
  CHECK_FALSE(health.last_success_ms.has_value());
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

TEST_CASE("a stalled archive does not delay the others", "[collector]") {
  // Two archives polled by the daemon's scheduler: one answers every request
  // after 4 s (beyond the 1 s timeout), the other is healthy.
  Fixture stalled(2);
  Fixture healthy(2);
  stalled.archive->add_fault(Fault::of(FaultKind::slow).with_delay_ms(4000));

  gapless::Config config;
  config.journal.path = healthy.dir.file("shared.db");
  gapless::SinkConfig sink;
  sink.name = "local";
  sink.brokers = {"stomp://127.0.0.1:1"};
  config.sinks.push_back(sink);
  config.collector.max_concurrent_requests = 2;
  for (Fixture* f : {&stalled, &healthy}) {
    ArchiveConfig archive = f->config;
    archive.name = f == &stalled ? "stalled" : "healthy";
    archive.http_timeout = std::chrono::seconds(1);
    archive.poll_interval = std::chrono::seconds(60);
    config.archives.push_back(archive);
  }
  std::atomic<bool> stop{false};
  gapless::collector::Collector collector(config, stop);
  const auto started = std::chrono::steady_clock::now();
  std::thread running([&] { collector.run(); });

  // The healthy archive is fully journaled while the other one still stalls.
  auto journal = Journal::open(config.journal.path, {"local"});
  bool complete = false;
  while (!complete && std::chrono::steady_clock::now() - started < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto series = journal->series_of_archive(healthy.archive->base_url());
    complete = series.size() == allowed_event_types(*healthy.archive, healthy.config);
    for (const auto& s : series) {
      std::map<int64_t, std::string> served = healthy.served(s);
      complete = complete && journal->datapoint_digests(s.id, INT64_MIN, INT64_MAX) == served;
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // The healthy poll is recorded once it returns, a moment after its data is
  // journaled; a poll that `stop` cut short would be no success.
  const auto recorded = [&] {
    for (const auto& archive : journal->archive_health())
      if (archive.name == "healthy") return true;
    return false;
  };
  while (!recorded() && std::chrono::steady_clock::now() - started < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  running.join();
  CHECK(complete);
  CHECK(elapsed < std::chrono::seconds(10));
  CHECK(journal->series_of_archive(stalled.archive->base_url()).empty());  // its listing never answered in time

  // Each archive's health, as the scheduler recorded it.
  std::map<std::string, gapless::journal::ArchiveHealth> health;
  for (const auto& archive : journal->archive_health()) health[archive.name] = archive;
  REQUIRE(health.count("stalled") == 1);
  REQUIRE(health.count("healthy") == 1);
  CHECK(health["stalled"].archive_url == stalled.client->base_url());
  CHECK(health["stalled"].failures.count("timeout") == 1);
  CHECK(health["stalled"].consecutive_failed_polls >= 1);
  CHECK_FALSE(health["stalled"].last_success_ms.has_value());
  CHECK(health["healthy"].last_success_ms.has_value());
  CHECK(health["healthy"].failures.empty());
}

TEST_CASE("a metadata object with a missing field is left out and the other series are journaled", "[collector]") {
  Fixture f;
  const std::string broken = f.archive->metadata_keys().back();
  f.archive->add_fault(Fault::of(FaultKind::missing_field).matching(broken).on_field("event-types"));
  const PollReport report = f.poll();
  CHECK(report.listed);
  CHECK(report.failures.count("invalid-metadata") == 1);
  size_t others = 0;
  for (const auto& s : f.series()) {
    CHECK(s.key.metadata_key != broken);
    CHECK(f.journaled(s) == f.served(s));
    ++others;
  }
  CHECK(others > 0);
}
