// Proves live data arrives within 10 s while a backfill drains beside the daemon, and overtakes a backlog when the broker returns.
//
// Live data keeps priority while a backfill drains (issue 4). The daemon
// polls an archive every 2 s while `gapless-replay backfill` re-reads older
// data of the same archive into the same journal, beside it. What a dashboard
// user would notice is how late live measurements reach them: 99 % of them
// must arrive within 10 s of becoming visible in the archive.
//
//   [live-priority]         the scenario: three weeks of 200 series
//                           (about 6 million datapoints) backfilled beside
//                           the daemon; every datapoint of the window arrives
//                           once; the daemon never fails on a busy journal.
//   [live-priority-outage]  the sender's side of the promise: the backfill
//                           runs while the broker is down, so hundreds of
//                           thousands of backfilled messages wait in front of
//                           the sender when the broker returns. Live data
//                           must overtake them; claimed in journal order, it
//                           would wait for the whole backlog (the test makes
//                           sure that takes longer than the bound).
//
// The archive (in this process) runs on real time, aligned to the wall clock,
// so a datapoint becomes visible at its ts (the archive serves a run once
// ts <= now); its delay is the wall time at which a live STOMP subscriber
// receives it minus its ts (plus the measured lag of the archive's clock, a
// few milliseconds). Bodies are only stamped and kept while the processes
// run, and parsed afterwards, so that this process takes as little CPU as
// possible from what is measured.
//   build/tests/integration/integration-tests '[live-priority]'
// The first scenario with rates, in a release build: bench/backfill_bench.cpp.
#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/timed_subscriber.hpp"
#include "harness/workspace.hpp"

using namespace std::chrono_literals;
using gapless::test::EsmondArchive;
using gapless::test::TestBroker;
using gapless::test::TimedMessage;
using gapless::test::TimedSubscriber;
using gapless::test::delay_summary;
using gapless::test::percentile;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

using WallClock = std::chrono::system_clock;
using SteadyClock = std::chrono::steady_clock;

// 200 series at a 1-minute cadence, the benchmark.
constexpr int kSeries = 200;
constexpr int64_t kCadence = 60;
const char* const kEventType = "packet-loss-rate";
const char* const kDestination = "/topic/perfsonar.raw.packet-loss-rate";
// The bound on the live delay's 99th percentile.
constexpr double kLiveDelayP99LimitSeconds = 10;
// The daemon alone before the backfill starts: live delays without it, for comparison.
constexpr auto kLiveOnlyPeriod = 20s;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(WallClock::now().time_since_epoch()).count();
}

// The next whole wall-clock second, once it has come: an archive created at
// that moment with `now` = that second runs in step with the wall clock.
int64_t wait_for_whole_second() {
  const int64_t now = wall_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000 - now % 1000));
  return (now / 1000) + 1;
}

