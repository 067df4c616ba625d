// ingest-bench: how many datapoints per second does the collector take from an
// esmond archive into the journal (fetch, parse, de-duplicate, build messages,
// insert, durable), and how does that compare with SQLite inserting the same
// rows raw, in the same run?
//
//   ingest-bench [--series N] [--hours H] [--runs R] [--page-size P]
//                [--summaries] [--compression gzip|none] [--dir DIR] [--keep]
//
// Set-up: one in-process EsmondArchive (tests/esmond_archive) with N series at
// a 1-minute cadence and H hours of history, its clock frozen (two days
// behind the real clock), so every run reads exactly the same data. The
// archive serves from this process: its threads' CPU is counted in the
// process's CPU, not in the collector thread's.
// The collector asks for pages as the archive's `compression` setting says
// (--compression; none by default, as for an archive on the same host).
//
// Per round, in this order (R rounds):
//   gapless    collector::poll_archive once on a fresh journal (one sink), all
//              the default OSG event types, summaries only with --summaries,
//              page size P (ArchiveConfig's default 1000). Timed around
//              poll_archive alone (the journal is created before the clock
//              starts). Rate = report.points_journaled / seconds.
//   baseline   the rows gapless wrote in round 1 (message, delivery, datapoint),
//              read into memory before the clock starts, inserted into a fresh
//              file with the journal's own schema (created by Journal::open, so
//              the same tables, indexes, triggers and PRAGMAs: WAL, foreign
//              keys on, auto_vacuum) by plain prepared INSERTs, one transaction
//              per gapless page (the page's datapoints, the messages they are
//              in and those messages' delivery rows), synchronous=FULL as the
//              journal's append and record_collected commit (journal/format.hpp,
//              DURABILITY). Rate = datapoint rows / seconds.
//   no-journal the collector's reading without the journal: the same listing
//              and the same page requests through esmond::Client, each page's
//              digests and messages built as read_series does, nothing
//              written. Fetch (request, archive, JSON parse) and build are
//              timed apart, to show where gapless's time goes.
//
// Targets (issue 3): gapless >= 100k datapoints/s and >= 0.5 x the baseline's
// rate (median rates). The verdicts are printed; the exit status is 0 whenever
// the measurements succeeded, 1 when a run failed or runs disagreed on what
// they journaled, 2 for bad usage.
#include <CLI/CLI.hpp>
#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common.hpp"
#include "collector/collector.hpp"
#include "collector/series_reader.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"

namespace {

namespace fs = std::filesystem;
using gapless::bench::Clock;
using gapless::bench::make_work_dir;
using gapless::Error;
using gapless::journal::Journal;

const char* const kSink = "bench";
constexpr double kRateTarget = 100'000;  // datapoints/s
constexpr double kRatioTarget = 0.5;     // gapless / baseline, median rates
constexpr int64_t kHour = 3600;
constexpr int64_t kArchiveLag = 48 * kHour;  // see Bench::Bench

// ---- options --------------------------------------------------------------

struct Options {
  int64_t series = 50;
  // With the default event types the archive's four kinds of test average
  // about 3.2 datapoints per run: 50 series x 60 runs x 105 h is about 1 M.
  int64_t hours = 105;
  int64_t runs = 3;
  int64_t page_size = 1000;  // ArchiveConfig's default
  bool summaries = false;
  // ArchiveConfig's `compression`. "none" by default: the archive runs in
  // this process, and what is measured is gapless's parse + insert, while
  // gzip would add the archive's compressing (its host's cost, here on the
  // same two cores) and is what an operator turns off for a same-host archive.
  std::string compression = "none";
  fs::path dir;  // empty: a fresh directory under the system's temporary directory
  bool keep = false;
};

// The options, as CLI11 parses them (as src/cli does); --help lists them.
void add_options(CLI::App& app, Options& options) {
  app.add_option("--series", options.series, "Series (metadata objects) of the test archive")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--hours", options.hours, "Hours of 1-minute history each series holds (105: about 1 M datapoints)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--runs", options.runs, "Rounds; each runs gapless, the baseline and the no-journal reading once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--page-size", options.page_size, "Points per data request, = rows per transaction in both")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--summaries", options.summaries, "Also collect the summaries (off by default)");
  app.add_option("--compression", options.compression,
                 "The archive's `compression` setting (none, as for an archive on the same host; gzip makes the "
                 "in-process archive compress each page, on the same cores as the collector)")
      ->check(CLI::IsMember({"gzip", "none"}))
      ->capture_default_str();
  app.add_option("--dir", options.dir,
                 "Work directory for the journals (default: a fresh temporary directory, removed at the end); put "
                 "it on the disk you want to measure");
  app.add_flag("--keep", options.keep, "Keep the work directory");
}

