#include "harness/rabbitmq_node.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

#include "core/error.hpp"
#include "harness/broker_dir.hpp"
#include "harness/stomp_helpers.hpp"

namespace gapless::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The script /usr/sbin/rabbitmq-server su's into; see the header for why we
// run it directly.
constexpr const char* kServerScript = "/usr/lib/rabbitmq/bin/rabbitmq-server";
constexpr const char* kCtlScript = "/usr/lib/rabbitmq/bin/rabbitmqctl";
// 9 to 14 s on a quiet 2-core machine; CI runs a JVM beside it.
constexpr auto kStartTimeout = 90s;
constexpr auto kProbeInterval = 250ms;
constexpr auto kStopTimeout = 30s;
constexpr auto kCtlTimeout = 60s;
constexpr int kPortAttempts = 3;

// The process group's leader: started by `setsid` (no fork: a child of ours
// is no group leader), it starts the node's own epmd and a watcher of the
// test process, then becomes rabbitmq-server. The watcher SIGKILLs the whole
// group (itself included) once the test process is gone or a zombie, so a
// crashed or SIGKILLed test leaves no Erlang VM behind; meson kills the
// test's own process group on a timeout, which is why this one is separate.
constexpr const char* kLauncher = R"sh(
owner=$1
epmd -port "$2" -address 127.0.0.1 &
(
  alive() {
    state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
  }
  while alive "$owner"; do sleep 1; done
  kill -KILL 0
) &
exec "$3"
)sh";

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw Error("RabbitNode: cannot write " + path.string());
}

bool keep_requested() {
  const char* keep = std::getenv("GAPLESS_KEEP_BROKER");
  return keep != nullptr && *keep != '\0';
}

// A routing key as a literal inside a PCRE pattern (RabbitMQ's topic
// permissions are Erlang `re` patterns).
std::string regex_literal(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}-").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Users and their permissions, loaded at every boot (load_definitions):
// cheaper than three rabbitmqctl calls, and a restart keeps them as they are.
constexpr const char* kDefinitions = R"json({
  "vhosts": [{"name": "/"}],
  "users": [
    {"name": "collector", "password": "collector-secret", "tags": ""},
    {"name": "reader", "password": "reader-secret", "tags": ""},
    {"name": "guest", "password": "guest", "tags": "administrator"}
  ],
  "permissions": [
    {"user": "collector", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "reader", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
  ]
}
)json";

}  // namespace

RabbitNode::RabbitNode(RabbitNodeOptions options)
    : options_(options), dir_(make_broker_dir("rabbitmq", "RabbitNode")) {
  try {
    if (options_.ssl) tls_ = generate_tls_material(dir_ / "tls");
    for (int attempt = 1;; ++attempt) {
      pick_ports();
      try {
        start();
        break;
      } catch (const Error& e) {
        // A port picked free a moment ago may be taken before the node binds it.
        const std::string text = e.what();
        const bool port_taken = text.find("eaddrinuse") != std::string::npos ||
                                text.find("ddress already in use") != std::string::npos;
        if (!port_taken || attempt == kPortAttempts) throw;
      }
    }
  } catch (...) {
    // The destructor will not run: clean up here, unless asked to keep.
    if (group_) kill();
    if (!keep_requested()) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
    throw;
  }
}