// How many milliseconds the archive's clock is behind the wall clock: the
// wall time at which its whole-second `now` ticks over, minus that second.
// A datapoint at ts becomes visible at wall time ts + this lag.
int64_t archive_lag_ms(const EsmondArchive& archive) {
  const int64_t before = archive.now();
  const auto deadline = SteadyClock::now() + 3s;
  while (archive.now() == before && SteadyClock::now() < deadline) std::this_thread::sleep_for(1ms);
  return wall_ms() - (before + 1) * 1000;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What the subscriber received, read the way an OSG consumer reads a raw
// message (body.meta.org_metadata_key, datapoints keyed by ts): per datapoint
// of the backfill window how often it came and a hash of its value (one slot
// per cadence step, so millions of datapoints stay small), and when each live
// datapoint (ts >= the window's end) first came.
class Tally {
 public:
  Tally(const EsmondArchive& archive, int64_t window_from, int64_t window_to)
      : window_from_(window_from), window_to_(window_to) {
    const size_t slots = static_cast<size_t>((window_to - window_from) / kCadence + 1);
    for (const std::string& key : archive.metadata_keys()) {
      index_.emplace(key, index_.size());
      copies_.emplace_back(slots, uint8_t{0});
      values_.emplace_back(slots, size_t{0});
    }
  }

  void absorb(const std::vector<TimedMessage>& messages) {
    for (const TimedMessage& message : messages) {
      if (message.destination != kDestination) {
        unexpected_.push_back(message.destination);
        continue;
      }
      const json body = json::parse(message.body);
      const size_t series = index_.at(body.at("meta").at("org_metadata_key").get<std::string>());
      const int64_t arrived_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(message.arrived.time_since_epoch()).count();
      for (const auto& [text, value] : body.at("datapoints").items()) {
        const int64_t ts = std::stoll(text);
        if (ts >= window_to_) {
          live_.try_emplace(key_of(series, ts), arrived_ms);
          continue;
        }
        if (ts < window_from_) {
          ++outside_;
          continue;
        }
        const size_t slot = static_cast<size_t>((ts - window_from_) / kCadence);
        if (copies_[series][slot] < 255 && copies_[series][slot]++ == 0) {
          values_[series][slot] = std::hash<std::string>{}(value.dump());
          last_window_arrival_ms_ = std::max(last_window_arrival_ms_, arrived_ms);
        }
      }
    }
  }

  // How often the datapoint at `ts` came (255 at most) and its value's hash.
  std::pair<int, size_t> window_point(const std::string& key, int64_t ts) const {
    const size_t series = index_.at(key);
    const size_t slot = static_cast<size_t>((ts - window_from_) / kCadence);
    return {copies_[series][slot], values_[series][slot]};
  }
  std::optional<int64_t> live_arrival_ms(const std::string& key, int64_t ts) const {
    const auto it = live_.find(key_of(index_.at(key), ts));
    if (it == live_.end()) return std::nullopt;
    return it->second;
  }
  int64_t last_window_arrival_ms() const { return last_window_arrival_ms_; }
  int64_t outside() const { return outside_; }
  const std::vector<std::string>& unexpected_destinations() const { return unexpected_; }

 private:
  static uint64_t key_of(size_t series, int64_t ts) {
    return (static_cast<uint64_t>(series) << 40) | static_cast<uint64_t>(ts);
  }

  int64_t window_from_, window_to_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::vector<uint8_t>> copies_;
  std::vector<std::vector<size_t>> values_;
  std::unordered_map<uint64_t, int64_t> live_;
  int64_t last_window_arrival_ms_ = 0;
  int64_t outside_ = 0;
  std::vector<std::string> unexpected_;
};

// Messages waiting for delivery, from the journal's counters (no scan): read
// beside the running daemon, and short, so that it holds back no checkpoint.
int64_t pending_messages(const std::string& journal_path) {
  SQLite::Database db(journal_path, SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db, "SELECT coalesce(sum(count), 0) FROM delivery_count WHERE state = 0");
  return query.executeStep() ? query.getColumn(0).getInt64() : 0;
}

// Log lines saying that the journal was busy or locked, or that a journal call failed.
std::vector<std::string> journal_trouble(const std::string& log) {
  std::vector<std::string> found;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line))
    if (line.find("SQLITE_BUSY") != std::string::npos || line.find("SQLITE_LOCKED") != std::string::npos ||
        line.find("database is locked") != std::string::npos ||
        line.find("locked for more than") != std::string::npos || line.find("journal failed") != std::string::npos)
      found.push_back(line);
  return found;
}

// "collector: polled ... duration_ms=N": the longest poll of the archive.
int64_t longest_poll_ms(const std::string& log) {
  int64_t longest = 0;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("collector: polled") == std::string::npos) continue;
    const size_t at = line.find("duration_ms=");
    if (at != std::string::npos) longest = std::max<int64_t>(longest, std::stoll(line.substr(at + 12)));
  }
  return longest;
}