// Every option spelled out, so that the line reproduces this run even when
// the defaults change.
std::string reproduce_command(const char* argv0, const Options& options) {
  std::string command = argv0;
  command += " --series " + std::to_string(options.series);
  command += " --hours " + std::to_string(options.hours);
  command += " --runs " + std::to_string(options.runs);
  command += " --page-size " + std::to_string(options.page_size);
  if (options.summaries) command += " --summaries";
  command += " --compression " + options.compression;
  if (!options.dir.empty()) command += " --dir " + options.dir.string();
  if (options.keep) command += " --keep";
  return command;
}

// ---- small helpers ----------------------------------------------------------

using gapless::bench::file_system_of;
using gapless::bench::load_average;
using gapless::bench::machine_description;
using gapless::bench::median;
using gapless::bench::seconds_between;
using gapless::bench::Stopwatch;
using gapless::bench::utc_now_text;

double file_mib(const fs::path& path) {
  std::error_code ignored;
  double bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    const auto size = fs::file_size(path.string() + suffix, ignored);
    if (!ignored) bytes += static_cast<double>(size);
  }
  return bytes / (1024.0 * 1024.0);
}

// ---- measurements -----------------------------------------------------------

struct Measurement {
  int64_t datapoints = 0;
  int64_t batches = 0;  // baseline: transactions; no-journal: data requests
  int64_t messages = 0;
  double seconds = 0;
  double process_cpu = 0;
  double thread_cpu = 0;
  // no-journal only: the two halves of its time
  double fetch_seconds = 0;
  double build_seconds = 0;

  double rate() const { return static_cast<double>(datapoints) / seconds; }
  double process_us() const { return 1e6 * process_cpu / static_cast<double>(datapoints); }
  double thread_us() const { return 1e6 * thread_cpu / static_cast<double>(datapoints); }
};

// The rows gapless wrote, grouped by the transaction that wrote them.
struct MessageRow {
  int64_t id = 0;
  std::string gapless_id;
  int64_t destination_id = 0;
  std::string headers;
  std::string body;
  int64_t priority = 0;
  std::optional<int64_t> request_id;
  int64_t journaled_ms = 0;
};

struct DeliveryRow {
  int64_t sink_id = 0, message_id = 0, destination_id = 0, state = 0, priority = 0;
  std::optional<std::string> reason;
  int64_t parked_with_destination = 0, updated_ms = 0;
};

struct DatapointRow {
  int64_t series_id = 0, ts = 0;
  std::string digest;
  int64_t message_id = 0;
};

struct SeriesRow {
  int64_t id = 0;
  std::string archive_url, metadata_key, event_type, summary_type;
  int64_t summary_window = 0;
  std::string metadata;
};

struct Batch {
  std::vector<MessageRow> messages;
  std::vector<DeliveryRow> deliveries;
  std::vector<DatapointRow> datapoints;
};

struct Rows {
  std::vector<std::pair<int64_t, std::string>> destinations;
  // Series rows are created once per series, before its first page: set-up
  // for the baseline, not part of its batches.
  std::vector<SeriesRow> series;
  std::vector<Batch> batches;
  int64_t datapoints = 0, messages = 0, deliveries = 0;
  size_t bytes = 0;  // headers + bodies + digests, to tell the reader what was held in memory
};

std::optional<std::string> optional_text(const SQLite::Column& column) {
  if (column.isNull()) return std::nullopt;
  return column.getString();
}

std::string blob_of(const SQLite::Column& column) {
  return std::string(static_cast<const char*>(column.getBlob()), static_cast<size_t>(column.getBytes()));
}

