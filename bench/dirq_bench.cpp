// dirq-bench: is `gapless import-dirq` at least half as fast as `gapless
// ingest` on the same messages (issue 12), and does its memory stay bounded
// whatever the queue's size?
//
//   dirq-bench [--messages N] [--runs R] [--dir DIR] [--keep] [--no-sync]
//
// Each run, the two commands alternate (ingest first), as child processes of
// this build's `gapless` on fresh journals of one sink: `ingest` of a file of N
// JSON lines, `import-dirq` of a Directory::Queue::Simple queue of the same N
// messages, one element file each (docs/osg-format.md 3.2), in directories of
// 1000. Both files and queue are written before the clock starts; the time runs
// from spawn to exit (start-up and journal open included), after a sync(2)
// unless --no-sync, so that the queue is on disk as an old one is. Every run is
// verified: exit 0 and N messages journaled, and the queue left empty. Peak
// RSS (wait4's ru_maxrss) of import-dirq is also measured on a queue of N/10,
// so that the two sizes show whether memory follows the queue's size.
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "core/error.hpp"
#include "harness/process.hpp"

namespace {

namespace fs = std::filesystem;
using gapless::Error;
using gapless::bench::Child;
using gapless::bench::ChildResult;
using gapless::bench::UsageError;

constexpr int64_t kElementsPerDirectory = 1000;
constexpr double kTarget = 0.5;  // import-dirq's rate / ingest's rate, at least
constexpr int64_t kFirstSecond = 1473706440;  // names as in docs/osg-format.md 3.2's example

struct Options {
  int64_t messages = 100'000;
  int64_t runs = 3;
  fs::path dir;
  bool keep = false;
  bool sync = true;
};

const char* const kUsage =
    "usage: dirq-bench [--messages N] [--runs R] [--dir DIR] [--keep] [--no-sync]\n"
    "  --messages N  messages per run, about 1 KiB each (default 100000)\n"
    "  --runs R      measured runs of each command, alternated (default 3)\n"
    "  --dir DIR     work directory (default: a fresh temporary directory, removed at the end)\n"
    "  --keep        keep the work directory\n"
    "  --no-sync     no sync(2) before each timed command: the queue just written may have no blocks on\n"
    "                disk yet (delayed allocation), so removing it frees none, unlike an old queue's\n"
    "Environment: GAPLESS_BIN (the gapless binary; default: this build tree's src/gapless).\n";

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
    } else if (option == "--no-sync") {
      options.sync = false;
      continue;
    } else if (option == "--messages") {
      options.messages = gapless::bench::parse_integer(option, value, 10);
    } else if (option == "--runs") {
      options.runs = gapless::bench::parse_integer(option, value, 1);
    } else if (option == "--dir") {
      if (value == nullptr) throw UsageError("--dir needs a value");
      options.dir = value;
    } else {
      throw UsageError("unknown option " + option);
    }
    ++i;
  }
  return options;
}

std::string reproduce_command(const char* argv0, const Options& options) {
  std::string command;
  if (const char* value = std::getenv("GAPLESS_BIN"); value != nullptr && *value != '\0')
    command += std::string("GAPLESS_BIN='") + value + "' ";
  command += std::string(argv0) + " --messages " + std::to_string(options.messages) + " --runs " +
             std::to_string(options.runs);
  if (!options.dir.empty()) command += " --dir " + options.dir.string();
  if (options.keep) command += " --keep";
  if (!options.sync) command += " --no-sync";
  return command;
}

// Message i as rsv-perfsonar wrote it (docs/osg-format.md 3.3): about 1 KiB,
// distinct datapoints, so every message gets its own gapless-id.
std::string element_text(int64_t i) {
  std::string datapoints;
  for (int point = 0; point < 30; ++point) {
    if (point > 0) datapoints += ", ";
    datapoints += "\"" + std::to_string(kFirstSecond + i * 30 + point) + "\": 0.00" + std::to_string(point % 10);
  }
  const std::string body = "{\"meta\": {\"source\": \"ps-a.example.org\", \"destination\": \"ps-b.example.org\", "
                           "\"event-type\": \"packet-loss-rate\"}, \"datapoints\": {" + datapoints + "}}";
  return nlohmann::json{{"header",
                         {{"input-source", "ps-a.example.org"},
                          {"input-destination", "ps-b.example.org"},
                          {"ts_start", kFirstSecond + i * 30},
                          {"event-type", "packet-loss-rate"},
                          {"summaries", 0},
                          {"destination", "/topic/perfsonar.raw.packet-loss-rate"}}},
                        {"body", body}}
      .dump();
}

