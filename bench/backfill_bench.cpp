// backfill-bench: how fast does `gapless-replay backfill` bring a 3-week
// window of an archive to the broker while the daemon keeps collecting live
// data from that archive, how does that compare with the collector's own
// ingest rate in the same run, and how late does live data arrive meanwhile?
// (issue 4: "Live data keeps priority" and its benchmark)
//
//   backfill-bench [--series N] [--days D] [--ingest-hours H] [--poll-interval S]
//                  [--live-only-seconds S] [--datapoints-per-message M] [--page-size P]
//                  [--dir DIR] [--keep]
//
// Set-up: one local ActiveMQ (tests/harness TestBroker), one esmond test
// archive in this process (tests/esmond_archive) with N latency series that
// carry one event type, packet-loss-rate, at a 1-minute cadence, its clock
// running at real time and aligned to the wall clock, and one live
// non-durable STOMP subscriber (harness TimedSubscriber) on
// /topic/perfsonar.raw.> that stamps each message's arrival.
//
// Phase 1, the collector's ingest rate: `gapless run --until-drained` on a
// fresh journal whose archive has `lookback` H hours: its one poll reads the
// last H hours of every series (a first contact). The rate is the daemon's own
// count and timing of that poll (its log line "collector: polled ...
// points_journaled=P duration_ms=D": archive -> journal, P / D), taken while
// its sender delivers beside it, as in steady operation.
//
// Phase 2, backfill beside the live daemon, on another fresh journal:
// `gapless run` polls every S seconds (lookback 10 minutes, overlap 5
// minutes). Once its first poll is done it runs alone for a while (live
// delays without a backfill, for comparison), then
// `gapless-replay backfill --from T0-D days --to T0` runs beside it, where T0
// is the moment the daemon started. Measured:
//   - the backfill's rate to the broker: datapoints the backfill journaled
//     (its own summary line) / time from its spawn until the subscriber has
//     received every datapoint the archive holds in the window (each counted
//     once; duplicates reported);
//   - the delay of every live datapoint visible from the backfill's spawn
//     until that moment: arrival at the subscriber minus the moment the
//     archive made it visible. The test archive serves a run at ts once its
//     clock reaches ts (store.cpp, last_visible: ts <= now - ingest_delay,
//     ingest_delay 0); the clock runs at real time from a `now` set at a
//     whole wall-clock second, and its lag behind the wall clock is measured
//     at the start and at the end (the drift is printed). So visible = ts +
//     lag.
// The ratio backfill / ingest and the verdicts against the targets (ratio >=
// 0.5, p99 live delay < 10 s) are printed, with what explains a miss: the
// daemon's poll durations (from its log), how long a writer waits for the
// journal's write lock (a probe connection, every 500 ms), the backlog in
// front of the sender, the WAL's size and the load average.
//
// Exit status: 0 when the measurements succeeded (whatever the verdicts), 1
// when a run failed (a process failed, data missing or repeated), 2 for bad
// usage.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "core/error.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/timed_subscriber.hpp"

