// Proves a network that delays, stalls, cuts a frame in half or loses a COMMIT's RECEIPT loses nothing.
//
// The daemon drains numbered messages to a real ActiveMQ through
// harness/fault_proxy.hpp, a live subscriber on the broker says what arrived
// and when, and the fault is injected mid-drain. Each case checks that every
// message arrived, that a duplicate carries the gapless-id (and body) it was
// journaled with, that the daemon's anonymous memory (RssAnon, sampled) stays
// under 64 MiB, and that delivery resumes within the timeout that is meant to
// find the fault: heart-beat silence, receipt_timeout, or at once after an EOF.
// The timeouts are shortened here (the example config's heartbeat is 10s,
// receipt_timeout 5m) so that CI takes about a minute and a half; one broker
// serves every case. GAPLESS_LONG=1 injects each fault 10 times into a
// drain of 50 000 messages.
//   build/tests/integration/integration-tests '[network-faults]'
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/broker.hpp"
#include "harness/fault_proxy.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/timed_subscriber.hpp"
#include "harness/workspace.hpp"

using namespace std::chrono_literals;
using gapless::test::FaultProxy;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::TimedMessage;
using gapless::test::TimedSubscriber;
using gapless::test::Workspace;
using Steady = std::chrono::steady_clock;

namespace {

// What the test configures (Workspace writes heartbeat = "2s", reconnect_max = "1s").
constexpr auto kHeartbeat = 2s;
constexpr auto kReconnectMax = 1s;
constexpr auto kReceiptTimeout = 3s;
// The daemon calls a broker silent after two heart-beat intervals and a
// second (stomp/connection.cpp); then it reconnects within reconnect_max.
constexpr auto kSilenceFound = 2 * kHeartbeat + 1s;
// A new session (CONNECT, CONNECTED, the first transaction) on a loaded
// 2-core CI machine.
constexpr auto kSessionSlack = 2s;
constexpr size_t kRssAnonLimitKib = 64 * 1024;

bool long_form() { return std::getenv("GAPLESS_LONG") != nullptr; }

TestBroker& shared_broker() {
  static TestBroker broker;
  return broker;
}

// Peak RssAnon of a process, sampled every 100 ms from another thread.
class RssAnonPeak {
 public:
  explicit RssAnonPeak(pid_t pid)
      : thread_([this, pid] {
          while (!stop_) {
            try {
              peak_ = std::max(peak_.load(), gapless::test::read_memory_usage(pid).rss_anon_kib);
            } catch (const std::exception&) {  // the process ended
              return;
            }
            std::this_thread::sleep_for(100ms);
          }
        }) {}
  ~RssAnonPeak() {
    stop_ = true;
    thread_.join();
  }
  size_t kib() const { return peak_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<size_t> peak_{0};
  std::thread thread_;
};

struct FaultCase {
  std::string name;       // also the topic: perfsonar.raw.fault-<name>
  std::string sink_keys;  // more [[sink]] keys (timeouts)
  // Injects the fault; returns once it took effect, with when it did.
  std::function<Steady::time_point(FaultProxy&)> inject;
  // How long delivery may take to come back after the fault took effect;
  // zero for a fault that must not interrupt delivery at all.
  std::chrono::milliseconds resume_within{0};
  bool duplicates_expected = false;  // the fault makes the broker deliver something twice
};

struct Outcome {
  size_t received = 0;
  size_t duplicates = 0;
  size_t connections = 0;
  size_t peak_rss_anon_kib = 0;
  std::chrono::milliseconds worst_resume{0};
  double seconds = 0;
};

// Arms a one-shot fault and waits until it fired; when it did.
Steady::time_point fire(FaultProxy& proxy, const std::function<void()>& arm) {
  auto fired = [&] {
    const auto counters = proxy.counters();
    return counters.cuts + counters.commit_drops;
  };
  const size_t before = fired();
  arm();
  const auto deadline = Steady::now() + 20s;
  while (Steady::now() < deadline) {
    if (fired() > before) return proxy.counters().last_fired;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("the proxy's fault never fired (no matching frame within 20 s)");
  return {};
}

Outcome drain_through(const FaultCase& fault) {
  TestBroker& broker = shared_broker();
  const int count = long_form() ? 50'000 : 6'000;
  const int rounds = long_form() ? 10 : 1;
  const std::string topic = "perfsonar.raw.fault-" + fault.name;
  const std::string keys = fault.sink_keys;

  FaultProxy proxy(broker.stomp_port());
  Workspace workspace(broker, keys);
  workspace.write_config(proxy.stomp_uri(), keys);
  TimedSubscriber subscriber(broker.stomp_uri(), "/topic/" + topic);
  const auto messages = gapless::test::messages_on({topic}, count, 512);
  workspace.journal_messages(messages);
  std::map<std::string, std::string> body_of;
  for (const auto& message : messages) body_of[message.gapless_id] = message.body;

  std::vector<TimedMessage> arrived;
  std::set<std::string> ids;
  auto collect = [&] {
    for (auto& message : subscriber.take()) {
      ids.insert(message.gapless_id);
      arrived.push_back(std::move(message));
    }
  };
  // Arrival stamps are wall-clock; the proxy's are steady.
  const auto wall_minus_steady = std::chrono::system_clock::now().time_since_epoch() -
                                 std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     Steady::now().time_since_epoch());
  auto wall = [&](Steady::time_point t) {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(t.time_since_epoch()) + wall_minus_steady);
  };