void write_lines(const fs::path& path, int64_t messages) {
  std::ofstream out(path, std::ios::binary);
  for (int64_t i = 0; i < messages; ++i) out << element_text(i) << "\n";
  if (!out) throw Error("cannot write " + path.string());
}

// `<8 hex>/<14 hex>` element files, as Directory::Queue::Simple names them.
void write_queue(const fs::path& queue, int64_t messages) {
  fs::create_directories(queue);
  for (int64_t i = 0; i < messages; ++i) {
    const int64_t second = kFirstSecond + i / kElementsPerDirectory * 5;
    char directory[16], name[32];
    std::snprintf(directory, sizeof directory, "%08llx", static_cast<unsigned long long>(second));
    std::snprintf(name, sizeof name, "%08llx%05llx%01x", static_cast<unsigned long long>(second),
                  static_cast<unsigned long long>(i % kElementsPerDirectory), 0xb);
    if (i % kElementsPerDirectory == 0) fs::create_directories(queue / directory);
    std::ofstream out(queue / directory / name, std::ios::binary);
    out << element_text(i);
    if (!out) throw Error("cannot write an element under " + queue.string());
  }
}

int64_t elements_left(const fs::path& queue) {
  int64_t left = 0;
  for (const auto& entry : fs::recursive_directory_iterator(queue)) left += entry.is_regular_file() ? 1 : 0;
  return left;
}

fs::path write_config(const fs::path& work_dir, const std::string& name) {
  const fs::path config = work_dir / (name + ".toml");
  std::ofstream out(config);
  out << "[journal]\npath = " << nlohmann::json((work_dir / (name + ".db")).string()).dump()
      << "\n[[sink]]\nname = \"bench\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n";
  return config;
}

struct Measured {
  double seconds = 0;
  double cpu_seconds = 0;
  double peak_rss_mib = 0;
};

Measured run_gapless(const std::vector<std::string>& args, const fs::path& journal, const fs::path& log,
                     int64_t expected, bool sync) {
  // An old queue's files are on disk: written back, their blocks allocated.
  if (sync) ::sync();
  Child child(args, log);
  const std::optional<ChildResult> result = child.wait(std::chrono::hours(1));
  if (!result || !result->ok())
    throw Error(args[1] + " failed (" + (result ? gapless::bench::describe_status(result->wait_status) : "timeout") +
                "); its log:\n" + gapless::bench::tail_of(log, 20));
  SQLite::Database db(journal.string(), SQLite::OPEN_READONLY);
  const int64_t journaled = db.execAndGet("SELECT COUNT(*) FROM message").getInt64();
  if (journaled != expected)
    throw Error(args[1] + " journaled " + std::to_string(journaled) + " messages, not " + std::to_string(expected));
  return {gapless::bench::seconds_between(child.started(), result->ended), result->cpu_seconds(),
          static_cast<double>(result->usage.ru_maxrss) / 1024.0};
}

struct Series {
  std::vector<double> rates, cpu_us, rss;
  void add(const Measured& m, int64_t messages) {
    rates.push_back(static_cast<double>(messages) / m.seconds);
    cpu_us.push_back(m.cpu_seconds * 1e6 / static_cast<double>(messages));
    rss.push_back(m.peak_rss_mib);
  }
  void print(const char* name) const {
    const double median = gapless::bench::median(rates);
    const double low = *std::min_element(rates.begin(), rates.end());
    const double high = *std::max_element(rates.begin(), rates.end());
    std::printf("%-12s median %8.0f msg/s (min %.0f, max %.0f, spread %.0f%%), CPU %.1f us/msg, peak RSS %.1f MiB\n",
                name, median, low, high, 100.0 * (high - low) / median, gapless::bench::median(cpu_us),
                *std::max_element(rss.begin(), rss.end()));
  }
};

