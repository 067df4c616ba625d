// retention-bench: does the journal reach a plateau? Simulates months of
// collection on an accelerated clock (core/clock's simulated time): every
// series journaled the collector's way (record_collected with a message and
// its datapoint digests, coverage and cursor), delivered as it comes (claim,
// then mark delivered), and the daemon's pruning pass (daemon::prune_once:
// keep_delivered, esmond's retention for the digests, incremental vacuum)
// every simulated `--prune-every` seconds, on a thread and connection of its
// own, as the daemon runs it. Prints the journal's size each simulated month,
// and the claim/mark latency of the "sender" while a pass runs against while
// none does, with how long the pruning transactions held the write lock and
// how long the WAL checkpoints after them took. See bench/README.md.

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "daemon/pruner.hpp"
#include "journal/journal.hpp"

namespace gb = gapless::bench;
namespace journal = gapless::journal;

namespace {

constexpr int64_t kDay = 86400;

struct Options {
  int64_t series = 200;
  int64_t months = 13;  // of 30 days
  int64_t cadence = 60;  // seconds between a series' points
  int64_t poll = 3600;  // seconds of data per message (one read of a series)
  int64_t prune_every = 3600;
  int64_t keep_delivered_days = 7;
  std::filesystem::path dir;
};

int64_t file_size(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<int64_t>(info.st_size) : 0;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())))];
}

// A body the size of an OSG message of `points` points (docs/osg-format.md 2.2).
std::string body_of(int64_t series, int64_t from, int64_t points, int64_t cadence) {
  std::string body = "{\"meta\": {\"source\": \"10.0.0." + std::to_string(series % 250) +
                     "\", \"destination\": \"10.1.0.1\", \"event-type\": \"throughput\", \"metadata-key\": \"k" +
                     std::to_string(series) + "\"}, \"datapoints\": {";
  for (int64_t i = 0; i < points; ++i)
    body += (i ? ", \"" : "\"") + std::to_string(from + i * cadence) + "\": " + std::to_string(9.1e8 + i);
  return body + "}}";
}

