#include "harness/broker.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>

#include "core/error.hpp"
#include "harness/broker_dir.hpp"
#include "harness/process.hpp"

#ifndef GAPLESS_SOURCE_BROKER_SCRIPT
#error "tests/harness/meson.build must define GAPLESS_SOURCE_BROKER_SCRIPT"
#endif

namespace gapless::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The script waits up to 30 s for the broker, and up to 15 s more to stop it
// when that fails; give it room before calling it hung.
constexpr auto kScriptTimeout = 90s;
// A port picked a moment ago may be taken by someone else before the broker
// binds it; the first start then re-picks ports this many times.
constexpr int kPortAttempts = 3;

bool keep_requested() {
  const char* keep = std::getenv("GAPLESS_KEEP_BROKER");
  return keep != nullptr && *keep != '\0';
}

}  // namespace

fs::path TestBroker::script_path() {
  const char* configured = std::getenv("GAPLESS_BROKER_SCRIPT");
  if (configured != nullptr && *configured != '\0') return configured;
  return GAPLESS_SOURCE_BROKER_SCRIPT;
}

TestBroker::TestBroker(BrokerOptions options)
    : options_(std::move(options)), dir_(make_broker_dir("broker", "TestBroker")) {
  for (int attempt = 1;; ++attempt) {
    pick_ports();
    try {
      start();
      return;
    } catch (const Error& e) {
      bool port_taken = std::string(e.what()).find("already in use") != std::string::npos;
      if (!port_taken || attempt == kPortAttempts) {
        // The destructor will not run: clean up here, unless asked to keep.
        if (!keep_requested()) {
          std::error_code ignored;
          fs::remove_all(dir_, ignored);
        }
        throw;
      }
    }
  }
}

TestBroker::~TestBroker() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "TestBroker: stopping the broker in " << dir_ << " failed: " << e.what() << "\n";
  }
  if (keep_requested()) {
    std::cerr << "TestBroker: GAPLESS_KEEP_BROKER is set, keeping " << dir_ << "\n"
              << "----- " << (dir_ / "broker.out").string() << " -----\n"
              << log() << "----- end of broker.out -----\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void TestBroker::pick_ports() {
  auto ports = free_tcp_ports(3);
  stomp_port_ = ports[0];
  mqtt_port_ = ports[1];
  ssl_port_ = ports[2];
}

std::vector<std::string> TestBroker::start_arguments() const {
  std::vector<std::string> args = {
      script_path().string(), "start", dir_.string(),
      "--stomp-port", std::to_string(stomp_port_),
      "--mqtt-port", std::to_string(mqtt_port_),
      // If this test process dies without running our destructor (crash,
      // abort, SIGKILL by a timeout), the script stops the broker.
      "--owner-pid", std::to_string(::getpid()),
  };
  if (options_.ssl) {
    args.insert(args.end(), {"--ssl-port", std::to_string(ssl_port_), "--ssl-dir", tls_->dir.string(),
                             "--ssl-password", tls_->store_password});
  }
  for (const auto& topic : options_.deny_topics) args.insert(args.end(), {"--deny-topic", topic});
  for (const auto& topic : options_.allow_topics) args.insert(args.end(), {"--allow-topic", topic});
  if (!options_.memory_limit.empty()) args.insert(args.end(), {"--memory-limit", options_.memory_limit});
  args.insert(args.end(), {"--send-fail-if-no-space", options_.send_fail_if_no_space ? "true" : "false"});
  return args;
}

void TestBroker::start() {
  if (options_.ssl && !tls_) tls_ = generate_tls_material(dir_ / "tls");
  auto args = start_arguments();
  auto began = std::chrono::steady_clock::now();
  RunResult result = run(args, kScriptTimeout);
  last_start_duration_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
  if (!result.ok()) {
    throw Error("TestBroker: " + result.describe(args) + (result.out.empty() ? "" : "\n" + result.out));
  }
}

void TestBroker::stop() {
  std::vector<std::string> args = {script_path().string(), "stop", dir_.string()};
  RunResult result = run(args, kScriptTimeout);
  if (!result.ok()) throw Error("TestBroker: " + result.describe(args));
}

void TestBroker::restart() {
  stop();
  start();
}

void TestBroker::restart(BrokerOptions options) {
  stop();
  options_ = std::move(options);
  start();
}

bool TestBroker::running() const {
  return run({script_path().string(), "status", dir_.string()}, kScriptTimeout).ok();
}

std::optional<pid_t> TestBroker::pid() const {
  if (!running()) return std::nullopt;
  std::ifstream in(dir_ / "broker.pid");
  pid_t pid = 0;
  if (!(in >> pid)) return std::nullopt;
  return pid;
}

std::string TestBroker::stomp_uri() const { return "stomp://127.0.0.1:" + std::to_string(stomp_port_); }

std::string TestBroker::ssl_uri() const {
  if (!options_.ssl) throw Error("TestBroker::ssl_uri: the broker was started without the ssl option");
  return "stomp+ssl://127.0.0.1:" + std::to_string(ssl_port_);
}

std::string TestBroker::mqtt_uri() const { return "tcp://127.0.0.1:" + std::to_string(mqtt_port_); }

const TlsMaterial& TestBroker::tls() const {
  if (!tls_) throw Error("TestBroker::tls: the broker was started without the ssl option");
  return *tls_;
}

std::string TestBroker::log() const { return read_text_file(dir_ / "broker.out"); }

}  // namespace gapless::test