namespace {

namespace fs = std::filesystem;
using gapless::bench::Clock;
using gapless::bench::Child;
using gapless::bench::ChildResult;
using gapless::bench::describe_status;
using gapless::bench::parse_integer;
using gapless::bench::UsageError;
using gapless::bench::file_system_of;
using gapless::bench::load_average;
using gapless::bench::machine_description;
using gapless::bench::seconds_between;
using gapless::bench::tail_of;
using gapless::bench::timeval_seconds;
using gapless::bench::utc_now_text;
using WallClock = std::chrono::system_clock;
using std::chrono::milliseconds;
using gapless::Error;
using gapless::test::EsmondArchive;
using gapless::test::delay_summary;
using gapless::test::percentile;
using nlohmann::json;

const char* const kEventType = "packet-loss-rate";
const char* const kDestination = "/topic/perfsonar.raw.packet-loss-rate";
constexpr int64_t kCadence = 60;
constexpr double kRatioTarget = 0.5;            // backfill rate / ingest rate
constexpr double kLiveDelayP99TargetSeconds = 10;
// Below this, the 99th percentile is the largest sample or close to it.
constexpr int64_t kLiveSamplesForVerdict = 50;
// The live daemon's first contact and late-data re-read (phase 2): short, so
// that what it journals at live priority is live data, not history.
const char* const kLiveLookback = "10m";
const char* const kLiveOverlap = "5m";

// ---- options --------------------------------------------------------------

struct Options {
  int64_t series = 200;
  int64_t days = 21;
  int64_t ingest_hours = 168;  // a week: about 1.9 M datapoints, several seconds even on a quiet machine
  int64_t poll_interval = 2;
  int64_t live_only_seconds = 30;
  int64_t datapoints_per_message = 100;  // gapless's default, as OSG published
  int64_t page_size = 1000;              // gapless's default
  fs::path dir;  // empty: a fresh directory under the system's temporary directory
  bool keep = false;
};

const char* const kUsage =
    "usage: backfill-bench [--series N] [--days D] [--ingest-hours H] [--poll-interval S]\n"
    "                      [--live-only-seconds S] [--datapoints-per-message M] [--page-size P]\n"
    "                      [--dir DIR] [--keep]\n"
    "  --series N             series (1-minute cadence) in the archive (default 200)\n"
    "  --days D               backfill window, days before the daemon started (default 21)\n"
    "  --ingest-hours H       phase 1: hours the collector reads on first contact (default 168)\n"
    "  --poll-interval S      the live daemon's poll_interval, seconds (default 2)\n"
    "  --live-only-seconds S  the live daemon alone before the backfill starts (default 30)\n"
    "  --datapoints-per-message M  the archive's datapoints_per_message (default 100, gapless's\n"
    "                         default); 1 makes every datapoint a message of its own, so that the\n"
    "                         sender, not the backfill's reading, is the bottleneck\n"
    "  --page-size P          the archive's page_size (default 1000, gapless's default): the\n"
    "                         datapoints of one journal transaction\n"
    "  --dir DIR              work directory for journals, configs and logs (default: a fresh\n"
    "                         temporary directory, removed at the end)\n"
    "  --keep                 keep the work directory\n"
    "A quick look (under a minute: the rates, and live delays usually too few for a p99 verdict):\n"
    "  --days 7 --ingest-hours 12 --live-only-seconds 10\n"
    "Environment: GAPLESS_BIN (the gapless binary; default: this build tree's src/gapless),\n"
    "GAPLESS_REPLAY_BIN (default: tools/replay/gapless-replay beside it),\n"
    "GAPLESS_BROKER_JAVA_OPTS (extra JVM options for the broker).\n";

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string option = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (option == "--help" || option == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (option == "--keep") {
      options.keep = true;
      continue;
    } else if (option == "--series") {
      options.series = parse_integer(option, value, 1);
    } else if (option == "--days") {
      options.days = parse_integer(option, value, 1);
    } else if (option == "--ingest-hours") {
      options.ingest_hours = parse_integer(option, value, 1);
    } else if (option == "--poll-interval") {
      options.poll_interval = parse_integer(option, value, 1);
    } else if (option == "--live-only-seconds") {
      options.live_only_seconds = parse_integer(option, value, 0);
    } else if (option == "--datapoints-per-message") {
      options.datapoints_per_message = parse_integer(option, value, 1);
    } else if (option == "--page-size") {
      options.page_size = parse_integer(option, value, 1);
    } else if (option == "--dir") {
      if (value == nullptr) throw UsageError("--dir needs a value");
      options.dir = value;
    } else {
      throw UsageError("unknown option " + option);
    }
    ++i;  // the option's value
  }
  return options;
}

// Every option spelled out, so that the line reproduces this run even when
// the defaults change.
std::string reproduce_command(const char* argv0, const Options& options) {
  std::string command;
  for (const char* variable : {"GAPLESS_BIN", "GAPLESS_REPLAY_BIN", "GAPLESS_BROKER_JAVA_OPTS"})
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0')
      command += std::string(variable) + "='" + value + "' ";
  command += argv0;
  command += " --series " + std::to_string(options.series);
  command += " --days " + std::to_string(options.days);
  command += " --ingest-hours " + std::to_string(options.ingest_hours);
  command += " --poll-interval " + std::to_string(options.poll_interval);
  command += " --live-only-seconds " + std::to_string(options.live_only_seconds);
  command += " --datapoints-per-message " + std::to_string(options.datapoints_per_message);
  command += " --page-size " + std::to_string(options.page_size);
  if (!options.dir.empty()) command += " --dir " + options.dir.string();
  if (options.keep) command += " --keep";
  return command;
}

// ---- small helpers ----------------------------------------------------------

int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(WallClock::now().time_since_epoch()).count();
}