// The archive, the broker, the live subscriber and the daemon of one scenario.
class LiveScenario {
 public:
  // `keep_backfilled`: keep the backfill window's messages for the checks
  // (false: only live ones, for a window too large to hold in memory).
  LiveScenario(int64_t backfill_hours, int datapoints_per_message, bool keep_backfilled)
      : keep_backfilled_(keep_backfilled),
        subscriber_(std::make_unique<TimedSubscriber>(broker_.stomp_uri())),
        archive_(archive_options(backfill_hours)) {
    archive_.start();
    lag_ms_ = archive_lag_ms(archive_);
    // Polls every 2 s; re-reads 5 minutes behind each series' newest point
    // (late data); on first contact reads the last 10 minutes, which the
    // backfill then finds covered.
    workspace_ = std::make_unique<Workspace>(
        broker_, "",
        "[[archive]]\nname = \"live\"\nurl = \"" + archive_.base_url() +
            "\"\npoll_interval = \"2s\"\nlookback = \"10m\"\noverlap = \"5m\"\nsummaries = false\n"
            "event_types = [\"" + kEventType + "\"]\ndatapoints_per_message = " +
            std::to_string(datapoints_per_message) + "\n[collector]\nretry_min = \"1s\"\nretry_max = \"2s\"\n");
    // The backfill's window ends where the daemon starts: everything before
    // it is the outage to fill.
    live_start_ = archive_.now();
    backfill_from_ = live_start_ - backfill_hours * 3600;
  }

  // Starts the daemon, waits for its first poll, lets it run alone for a while.
  void start_daemon() {
    daemon_.emplace(workspace_->start_daemon());
    const auto deadline = SteadyClock::now() + 120s;
    while (workspace_->daemon_log().find("collector: polled") == std::string::npos) {
      REQUIRE(SteadyClock::now() < deadline);
      REQUIRE(daemon_->running());
      std::this_thread::sleep_for(100ms);
    }
    live_only_from_ = archive_.now() + 1;
    std::this_thread::sleep_for(kLiveOnlyPeriod);
    keep();
  }

  // `gapless-replay backfill` over the window, to completion (exit 0).
  void backfill() {
    backfill_started_ = archive_.now();
    const auto started = SteadyClock::now();
    const auto replay_binary = gapless::test::gapless_replay_binary().string();
    auto backfill = gapless::test::Process::spawn(
        {.args = {replay_binary, "backfill", "--config", workspace_->config_path(), "--from",
                  std::to_string(backfill_from_), "--to", std::to_string(live_start_)},
         .out = gapless::test::Output::to_file(workspace_->dir() / "backfill.out"),
         .err = gapless::test::Output::to_file(workspace_->dir() / "backfill.err")});
    std::optional<gapless::test::ExitStatus> exit;
    while (!(exit = backfill.wait_for(1s))) {
      REQUIRE(SteadyClock::now() < started + 20min);
      REQUIRE(daemon_->running());
      keep();
      peak_backlog_ = std::max(peak_backlog_, pending_messages(workspace_->journal_path()));
    }
    backfill_seconds_ = std::chrono::duration<double>(SteadyClock::now() - started).count();
    INFO("backfill: " << exit->describe() << " after " << backfill_seconds_ << " s\n"
                      << read_file(workspace_->dir() / "backfill.out") << read_file(workspace_->dir() / "backfill.err"));
    REQUIRE(exit->code == 0);
  }

  // Waits until the daemon's sender has nothing left to deliver (the wall
  // time it saw that is returned), then lets live data go on for twice the
  // bound, so that the live datapoints of the drain's last seconds can
  // arrive; then stops the daemon (exit 0).
  int64_t drain_and_stop() {
    const auto deadline = SteadyClock::now() + 10min;
    while (pending_messages(workspace_->journal_path()) > 0) {
      REQUIRE(SteadyClock::now() < deadline);
      REQUIRE(daemon_->running());
      keep();
      std::this_thread::sleep_for(200ms);
    }
    const int64_t drained_ms = wall_ms();
    std::this_thread::sleep_for(std::chrono::duration<double>(kLiveDelayP99LimitSeconds * 2));
    keep();
    CHECK(daemon_->terminate(30s).code == 0);
    CHECK(subscriber_->failure().empty());
    daemon_log_ = workspace_->daemon_log();
    return drained_ms;
  }

