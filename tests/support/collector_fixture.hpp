// The collector's poll against the esmond-compatible test archive over real
// HTTP, into a real journal (tests/collector): an archive on the real clock,
// a journal in a private directory, one poll at a time, and what the journal
// and the archive hold, to compare.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "collector/collector.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"
#include "support/temp_dir.hpp"

namespace gapless::test::collector_poll {

using gapless::ArchiveConfig;
using gapless::CollectorConfig;
using gapless::collector::SeriesBackoffs;
using gapless::collector::PollReport;
using gapless::journal::Journal;
using gapless::test::esmond::SeriesKind;
using gapless::test::ArchiveFlavour;
using nlohmann::json;

constexpr int64_t hour = 3600;

// An archive whose clock starts at the real "now" (the collector closes
// summary windows against real time) and holds `history` seconds of data.
struct Fixture {
  explicit Fixture(int series = 4, int64_t history = 6 * hour, std::vector<SeriesKind> kinds = {},
                   ArchiveFlavour flavour = ArchiveFlavour::esmond)
      : now(gapless::unix_now_ms() / 1000), dir("collector-test") {
    EsmondArchive::Options options;
    options.flavour = flavour;
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

inline size_t allowed_event_types(const EsmondArchive& archive, const ArchiveConfig& config) {
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

}  // namespace gapless::test::collector_poll