RabbitNode::~RabbitNode() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "RabbitNode: stopping the node in " << dir_ << " failed: " << e.what() << "\n";
  }
  if (keep_requested()) {
    std::cerr << "RabbitNode: GAPLESS_KEEP_BROKER is set, keeping " << dir_ << "\n"
              << "----- log of " << node_name_ << " -----\n"
              << log() << "----- end of the log -----\n";
    return;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void RabbitNode::pick_ports() {
  auto ports = free_tcp_ports(5);
  stomp_port_ = ports[0];
  ssl_port_ = ports[1];
  amqp_port_ = ports[2];
  dist_port_ = ports[3];
  epmd_port_ = ports[4];
  node_name_ = "gapless-test-" + std::to_string(stomp_port_) + "@localhost";
}

std::map<std::string, std::string> RabbitNode::environment() const {
  const std::string dir = dir_.string();
  return {
      {"HOME", dir},  // the Erlang cookie, shared by the node and rabbitmqctl
      {"RABBITMQ_MNESIA_BASE", dir + "/mnesia"},
      {"RABBITMQ_LOG_BASE", dir + "/log"},
      {"RABBITMQ_FEATURE_FLAGS_FILE", dir + "/feature_flags"},
      {"RABBITMQ_PID_FILE", dir + "/node.pid"},
      {"RABBITMQ_NODENAME", node_name_},
      {"RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1"},
      {"RABBITMQ_NODE_PORT", std::to_string(amqp_port_)},
      {"RABBITMQ_DIST_PORT", std::to_string(dist_port_)},
      {"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}"},
      {"RABBITMQ_ENABLED_PLUGINS_FILE", dir + "/enabled_plugins"},
      {"RABBITMQ_CONFIG_FILE", dir + "/rabbitmq"},  // rabbitmq.conf, named without ".conf"
      // Nothing from /etc/rabbitmq: a developer's own settings there must not leak in.
      {"RABBITMQ_CONF_ENV_FILE", dir + "/rabbitmq-env.conf"},
      {"RABBITMQ_ADVANCED_CONFIG_FILE", dir + "/advanced.config"},
      {"ERL_EPMD_PORT", std::to_string(epmd_port_)},
  };
}

void RabbitNode::write_files() const {
  fs::create_directories(dir_ / "log");
  write_text_file(dir_ / "enabled_plugins", "[rabbitmq_stomp].\n");
  write_text_file(dir_ / "rabbitmq-env.conf", "");
  write_text_file(dir_ / "definitions.json", kDefinitions);
  std::ostringstream conf;
  conf << "loopback_users = none\n"
       << "listeners.tcp.default = 127.0.0.1:" << amqp_port_ << "\n"
       << "stomp.listeners.tcp.1 = 127.0.0.1:" << stomp_port_ << "\n"
       << "max_message_size = " << options_.max_message_size << "\n"
       << "load_definitions = " << (dir_ / "definitions.json").string() << "\n";
  if (tls_) {
    conf << "stomp.listeners.ssl.1 = 127.0.0.1:" << ssl_port_ << "\n"
         << "ssl_options.cacertfile = " << tls_->ca_cert.string() << "\n"
         << "ssl_options.certfile = " << tls_->broker_cert.string() << "\n"
         << "ssl_options.keyfile = " << tls_->broker_key.string() << "\n"
         << "ssl_options.verify = verify_peer\n"
         << "ssl_options.fail_if_no_peer_cert = true\n"
         << "stomp.ssl_cert_login = true\n"
         << "ssl_cert_login_from = common_name\n";
  }
  write_text_file(dir_ / "rabbitmq.conf", conf.str());
}

void RabbitNode::start() {
  if (running()) throw Error("RabbitNode: " + node_name_ + " already runs on " + dir_.string());
  write_files();
  write_text_file(dir_ / "node.out", read_text_file(dir_ / "node.out") + "=== start of " + node_name_ + " ===\n");
  const auto began = std::chrono::steady_clock::now();
  group_ = Process::spawn({.args = {"setsid", "sh", "-c", kLauncher, "rabbitmq-node", std::to_string(::getpid()),
                                    std::to_string(epmd_port_), kServerScript},
                           .env = environment(),
                           .working_dir = dir_,
                           .out = Output::to_file(dir_ / "node.out"),
                           .err = Output::to_file(dir_ / "node.out")});
  try {
    wait_ready(*group_);
  } catch (...) {
    kill();  // what is left of the group: epmd, the watcher
    throw;
  }
  last_start_duration_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began);
}