  // What the subscriber received, parsed.
  Tally tally() const {
    Tally tally(archive_, backfill_from_, live_start_);
    tally.absorb(received_);
    return tally;
  }

  // The delay of every datapoint the archive made visible with from <= ts <=
  // to (one that never came counts as arriving now).
  std::vector<double> live_delays(const Tally& tally, int64_t from, int64_t to) const {
    std::vector<double> delays;
    const int64_t now_ms = wall_ms();
    for (const std::string& key : archive_.metadata_keys())
      for (const json& point : archive_.points(key, kEventType, "base", 0, from, to)) {
        const int64_t ts = point.at("ts").get<int64_t>();
        const int64_t arrived_ms = tally.live_arrival_ms(key, ts).value_or(now_ms);
        delays.push_back(static_cast<double>(arrived_ms - ts * 1000 - lag_ms_) / 1000.0);
      }
    return delays;
  }

  // Live delays with the daemon alone, before the backfill.
  std::vector<double> live_delays_alone(const Tally& tally) const {
    return live_delays(tally, live_only_from_, backfill_started_ - 1);
  }

  TestBroker& broker() { return broker_; }
  std::string journal_path() const { return workspace_->journal_path(); }
  const EsmondArchive& archive() const { return archive_; }
  int64_t lag_ms() const { return lag_ms_; }
  int64_t backfill_from() const { return backfill_from_; }
  int64_t live_start() const { return live_start_; }
  int64_t backfill_started() const { return backfill_started_; }
  double backfill_seconds() const { return backfill_seconds_; }
  int64_t peak_backlog() const { return peak_backlog_; }
  const std::string& daemon_log() const { return daemon_log_; }

  // A new live subscriber (the old one's connection died with the broker).
  void resubscribe() {
    keep();
    subscriber_ = std::make_unique<TimedSubscriber>(broker_.stomp_uri());
  }

 private:
  static EsmondArchive::Options archive_options(int64_t backfill_hours) {
    EsmondArchive::Options options;
    options.series = kSeries;
    options.kinds = {gapless::test::esmond::SeriesKind::latency};
    options.event_types = {kEventType};
    options.cadence = kCadence;
    options.clock_speed = 1;  // real time
    options.now = wait_for_whole_second();
    options.start = *options.now - backfill_hours * 3600 - 86400;
    return options;
  }

  // Bodies are kept as they came and parsed once the run is over. A
  // message's `ts_start` header (OSG's: the smallest ts it carries) tells a
  // backfilled one from a live one without parsing it.
  void keep() {
    for (TimedMessage& message : subscriber_->take()) {
      const std::string* ts_start = message.header("ts_start");
      if (!keep_backfilled_ && ts_start != nullptr && std::stoll(*ts_start) < live_start_) continue;
      received_.push_back(std::move(message));
    }
  }

  const bool keep_backfilled_;
  TestBroker broker_;
  std::unique_ptr<TimedSubscriber> subscriber_;
  EsmondArchive archive_;
  int64_t lag_ms_ = 0;
  std::unique_ptr<Workspace> workspace_;
  std::optional<gapless::test::Process> daemon_;
  int64_t live_start_ = 0, backfill_from_ = 0, live_only_from_ = 0, backfill_started_ = 0;
  double backfill_seconds_ = 0;
  int64_t peak_backlog_ = 0;  // messages waiting in front of the sender while the backfill ran
  std::vector<TimedMessage> received_;
  std::string daemon_log_;
};

}  // namespace