int64_t ms_of(WallClock::time_point time) {
  return std::chrono::duration_cast<milliseconds>(time.time_since_epoch()).count();
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string modification_time(const fs::path& file) {
  struct stat status {};
  if (::stat(file.c_str(), &status) != 0) return "(missing)";
  std::tm parts{};
  gmtime_r(&status.st_mtime, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &parts);
  return text;
}

// ---- the archive's clock ----------------------------------------------------

// The next whole wall-clock second, once it has come: an archive created at
// that moment with `now` = that second runs in step with the wall clock.
int64_t wait_for_whole_second() {
  const int64_t now = wall_ms();
  std::this_thread::sleep_for(milliseconds(1000 - now % 1000));
  return (now / 1000) + 1;
}

// How many milliseconds the archive's clock is behind the wall clock: the
// wall time at which its whole-second `now` ticks over, minus that second.
int64_t archive_lag_ms(const EsmondArchive& archive) {
  const int64_t before = archive.now();
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (archive.now() == before && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  return wall_ms() - (before + 1) * 1000;
}

// ---- child processes ----------------------------------------------------------

fs::path replay_binary() {
  if (const char* path = std::getenv("GAPLESS_REPLAY_BIN"); path != nullptr && *path != '\0') return path;
  return gapless::test::gapless_binary().parent_path().parent_path() / "tools" / "replay" / "gapless-replay";
}

// ---- gapless's configuration and log ----------------------------------------

void write_config(const fs::path& config, const fs::path& journal, const std::string& broker_uri,
                  const std::string& archive_url, int64_t poll_interval, const std::string& lookback,
                  const std::string& overlap, const Options& options) {
  std::ofstream out(config);
  out << "# written by backfill-bench\n"
      << "log_level = \"info\"\n"
      << "[journal]\npath = \"" << journal.string() << "\"\n"
      << "[[sink]]\nname = \"bench\"\nbrokers = [\"" << broker_uri << "\"]\n"
      << "login = \"collector\"\npasscode = \"collector-secret\"\n"
      << "[[archive]]\nname = \"bench\"\nurl = \"" << archive_url << "\"\n"
      << "poll_interval = \"" << poll_interval << "s\"\n"
      << "lookback = \"" << lookback << "\"\noverlap = \"" << overlap << "\"\n"
      << "summaries = false\nevent_types = [\"" << kEventType << "\"]\n"
      << "datapoints_per_message = " << options.datapoints_per_message << "\npage_size = " << options.page_size
      << "\n";
  if (!out) throw Error("cannot write " + config.string());
}

// "2026-11-26T10:00:00.123Z" (gapless's log timestamps) -> unix ms.
std::optional<int64_t> log_time_ms(const std::string& line) {
  std::tm parts{};
  int milliseconds_part = 0;
  if (std::sscanf(line.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &parts.tm_year, &parts.tm_mon, &parts.tm_mday,
                  &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &milliseconds_part) != 7)
    return std::nullopt;
  parts.tm_year -= 1900;
  parts.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&parts)) * 1000 + milliseconds_part;
}

int64_t field_of(const std::string& line, const std::string& name) {
  const size_t at = line.find(" " + name + "=");
  if (at == std::string::npos) return -1;
  return std::atoll(line.c_str() + at + name.size() + 2);
}

// One "collector: polled ..." line of the daemon's log.
struct Poll {
  int64_t ended_ms = 0;
  int64_t duration_ms = 0;
  int64_t points_journaled = 0;
  int64_t series_read = 0;
};

std::vector<Poll> polls_in(const fs::path& log) {
  std::vector<Poll> polls;
  std::istringstream in(read_file(log));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("collector: polled") == std::string::npos) continue;
    const std::optional<int64_t> at = log_time_ms(line);
    if (!at) continue;
    polls.push_back({*at, field_of(line, "duration_ms"), field_of(line, "points_journaled"),
                     field_of(line, "series_read")});
  }
  return polls;
}

// Lines that say the journal was busy or locked, or that a journal call failed.
std::vector<std::string> journal_trouble_in(const fs::path& log) {
  std::vector<std::string> found;
  std::istringstream in(read_file(log));
  std::string line;
  while (std::getline(in, line))
    if (line.find("SQLITE_BUSY") != std::string::npos || line.find("SQLITE_LOCKED") != std::string::npos ||
        line.find("database is locked") != std::string::npos ||
        line.find("locked for more than") != std::string::npos || line.find("journal failed") != std::string::npos)
      found.push_back(line);
  return found;
}

// The backlog in front of the sender, read beside the running processes:
// pending messages in all (the journal's counters, no scan) and of them
// live ones (an index range over the few live rows), so that this reader
// holds its snapshot for as short a time as possible (a long reader would
// hold back the WAL's checkpoints and be part of what is measured).
struct Backlog {
  int64_t pending = 0;
  int64_t live = 0;
};

Backlog backlog_of(SQLite::Database& db) {
  Backlog backlog;
  SQLite::Statement all(db, "SELECT coalesce(sum(count), 0) FROM delivery_count WHERE state = 0");
  if (all.executeStep()) backlog.pending = all.getColumn(0).getInt64();
  SQLite::Statement live(db, "SELECT count(*) FROM delivery WHERE state = 0 AND priority = 0");
  if (live.executeStep()) backlog.live = live.getColumn(0).getInt64();
  return backlog;
}

// How long a writer waits for the journal's write lock: every 500 ms, its
// own connection with the journal's busy timeout (10 s, SQLite's default
// busy handler, as Journal::open sets it) runs BEGIN IMMEDIATE, then ROLLBACK
// at once. Each of the collector's page transactions (and the sender's marks)
// waits like this before it can write; the probe holds the lock for
// microseconds and writes nothing.
class LockProbe {
 public:
  struct Sample {
    int64_t at_ms;   // wall time of the attempt
    double wait_ms;  // until the lock was granted
  };