  const auto started = Steady::now();
  Process daemon = workspace.start_daemon();
  RssAnonPeak memory(daemon.pid());
  std::vector<Steady::time_point> faults;
  for (int round = 0; round < rounds; ++round) {
    // Mid-drain: the fault lands among transactions in flight.
    const size_t threshold = static_cast<size_t>(count) * (round + 1) / (rounds + 2);
    const auto deadline = Steady::now() + 60s;
    while (subscriber.received() < threshold && Steady::now() < deadline) std::this_thread::sleep_for(5ms);
    if (subscriber.received() < threshold)
      FAIL("drain stuck at " << subscriber.received() << " before fault " << round << "; daemon log:\n"
                             << workspace.daemon_log());
    faults.push_back(fault.inject(proxy));
  }
  const auto deadline = Steady::now() + (long_form() ? 600s : 120s);
  while (ids.size() < messages.size() && Steady::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    collect();
  }
  std::this_thread::sleep_for(500ms);  // late duplicates
  collect();
  Outcome outcome;
  outcome.seconds = std::chrono::duration<double>(Steady::now() - started).count();
  outcome.peak_rss_anon_kib = memory.kib();
  daemon.terminate();

  INFO("fault " << fault.name << "; daemon log:\n" << workspace.daemon_log());
  CHECK(subscriber.failure().empty());
  // Nothing lost, and a message seen twice is the same measurement under the same id.
  CHECK(ids == gapless::test::gapless_ids_of(messages));
  size_t altered = 0;
  for (const auto& message : arrived)
    if (!body_of.count(message.gapless_id) || body_of.at(message.gapless_id) != message.body) ++altered;
  CHECK(altered == 0);
  CHECK(workspace.counts("/topic/" + topic) == std::array<int64_t, 3>{0, count, 0});
  outcome.received = arrived.size();
  outcome.duplicates = arrived.size() - ids.size();
  if (fault.duplicates_expected) CHECK(outcome.duplicates > 0);
  CHECK(outcome.peak_rss_anon_kib > 0);
  CHECK(outcome.peak_rss_anon_kib < kRssAnonLimitKib);