TEST_CASE("live data keeps priority while a backfill of 6 million datapoints drains beside the daemon",
          "[live-priority]") {
  // Three weeks of 200 series, 100 datapoints per message (gapless's default).
  LiveScenario scenario(21 * 24, 100, true);
  INFO("the archive's clock is " << scenario.lag_ms() << " ms behind the wall clock");
  REQUIRE(std::abs(scenario.lag_ms()) < 100);
  scenario.start_daemon();
  scenario.backfill();
  scenario.drain_and_stop();
  const Tally tally = scenario.tally();

  // Every datapoint of the window arrived once, with the archive's value.
  int64_t window_points = 0, missing = 0, repeated = 0, changed = 0;
  for (const std::string& key : scenario.archive().metadata_keys())
    for (const json& point :
         scenario.archive().points(key, kEventType, "base", 0, scenario.backfill_from(), scenario.live_start() - 1)) {
      ++window_points;
      const auto [copies, value] = tally.window_point(key, point.at("ts").get<int64_t>());
      if (copies == 0) ++missing;
      if (copies > 1) ++repeated;
      if (copies > 0 && value != std::hash<std::string>{}(point.at("val").dump())) ++changed;
    }

  // Live datapoints: visible from the backfill's start until its window had
  // arrived at the subscriber.
  const int64_t drained_ms = tally.last_window_arrival_ms();
  const std::vector<double> live = scenario.live_delays(tally, scenario.backfill_started(), drained_ms / 1000);
  const std::vector<double> alone = scenario.live_delays_alone(tally);
  // Printed on success too: the durations and delays the report quotes.
  WARN("backfill of " << window_points << " datapoints exited 0 after " << scenario.backfill_seconds()
                      << " s; its window was received after "
                      << static_cast<double>(drained_ms) / 1000.0 - static_cast<double>(scenario.backfill_started())
                      << " s; live delay during it: " << delay_summary(live)
                      << "; with the daemon alone: " << delay_summary(alone) << "; longest poll "
                      << longest_poll_ms(scenario.daemon_log()) << " ms; peak backlog " << scenario.peak_backlog()
                      << " messages");

  // The scale the issue means (about 4 % of runs fail and write no loss rate).
  CHECK(window_points > int64_t{kSeries} * 21 * 86400 / kCadence * 9 / 10);
  CHECK(missing == 0);
  CHECK(repeated == 0);
  CHECK(changed == 0);
  CHECK(tally.outside() == 0);
  CHECK(tally.unexpected_destinations().empty());

  REQUIRE(live.size() >= 50);
  CHECK(percentile(live, 0.99) < kLiveDelayP99LimitSeconds);

  // The backfill's writes never made the daemon's journal calls fail.
  const std::vector<std::string> trouble = journal_trouble(scenario.daemon_log());
  INFO((trouble.empty() ? std::string() : trouble.front()));
  CHECK(trouble.empty());
}

TEST_CASE("live data overtakes a backlog of backfilled messages when the broker returns", "[live-priority-outage]") {
  // One datapoint per message: 36 hours of 200 series make some 410 k
  // messages, far more than the sender delivers within the bound.
  LiveScenario scenario(36, 1, false);
  INFO("the archive's clock is " << scenario.lag_ms() << " ms behind the wall clock");
  REQUIRE(std::abs(scenario.lag_ms()) < 100);
  scenario.start_daemon();
  scenario.broker().stop();
  scenario.backfill();
  const int64_t backlog = pending_messages(scenario.journal_path());
  scenario.broker().start();
  // Live datapoints visible from now on are polled after the subscription exists.
  scenario.resubscribe();
  const int64_t returned_ms = wall_ms();
  const int64_t measured_from = scenario.archive().now() + 1;
  const int64_t drained_ms = scenario.drain_and_stop();
  const Tally tally = scenario.tally();
  const std::vector<double> live = scenario.live_delays(tally, measured_from, drained_ms / 1000);
  const double drain_seconds = static_cast<double>(drained_ms - returned_ms) / 1000.0;
  WARN("backlog of " << backlog << " messages when the broker returned, delivered in " << drain_seconds
                     << " s; live delay meanwhile: " << delay_summary(live));

  // The backlog took longer to deliver than the bound allows a live
  // datapoint: claimed in journal order, live data would have missed it.
  REQUIRE(drain_seconds > kLiveDelayP99LimitSeconds * 1.5);
  REQUIRE(live.size() >= 50);
  CHECK(percentile(live, 0.99) < kLiveDelayP99LimitSeconds);
  const std::vector<std::string> trouble = journal_trouble(scenario.daemon_log());
  INFO((trouble.empty() ? std::string() : trouble.front()));
  CHECK(trouble.empty());
}
