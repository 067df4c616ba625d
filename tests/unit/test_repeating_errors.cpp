// Proves an error that repeats every second is logged once, then once a minute with its count, not once per retry; and that a sink whose broker cannot be reached logs it so and shows in `gapless status` as down since when.
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

#include "core/clock.hpp"
#include "core/fault_episode.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

namespace {

using gapless::test::TempDir;

// The default logger's lines go to a ring buffer while this lives.
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)), previous_(spdlog::default_logger()) {
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