  const auto counters = proxy.counters();
  outcome.connections = counters.connections;
  if (fault.resume_within == 0ms) {
    CHECK(counters.connections == 1);  // no reconnect for a fault the timeouts must tolerate
  } else {
    // Per fault: from when it took effect to the first message that reached
    // the subscriber over a connection accepted after it.
    for (const auto fault_time : faults) {
      auto reconnect = std::find_if(counters.accepted.begin(), counters.accepted.end(),
                                    [&](Steady::time_point t) { return t >= fault_time; });
      REQUIRE(reconnect != counters.accepted.end());
      auto first = std::find_if(arrived.begin(), arrived.end(),
                                [&](const TimedMessage& m) { return m.arrived >= wall(*reconnect); });
      REQUIRE(first != arrived.end());
      const auto resume = std::chrono::duration_cast<std::chrono::milliseconds>(first->arrived - wall(fault_time));
      outcome.worst_resume = std::max(outcome.worst_resume, resume);
    }
    CHECK(outcome.worst_resume <= fault.resume_within);
  }
  WARN("network fault " << fault.name << ": " << rounds << " injected, " << count << " messages, "
                        << outcome.received << " received (" << outcome.duplicates << " duplicates), "
                        << outcome.connections << " connections, worst resume " << outcome.worst_resume.count()
                        << " ms (bound " << fault.resume_within.count() << " ms), peak RssAnon "
                        << outcome.peak_rss_anon_kib << " KiB, " << outcome.seconds << " s");
  return outcome;
}

// A raw loopback socket, for checking the proxy itself without a broker.
struct Socket {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ~Socket() { ::close(fd); }
  static sockaddr_in loopback(uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
  }
  void connect(uint16_t port) {
    auto address = loopback(port);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  }
  void send(const std::string& bytes) { REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size())); }
  // What arrives within `wait`, and whether the peer closed.
  std::pair<std::string, bool> receive(std::chrono::milliseconds wait) {
    std::string got;
    const auto deadline = Steady::now() + wait;
    while (Steady::now() < deadline) {
      pollfd entry{fd, POLLIN, 0};
      if (::poll(&entry, 1, 20) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return {got, true};
      got.append(buffer, size_t(n));
    }
    return {got, false};
  }
};

std::string receipt_timeout(std::chrono::seconds timeout) {
  return "receipt_timeout = \"" + std::to_string(timeout.count()) + "s\"\n";
}

}  // namespace

TEST_CASE("the fault proxy cuts the chosen frame after exactly the bytes asked, stalls and delays", "[network-faults]") {
  Socket listener;
  auto address = Socket::loopback(0);
  REQUIRE(::bind(listener.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener.fd, 4) == 0);
  socklen_t length = sizeof address;
  ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&address), &length);
  FaultProxy proxy(ntohs(address.sin_port));
  // Returns once the proxy holds the connection (a fault then applies to it).
  auto connect_through = [&](Socket& client, Socket& server) {
    const size_t before = proxy.counters().connections;
    client.connect(proxy.port());
    for (int i = 0; i < 200 && proxy.counters().connections == before; ++i) std::this_thread::sleep_for(5ms);
    ::close(server.fd);
    server.fd = ::accept(listener.fd, nullptr, nullptr);
    REQUIRE(server.fd >= 0);
  };
  const std::string begin = "BEGIN\ntransaction:1\n\n" + std::string(1, '\0') + "\n";
  const std::string send = "SEND\ndestination:/topic/x\ncontent-length:5\n\nhello" + std::string(1, '\0');

  SECTION("cut") {
    Socket client, server;
    connect_through(client, server);
    proxy.cut_in_frame(FaultProxy::to_broker, "SEND", 7);
    client.send(begin + send + send);
    auto [got, closed] = server.receive(2s);
    CHECK(got == begin + send.substr(0, 7));  // the whole BEGIN, heart-beat EOL, 7 bytes of the SEND
    CHECK(closed);
    CHECK(proxy.counters().cuts == 1);
  }
  SECTION("stall, then a new connection flows") {
    Socket client, server;
    connect_through(client, server);
    proxy.stall(FaultProxy::both);
    client.send(send);
    auto [got, closed] = server.receive(500ms);
    CHECK(got.empty());
    CHECK_FALSE(closed);  // still open
    Socket client2, server2;
    connect_through(client2, server2);
    client2.send(send);
    CHECK(server2.receive(500ms).first == send);
  }
  SECTION("delay") {
    Socket client, server;
    connect_through(client, server);
    proxy.delay(FaultProxy::to_client, 400ms);
    server.send(send);
    CHECK(client.receive(250ms).first.empty());
    CHECK(client.receive(1s).first == send);
  }
}