  explicit LockProbe(const fs::path& journal) : journal_(journal) {
    thread_ = std::thread([this] { run(); });
  }
  ~LockProbe() {
    stop_ = true;
    thread_.join();
  }
  LockProbe(const LockProbe&) = delete;
  LockProbe& operator=(const LockProbe&) = delete;

  std::vector<double> waits_between(int64_t from_ms, int64_t to_ms) const {
    std::lock_guard lock(mutex_);
    std::vector<double> waits;
    for (const Sample& sample : samples_)
      if (sample.at_ms >= from_ms && sample.at_ms <= to_ms) waits.push_back(sample.wait_ms);
    return waits;
  }
  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void run() {
    try {
      SQLite::Database db(journal_.string(), SQLite::OPEN_READWRITE, 10'000);
      while (!stop_) {
        const int64_t at_ms = wall_ms();
        const auto before = Clock::now();
        db.exec("BEGIN IMMEDIATE");
        const double wait_ms = std::chrono::duration<double, std::milli>(Clock::now() - before).count();
        db.exec("ROLLBACK");
        {
          std::lock_guard lock(mutex_);
          samples_.push_back({at_ms, wait_ms});
        }
        std::this_thread::sleep_for(milliseconds(500));
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      failure_ = e.what();
    }
  }

  fs::path journal_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Sample> samples_;
  std::string failure_;
};

std::string wait_summary(const std::vector<double>& waits) {
  if (waits.empty()) return "no samples";
  char text[200];
  std::snprintf(text, sizeof text, "%zu samples: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms", waits.size(),
                percentile(waits, 0.5), percentile(waits, 0.9), percentile(waits, 0.99),
                *std::max_element(waits.begin(), waits.end()));
  return text;
}

int64_t file_size_or_zero(const fs::path& file) {
  std::error_code error;
  const auto size = fs::file_size(file, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// ---- what the subscriber received ---------------------------------------------

// Per series: how often each datapoint of the backfill window arrived (one
// byte per cadence slot, so 6 M datapoints cost 6 MB), and when each live
// datapoint (ts >= the window's end) first arrived.
class Reception {
 public:
  Reception(const EsmondArchive& archive, int64_t window_from, int64_t window_to)
      : window_from_(window_from), window_to_(window_to) {
    for (const std::string& key : archive.metadata_keys()) {
      index_.emplace(key, index_.size());
      slots_.emplace_back(static_cast<size_t>((window_to - window_from) / kCadence + 1), uint8_t{0});
    }
  }

  void absorb(std::vector<gapless::test::TimedMessage> messages) {
    for (auto& message : messages) {
      if (message.destination != kDestination) {
        ++other_messages_;
        continue;
      }
      const json body = json::parse(message.body);
      const auto series = index_.find(body.at("meta").at("org_metadata_key").get<std::string>());
      if (series == index_.end()) {
        ++other_messages_;
        continue;
      }
      const int64_t arrived_ms = ms_of(message.arrived);
      for (const auto& [text, value] : body.at("datapoints").items()) {
        const int64_t ts = std::stoll(text);
        if (ts >= window_to_) {
          live_.try_emplace(key_of(series->second, ts), arrived_ms);
          continue;
        }
        if (ts < window_from_) {
          ++outside_;
          continue;
        }
        uint8_t& copies = slots_[series->second][static_cast<size_t>((ts - window_from_) / kCadence)];
        if (copies == 0) {
          ++window_distinct_;
          last_window_arrival_ms_ = std::max(last_window_arrival_ms_, arrived_ms);
        } else {
          ++window_repeated_;
        }
        if (copies < 255) ++copies;
      }
    }
  }

  int64_t window_distinct() const { return window_distinct_; }
  int64_t window_repeated() const { return window_repeated_; }
  int64_t last_window_arrival_ms() const { return last_window_arrival_ms_; }
  int64_t outside() const { return outside_; }
  int64_t other_messages() const { return other_messages_; }
  std::optional<int64_t> live_arrival_ms(const std::string& key, int64_t ts) const {
    const auto it = live_.find(key_of(index_.at(key), ts));
    if (it == live_.end()) return std::nullopt;
    return it->second;
  }

 private:
  static uint64_t key_of(size_t series, int64_t ts) {
    return (static_cast<uint64_t>(series) << 40) | static_cast<uint64_t>(ts);
  }

  int64_t window_from_, window_to_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::vector<uint8_t>> slots_;
  std::unordered_map<uint64_t, int64_t> live_;
  int64_t window_distinct_ = 0;
  int64_t window_repeated_ = 0;
  int64_t last_window_arrival_ms_ = 0;
  int64_t outside_ = 0;
  int64_t other_messages_ = 0;
};

// Datapoints the archive holds with from <= ts < to, all series.
int64_t served_count(const EsmondArchive& archive, int64_t from, int64_t to) {
  int64_t count = 0;
  for (const std::string& key : archive.metadata_keys())
    count += static_cast<int64_t>(archive.points(key, kEventType, "base", 0, from, to - 1).size());
  return count;
}

// The delay of every datapoint the archive made visible with from <= ts <=
// to: first arrival - (ts + lag). One that has not arrived counts as arriving now.
std::vector<double> live_delays(const EsmondArchive& archive, const Reception& reception, int64_t from, int64_t to,
                                int64_t lag_ms, int64_t* missing) {
  std::vector<double> delays;
  const int64_t now_ms = wall_ms();
  for (const std::string& key : archive.metadata_keys())
    for (const json& point : archive.points(key, kEventType, "base", 0, from, to)) {
      const int64_t ts = point.at("ts").get<int64_t>();
      const std::optional<int64_t> arrived = reception.live_arrival_ms(key, ts);
      if (!arrived) ++*missing;
      delays.push_back(static_cast<double>(arrived.value_or(now_ms) - ts * 1000 - lag_ms) / 1000.0);
    }
  return delays;
}

struct PollStats {
  size_t count = 0;
  double median_ms = 0, p90_ms = 0, max_ms = 0;
};

PollStats poll_stats(const std::vector<Poll>& polls, int64_t from_ms, int64_t to_ms) {
  std::vector<double> durations;
  for (const Poll& poll : polls)
    if (poll.ended_ms >= from_ms && poll.ended_ms <= to_ms) durations.push_back(static_cast<double>(poll.duration_ms));
  if (durations.empty()) return {};
  return {durations.size(), percentile(durations, 0.5), percentile(durations, 0.9),
          *std::max_element(durations.begin(), durations.end())};
}

// ---- the benchmark ---------------------------------------------------------

int run_bench(const Options& options, const char* argv0) {
  std::printf("%s\n", reproduce_command(argv0, options).c_str());
  std::printf("run of %s on %s\n", utc_now_text().c_str(), machine_description().c_str());
  const std::string load_at_start = load_average();
  std::printf("load average at the start: %s\n", load_at_start.c_str());

  const bool own_dir = options.dir.empty();
  const fs::path dir = own_dir ? fs::temp_directory_path() / ("backfill-bench-" + std::to_string(::getpid()))
                               : options.dir;
  fs::create_directories(dir);
  std::printf("work directory %s (%s)\n", dir.c_str(), file_system_of(dir).c_str());
  struct Cleanup {
    fs::path dir;
    bool remove;
    ~Cleanup() {
      std::error_code ignored;
      if (remove) fs::remove_all(dir, ignored);
    }
  } cleanup{dir, own_dir && !options.keep};

  gapless::test::TestBroker broker;
  std::printf("broker ready on %s (start %.1f s)\n", broker.stomp_uri().c_str(),
              static_cast<double>(broker.last_start_duration().count()) / 1000.0);
  gapless::test::TimedSubscriber subscriber(broker.stomp_uri());

  EsmondArchive::Options archive_options;
  archive_options.series = static_cast<int>(options.series);
  archive_options.kinds = {gapless::test::esmond::SeriesKind::latency};
  archive_options.event_types = {kEventType};
  archive_options.cadence = kCadence;
  archive_options.clock_speed = 1;  // real time
  archive_options.now = wait_for_whole_second();
  archive_options.start =
      *archive_options.now - std::max(options.days * 86400, options.ingest_hours * 3600) - 86400;
  EsmondArchive archive(archive_options);
  archive.start();
  const int64_t lag_at_start_ms = archive_lag_ms(archive);
  std::printf("archive %s: %lld series x %s every %lld s, clock at real time, %lld ms behind the wall clock\n",
              archive.base_url().c_str(), static_cast<long long>(options.series), kEventType,
              static_cast<long long>(kCadence), static_cast<long long>(lag_at_start_ms));

  const std::string gapless_bin = gapless::test::gapless_binary().string();
  const std::string replay_bin = replay_binary().string();
  // Which build was measured: the code changes often, and a rate belongs to one build.
  for (const std::string& binary : {gapless_bin, replay_bin})
    std::printf("%s, built %s\n", binary.c_str(), modification_time(binary).c_str());
  bool failed = false;

  // ---- phase 1: the collector's ingest rate ----
  const fs::path ingest_config = dir / "ingest.toml";
  const fs::path ingest_log = dir / "ingest.log";
  write_config(ingest_config, dir / "ingest.db", broker.stomp_uri(), archive.base_url(), 3600,
               std::to_string(options.ingest_hours) + "h", "1h", options);
  std::printf("\nphase 1: gapless run --until-drained, first contact with a lookback of %lld h\n",
              static_cast<long long>(options.ingest_hours));
  Child ingest({gapless_bin, "run", "--until-drained", "--config", ingest_config.string()}, ingest_log);
  const std::optional<ChildResult> ingest_result = ingest.wait(milliseconds(3'600'000));
  if (!ingest_result || !ingest_result->ok()) {
    std::printf("FAILED: gapless run --until-drained: %s\n%s",
                ingest_result ? describe_status(ingest_result->wait_status).c_str() : "still running after 1 h",
                tail_of(ingest_log, 30).c_str());
    return 1;
  }
  const std::vector<Poll> ingest_polls = polls_in(ingest_log);
  if (ingest_polls.size() != 1 || ingest_polls.front().duration_ms <= 0) {
    std::printf("FAILED: expected one \"collector: polled\" line in %s\n", ingest_log.c_str());
    return 1;
  }
  const Poll& ingest_poll = ingest_polls.front();
  const double ingest_rate =
      static_cast<double>(ingest_poll.points_journaled) / (static_cast<double>(ingest_poll.duration_ms) / 1000.0);
  const double ingest_run_seconds = seconds_between(ingest.started(), ingest_result->ended);
  std::printf("  poll: %lld datapoints journaled in %.2f s: %.0f datapoints/s; whole run (spawn to exit, delivery "
              "included) %.2f s, CPU %.2f s%s\n",
              static_cast<long long>(ingest_poll.points_journaled),
              static_cast<double>(ingest_poll.duration_ms) / 1000.0, ingest_rate, ingest_run_seconds,
              ingest_result->cpu_seconds(),
              ingest_poll.duration_ms < 2000 ? " (a short poll: more --ingest-hours for a steadier rate)" : "");
  // What phase 1 delivered must not count in phase 2: let it arrive, then drop it.
  {
    size_t seen = subscriber.received();
    for (;;) {
      std::this_thread::sleep_for(milliseconds(2000));
      if (subscriber.received() == seen) break;
      seen = subscriber.received();
    }
    subscriber.take();
  }

  // ---- phase 2: backfill beside the live daemon ----
  const fs::path live_config = dir / "live.toml";
  const fs::path live_journal = dir / "live.db";
  const fs::path daemon_log = dir / "daemon.log";
  const fs::path backfill_log = dir / "backfill.log";
  write_config(live_config, live_journal, broker.stomp_uri(), archive.base_url(), options.poll_interval,
               kLiveLookback, kLiveOverlap, options);
  const int64_t live_start = archive.now();
  const int64_t window_from = live_start - options.days * 86400;
  std::printf("\nphase 2: gapless run (poll_interval %llds, lookback %s, overlap %s), then gapless-replay backfill "
              "--from %lld --to %lld (%lld days) beside it\n",
              static_cast<long long>(options.poll_interval), kLiveLookback, kLiveOverlap,
              static_cast<long long>(window_from), static_cast<long long>(live_start),
              static_cast<long long>(options.days));
  Reception reception(archive, window_from, live_start);
  Child daemon({gapless_bin, "run", "--config", live_config.string()}, daemon_log);
  const auto first_poll_deadline = Clock::now() + std::chrono::minutes(5);
  while (polls_in(daemon_log).empty()) {
    if (daemon.wait(milliseconds(100)) || Clock::now() > first_poll_deadline) {
      std::printf("FAILED: the daemon did not poll within 5 minutes\n%s", tail_of(daemon_log, 30).c_str());
      return 1;
    }
  }
  const int64_t live_only_from = archive.now() + 1;
  const int64_t live_only_from_ms = wall_ms();
  LockProbe lock_probe(live_journal);
  SQLite::Database watcher(live_journal.string(), SQLite::OPEN_READONLY);
  watcher.setBusyTimeout(10'000);
  std::printf("  daemon's first poll done; alone for %lld s\n", static_cast<long long>(options.live_only_seconds));
  std::this_thread::sleep_for(std::chrono::seconds(options.live_only_seconds));
  reception.absorb(subscriber.take());
  // Counted while nothing else runs, so that it is not part of the timings.
  std::printf("  counting the window's datapoints in the archive...\n");
  const int64_t window_expected = served_count(archive, window_from, live_start);
  std::printf("  window: %lld datapoints\n", static_cast<long long>(window_expected));

  const int64_t backfill_started = archive.now();
  const int64_t backfill_started_ms = wall_ms();
  const std::string load_at_backfill = load_average();
  Child backfill({replay_bin, "backfill", "--config", live_config.string(), "--from", std::to_string(window_from),
                  "--to", std::to_string(live_start)},
                 backfill_log);
  std::optional<ChildResult> backfill_result;
  int64_t peak_backlog = 0, peak_live_backlog = 0, peak_wal_bytes = 0;
  auto next_sample = Clock::now();
  auto next_report = Clock::now() + std::chrono::seconds(30);
  const auto drain_deadline = Clock::now() + std::chrono::hours(6);
  while (!backfill_result || reception.window_distinct() < window_expected) {
    if (!backfill_result) {
      backfill_result = backfill.wait(milliseconds(200));
      if (backfill_result && !backfill_result->ok()) {
        std::printf("FAILED: gapless-replay backfill: %s\n%s", describe_status(backfill_result->wait_status).c_str(),
                    tail_of(backfill_log, 30).c_str());
        return 1;
      }
    } else {
      std::this_thread::sleep_for(milliseconds(200));
    }
    reception.absorb(subscriber.take());
    if (Clock::now() >= next_sample) {
      next_sample += std::chrono::seconds(1);
      const Backlog backlog = backlog_of(watcher);
      peak_backlog = std::max(peak_backlog, backlog.pending - backlog.live);
      peak_live_backlog = std::max(peak_live_backlog, backlog.live);
      peak_wal_bytes = std::max(peak_wal_bytes, file_size_or_zero(live_journal.string() + "-wal"));
    }
    if (Clock::now() >= next_report) {
      next_report += std::chrono::seconds(30);
      std::printf("  %.0f s: %lld of %lld window datapoints received, load average %s\n",
                  static_cast<double>(wall_ms() - backfill_started_ms) / 1000.0,
                  static_cast<long long>(reception.window_distinct()), static_cast<long long>(window_expected),
                  load_average().c_str());
    }
    if (daemon.wait(milliseconds(0))) {
      std::printf("FAILED: the daemon ended during the backfill\n%s", tail_of(daemon_log, 30).c_str());
      return 1;
    }
    if (!subscriber.failure().empty() || Clock::now() > drain_deadline) {
      std::printf("FAILED: %lld of %lld window datapoints received; subscriber: %s\n",
                  static_cast<long long>(reception.window_distinct()), static_cast<long long>(window_expected),
                  subscriber.failure().c_str());
      return 1;
    }
  }
  const int64_t drained_ms = reception.last_window_arrival_ms();
  const std::string load_at_drain = load_average();

  // Live datapoints visible from the backfill's spawn until its window had
  // arrived; the last of them get time to arrive.
  const int64_t live_to = drained_ms / 1000;
  std::this_thread::sleep_for(std::chrono::seconds(static_cast<int64_t>(kLiveDelayP99TargetSeconds) +
                                                   options.poll_interval * 2));
  reception.absorb(subscriber.take());
  int64_t live_missing = 0, alone_missing = 0;
  const std::vector<double> during =
      live_delays(archive, reception, backfill_started, live_to, lag_at_start_ms, &live_missing);
  const std::vector<double> alone =
      live_delays(archive, reception, live_only_from, backfill_started - 1, lag_at_start_ms, &alone_missing);

  daemon.signal(SIGTERM);
  const std::optional<ChildResult> daemon_result = daemon.wait(milliseconds(60'000));
  const int64_t lag_at_end_ms = archive_lag_ms(archive);
  const std::vector<Poll> live_polls = polls_in(daemon_log);
  const PollStats polls_alone = poll_stats(live_polls, live_only_from_ms, backfill_started_ms);
  const PollStats polls_during = poll_stats(live_polls, backfill_started_ms, drained_ms);
  const std::vector<double> lock_alone = lock_probe.waits_between(live_only_from_ms, backfill_started_ms);
  const std::vector<double> lock_during = lock_probe.waits_between(backfill_started_ms, drained_ms);
  const std::vector<std::string> trouble = journal_trouble_in(daemon_log);
  const std::vector<std::string> backfill_trouble = journal_trouble_in(backfill_log);

  // The backfill's own summary: "backfill request N ...: S series, R datapoints read, J journaled (new), ..."
  int64_t backfill_journaled = -1, backfill_read = -1;
  {
    std::istringstream in(read_file(backfill_log));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("backfill request", 0) != 0) continue;
      const size_t read_at = line.find(" datapoints read, ");
      const size_t journaled_at = line.find(" journaled (new)");
      if (read_at == std::string::npos || journaled_at == std::string::npos) continue;
      backfill_read = std::atoll(line.c_str() + line.rfind(' ', read_at - 1) + 1);
      backfill_journaled = std::atoll(line.c_str() + read_at + std::strlen(" datapoints read, "));
    }
  }
  if (backfill_journaled < 0) {
    std::printf("FAILED: no summary line in %s\n%s", backfill_log.c_str(), tail_of(backfill_log, 30).c_str());
    return 1;
  }

  const double backfill_process_seconds = seconds_between(backfill.started(), backfill_result->ended);
  const double drain_seconds = static_cast<double>(drained_ms - backfill_started_ms) / 1000.0;
  const double backfill_rate = static_cast<double>(backfill_journaled) / drain_seconds;
  const double ratio = backfill_rate / ingest_rate;
  const double p99 = percentile(during, 0.99);

  std::printf("\nresults\n");
  std::printf("  collector ingest (phase 1): %.0f datapoints/s (%lld in %.2f s)\n", ingest_rate,
              static_cast<long long>(ingest_poll.points_journaled),
              static_cast<double>(ingest_poll.duration_ms) / 1000.0);
  std::printf("  backfill to the broker: %.0f datapoints/s (%lld journaled by the backfill, %lld read; spawn to the "
              "subscriber holding all %lld datapoints of the window: %.1f s)\n",
              backfill_rate, static_cast<long long>(backfill_journaled), static_cast<long long>(backfill_read),
              static_cast<long long>(window_expected), drain_seconds);
  std::printf("    backfill process: %.1f s (spawn to exit 0), CPU %.1f s (%.1f us/datapoint), journaling %.0f "
              "datapoints/s\n",
              backfill_process_seconds, backfill_result->cpu_seconds(),
              backfill_result->cpu_seconds() * 1e6 / static_cast<double>(std::max<int64_t>(backfill_journaled, 1)),
              static_cast<double>(backfill_journaled) / backfill_process_seconds);
  std::printf("    duplicates received in the window: %lld; datapoints outside it: %lld; other messages: %lld\n",
              static_cast<long long>(reception.window_repeated()), static_cast<long long>(reception.outside()),
              static_cast<long long>(reception.other_messages()));
  std::printf("    peak backlog in front of the sender: %lld backfill, %lld live messages pending; peak WAL %.1f MiB\n",
              static_cast<long long>(peak_backlog), static_cast<long long>(peak_live_backlog),
              static_cast<double>(peak_wal_bytes) / (1024.0 * 1024.0));
  std::printf("  ratio backfill / ingest: %.2f — %s (target >= %.1f)\n", ratio,
              ratio >= kRatioTarget ? "PASS" : "FAIL", kRatioTarget);
  std::printf("  live delay during the backfill: %s%s\n", delay_summary(during).c_str(),
              live_missing > 0 ? (" (" + std::to_string(live_missing) + " never arrived)").c_str() : "");
  if (static_cast<int64_t>(during.size()) < kLiveSamplesForVerdict)
    std::printf("  live p99: no verdict, %zu live samples are too few for a 99th percentile (the backfill was "
                "too short: more --days or --series)\n",
                during.size());
  else
    std::printf("  live p99 %.2f s — %s (target < %.0f s)\n", p99,
                p99 < kLiveDelayP99TargetSeconds ? "PASS" : "FAIL", kLiveDelayP99TargetSeconds);
  std::printf("  live delay with the daemon alone: %s%s\n", delay_summary(alone).c_str(),
              alone_missing > 0 ? (" (" + std::to_string(alone_missing) + " never arrived)").c_str() : "");
  std::printf("  daemon polls alone: %zu, median %.0f ms, p90 %.0f ms, max %.0f ms; during the backfill: %zu, median "
              "%.0f ms, p90 %.0f ms, max %.0f ms\n",
              polls_alone.count, polls_alone.median_ms, polls_alone.p90_ms, polls_alone.max_ms, polls_during.count,
              polls_during.median_ms, polls_during.p90_ms, polls_during.max_ms);
  std::printf("  journal write-lock wait (probe every 500 ms) alone: %s; during the backfill: %s%s\n",
              wait_summary(lock_alone).c_str(), wait_summary(lock_during).c_str(),
              lock_probe.failure().empty() ? "" : ("; probe failed: " + lock_probe.failure()).c_str());
  std::printf("  journal busy/locked/failed lines: daemon %zu, backfill %zu%s\n", trouble.size(),
              backfill_trouble.size(), trouble.empty() ? "" : ("; first: " + trouble.front()).c_str());
  std::printf("  daemon: %s after SIGTERM, CPU %.1f s\n",
              daemon_result ? describe_status(daemon_result->wait_status).c_str() : "still running after 60 s",
              daemon_result ? daemon_result->cpu_seconds() : 0.0);
  std::printf("  archive clock behind the wall clock: %lld ms at the start, %lld ms at the end\n",
              static_cast<long long>(lag_at_start_ms), static_cast<long long>(lag_at_end_ms));
  std::printf("  load average: %s at the start, %s when the backfill started, %s when it had drained, %s now\n",
              load_at_start.c_str(), load_at_backfill.c_str(), load_at_drain.c_str(), load_average().c_str());

  if (reception.window_repeated() > 0 || live_missing > 0 || !daemon_result || !daemon_result->ok()) failed = true;
  if (failed) std::printf("FAILED: see above (duplicates, live datapoints missing, or the daemon's exit)\n");
  if (!own_dir || options.keep) std::printf("logs and journals kept in %s\n", dir.c_str());
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also through a pipe
  spdlog::set_level(spdlog::level::warn);
  try {
    return run_bench(parse_options(argc, argv), argv[0]);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "backfill-bench: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "backfill-bench: %s\n", e.what());
    return 1;
  }
}
