// Proves an error that repeats every second is logged once, then once a minute with its count, not once per retry (a broker, an archive's listing or series, a request to the HTTP endpoint); and that a sink whose broker cannot be reached logs it so and shows in `gapless status` as down since when.
//
// The rule is core/fault_episode.hpp's; the first case drives an episode
// through three simulated minutes (core/clock.hpp's simulated time) and
// reads what spdlog received. The second runs the daemon against a broker
// port where nothing listens, retrying every 100 ms.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "collector/collector.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/fault_episode.hpp"
#include "esmond/client.hpp"
#include "http/endpoint.hpp"
#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

namespace {

using gapless::test::TempDir;

// The default logger's lines go to a ring buffer while this lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(20000)), previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> lines() const { return sink_->last_formatted(); }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// Simulated time from `start_ms` while this lives.
struct SimulatedTime {
  explicit SimulatedTime(int64_t start_ms) { set(start_ms); }
  ~SimulatedTime() { gapless::set_simulated_now_ms(std::nullopt); }
  void set(int64_t now_ms) { gapless::set_simulated_now_ms(now_ms); }
};

int count_matching(const std::vector<std::string>& lines, const std::string& text) {
  int count = 0;
  for (const std::string& line : lines)
    if (line.find(text) != std::string::npos) ++count;
  return count;
}

int count_lines(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("an error repeating every second for three minutes is logged once, then once a minute with its count, "
          "then once when it ends",
          "[log-rate]") {
  CapturedLog log;
  constexpr int64_t kStart = 1'700'000'000'000;
  SimulatedTime time(kStart);
  {
    gapless::FaultEpisode episode("sender sink=cern");
    for (int second = 0; second < 180; ++second) {
      time.set(kStart + second * 1000);
      episode.occurred("broker-unreachable", "no broker answers: stomp://mq.example.org:61613: connection refused");
    }
    time.set(kStart + 180'000);
    episode.resolved();
  }
  const std::vector<std::string> lines = log.lines();
  std::string all;
  for (const std::string& line : lines) all += line + "\n";
  INFO(all);
  CHECK(lines.size() == 4);
  CHECK(count_matching(lines, "error fault: begins component=\"sender sink=cern\" kind=broker-unreachable "
                              "error=\"no broker answers") == 1);
  // One count a minute: after 60 and 120 seconds (the 61st and 121st occurrence).
  CHECK(count_matching(lines, "fault: continues") == 2);
  CHECK(count_matching(lines, "fault: continues component=\"sender sink=cern\" kind=broker-unreachable "
                              "occurrences=61 for_s=60") == 1);
  CHECK(count_matching(lines, "occurrences=121 for_s=120") == 1);
  CHECK(count_matching(lines, "fault: resolved component=\"sender sink=cern\" kind=broker-unreachable "
                              "occurrences=180 lasted_s=180") == 1);
}

TEST_CASE("a sink whose broker refuses every connection is logged once as down, not once per retry, and status "
          "shows it down since when",
          "[log-rate]") {
  TempDir dir("repeating-errors");
  const std::string config_path = dir.file("gapless.toml");
  {
    std::ofstream config(config_path);
    // Port 1 on loopback: nothing listens, every connect is refused at once.
    config << "log_level = \"info\"\n[journal]\npath = \"" << dir.file("journal.db") << "\"\n"
           << "[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << "reconnect_min = \"100ms\"\nreconnect_max = \"100ms\"\n";
  }
  const std::string daemon_log = dir.file("daemon.log");
  // The daemon runs 4 s (SIGTERM from timeout(1)); status is read after 2.5 s.
  std::thread daemon([&] {
    const std::string command = "timeout -s TERM 4 " + gapless::test::shell_quoted(gapless::test::gapless_binary()) +
                                " run --config " + gapless::test::shell_quoted(config_path) + " 2>" +
                                gapless::test::shell_quoted(daemon_log);
    (void)std::system(command.c_str());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const gapless::test::CommandResult status =
      gapless::test::run_gapless({"status", "--config", config_path}, dir.file("status.stderr"));
  daemon.join();
  std::ifstream in(daemon_log);
  const std::string log{std::istreambuf_iterator<char>(in), {}};
  INFO("daemon log:\n" << log << "status:\n" << status.out << status.err);

  // About 30 connect rounds failed: one line says so, the first round's
  // failure names the broker, and nothing repeats them.
  CHECK(count_lines(log, "fault: begins component=\"sender sink=cern\" kind=broker-unreachable") == 1);
  CHECK(count_lines(log, "sender: connect failed sink=cern broker=stomp://127.0.0.1:1") == 1);
  CHECK(count_lines(log, "no broker reachable") == 0);
  CHECK(count_lines(log, "\n") < 20);

  REQUIRE(status.exit_code == 0);
  CHECK(std::regex_search(status.out, std::regex(R"(\n  sink cern down for [0-9]+s \(since [-0-9T:]+Z\), [0-9]+ connect)")));
  CHECK(status.out.find("PROBLEMS (") != std::string::npos);
  CHECK(status.out.find("PROBLEMS (") < status.out.find("\nsink cern"));
}

namespace {

// A broker stand-in that accepts every connection, answers its CONNECT with
// CONNECTED and hangs up at once: what a broker in trouble can do for hours.
class HangingUpBroker {
 public:
  HangingUpBroker() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    REQUIRE(::listen(listener_, 16) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~HangingUpBroker() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void serve() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      char byte = 1;
      while (byte != 0 && ::read(client, &byte, 1) == 1) {
      }  // the CONNECT frame, to its NUL
      static const char kConnected[] = "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n";
      (void)!::write(client, kConnected, sizeof kConnected);  // with its NUL
      ++connections_;
      ::close(client);
    }
  }
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace

// A reconnect backoff reset at every connect would reconnect, and log, every reconnect_min.
TEST_CASE("a broker that drops every connection at once is retried with a growing backoff", "[log-rate]") {
  HangingUpBroker broker;
  TempDir dir("hanging-up-broker");
  const std::string config_path = dir.file("gapless.toml");
  {
    std::ofstream config(config_path);
    config << "log_level = \"info\"\n[journal]\npath = \"" << dir.file("journal.db") << "\"\n"
           << "[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:" << broker.port() << "\"]\n"
           << "reconnect_min = \"50ms\"\nreconnect_max = \"2s\"\n";
  }
  const std::string daemon_log = dir.file("daemon.log");
  const std::string command = "timeout -s TERM 4 " + gapless::test::shell_quoted(gapless::test::gapless_binary()) +
                              " run --config " + gapless::test::shell_quoted(config_path) + " 2>" +
                              gapless::test::shell_quoted(daemon_log);
  (void)std::system(command.c_str());
  std::ifstream in(daemon_log);
  const std::string log{std::istreambuf_iterator<char>(in), {}};
  INFO("connections: " << broker.connections() << ", connection lost lines: "
                        << count_lines(log, "sender: connection lost sink=cern"));
  // Reset at every connect, the backoff would stay at 50 ms: about 80
  // connections in 4 s. Growing (50 ms doubling, jittered, to 2 s): a handful.
  CHECK(broker.connections() >= 2);
  CHECK(broker.connections() <= 10);
  CHECK(count_lines(log, "sender: connection lost sink=cern") <= 10);
}

namespace {

constexpr int64_t kPollStart = 1'700'000'000'000;

// An esmond archive stand-in on loopback: its listing holds one metadata
// object (two series of the configured event types), and every data request,
// or with `listing_fails` every request, is answered HTTP 500 until heal().
class FailingArchive {
 public:
  explicit FailingArchive(bool listing_fails) : listing_fails_(listing_fails) {
    server_.Get("/esmond/perfsonar/archive/", [this](const httplib::Request&, httplib::Response& response) {
      if (listing_fails_ && !healed_) return fail(response);
      nlohmann::json metadata = nlohmann::json::parse(R"({"source":"10.1.1.1","destination":"10.1.1.2",
        "event-types":[
          {"base-uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/throughput/base",
           "event-type":"throughput","summaries":[],"time-updated":1700000000},
          {"base-uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/packet-loss-rate/base",
           "event-type":"packet-loss-rate","summaries":[],"time-updated":1700000000}],
        "input-source":"host1.example.net","input-destination":"host2.example.net",
        "metadata-key":"f6b732e9f351487a96126f0c25e5e546","subject-type":"point-to-point",
        "tool-name":"bwctl/iperf3","uri":"/esmond/perfsonar/archive/f6b732e9f351487a96126f0c25e5e546/"})");
      metadata["metadata-count-total"] = 1;
      metadata["metadata-next-page"] = nullptr;
      metadata["metadata-previous-page"] = nullptr;
      response.set_content(nlohmann::json::array({metadata}).dump(), "application/json");
    });
    server_.Get("/.*", [this](const httplib::Request&, httplib::Response& response) {
      if (healed_) return response.set_content("[]", "application/json");
      fail(response);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FailingArchive() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/esmond/perfsonar/archive/"; }
  void heal() { healed_ = true; }

 private:
  static void fail(httplib::Response& response) {
    response.status = 500;
    response.set_content("<html><body>Server Error (500)</body></html>", "text/html");
  }
  bool listing_fails_;
  std::atomic<bool> healed_{false};
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// poll_archive against `archive` every 5 simulated seconds for three
// minutes (36 polls; each records the poll in the journal, fsynced), then
// once more after heal(); what the log received.
std::vector<std::string> poll_for_three_minutes(FailingArchive& archive) {
  TempDir dir("failing-archive");
  gapless::Config config;
  config.collector.retry_min = std::chrono::milliseconds(0);  // every poll retries every series
  config.collector.retry_max = std::chrono::milliseconds(0);
  gapless::ArchiveConfig settings;
  settings.name = "psds";
  settings.url = archive.url();
  settings.summaries = false;
  settings.lookback = std::chrono::hours(1);
  auto journal = gapless::journal::Journal::open(dir.file("journal.db"), {"local"});
  gapless::esmond::ClientOptions options;
  options.timeout = std::chrono::seconds(5);
  gapless::esmond::Client client(settings.name, settings.url, options);
  gapless::collector::SeriesBackoffs backoffs;
  std::atomic<bool> stop{false};

  CapturedLog log;
  SimulatedTime time(kPollStart);
  for (int second = 0; second < 180; second += 5) {
    time.set(kPollStart + second * 1000);
    const auto report = gapless::collector::poll_archive(config, settings, client, *journal, backoffs, stop);
    REQUIRE(report.failures.count("http-status") == 1);
  }
  archive.heal();
  time.set(kPollStart + 180'000);
  gapless::collector::poll_archive(config, settings, client, *journal, backoffs, stop);
  return log.lines();
}

std::string joined(const std::vector<std::string>& lines) {
  std::string all;
  for (const std::string& line : lines) all += line + "\n";
  return all;
}

}  // namespace

// One warning per series per poll before: 72 lines in three minutes, 720 at a poll a second.
TEST_CASE("an archive's series failing at every poll for three minutes is logged once per series, then once a "
          "minute with its count",
          "[log-rate]") {
  FailingArchive archive(false);
  const std::vector<std::string> lines = poll_for_three_minutes(archive);
  INFO(joined(lines));
  for (const std::string event_type : {"throughput", "packet-loss-rate"}) {
    INFO(event_type);
    const std::string component = "component=\"collector archive " + archive.url() +
                                  " metadata-key f6b732e9f351487a96126f0c25e5e546 event-type " + event_type +
                                  " (base data)\"";
    CHECK(count_matching(lines, "error fault: begins " + component + " kind=http-status") == 1);
    CHECK(count_matching(lines, "fault: continues " + component + " kind=http-status occurrences=13 for_s=60") == 1);
    CHECK(count_matching(lines, "fault: continues " + component + " kind=http-status occurrences=25 for_s=120") == 1);
    CHECK(count_matching(lines, "fault: resolved " + component + " kind=http-status occurrences=36 lasted_s=180") == 1);
  }
  CHECK(count_matching(lines, "warn collector: series failed") == 0);
  // The poll's own summary line, and the failures at debug level, aside.
  CHECK(count_matching(lines, "fault: ") == 8);
}

TEST_CASE("an archive whose listing fails at every poll for three minutes is logged once, then once a minute",
          "[log-rate]") {
  FailingArchive archive(true);
  const std::vector<std::string> lines = poll_for_three_minutes(archive);
  INFO(joined(lines));
  CHECK(count_matching(lines, "error fault: begins component=\"collector archive=psds listing\" kind=http-status "
                              "error=\"archive psds: GET " + archive.url()) == 1);
  CHECK(count_matching(lines, "fault: continues component=\"collector archive=psds listing\"") == 2);
  CHECK(count_matching(lines, "fault: resolved component=\"collector archive=psds listing\" kind=http-status "
                              "occurrences=36 lasted_s=180") == 1);
  CHECK(count_matching(lines, "warn collector: listing failed") == 0);
}

TEST_CASE("a request to the HTTP endpoint failing every second for three minutes is logged once, then once a "
          "minute, per path",
          "[log-rate][http]") {
  TempDir dir("failing-requests");
  gapless::Config config;
  config.journal.path = dir.file("no-such-directory/journal.db");  // every request that opens it fails
  config.http.listen = "127.0.0.1:0";
  CapturedLog log;
  SimulatedTime time(kPollStart);
  {
    gapless::http::Endpoint endpoint(config, [] { return gapless::http::DaemonSnapshot{}; });
    httplib::Client client("127.0.0.1", endpoint.port());
    for (int second = 0; second < 180; ++second) {
      time.set(kPollStart + second * 1000);
      for (const char* path : {"/metrics", "/v1/status"}) {
        const auto answer = client.Get(path);
        REQUIRE(answer);
        CHECK(answer->status == 500);
      }
    }
  }
  const std::vector<std::string> lines = log.lines();
  INFO(joined(lines));
  for (const std::string path : {"/metrics", "/v1/status"}) {
    INFO(path);
    CHECK(count_matching(lines, "error fault: begins component=\"http " + path + "\"") == 1);
    CHECK(count_matching(lines, "fault: continues component=\"http " + path + "\"") == 2);
  }
  CHECK(count_matching(lines, "request failed") == 180 * 2);  // each at debug level, none above
  CHECK(count_matching(lines, "warn http: request failed") == 0);
}