int run_bench(const Options& options, const char* argv0) {
  std::printf("%s\n", reproduce_command(argv0, options).c_str());
  std::printf("date: %s\nmachine: %s\nload average: %s\n", gapless::bench::utc_now_text().c_str(),
              gapless::bench::machine_description().c_str(), gapless::bench::load_average().c_str());
  const fs::path gapless = gapless::test::gapless_binary();
  if (!fs::exists(gapless)) throw Error("no gapless binary at " + gapless.string() + " (build src/gapless, or set GAPLESS_BIN)");
  const fs::path work_dir = gapless::bench::make_work_dir(options.dir, "dirq-bench");
  std::printf("gapless: %s\nwork directory: %s (%s, %s)\n", gapless.c_str(), work_dir.c_str(),
              gapless::bench::file_system_of(work_dir).c_str(), gapless::bench::mount_of(work_dir).c_str());

  const fs::path lines = work_dir / "messages.jsonl";
  write_lines(lines, options.messages);
  Series ingest, dirq;
  for (int64_t run = 1; run <= options.runs; ++run) {
    const std::string suffix = "-" + std::to_string(run);
    const fs::path ingest_config = write_config(work_dir, "ingest" + suffix);
    ingest.add(run_gapless({gapless.string(), "ingest", "--config", ingest_config.string(), lines.string()},
                           work_dir / ("ingest" + suffix + ".db"), work_dir / ("ingest" + suffix + ".log"),
                           options.messages, options.sync),
               options.messages);
    const fs::path queue = work_dir / ("queue" + suffix);
    write_queue(queue, options.messages);
    const fs::path import_config = write_config(work_dir, "import" + suffix);
    dirq.add(run_gapless({gapless.string(), "import-dirq", "--config", import_config.string(), queue.string()},
                           work_dir / ("import" + suffix + ".db"), work_dir / ("import" + suffix + ".log"),
                           options.messages, options.sync),
               options.messages);
    if (const int64_t left = elements_left(queue); left != 0)
      throw Error("import-dirq left " + std::to_string(left) + " element files in " + queue.string());
    std::printf("run %lld: ingest %.0f msg/s, import-dirq %.0f msg/s, ratio %.2f\n", static_cast<long long>(run),
                ingest.rates.back(), dirq.rates.back(), dirq.rates.back() / ingest.rates.back());
  }

  const int64_t small = options.messages / 10;
  const fs::path small_queue = work_dir / "queue-small";
  write_queue(small_queue, small);
  const fs::path small_config = write_config(work_dir, "import-small");
  const Measured small_run =
      run_gapless({gapless.string(), "import-dirq", "--config", small_config.string(), small_queue.string()},
                  work_dir / "import-small.db", work_dir / "import-small.log", small, options.sync);

  std::printf("\n%lld messages of about %zu bytes, %lld runs each, time from spawn to exit\n",
              static_cast<long long>(options.messages), element_text(0).size(), static_cast<long long>(options.runs));
  ingest.print("ingest");
  dirq.print("import-dirq");
  const double ratio = gapless::bench::median(dirq.rates) / gapless::bench::median(ingest.rates);
  std::printf("ratio import-dirq / ingest (medians): %.2f; target >= %.1f: %s\n", ratio, kTarget,
              ratio >= kTarget ? "met" : "NOT met");
  std::printf("import-dirq peak RSS: %.1f MiB at %lld messages, %.1f MiB at %lld\n",
              *std::max_element(dirq.rss.begin(), dirq.rss.end()), static_cast<long long>(options.messages),
              small_run.peak_rss_mib, static_cast<long long>(small));
  if (!options.keep) fs::remove_all(work_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  spdlog::set_level(spdlog::level::warn);
  try {
    return run_bench(parse_options(argc, argv), argv[0]);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "dirq-bench: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dirq-bench: %s\n", e.what());
    return 1;
  }
}