TEST_CASE("latency below the timeouts slows delivery but never drops the connection or a message",
          "[network-faults]") {
  drain_through({.name = "delay",
                 .sink_keys = receipt_timeout(kReceiptTimeout),
                 .inject =
                     [](FaultProxy& proxy) {
                       proxy.delay(FaultProxy::both, 300ms);  // a 600 ms round trip, against a 3 s receipt_timeout
                       return Steady::now();
                     }});
}

TEST_CASE("a path that dies silently (both ways stalled, no FIN) is found by heart-beats; nothing lost",
          "[network-faults]") {
  // receipt_timeout long: only heart-beat silence can find this.
  drain_through({.name = "stall-both",
                 .sink_keys = receipt_timeout(60s),
                 .inject =
                     [](FaultProxy& proxy) {
                       proxy.stall(FaultProxy::both);
                       return Steady::now();
                     },
                 .resume_within = kSilenceFound + kReconnectMax + kSessionSlack});
}

TEST_CASE("a path that stops carrying SENDs while the broker's heart-beats still arrive is found by "
          "receipt_timeout; nothing lost",
          "[network-faults]") {
  drain_through({.name = "stall-to-broker",
                 .sink_keys = receipt_timeout(kReceiptTimeout),
                 .inject =
                     [](FaultProxy& proxy) {
                       proxy.stall(FaultProxy::to_broker);
                       return Steady::now();
                     },
                 .resume_within = kReceiptTimeout + kReconnectMax + kSessionSlack});
}

TEST_CASE("a connection cut in the middle of a SEND (the broker gets half a frame) loses nothing",
          "[network-faults]") {
  drain_through({.name = "cut-send",
                 .sink_keys = receipt_timeout(kReceiptTimeout),
                 .inject =
                     [](FaultProxy& proxy) {
                       // 300 bytes: past the headers, inside the 512-byte body.
                       return fire(proxy, [&] { proxy.cut_in_frame(FaultProxy::to_broker, "SEND", 300); });
                     },
                 .resume_within = kReconnectMax + kSessionSlack});
}

TEST_CASE("a connection cut in the middle of a RECEIPT (the client gets half a frame) loses nothing; "
          "duplicates keep their gapless-id",
          "[network-faults]") {
  drain_through({.name = "cut-receipt",
                 .sink_keys = receipt_timeout(kReceiptTimeout),
                 .inject =
                     [](FaultProxy& proxy) {
                       // 12 bytes: inside "receipt-id:".
                       return fire(proxy, [&] { proxy.cut_in_frame(FaultProxy::to_client, "RECEIPT", 12); });
                     },
                 .resume_within = kReconnectMax + kSessionSlack});
}

TEST_CASE("a COMMIT that reached the broker whose RECEIPT is lost with the connection is sent again, "
          "never lost; the duplicates keep their gapless-id",
          "[network-faults]") {
  drain_through({.name = "commit-drop",
                 .sink_keys = receipt_timeout(kReceiptTimeout),
                 .inject =
                     [](FaultProxy& proxy) {
                       return fire(proxy, [&] { proxy.drop_after_commit(); });
                     },
                 .resume_within = kReconnectMax + kSessionSlack,
                 .duplicates_expected = true});
}