void RabbitNode::wait_ready(Process& node) {
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  std::string last_error;
  std::string foreign_server;  // another test's broker on a port we picked answers too
  while (std::chrono::steady_clock::now() < deadline) {
    if (!node.running()) {
      throw Error("RabbitNode: " + node_name_ + " exited during start-up (" + node.status()->describe() +
                  "); its log:\n" + log());
    }
    try {
      auto options = connect_options();
      options.connect_timeout = 2s;
      auto connection = connect_stomp(stomp_uri(), options);
      connection->disconnect(1s);
      foreign_server = connection->server().rfind("RabbitMQ/", 0) != 0 ? connection->server() : "";
      if (!foreign_server.empty()) break;
      if (!tls_) return;
      // The TLS listener starts with the plain one; check it listens too.
      connect_stomp(ssl_uri(), stomp::ConnectOptions{.virtual_host = kVirtualHost,
                                                     .ca_file = tls_->ca_cert.string(),
                                                     .cert_file = tls_->client_cert.string(),
                                                     .key_file = tls_->client_key.string(),
                                                     .connect_timeout = 2s})
          ->disconnect(1s);
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(kProbeInterval);
  }
  if (!foreign_server.empty()) {
    throw Error("RabbitNode: 127.0.0.1:" + std::to_string(stomp_port_) + " answers as " + foreign_server +
                ": address already in use");
  }
  throw Error("RabbitNode: no STOMP CONNECTED from " + node_name_ + " within " +
              std::to_string(std::chrono::seconds(kStartTimeout).count()) + " s (last: " + last_error +
              "); its log:\n" + log());
}

void RabbitNode::kill_group(int sig) {
  if (group_) ::kill(-group_->pid(), sig);
}

void RabbitNode::stop() {
  if (!group_) return;
  if (group_->running()) {
    try {
      ctl({"stop"});
    } catch (const std::exception& e) {
      std::cerr << "RabbitNode: rabbitmqctl stop failed, killing " << node_name_ << ": " << e.what() << "\n";
    }
    if (!group_->wait_for(kStopTimeout)) kill_group(SIGKILL);
  }
  // The node's epmd and the watcher are left in the group.
  kill_group(SIGKILL);
  group_->wait(kStopTimeout);
  group_.reset();
}

void RabbitNode::kill() {
  if (!group_) return;
  kill_group(SIGKILL);
  group_->wait(kStopTimeout);
  group_.reset();
}

void RabbitNode::restart() {
  stop();
  start();
}

bool RabbitNode::running() { return group_ && group_->running(); }

std::optional<pid_t> RabbitNode::pid() const {
  if (!group_) return std::nullopt;
  std::ifstream in(dir_ / "node.pid");
  pid_t pid = 0;
  if (!(in >> pid)) return std::nullopt;
  return pid;
}

std::string RabbitNode::stomp_uri() const { return "stomp://127.0.0.1:" + std::to_string(stomp_port_); }

std::string RabbitNode::ssl_uri() const {
  if (!options_.ssl) throw Error("RabbitNode::ssl_uri: the node was started without the ssl option");
  return "stomp+ssl://127.0.0.1:" + std::to_string(ssl_port_);
}

const TlsMaterial& RabbitNode::tls() const {
  if (!tls_) throw Error("RabbitNode::tls: the node was started without the ssl option");
  return *tls_;
}

std::string RabbitNode::log() const {
  return read_text_file(dir_ / "node.out") + read_text_file(dir_ / "log" / (node_name_ + ".log"));
}

std::string RabbitNode::ctl(const std::vector<std::string>& args) const {
  std::vector<std::string> full = {kCtlScript, "-n", node_name_};
  full.insert(full.end(), args.begin(), args.end());
  RunResult result = run(SpawnOptions{.args = full, .env = environment()}, kCtlTimeout);
  if (!result.ok()) throw Error("RabbitNode: " + result.describe(full) + "\n" + result.out);
  return result.out;
}

void RabbitNode::deny_topic_writes(const std::vector<std::string>& routing_keys, const std::string& user) {
  std::string alternatives;
  for (const auto& key : routing_keys) alternatives += (alternatives.empty() ? "" : "|") + regex_literal(key);
  // Everything but these keys, exactly: a negative lookahead anchored at both ends.
  const std::string write = "^(?!(" + alternatives + ")$).*";
  ctl({"set_topic_permissions", "-p", kVirtualHost, user, "amq.topic", write, ".*"});
}

void RabbitNode::allow_all_topic_writes(const std::string& user) {
  ctl({"clear_topic_permissions", "-p", kVirtualHost, user});
}

stomp::ConnectOptions RabbitNode::connect_options(const std::string& login, const std::string& passcode) const {
  stomp::ConnectOptions options;
  options.login = login;
  options.passcode = passcode;
  options.virtual_host = kVirtualHost;
  options.connect_timeout = 10s;
  return options;
}

StompRecorderOptions RabbitNode::durable_recorder_options(const std::string& queue, const std::string& binding) {
  StompRecorderOptions options;
  options.destination = "/topic/" + binding;
  options.subscription_name = queue;
  options.virtual_host = kVirtualHost;
  // RabbitMQ's durable topic subscription: a durable queue of that name.
  options.subscribe_headers = {{"durable", "true"}, {"auto-delete", "false"}, {"x-queue-name", queue}};
  return options;
}

}  // namespace gapless::test
