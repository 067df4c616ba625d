// Proves `gapless run` tells systemd READY=1, STATUS=, WATCHDOG=1 and STOPPING=1, withholds WATCHDOG=1 while a sender or a collector poll is stuck, and brackets each SIGHUP reload with RELOADING=1 and READY=1, a refused one included.
//
// The daemon runs as a child process with NOTIFY_SOCKET pointing at a unix
// datagram socket this test binds (what systemd does for a Type=notify
// unit), and one sink whose broker is a small STOMP peer here. To get a
// sender stuck, the peer holds back a COMMIT receipt while this test holds
// the journal's write lock (as any other process could): once the receipt
// is let through, the sender's delivered mark waits in SQLite's busy handler
// and its loop stops turning. To get a collector poll stuck, an archive
// stand-in takes the listing request and answers nothing until the
// client's http_timeout, while a second archive is polled all along.
#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "journal/journal.hpp"
#include "stomp/frame.hpp"
#include "support/background_daemon.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using gapless::test::TempDir;

// What the daemon told "systemd", one line each, with when it arrived.
struct Notice {
  Clock::time_point at;
  std::string line;
};

// The socket systemd would listen on: NOTIFY_SOCKET names it.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket(AF_UNIX): " + std::string(std::strerror(errno)));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path_.size() >= sizeof address.sun_path) throw std::runtime_error("socket path too long: " + path_);
    std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("bind " + path_ + ": " + std::strerror(errno));
  }
  ~NotifySocket() { ::close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }

  // Reads what arrives for `duration`.
  void listen_for(Clock::duration duration) {
    const auto until = Clock::now() + duration;
    while (Clock::now() < until) receive(until);
  }
  // Reads until a line starting with `prefix` has arrived (at or after
  // notice `from`), at most `timeout`; its index, or nothing.
  std::optional<size_t> wait_for(const std::string& prefix, Clock::duration timeout, size_t from = 0) {
    const auto until = Clock::now() + timeout;
    for (;;) {
      for (size_t i = from; i < notices_.size(); ++i)
        if (notices_[i].line.rfind(prefix, 0) == 0) return i;
      if (Clock::now() >= until) return std::nullopt;
      receive(until);
    }
  }

  const std::vector<Notice>& notices() const { return notices_; }

  // When each WATCHDOG=1 came, from notice `from` on.
  std::vector<Clock::time_point> pings(size_t from = 0) const {
    std::vector<Clock::time_point> times;
    for (size_t i = from; i < notices_.size(); ++i)
      if (notices_[i].line == "WATCHDOG=1") times.push_back(notices_[i].at);
    return times;
  }

  std::string transcript() const {
    std::string text;
    for (const Notice& notice : notices_) text += notice.line + "\n";
    return text;
  }

 private:
  void receive(Clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd readable{fd_, POLLIN, 0};
    if (::poll(&readable, 1, static_cast<int>(std::max<int64_t>(left, 0))) <= 0) return;
    char buffer[4096];
    const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
    if (got <= 0) return;
    const auto at = Clock::now();
    std::string datagram(buffer, static_cast<size_t>(got));
    for (size_t start = 0; start < datagram.size();) {
      size_t end = datagram.find('\n', start);
      if (end == std::string::npos) end = datagram.size();
      if (end > start) notices_.push_back({at, datagram.substr(start, end - start)});
      start = end + 1;
    }
  }

  std::string path_;
  int fd_ = -1;
  std::vector<Notice> notices_;
};