int run(const Options& options) {
  const std::filesystem::path dir = gb::make_work_dir(options.dir, "retention-bench");
  const std::string path = (dir / "journal.db").string();
  std::filesystem::remove(path);
  std::cout << "retention-bench " << gb::utc_now_text() << "\n"
            << "machine: " << gb::machine_description() << "\nload: " << gb::load_average()
            << "\nfile system: " << gb::file_system_of(dir) << "\njournal: " << path << "\n"
            << options.series << " series x " << options.months << " months of 30 days, a point every "
            << options.cadence << " s, " << options.poll / options.cadence << " points per message, a pruning pass every "
            << options.prune_every << " s simulated, keep_delivered " << options.keep_delivered_days
            << " d, digests kept for esmond's retention (365 d for base throughput)\n\n";

  const int64_t start_s = 1'700'000'000;
  std::atomic<int64_t> now_s{start_s};
  gapless::set_simulated_now_ms(start_s * 1000);
  auto producer = journal::Journal::open(path, {"sink"});
  std::vector<journal::Series> series;
  for (int64_t s = 0; s < options.series; ++s)
    series.push_back(producer->register_series(
        {"https://ps" + std::to_string(s % 20) + ".example.org/esmond/perfsonar/archive/", "k" + std::to_string(s),
         "throughput", "", 0},
        "{}"));

  // The pruner: a pass each time it is asked, on its own connection.
  std::mutex mutex;
  std::condition_variable asked;
  bool pass_due = false, finished = false;
  std::atomic<bool> pruning{false};
  int64_t passes = 0, pruned_messages = 0, pruned_digests = 0, transactions = 0, checkpoints = 0;
  std::vector<double> pass_write_lock, pass_checkpoint, pass_lock_wait;  // each pass's longest, ms
  double longest_messages_ms = 0, longest_digests_ms = 0, longest_pages_ms = 0;  // write lock held, by step
  std::thread pruner([&] {
    auto journal = journal::Journal::open(path, {}, false);
    for (;;) {
      {
        std::unique_lock lock(mutex);
        asked.wait(lock, [&] { return pass_due || finished; });
        if (finished && !pass_due) return;
        pass_due = false;
      }
      pruning = true;
      const auto pass = gapless::daemon::prune_once(
          *journal, std::chrono::hours(24 * options.keep_delivered_days), now_s.load() * 1000);
      pruning = false;
      std::lock_guard lock(mutex);
      ++passes;
      transactions += pass.transactions();
      checkpoints += pass.messages.checkpoints + pass.digests.checkpoints + pass.pages.checkpoints;
      pass_write_lock.push_back(static_cast<double>(pass.longest_write_lock_us()) / 1000.0);
      longest_messages_ms = std::max(longest_messages_ms, pass.messages.longest_write_lock_us / 1000.0);
      longest_digests_ms = std::max(longest_digests_ms, pass.digests.longest_write_lock_us / 1000.0);
      longest_pages_ms = std::max(longest_pages_ms, pass.pages.longest_write_lock_us / 1000.0);
      pass_checkpoint.push_back(static_cast<double>(pass.longest_checkpoint_us()) / 1000.0);
      pass_lock_wait.push_back(static_cast<double>(std::max({pass.messages.longest_lock_wait_us,
                                                             pass.digests.longest_lock_wait_us,
                                                             pass.pages.longest_lock_wait_us})) /
                               1000.0);
      pruned_messages += pass.messages.messages;
      pruned_digests += pass.digests.datapoints;
    }
  });

  std::vector<double> latency_pruning, latency_idle;  // claim + mark, ms
  const int64_t points = options.poll / options.cadence;
  const int64_t end_s = start_s + options.months * 30 * kDay;
  int64_t next_prune = start_s + options.prune_every, next_report = start_s + 30 * kDay, month = 0;
  gb::Stopwatch total;
  std::printf("%5s %14s %14s %12s %12s %10s %8s\n", "month", "file bytes", "in use bytes", "messages", "digests",
              "per series", "run s");
  for (int64_t t = start_s; t < end_s; t += options.poll) {
    // The read of each series that the archive served in [t, t + poll).
    now_s = t + options.poll;
    gapless::set_simulated_now_ms(now_s.load() * 1000);
    for (const journal::Series& s : series) {
      journal::Collected read;
      read.series_id = s.id;
      journal::NewMessage message;
      message.gapless_id = std::to_string(s.id) + "-" + std::to_string(t);
      message.destination = "/topic/perfsonar.raw.throughput";
      message.body = body_of(s.id, t, points, options.cadence);
      read.messages.push_back(std::move(message));
      for (int64_t i = 0; i < points; ++i) {
        char digest[40];
        std::snprintf(digest, sizeof digest, "%016llx%016llx", static_cast<unsigned long long>(s.id),
                      static_cast<unsigned long long>(t + i * options.cadence));
        read.datapoints.push_back({t + i * options.cadence, digest, 0});
      }
      read.read_from = t;
      read.read_to = t + options.poll;
      read.points_read = points;
      read.cursor_ts = t + options.poll;
      producer->record_collected(read);
    }
    // Delivered as they come: the sender's claim and mark, timed.
    for (;;) {
      const bool during_pass = pruning.load();
      const gb::Clock::time_point began = gb::Clock::now();
      const auto claimed = producer->claim("sink", 100, {});
      if (claimed.empty()) break;
      std::vector<int64_t> ids;
      for (const auto& m : claimed) ids.push_back(m.id);
      producer->mark_delivered("sink", ids);
      const double ms = gb::seconds_between(began, gb::Clock::now()) * 1000;
      (during_pass ? latency_pruning : latency_idle).push_back(ms);
    }
    if (now_s >= next_prune) {
      next_prune += options.prune_every;
      std::lock_guard lock(mutex);
      pass_due = true;
      asked.notify_one();
    }
    if (now_s >= next_report || t + options.poll >= end_s) {
      next_report += 30 * kDay;
      ++month;
      const int64_t in_use = producer->bytes_in_use();
      const int64_t messages = SQLite::Database(path).execAndGet("SELECT count(*) FROM message").getInt64();
      const int64_t digests = SQLite::Database(path).execAndGet("SELECT count(*) FROM datapoint").getInt64();
      std::printf("%5lld %14lld %14lld %12lld %12lld %10lld %8.0f\n", static_cast<long long>(month),
                  static_cast<long long>(file_size(path)), static_cast<long long>(in_use),
                  static_cast<long long>(messages), static_cast<long long>(digests),
                  static_cast<long long>(file_size(path) / options.series), total.seconds());
      std::fflush(stdout);
    }
  }
  {
    std::lock_guard lock(mutex);
    finished = true;
    asked.notify_one();
  }
  pruner.join();
  gapless::set_simulated_now_ms(std::nullopt);
  std::printf("\npruning passes %lld: messages pruned %lld, digests pruned %lld, in %lld transactions\n",
              static_cast<long long>(passes), static_cast<long long>(pruned_messages),
              static_cast<long long>(pruned_digests), static_cast<long long>(transactions));
  // Each pass's longest, over the passes: the lock held (BEGIN IMMEDIATE's
  // return to COMMIT's), the wait for it, and the checkpoints after a
  // transaction, which hold no write lock.
  const auto print_longest = [](const char* what, const std::vector<double>& per_pass) {
    std::printf("  %-44s p50 %.2f p99 %.2f max %.2f ms\n", what, percentile(per_pass, 0.5),
                percentile(per_pass, 0.99), percentile(per_pass, 1.0));
  };
  print_longest("write lock held, a pass's longest transaction:", pass_write_lock);
  std::printf("  write lock held at most, by step: messages %.2f, digests %.2f, vacuum %.2f ms\n", longest_messages_ms,
              longest_digests_ms, longest_pages_ms);
  print_longest("waiting for the write lock (BEGIN IMMEDIATE):", pass_lock_wait);
  std::printf("  WAL checkpoints after a prune transaction: %lld\n", static_cast<long long>(checkpoints));
  print_longest("checkpoint (no write lock), a pass's longest:", pass_checkpoint);
  std::printf("sender claim+mark of 100 messages, ms: while a pass runs p50 %.2f p99 %.2f max %.2f (%zu samples); "
              "otherwise p50 %.2f p99 %.2f max %.2f (%zu samples)\n",
              percentile(latency_pruning, 0.5), percentile(latency_pruning, 0.99), percentile(latency_pruning, 1.0),
              latency_pruning.size(), percentile(latency_idle, 0.5), percentile(latency_idle, 0.99),
              percentile(latency_idle, 1.0), latency_idle.size());
  std::printf("run time %.0f s, load %s\n", total.seconds(), gb::load_average().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gapless::setup_logging("warn");
  Options options;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      const auto value = [&](int64_t minimum) {
        if (i + 1 >= argc) throw gb::UsageError(arg + " needs a value");
        return gb::parse_integer(arg, argv[++i], minimum);
      };
      if (arg == "--series") options.series = value(1);
      else if (arg == "--months") options.months = value(1);
      else if (arg == "--cadence") options.cadence = value(1);
      else if (arg == "--poll") options.poll = value(1);
      else if (arg == "--prune-every") options.prune_every = value(1);
      else if (arg == "--keep-delivered-days") options.keep_delivered_days = value(0);
      else if (arg == "--dir") {
        if (i + 1 >= argc) throw gb::UsageError("--dir needs a value");
        options.dir = argv[++i];
      } else
        throw gb::UsageError("unknown option " + arg);
    }
    if (options.poll % options.cadence != 0) throw gb::UsageError("--poll must be a multiple of --cadence");
  } catch (const gb::UsageError& e) {
    std::cerr << "retention-bench: " << e.what()
              << "\nusage: retention-bench [--series 200] [--months 13] [--cadence 60] [--poll 3600] "
                 "[--prune-every 3600] [--keep-delivered-days 7] [--dir DIR]\n";
    return 2;
  }
  return run(options);
}
