// esmond-test-archive: the test archive as a standalone server, for the quick
// start and the benchmarks. Prints its base URL, serves until SIGINT/SIGTERM.
//
//   esmond-test-archive --port 8080 --series 8 --start now-7d --clock real
//   curl 'http://127.0.0.1:8080/esmond/perfsonar/archive/?format=json'
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "core/duration.hpp"
#include "core/error.hpp"
#include "esmond_archive/esmond_archive.hpp"

namespace {

int64_t wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t seconds_of(const std::string& duration, const std::string& what) {
  return gapless::parse_duration(duration, what).count() / 1000;
}

// "1500000000" (unix time), "now", or "now-7d" / "now-36h" / "now+1h".
int64_t parse_time(const std::string& text, int64_t now) {
  if (text.rfind("now", 0) != 0) {
    size_t used = 0;
    const long long value = std::stoll(text, &used);
    if (used != text.size()) throw gapless::Error("--start: expected unix seconds or now-<duration>: " + text);
    return value;
  }
  if (text == "now") return now;
  const char sign = text.size() > 3 ? text[3] : '?';
  if (sign != '-' && sign != '+') throw gapless::Error("--start: expected now-<duration>: " + text);
  const int64_t offset = seconds_of(text.substr(4), "--start");
  return sign == '-' ? now - offset : now + offset;
}

// real: wall-clock time; fast:<factor>: simulated time starting now and
// running <factor> times faster; fixed: simulated time that moves only
// through POST /_control/clock.
double parse_clock(const std::string& text) {
  if (text == "real") return 1;
  if (text == "fixed") return 0;
  if (text.rfind("fast:", 0) == 0) {
    const double factor = std::stod(text.substr(5));
    if (factor <= 0) throw gapless::Error("--clock fast:<factor> needs a positive factor");
    return factor;
  }
  throw gapless::Error("--clock: expected real, fast:<factor> or fixed, got " + text);
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop signals first: every thread inherits the mask, and main
  // takes them with sigwait once the archive serves.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A shell starts background jobs with SIGINT ignored, and an ignored signal
  // is discarded, even for sigwait; scripts stop the archive with SIGINT too.
  signal(SIGINT, SIG_DFL);

  CLI::App app{"esmond-test-archive: an esmond-compatible perfSONAR measurement archive with generated data"};
  std::string host = "127.0.0.1";
  int port = 8080;
  int series = 8;
  std::string start = "now-7d";
  std::string clock = "real";
  std::string cadence = "60s";
  std::string ingest_delay = "0s";
  uint64_t seed = 0;
  std::string kinds;
  std::string flavour = "esmond";
  std::vector<std::string> run_files;
  app.add_option("--host", host, "Address to listen on")->capture_default_str();
  app.add_option("--port", port, "Port to listen on (0: any free port)")->capture_default_str();
  app.add_option("--series", series, "Number of metadata objects (series)")->capture_default_str();
  app.add_option("--start", start, "First data: unix seconds, or now-<duration> (e.g. now-7d)")->capture_default_str();
  app.add_option("--clock", clock, "real | fast:<factor> | fixed")->capture_default_str();
  app.add_option("--cadence", cadence, "Time between runs of a series (e.g. 60s, 5m)")->capture_default_str();
  app.add_option("--ingest-delay", ingest_delay, "How long after its run a point appears")->capture_default_str();
  app.add_option("--seed", seed, "Seed of keys and values")->capture_default_str();
  app.add_option("--kinds", kinds, "Comma-separated kinds to rotate: latency,throughput,trace,rtt (default: all)");
  app.add_option("--flavour", flavour, "esmond (perfSONAR 4.x) | elmond (perfSONAR 5, README.md \"elmond mode\")")
      ->check(CLI::IsMember({"esmond", "elmond"}))
      ->capture_default_str();
  app.add_option("--runs", run_files,
                 "elmond: JSON files of pScheduler runs (a run or an array of runs each) to serve as well")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);

  try {
    const int64_t now = wall_clock_now();
    gapless::test::EsmondArchive::Options options;
    options.host = host;
    options.port = port;
    options.series = series;
    options.now = now;
    options.start = parse_time(start, now);
    options.clock_speed = parse_clock(clock);
    options.cadence = seconds_of(cadence, "--cadence");
    options.ingest_delay = seconds_of(ingest_delay, "--ingest-delay");
    options.seed = seed;
    options.flavour = flavour == "elmond" ? gapless::test::ArchiveFlavour::elmond : gapless::test::ArchiveFlavour::esmond;
    for (const std::string& file : run_files) {
      std::ifstream in(file);
      const nlohmann::json parsed = nlohmann::json::parse(in);
      if (parsed.is_array()) options.runs.insert(options.runs.end(), parsed.begin(), parsed.end());
      else options.runs.push_back(parsed);
    }
    if (!kinds.empty()) {
      options.kinds.clear();
      for (size_t at = 0; at <= kinds.size();) {
        size_t comma = kinds.find(',', at);
        if (comma == std::string::npos) comma = kinds.size();
        const std::string name = kinds.substr(at, comma - at);
        const auto kind = gapless::test::esmond::kind_from_name(name);
        if (!kind) throw gapless::Error("--kinds: unknown kind " + name);
        options.kinds.push_back(*kind);
        at = comma + 1;
      }
    }

    gapless::test::EsmondArchive archive(options);
    archive.start();
    std::cout << archive.base_url() << std::endl;
    std::cerr << "esmond-test-archive: " << flavour << ", " << series << " series, data from " << *options.start << ", clock " << clock
              << "; control: " << archive.root_url() << "/_control/stats" << std::endl;
    int received = 0;
    sigwait(&stop_signals, &received);
    archive.stop();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "esmond-test-archive: " << e.what() << std::endl;
    return 1;
  }
}