// A STOMP 1.2 peer on 127.0.0.1 that answers every receipt at once, except
// COMMIT receipts while they are held back.
class ReceiptingPeer {
 public:
  ReceiptingPeer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 4) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1: " + std::string(std::strerror(errno)));
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ReceiptingPeer() {
    done_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  ReceiptingPeer(const ReceiptingPeer&) = delete;
  ReceiptingPeer& operator=(const ReceiptingPeer&) = delete;

  uint16_t port() const { return port_; }
  void hold_commits(bool hold) { hold_commits_ = hold; }
  int commits_held() const { return commits_held_; }
  int commits_answered() const { return commits_answered_; }

 private:
  void serve() {
    while (!done_) {
      pollfd incoming{listen_fd_, POLLIN, 0};
      if (::poll(&incoming, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      converse(fd);
      ::close(fd);
    }
  }

  // One connection, until the daemon closes it or the test ends.
  void converse(int fd) {
    gapless::stomp::Parser parser;
    std::vector<std::string> held;  // receipt ids of COMMITs not yet answered
    while (!done_) {
      if (!hold_commits_ && !held.empty()) {
        for (const std::string& receipt : held) reply(fd, {"RECEIPT", {{"receipt-id", receipt}}, {}});
        commits_answered_ += static_cast<int>(held.size());
        commits_held_ -= static_cast<int>(held.size());
        held.clear();
      }
      pollfd readable{fd, POLLIN, 0};
      if (::poll(&readable, 1, 20) <= 0) continue;
      char buffer[65536];
      const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got <= 0) return;
      parser.feed(std::string_view(buffer, static_cast<size_t>(got)));
      while (auto frame = parser.next()) {
        if (frame->command == "CONNECT" || frame->command == "STOMP") {
          reply(fd, {"CONNECTED", {{"version", "1.2"}, {"heart-beat", "0,0"}, {"server", "receipting-peer"}}, {}});
          continue;
        }
        const std::string* receipt = frame->header("receipt");
        if (receipt == nullptr) continue;
        if (frame->command == "COMMIT" && hold_commits_) {
          held.push_back(*receipt);
          ++commits_held_;
          continue;
        }
        if (frame->command == "COMMIT") ++commits_answered_;
        reply(fd, {"RECEIPT", {{"receipt-id", *receipt}}, {}});
      }
    }
  }

  static void reply(int fd, const gapless::stomp::Frame& frame) {
    std::string bytes;
    gapless::stomp::encode(frame, bytes);
    for (size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<bool> hold_commits_{false};
  std::atomic<int> commits_held_{0};
  std::atomic<int> commits_answered_{0};
};

// An esmond archive stand-in on 127.0.0.1: answers every request with an
// empty metadata listing, or, while silent, reads the request and answers
// nothing (the connection stays open until the client gives up or the test
// ends), as an archive hung behind a proxy does.
class ArchiveStandIn {
 public:
  explicit ArchiveStandIn(bool silent) : silent_(silent) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 16) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1: " + std::string(std::strerror(errno)));
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ArchiveStandIn() {
    done_ = true;
    thread_.join();
    for (const int fd : held_) ::close(fd);
    ::close(listen_fd_);
  }
  ArchiveStandIn(const ArchiveStandIn&) = delete;
  ArchiveStandIn& operator=(const ArchiveStandIn&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/esmond/perfsonar/archive/"; }
  int requests() const { return requests_; }

 private:
  void serve() {
    while (!done_) {
      pollfd incoming{listen_fd_, POLLIN, 0};
      if (::poll(&incoming, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos && !done_) {
        pollfd readable{fd, POLLIN, 0};
        if (::poll(&readable, 1, 50) <= 0) continue;
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        request.append(buffer, static_cast<size_t>(got));
      }
      ++requests_;
      if (silent_) {
        held_.push_back(fd);
        continue;
      }
      const std::string answer =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]";
      (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  const bool silent_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<int> held_;
  std::atomic<bool> done_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;  // last: starts once everything above exists
};

// `gapless run` as systemd would start it: NOTIFY_SOCKET, and WATCHDOG_USEC
// when the unit sets WatchdogSec. Killed if the test ends first.
// The daemon as systemd starts it: NOTIFY_SOCKET set, WATCHDOG_USEC when
// the unit has WatchdogSec (and never the test's own).
class DaemonUnderSystemd : public gapless::test::BackgroundDaemon {
 public:
  DaemonUnderSystemd(const std::string& config_path, const std::string& notify_socket,
                     std::optional<std::chrono::microseconds> watchdog, std::string log_path)
      : BackgroundDaemon(config_path, std::move(log_path),
                         {{"NOTIFY_SOCKET", notify_socket},
                          {"WATCHDOG_PID", ""},
                          {"WATCHDOG_USEC", watchdog ? std::to_string(watchdog->count()) : ""}}) {}
};

// A journal with `messages` pending for sink "test", and a configuration
// whose one sink is `peer`.
struct ServiceFixture {
  // `more_config`: TOML appended to the configuration (archives).
  explicit ServiceFixture(const ReceiptingPeer& peer, int messages, const std::string& more_config = "") {
    {
      auto journal = gapless::journal::Journal::open(journal_path, {"test"});
      std::vector<gapless::journal::NewMessage> batch;
      for (int i = 0; i < messages; ++i) {
        gapless::journal::NewMessage message;
        message.gapless_id = "service-notify-" + std::to_string(i);
        message.destination = "/topic/perfsonar.raw.throughput";
        message.body = "{\"index\":" + std::to_string(i) + "}";
        batch.push_back(std::move(message));
      }
      REQUIRE(journal->append(batch).appended == messages);
    }
    std::ofstream config(config_path);
    config << "log_level = \"info\"\n[journal]\npath = \"" << journal_path << "\"\n"
           << "[[sink]]\nname = \"test\"\nbrokers = [\"stomp://127.0.0.1:" << peer.port() << "\"]\n"
           << more_config;
  }

  TempDir dir{"service-notify"};
  std::string journal_path = dir.file("journal.db");
  std::string config_path = dir.file("gapless.toml");
  std::string log_path = dir.file("daemon.log");
  NotifySocket socket{dir.file("notify")};
};

Clock::duration longest_gap(const std::vector<Clock::time_point>& times) {
  Clock::duration longest{};
  for (size_t i = 1; i < times.size(); ++i) longest = std::max(longest, times[i] - times[i - 1]);
  return longest;
}

double seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

}  // namespace

TEST_CASE("the daemon under systemd says it is ready only with the journal open, says what it does, and says it "
          "stops; without WatchdogSec it sends no watchdog pings",
          "[service]") {
  ReceiptingPeer peer;
  ServiceFixture f(peer, 3);
  DaemonUnderSystemd daemon(f.config_path, f.socket.path(), std::nullopt, f.log_path);

  const auto ready = f.socket.wait_for("READY=1", 30s);
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << daemon.log());
  REQUIRE(ready);
  // What `systemctl status` shows: the journal open, then what is being done.
  const auto status = f.socket.wait_for("STATUS=running", 5s, *ready);
  REQUIRE(status);
  CHECK(f.socket.notices()[*status].line.find(f.journal_path) != std::string::npos);
  const auto delivered = f.socket.wait_for("STATUS=running: 1/1 sinks connected, 3 messages delivered", 15s);
  CHECK(delivered);
  f.socket.listen_for(2500ms);
  CHECK(f.socket.pings().empty());

  REQUIRE(daemon.stop(30s) == 0);
  f.socket.listen_for(200ms);
  const auto stopping = f.socket.wait_for("STOPPING=1", 1s, *ready);
  CHECK(stopping);
}

TEST_CASE("a sender stuck in one journal call for longer than WatchdogSec stops the watchdog pings, and they "
          "resume when it moves again",
          "[service]") {
  ReceiptingPeer peer;
  peer.hold_commits(true);
  ServiceFixture f(peer, 5);
  constexpr auto kWatchdog = 2s;
  DaemonUnderSystemd daemon(f.config_path, f.socket.path(), std::chrono::microseconds(kWatchdog), f.log_path);

  const auto ready = f.socket.wait_for("READY=1", 30s);
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << daemon.log());
  REQUIRE(ready);
  // The sender sent its transaction and waits for the COMMIT receipt: its
  // loop turns, and the pings come every half interval.
  for (int i = 0; i < 300 && peer.commits_held() == 0; ++i) f.socket.listen_for(50ms);
  REQUIRE(peer.commits_held() == 1);
  const size_t before_stall = f.socket.notices().size();
  f.socket.listen_for(3s);
  const auto steady_pings = f.socket.pings(*ready);
  CHECK(steady_pings.size() >= 3);
  CHECK(longest_gap(steady_pings) < kWatchdog);

  // Another process holds the journal's write lock; the receipt comes and
  // the sender's delivered mark waits for the lock (SQLite's busy timeout is
  // 10 s, the lock is held 8 s).
  SQLite::Database locker(f.journal_path, SQLite::OPEN_READWRITE);
  locker.setBusyTimeout(10'000);
  locker.exec("BEGIN EXCLUSIVE");
  const auto stalled_at = Clock::now();
  peer.hold_commits(false);
  f.socket.listen_for(8s);
  locker.exec("COMMIT");
  const auto released_at = Clock::now();
  const size_t after_release = f.socket.notices().size();
  REQUIRE(f.socket.wait_for("WATCHDOG=1", 5s, after_release));
  CHECK(peer.commits_answered() == 1);

  std::vector<Clock::time_point> stall_pings;
  for (const Clock::time_point at : f.socket.pings(before_stall))
    if (at >= stalled_at - kWatchdog) stall_pings.push_back(at);
  const Clock::duration gap = longest_gap(stall_pings);
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << daemon.log());
  INFO("longest gap between pings around the stall: " << seconds(gap) << " s; the lock was held "
                                                        << seconds(released_at - stalled_at) << " s");
  // Stuck from the receipt to the lock's release (8 s): no ping for most of it.
  CHECK(gap > 2 * kWatchdog);
  const std::string log = daemon.log();
  CHECK(log.find("daemon: watchdog pings withheld, a component makes no progress component=\"sender sink=test\"") !=
        std::string::npos);
  CHECK(log.find("daemon: watchdog pings resumed component=\"sender sink=test\"") != std::string::npos);

  // Moving again: the pings are regular again.
  const size_t resumed = f.socket.notices().size();
  f.socket.listen_for(3s);
  const auto later_pings = f.socket.pings(resumed);
  CHECK(later_pings.size() >= 2);
  CHECK(longest_gap(later_pings) < kWatchdog);

  REQUIRE(daemon.stop(30s) == 0);
  CHECK(f.socket.wait_for("STOPPING=1", 1s, resumed));
}

TEST_CASE("a collector poll stuck on an archive that answers nothing stops the watchdog pings, although another "
          "archive's polls go on, and they resume when the request gives up",
          "[service]") {
  ReceiptingPeer peer;
  ArchiveStandIn silent(true);
  ArchiveStandIn quiet(false);
  // The silent archive's listing is given up after http_timeout (7 s); the
  // quiet one is polled every second by the other polling thread, whose
  // waits between polls are deliberate and must not hide the stuck one.
  ServiceFixture f(peer, 0,
                   "[[archive]]\nname = \"silent\"\nurl = \"" + silent.url() +
                       "\"\nhttp_timeout = \"7s\"\n"
                       "[[archive]]\nname = \"quiet\"\nurl = \"" + quiet.url() + "\"\npoll_interval = \"1s\"\n");
  constexpr auto kWatchdog = 2s;
  DaemonUnderSystemd daemon(f.config_path, f.socket.path(), std::chrono::microseconds(kWatchdog), f.log_path);

  const auto ready = f.socket.wait_for("READY=1", 30s);
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << daemon.log());
  REQUIRE(ready);
  for (int i = 0; i < 200 && silent.requests() == 0; ++i) f.socket.listen_for(50ms);
  REQUIRE(silent.requests() == 1);
  const auto stuck_at = Clock::now();
  // Stuck until curl gives up (7 s after the request), then a few seconds of regular pings.
  f.socket.listen_for(7s);
  const auto resumed_ping = f.socket.wait_for("WATCHDOG=1", 5s, f.socket.notices().size());
  REQUIRE(resumed_ping);
  const size_t resumed = *resumed_ping + 1;
  f.socket.listen_for(3s);

  std::vector<Clock::time_point> stall_pings;
  for (const Clock::time_point at : f.socket.pings(*ready))
    if (at >= stuck_at - kWatchdog && at <= f.socket.notices()[*resumed_ping].at) stall_pings.push_back(at);
  const Clock::duration gap = longest_gap(stall_pings);
  const std::string log = daemon.log();
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << log);
  INFO("longest gap between pings around the stall: " << seconds(gap) << " s");
  CHECK(quiet.requests() >= 3);  // the other archive was polled all along
  CHECK(gap > 2 * kWatchdog);
  CHECK(log.find("daemon: watchdog pings withheld, a component makes no progress component=\"collector\"") !=
        std::string::npos);
  CHECK(log.find("daemon: watchdog pings resumed component=\"collector\"") != std::string::npos);
  const auto later_pings = f.socket.pings(resumed);
  CHECK(later_pings.size() >= 2);
  CHECK(longest_gap(later_pings) < kWatchdog);

  REQUIRE(daemon.stop(30s) == 0);
}

TEST_CASE("a SIGHUP reload tells systemd RELOADING=1 then READY=1 once the changed sink's sender runs again; a "
          "refused reload ends with READY=1 too, its STATUS naming the key",
          "[service]") {
  ReceiptingPeer peer;
  ServiceFixture f(peer, 3);
  DaemonUnderSystemd daemon(f.config_path, f.socket.path(), std::nullopt, f.log_path);
  const auto ready = f.socket.wait_for("READY=1", 30s);
  INFO("notices:\n" << f.socket.transcript() << "log:\n" << daemon.log());
  REQUIRE(ready);
  REQUIRE(f.socket.wait_for("STATUS=running: 1/1 sinks connected, 3 messages delivered", 15s));
  const std::string config = [&] {
    std::ifstream in(f.config_path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();

  // A good file that changes the sink (its window): the sender is stopped and started again.
  std::ofstream(f.config_path) << config << "window = 5\n";
  daemon.signal(SIGHUP);
  const auto reloading = f.socket.wait_for("RELOADING=1", 10s, *ready + 1);
  REQUIRE(reloading);
  // MONOTONIC_USEC: systemd (Type=notify-reload) pairs the reload with it; CLOCK_MONOTONIC, now.
  const auto monotonic = f.socket.wait_for("MONOTONIC_USEC=", 1s, *reloading);
  REQUIRE(monotonic);
  const auto sent_us = std::stoll(f.socket.notices()[*monotonic].line.substr(15));
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
  CHECK(now_us - sent_us >= 0);
  CHECK(now_us - sent_us < 10'000'000);
  const auto reloaded = f.socket.wait_for("READY=1", 30s, *reloading);
  REQUIRE(reloaded);
  const auto reloaded_status = f.socket.wait_for("STATUS=", 1s, *reloaded);
  REQUIRE(reloaded_status);
  CHECK(f.socket.notices()[*reloaded_status].line == "STATUS=running: configuration " + f.config_path + " reloaded");
  // READY=1 only once the new sender runs: the log says it started before.
  const std::string log = daemon.log();
  CHECK(log.find("sinks_changed=[test]") != std::string::npos);
  CHECK(log.find("daemon: sender started by the reload sink=test") != std::string::npos);

  // A bad file: refused, the running configuration stays; systemd hears READY=1 all the same.
  std::ofstream(f.config_path) << config << "window = \"four\"\n";
  daemon.signal(SIGHUP);
  const auto refusing = f.socket.wait_for("RELOADING=1", 10s, *reloaded + 1);
  REQUIRE(refusing);
  const auto ready_again = f.socket.wait_for("READY=1", 10s, *refusing);
  REQUIRE(ready_again);
  const auto refused_status = f.socket.wait_for("STATUS=", 1s, *ready_again);
  REQUIRE(refused_status);
  const std::string& refusal = f.socket.notices()[*refused_status].line;
  CHECK(refusal.rfind("STATUS=running; reload refused: ", 0) == 0);
  CHECK(refusal.find("sink[0].window") != std::string::npos);

  REQUIRE(daemon.stop(30s) == 0);
}