// A gapless page journals, for one series, the page's datapoints (all new on
// a fresh journal) with the messages built from them and their delivery rows.
// Pages are `page_size` consecutive points of a series in ts order, series in
// the order they were read (= series id order: each is registered just before
// its read), so the pages can be rebuilt from the datapoint rows alone.
Rows load_rows(const fs::path& journal_path, int64_t page_size) {
  SQLite::Database db(journal_path.string(), SQLite::OPEN_READONLY);
  Rows rows;
  {
    SQLite::Statement query(db, "SELECT id, name FROM destination ORDER BY id");
    while (query.executeStep()) rows.destinations.emplace_back(query.getColumn(0).getInt64(), query.getColumn(1).getString());
  }
  {
    SQLite::Statement query(db,
                            "SELECT id, archive_url, metadata_key, event_type, summary_type, summary_window, metadata "
                            "FROM series ORDER BY id");
    while (query.executeStep())
      rows.series.push_back({query.getColumn(0).getInt64(), query.getColumn(1).getString(),
                             query.getColumn(2).getString(), query.getColumn(3).getString(),
                             query.getColumn(4).getString(), query.getColumn(5).getInt64(),
                             query.getColumn(6).getString()});
  }
  std::map<int64_t, MessageRow> messages;
  {
    SQLite::Statement query(db,
                            "SELECT id, gapless_id, destination_id, headers, body, priority, request_id, journaled_ms "
                            "FROM message");
    while (query.executeStep()) {
      MessageRow m;
      m.id = query.getColumn(0).getInt64();
      m.gapless_id = query.getColumn(1).getString();
      m.destination_id = query.getColumn(2).getInt64();
      m.headers = query.getColumn(3).getString();
      m.body = blob_of(query.getColumn(4));
      m.priority = query.getColumn(5).getInt64();
      if (!query.isColumnNull(6)) m.request_id = query.getColumn(6).getInt64();
      m.journaled_ms = query.getColumn(7).getInt64();
      rows.bytes += m.headers.size() + m.body.size() + m.gapless_id.size();
      messages.emplace(m.id, std::move(m));
    }
  }
  std::multimap<int64_t, DeliveryRow> deliveries;  // by message id
  {
    SQLite::Statement query(db,
                            "SELECT sink_id, message_id, destination_id, state, priority, reason, "
                            "parked_with_destination, updated_ms FROM delivery");
    while (query.executeStep()) {
      DeliveryRow d;
      d.sink_id = query.getColumn(0).getInt64();
      d.message_id = query.getColumn(1).getInt64();
      d.destination_id = query.getColumn(2).getInt64();
      d.state = query.getColumn(3).getInt64();
      d.priority = query.getColumn(4).getInt64();
      d.reason = optional_text(query.getColumn(5));
      d.parked_with_destination = query.getColumn(6).getInt64();
      d.updated_ms = query.getColumn(7).getInt64();
      deliveries.emplace(d.message_id, std::move(d));
    }
  }
  const size_t message_count = messages.size();
  const size_t delivery_count = deliveries.size();

  SQLite::Statement query(db, "SELECT series_id, ts, digest, message_id FROM datapoint ORDER BY series_id, ts");
  int64_t current_series = -1;
  int64_t in_page = 0;
  const auto close_batch = [&] {
    if (rows.batches.empty() || rows.batches.back().datapoints.empty()) return;
    Batch& batch = rows.batches.back();
    std::vector<int64_t> ids;
    for (const DatapointRow& d : batch.datapoints) ids.push_back(d.message_id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (const int64_t id : ids) {
      const auto message = messages.find(id);
      if (message == messages.end())
        throw Error("journal " + journal_path.string() + ": datapoint names message " + std::to_string(id) +
                    " twice across pages or not at all: cannot rebuild gapless's pages");
      batch.messages.push_back(std::move(message->second));
      messages.erase(message);
      const auto [first, last] = deliveries.equal_range(id);
      for (auto it = first; it != last; ++it) batch.deliveries.push_back(std::move(it->second));
      deliveries.erase(first, last);
    }
  };
  while (query.executeStep()) {
    DatapointRow d;
    d.series_id = query.getColumn(0).getInt64();
    d.ts = query.getColumn(1).getInt64();
    d.digest = blob_of(query.getColumn(2));
    d.message_id = query.getColumn(3).getInt64();
    rows.bytes += d.digest.size();
    if (d.series_id != current_series || in_page == page_size) {
      close_batch();
      rows.batches.emplace_back();
      current_series = d.series_id;
      in_page = 0;
    }
    ++in_page;
    rows.batches.back().datapoints.push_back(std::move(d));
    ++rows.datapoints;
  }
  close_batch();
  if (!messages.empty() || !deliveries.empty())
    throw Error("journal " + journal_path.string() + ": " + std::to_string(messages.size()) + " messages and " +
                std::to_string(deliveries.size()) + " delivery rows carry no datapoint: cannot rebuild gapless's pages");
  rows.messages = static_cast<int64_t>(message_count);
  rows.deliveries = static_cast<int64_t>(delivery_count);
  return rows;
}

// ---- the bench --------------------------------------------------------------

class Bench {
 public:
  Bench(const Options& options, fs::path work_dir) : options_(options), work_dir_(std::move(work_dir)) {
    // The archive's clock is frozen, and two days behind the real clock that
    // the collector closes summary windows against (the longest is a day plus
    // grace): so every round, and the no-journal reading, see the same data,
    // summaries included.
    now_ = gapless::unix_now_ms() / 1000 - kArchiveLag;
    gapless::test::EsmondArchive::Options archive_options;
    archive_options.series = static_cast<int>(options.series);
    archive_options.now = now_;
    archive_options.start = now_ - options.hours * kHour;
    archive_ = std::make_unique<gapless::test::EsmondArchive>(archive_options);
    archive_->start();

    config_.name = "bench-archive";
    config_.url = archive_->base_url();
    config_.gzip = options.compression == "gzip";
    // Everything the archive holds, also for rounds that start minutes later
    // (the collector's "now" is the real clock).
    config_.lookback = std::chrono::seconds(options.hours * kHour + kArchiveLag + 24 * kHour);
    config_.summaries = options.summaries;
    config_.page_size = static_cast<int>(options.page_size);
  }

  const gapless::ArchiveConfig& config() const { return config_; }

  // The collector's view of the configuration: one sink with its defaults,
  // as the daemon's journal has (kSink).
  static gapless::Config whole_config() {
    gapless::Config whole;
    gapless::SinkConfig sink;
    sink.name = kSink;
    whole.sinks.push_back(sink);
    return whole;
  }

  Measurement run_gapless(int64_t round) {
    const fs::path dir = work_dir_ / ("gapless-" + std::to_string(round));
    fs::create_directories(dir);
    const fs::path path = dir / "journal.db";
    Measurement m;
    {
      auto journal = Journal::open(path.string(), {kSink});
      gapless::esmond::Client client(config_.name, config_.url, gapless::collector::client_options(config_));
      const gapless::Config whole = whole_config();
      gapless::collector::SeriesBackoffs state;
      std::atomic<bool> stop{false};

      const Stopwatch watch;
      const gapless::collector::PollReport report =
          gapless::collector::poll_archive(whole, config_, client, *journal, state, stop);
      m.seconds = watch.seconds();
      m.process_cpu = watch.process_cpu();
      m.thread_cpu = watch.thread_cpu();

      std::string failures;
      for (const auto& [kind, count] : report.failures) failures += " " + kind + ":" + std::to_string(count);
      if (!report.listed || !report.failures.empty() || report.series_failed > 0)
        throw Error("gapless run " + std::to_string(round) + " failed: series_failed " +
                    std::to_string(report.series_failed) + ", failures" + failures);
      if (report.points_journaled == 0 || report.points_journaled != report.points_read)
        throw Error("gapless run " + std::to_string(round) + " journaled " + std::to_string(report.points_journaled) +
                    " of " + std::to_string(report.points_read) + " datapoints read (a fresh journal keeps all)");
      m.datapoints = report.points_journaled;
      m.messages = report.messages;
      series_read_ = report.series_read;
    }
    {
      SQLite::Database db(path.string(), SQLite::OPEN_READONLY);
      const int64_t rows = db.execAndGet("SELECT count(*) FROM datapoint").getInt64();
      if (rows != m.datapoints)
        throw Error("gapless run " + std::to_string(round) + ": the journal holds " + std::to_string(rows) +
                    " datapoint rows, the report says " + std::to_string(m.datapoints));
    }
    if (expected_datapoints_ == 0) expected_datapoints_ = m.datapoints;
    if (m.datapoints != expected_datapoints_)
      throw Error("gapless run " + std::to_string(round) + " journaled " + std::to_string(m.datapoints) +
                  " datapoints, run 1 " + std::to_string(expected_datapoints_) + ": the rounds do not read the same data");
    std::printf("gapless    %" PRId64 ": %9" PRId64 " datapoints %6" PRId64 " messages in %6.2f s = %8.0f /s; "
                "CPU us/datapoint: process %5.2f, collector thread %5.2f; journal %.0f MiB\n",
                round, m.datapoints, m.messages, m.seconds, m.rate(), m.process_us(), m.thread_us(), file_mib(path));
    if (round == 1) {
      const Stopwatch watch;
      rows_ = load_rows(path, options_.page_size);
      std::printf("           rows for the baseline read back in %.1f s: %zu transactions, %" PRId64 " messages, %" PRId64
                  " deliveries, %" PRId64 " datapoints, %.0f MiB in memory\n",
                  watch.seconds(), rows_.batches.size(), rows_.messages, rows_.deliveries, rows_.datapoints,
                  static_cast<double>(rows_.bytes) / (1024.0 * 1024.0));
      if (rows_.datapoints != m.datapoints) throw Error("the rows read back do not match the report");
    }
    if (!options_.keep) fs::remove_all(dir);
    return m;
  }

  Measurement run_baseline(int64_t round) {
    const fs::path dir = work_dir_ / ("baseline-" + std::to_string(round));
    fs::create_directories(dir);
    const fs::path path = dir / "journal.db";
    Journal::open(path.string(), {kSink});  // the journal's schema and file PRAGMAs; closed at once

    Measurement m;
    {
      SQLite::Database db(path.string(), SQLite::OPEN_READWRITE);
      // The journal's per-connection settings (Journal::open, begin_write).
      db.exec("PRAGMA foreign_keys = ON");
      db.exec("PRAGMA synchronous = FULL");
      const std::string mode = db.execAndGet("PRAGMA journal_mode").getString();
      if (mode != "wal") throw Error("baseline journal is in journal_mode " + mode + ", not wal");
      {
        // What gapless creates once per destination and series: set-up here.
        SQLite::Transaction transaction(db);
        SQLite::Statement destination(db, "INSERT INTO destination(id, name) VALUES (?1, ?2)");
        for (const auto& [id, name] : rows_.destinations) {
          destination.reset();
          destination.bind(1, id);
          destination.bind(2, name);
          destination.exec();
        }
        SQLite::Statement series(db,
                                 "INSERT INTO series(id, archive_url, metadata_key, event_type, summary_type, "
                                 "summary_window, metadata, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)");
        for (const auto& row : rows_.series) {
          series.reset();
          series.bind(1, row.id);
          series.bind(2, row.archive_url);
          series.bind(3, row.metadata_key);
          series.bind(4, row.event_type);
          series.bind(5, row.summary_type);
          series.bind(6, row.summary_window);
          series.bind(7, row.metadata);
          series.exec();
        }
        transaction.commit();
      }

      SQLite::Statement message(db,
                                "INSERT INTO message(id, gapless_id, destination_id, headers, body, priority, "
                                "request_id, journaled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
      SQLite::Statement delivery(db,
                                 "INSERT INTO delivery(sink_id, message_id, destination_id, state, priority, reason, "
                                 "parked_with_destination, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
      SQLite::Statement datapoint(db,
                                  "INSERT INTO datapoint(series_id, ts, digest, message_id) VALUES (?1, ?2, ?3, ?4)");

      const Stopwatch watch;
      for (const Batch& batch : rows_.batches) {
        SQLite::Transaction transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
        for (const MessageRow& row : batch.messages) {
          message.reset();
          message.bind(1, row.id);
          message.bindNoCopy(2, row.gapless_id);
          message.bind(3, row.destination_id);
          message.bindNoCopy(4, row.headers);
          message.bindNoCopy(5, row.body.data(), static_cast<int>(row.body.size()));
          message.bind(6, row.priority);
          if (row.request_id) message.bind(7, *row.request_id); else message.bind(7);
          message.bind(8, row.journaled_ms);
          message.exec();
        }
        for (const DeliveryRow& row : batch.deliveries) {
          delivery.reset();
          delivery.bind(1, row.sink_id);
          delivery.bind(2, row.message_id);
          delivery.bind(3, row.destination_id);
          delivery.bind(4, row.state);
          delivery.bind(5, row.priority);
          if (row.reason) delivery.bindNoCopy(6, *row.reason); else delivery.bind(6);
          delivery.bind(7, row.parked_with_destination);
          delivery.bind(8, row.updated_ms);
          delivery.exec();
        }
        for (const DatapointRow& row : batch.datapoints) {
          datapoint.reset();
          datapoint.bind(1, row.series_id);
          datapoint.bind(2, row.ts);
          datapoint.bindNoCopy(3, row.digest.data(), static_cast<int>(row.digest.size()));
          datapoint.bind(4, row.message_id);
          datapoint.exec();
        }
        transaction.commit();
      }
      m.seconds = watch.seconds();
      m.process_cpu = watch.process_cpu();
      m.thread_cpu = watch.thread_cpu();
      m.datapoints = db.execAndGet("SELECT count(*) FROM datapoint").getInt64();
      m.messages = db.execAndGet("SELECT count(*) FROM message").getInt64();
      m.batches = static_cast<int64_t>(rows_.batches.size());
    }
    if (m.datapoints != rows_.datapoints || m.messages != rows_.messages)
      throw Error("baseline run " + std::to_string(round) + " holds " + std::to_string(m.datapoints) +
                  " datapoints and " + std::to_string(m.messages) + " messages, expected " +
                  std::to_string(rows_.datapoints) + " and " + std::to_string(rows_.messages));
    std::printf("baseline   %" PRId64 ": %9" PRId64 " datapoints %6" PRId64 " messages in %6.2f s = %8.0f /s; "
                "CPU us/datapoint: process %5.2f, inserting thread %5.2f; %" PRId64 " transactions; file %.0f MiB\n",
                round, m.datapoints, m.messages, m.seconds, m.rate(), m.process_us(), m.thread_us(), m.batches,
                file_mib(path));
    if (!options_.keep) fs::remove_all(dir);
    return m;
  }

  // read_series's work without the journal: every point is new (as on a
  // fresh journal), so every page is digested and built into messages.
  Measurement run_no_journal(int64_t round) {
    Measurement m;
    gapless::esmond::Client client(config_.name, config_.url, gapless::collector::client_options(config_));
    const int64_t now = gapless::unix_now_ms() / 1000;
    const int64_t first_contact = now - std::chrono::duration_cast<std::chrono::seconds>(config_.lookback).count();
    const int64_t grace = std::chrono::duration_cast<std::chrono::seconds>(config_.summary_grace).count();
    const gapless::osg::BuildOptions build = gapless::collector::build_options(
        gapless::collector::read_options(whole_config(), config_), static_cast<double>(gapless::unix_now_ms()) / 1000.0);

    const Stopwatch watch;
    Clock::time_point mark = Clock::now();
    const auto lap = [&](double& into) {
      const Clock::time_point t = Clock::now();
      into += seconds_between(mark, t);
      mark = t;
    };
    const std::vector<nlohmann::json> listing = client.list_metadata(first_contact);
    lap(m.fetch_seconds);
    for (const nlohmann::json& metadata : listing) {
      for (const nlohmann::json& event : metadata.at("event-types")) {
        const std::string event_type = event.at("event-type").get<std::string>();
        if (std::find(config_.event_types.begin(), config_.event_types.end(), event_type) == config_.event_types.end())
          continue;
        std::vector<gapless::journal::SeriesKey> keys{
            {client.base_url(), metadata.at("metadata-key").get<std::string>(), event_type, "", 0}};
        if (config_.summaries)
          for (const nlohmann::json& summary : event.at("summaries")) {
            const nlohmann::json& window = summary.at("summary-window");
            keys.push_back({keys.front().archive_url, keys.front().metadata_key, event_type,
                            summary.at("summary-type").get<std::string>(),
                            window.is_string() ? std::stoll(window.get<std::string>()) : window.get<int64_t>()});
          }
        for (const gapless::journal::SeriesKey& key : keys) {
          const bool summary = !key.summary_type.empty();
          const std::optional<int64_t> end =
              summary ? std::optional<int64_t>(now - key.summary_window - grace + 1) : std::nullopt;
          int64_t time_start = first_contact - key.summary_window;
          for (;;) {
            if (end && time_start >= *end) break;
            std::vector<gapless::osg::Datapoint> points = client.fetch_data(
                {key.metadata_key, key.event_type, key.summary_type, key.summary_window}, time_start, end,
                config_.page_size);
            lap(m.fetch_seconds);
            ++m.batches;
            m.datapoints += static_cast<int64_t>(points.size());
            if (!points.empty()) {
              // The client digested each value as it parsed it (osg::Datapoint).
              m.messages += static_cast<int64_t>(gapless::osg::build_messages(key, metadata, points, build).size());
            }
            lap(m.build_seconds);
            if (points.size() < static_cast<size_t>(config_.page_size)) break;
            time_start = points.back().ts + 1;
          }
        }
      }
    }
    m.seconds = watch.seconds();
    m.process_cpu = watch.process_cpu();
    m.thread_cpu = watch.thread_cpu();
    if (m.datapoints != expected_datapoints_)
      throw Error("no-journal run " + std::to_string(round) + " read " + std::to_string(m.datapoints) +
                  " datapoints, gapless journaled " + std::to_string(expected_datapoints_));
    std::printf("no-journal %" PRId64 ": %9" PRId64 " datapoints %6" PRId64 " messages in %6.2f s = %8.0f /s "
                "(fetch+parse %.2f s = %.0f /s, digest+build %.2f s); CPU us/datapoint: process %5.2f, client thread %5.2f\n",
                round, m.datapoints, m.messages, m.seconds, m.rate(), m.fetch_seconds,
                static_cast<double>(m.datapoints) / m.fetch_seconds, m.build_seconds, m.process_us(), m.thread_us());
    return m;
  }

  int64_t series_read() const { return series_read_; }

 private:

  Options options_;
  fs::path work_dir_;
  int64_t now_ = 0;
  std::unique_ptr<gapless::test::EsmondArchive> archive_;
  gapless::ArchiveConfig config_;
  Rows rows_;
  int64_t expected_datapoints_ = 0;
  int64_t series_read_ = 0;
};

// ---- the summary ------------------------------------------------------------

struct Summary {
  double median_rate = 0, min_rate = 0, max_rate = 0;
  double median_process_us = 0, median_thread_us = 0;
};

Summary summarize(const std::vector<Measurement>& runs) {
  std::vector<double> rates, process_us, thread_us;
  for (const Measurement& m : runs) {
    rates.push_back(m.rate());
    process_us.push_back(m.process_us());
    thread_us.push_back(m.thread_us());
  }
  Summary s;
  s.median_rate = median(rates);
  s.min_rate = *std::min_element(rates.begin(), rates.end());
  s.max_rate = *std::max_element(rates.begin(), rates.end());
  s.median_process_us = median(process_us);
  s.median_thread_us = median(thread_us);
  return s;
}

void print_row(const char* name, const Summary& s) {
  std::printf("| %-10s | %8.0f | %8.0f – %-8.0f | %5.1f %% | %6.2f | %6.2f |\n", name, s.median_rate, s.min_rate,
              s.max_rate, 100.0 * (s.max_rate - s.min_rate) / s.median_rate, s.median_process_us, s.median_thread_us);
}

void print_summary(const Options& options, const std::vector<Measurement>& gapless_runs,
                   const std::vector<Measurement>& baseline_runs, const std::vector<Measurement>& no_journal_runs) {
  const Summary g = summarize(gapless_runs), b = summarize(baseline_runs), n = summarize(no_journal_runs);
  std::printf("\n## summary: %" PRId64 " rounds, %" PRId64 " datapoints per run, page size %" PRId64 ", summaries %s\n\n",
              options.runs, gapless_runs.front().datapoints, options.page_size, options.summaries ? "on" : "off");
  std::printf("| run        | median datapoints/s | min – max /s | spread | CPU us/datapoint, process | CPU us/datapoint, measuring thread |\n");
  std::printf("|------------|---------:|---------------------|--------:|-------:|-------:|\n");
  print_row("gapless", g);
  print_row("baseline", b);
  print_row("no-journal", n);

  std::vector<double> fetch_rates, fetch_shares, build_us;
  for (const Measurement& m : no_journal_runs) {
    fetch_rates.push_back(static_cast<double>(m.datapoints) / m.fetch_seconds);
    build_us.push_back(1e6 * m.build_seconds / static_cast<double>(m.datapoints));
  }
  std::vector<double> gapless_us;
  for (const Measurement& m : gapless_runs) gapless_us.push_back(1e6 * m.seconds / static_cast<double>(m.datapoints));
  std::vector<double> no_journal_us;
  for (const Measurement& m : no_journal_runs) no_journal_us.push_back(1e6 * m.seconds / static_cast<double>(m.datapoints));
  const double fetch_us = 1e6 / median(fetch_rates);
  std::printf("\n(medians; spread = (max - min) / median; process CPU includes the in-process archive's HTTP threads,\n"
              " measuring thread = the collector's, the baseline's or the no-journal reader's own thread)\n");
  std::printf("\nwhere gapless's wall time goes, us per datapoint (medians): total %.2f = fetch+parse %.2f (archive\n"
              "serving included; %.0f datapoints/s) + digest+build %.2f + journal and the rest %.2f\n",
              median(gapless_us), fetch_us, median(fetch_rates), median(build_us),
              median(gapless_us) - median(no_journal_us));

  std::string pairs;
  for (size_t i = 0; i < gapless_runs.size() && i < baseline_runs.size(); ++i) {
    char ratio[16];
    std::snprintf(ratio, sizeof ratio, "%s%.2f", i ? " " : "", gapless_runs[i].rate() / baseline_runs[i].rate());
    pairs += ratio;
  }
  const double ratio = g.median_rate / b.median_rate;
  std::printf("\ngapless median rate: %.0f datapoints/s; target >= %.0f: %s\n", g.median_rate, kRateTarget,
              g.median_rate >= kRateTarget ? "PASS" : "FAIL");
  std::printf("ratio gapless / baseline (median rates): %.2f; target >= %.1f: %s\n", ratio, kRatioTarget,
              ratio >= kRatioTarget ? "PASS" : "FAIL");
  std::printf("per-round ratios: %s\n", pairs.c_str());
}

int run_bench(const Options& options, const char* argv0) {
  std::printf("reproduce: %s\n", reproduce_command(argv0, options).c_str());
  std::printf("# ingest-bench %s\n", utc_now_text().c_str());
  std::printf("machine: %s\n", machine_description().c_str());
  std::printf("load average (1, 5, 15 min) at start: %s\n", load_average().c_str());
  const fs::path work_dir = make_work_dir(options.dir, "ingest-bench");
  std::printf("work directory: %s (%s)%s\n", work_dir.c_str(), file_system_of(work_dir).c_str(),
              options.keep ? " (kept)" : "");

  int exit_code = 0;
  try {
    Bench bench(options, work_dir);
    std::printf("archive: %" PRId64 " series, 1-minute cadence, %" PRId64 " h of history, in this process, "
                "compression %s\n",
                options.series, options.hours, options.compression.c_str());
    std::printf("collector: %zu event types, summaries %s, page size %" PRId64 ", %d datapoints per message\n\n",
                bench.config().event_types.size(), options.summaries ? "on" : "off", options.page_size,
                bench.config().datapoints_per_message);
    std::vector<Measurement> gapless_runs, baseline_runs, no_journal_runs;
    for (int64_t round = 1; round <= options.runs; ++round) {
      gapless_runs.push_back(bench.run_gapless(round));
      baseline_runs.push_back(bench.run_baseline(round));
      no_journal_runs.push_back(bench.run_no_journal(round));
    }
    std::printf("series read by gapless: %" PRId64 "\n", bench.series_read());
    print_summary(options, gapless_runs, baseline_runs, no_journal_runs);
    std::printf("load average (1, 5, 15 min) after the runs: %s\n", load_average().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest-bench: %s\n", e.what());
    exit_code = 1;
  }
  std::error_code ignored;
  if (!options.keep && options.dir.empty()) fs::remove_all(work_dir, ignored);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also through a pipe
  spdlog::set_level(spdlog::level::warn);    // per-series info lines would be noise (and cost time)
  CLI::App app{"ingest-bench: datapoints/s from the in-process esmond test archive into the journal, against raw "
               "SQLite inserts of the same rows (bench/README.md)"};
  Options options;
  add_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0, bad usage 2
  }
  return run_bench(options, argv[0]);
}
