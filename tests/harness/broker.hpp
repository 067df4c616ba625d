// A real ActiveMQ for one test: Debian's 5.17.2, run by etc/broker/gapless-test-broker
// in a fresh temporary directory on free loopback ports.
//
//   gapless::test::TestBroker broker({.deny_topics = {"perfsonar.summary.throughput"}});
//   connect to broker.stomp_uri() as collector/collector-secret ...
//   broker.restart({});          // same data and ports, deny lifted
//
// Users (etc/broker/users.properties): collector/collector-secret (writes
// perfsonar.raw.>, the perfsonar.summary.<event-type> topics and test.>),
// reader/reader-secret (reads perfsonar.> and test.>), admin/admin-secret.
// On the SSL port the client certificate from tls() logs in as collector.
//
// The broker is stopped when this object dies, and also when the test
// process dies (the script watches our pid), so no java survives a crashed test.
// Set GAPLESS_KEEP_BROKER=1 to keep the directory and print the broker's log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/tls_material.hpp"

namespace gapless::test {

// Designated initializers work: TestBroker broker({.deny_topics = {...}, .ssl = true});
// (every member has an initializer, so g++ -Wextra does not warn about the others).
struct BrokerOptions {
  // Topics user collector must not write to (exact names). See
  // etc/broker/writer-topics.txt for how this interacts with wildcards.
  std::vector<std::string> deny_topics{};
  // Extra topics (or wildcards) collector may write to.
  std::vector<std::string> allow_topics{};
  // Adds the stomp+ssl connector (client certificate required); TLS material
  // is generated once per broker, into dir()/tls.
  bool ssl = false;
  // Broker memory limit, e.g. "8 mb"; empty: the script's default (64 mb).
  // Past it, producers get an ERROR after 2 s.
  std::string memory_limit{};
  // ActiveMQ's sendFailIfNoSpace: past the memory limit, refuse a SEND with an
  // ERROR at once instead of withholding its receipt until memory frees.
  bool send_fail_if_no_space = false;
};

class TestBroker {
 public:
  // Picks ports, creates the directory and starts the broker; returns once it
  // answers STOMP. Throws gapless::Error with the broker's log on failure.
  explicit TestBroker(BrokerOptions options = {});
  ~TestBroker();
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // Starts again on the same directory and ports: kahaDB, durable
  // subscriptions and their stored messages are kept. Throws if running.
  void start();
  // SIGTERM (SIGKILL after 15 s). Does nothing if not running.
  void stop();
  void restart();
  // Restart with other options, e.g. without a deny. Same data, same ports.
  void restart(BrokerOptions options);

  bool running() const;
  // The broker JVM's pid (for read_memory_usage), or nothing when stopped.
  std::optional<pid_t> pid() const;

  std::string stomp_uri() const;  // "stomp://127.0.0.1:PORT"
  std::string ssl_uri() const;    // "stomp+ssl://127.0.0.1:PORT" (ssl option)
  std::string mqtt_uri() const;   // "tcp://127.0.0.1:PORT" (Paho form)
  uint16_t stomp_port() const { return stomp_port_; }
  uint16_t mqtt_port() const { return mqtt_port_; }
  uint16_t ssl_port() const { return ssl_port_; }

  const std::filesystem::path& dir() const { return dir_; }
  const BrokerOptions& options() const { return options_; }
  // Certificates and keys for TLS clients. Throws unless ssl was enabled.
  const TlsMaterial& tls() const;
  // Everything the broker logged (all starts), i.e. dir()/broker.out.
  std::string log() const;
  // Wall time of the last start(): from running the script to STOMP CONNECTED.
  std::chrono::milliseconds last_start_duration() const { return last_start_duration_; }

  // The script: $GAPLESS_BROKER_SCRIPT, else the one in the source tree.
  static std::filesystem::path script_path();

 private:
  void pick_ports();
  void start_once();
  std::vector<std::string> start_arguments() const;

  BrokerOptions options_;
  std::filesystem::path dir_;
  uint16_t stomp_port_ = 0;
  uint16_t mqtt_port_ = 0;
  uint16_t ssl_port_ = 0;
  std::optional<TlsMaterial> tls_;
  std::chrono::milliseconds last_start_duration_{0};
};

}  // namespace gapless::test
