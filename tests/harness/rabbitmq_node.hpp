// A real RabbitMQ for one test (or one test file): Debian 12's rabbitmq-server
// 3.10.8 with its STOMP plugin, as a private node in a fresh temporary
// directory on free loopback ports.
//
//   gapless::test::RabbitNode node({.ssl = true});
//   connect to node.stomp_uri() as collector/collector-secret, virtual host "/" ...
//   node.deny_topic_writes({"perfsonar.summary.throughput"});   // the 2016 ACL incident
//   node.kill();  node.start();                                 // a crash; durable data kept
//
// Users (loaded from a definitions file at every boot), all with every
// permission on the virtual host "/": collector/collector-secret (as gapless
// logs in; the same as the test ActiveMQ's, so a Workspace works unchanged),
// reader/reader-secret (the witnesses), guest/guest. On the STOMP+TLS
// listener a client certificate whose CN is a user's name logs in as that
// user without login or passcode (stomp.ssl_cert_login): tls().client_cert
// has CN=collector.
//
// Found by running it by hand on Debian 12 (2 cores, as root):
// - /usr/sbin/rabbitmq-server, run as root, su's to user `rabbitmq` (which
//   then needs every directory on the way to ours) and resets HOME to
//   /var/lib/rabbitmq. We run the real script behind it,
//   /usr/lib/rabbitmq/bin/rabbitmq-server, directly as the test's own user:
//   no user switch, the node is our child, and it works the same for a
//   non-root CI user. Everything it writes is under dir(): HOME (the Erlang
//   cookie), RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE, RABBITMQ_PID_FILE, and
//   RABBITMQ_FEATURE_FLAGS_FILE (without it the node dies with
//   failed_to_create_feature_flags_file_directory under /var/lib).
//   RABBITMQ_CONFIG_FILE names rabbitmq.conf without its ".conf";
//   RABBITMQ_ENABLED_PLUGINS_FILE holds "[rabbitmq_stomp].".
// - Erlang distribution needs an epmd. A node starts a shared `epmd -daemon`
//   on port 4369 that outlives it; instead each start runs its own epmd on a
//   free port (ERL_EPMD_PORT, for the node and rabbitmqctl alike), stopped
//   with the node. The dist port (RABBITMQ_DIST_PORT) is bound to loopback
//   (inet_dist_use_interface). rabbitmqctl itself listens in 35672-35682.
// - The STOMP listener answers 9 to 14 s after start, a restart on the same
//   directory (after a kill -9 too) as long, more while other JVMs and nodes
//   run; we wait up to 90 s for a CONNECTED as collector. rabbitmqctl takes
//   about 1.2 s a call; `rabbitmqctl stop` returns in 2 s.
// - Ports: the AMQP listener (RABBITMQ_NODE_PORT, amqp_port()) comes for
//   free; STOMP, STOMP+TLS, dist and epmd are all picked free on 127.0.0.1.
// - The CONNECTED frame says "server:RabbitMQ/3.10.8" and heart-beat:0,0
//   unless asked. The `host` header is the virtual host: "127.0.0.1" (what
//   a client sends by default) is refused with ERROR "Bad CONNECT", body
//   "Virtual host '127.0.0.1' access denied". Connect with virtual_host "/".
// - A SEND that topic permissions refuse gets ERROR message:access_refused,
//   body "ACCESS_REFUSED - access to topic 'K' in exchange 'amq.topic' in
//   vhost '/' refused for user 'collector'", WITHOUT a receipt-id, and the
//   connection is closed. Topic permissions are checked per routing key
//   (the name after /topic/); a change is seen by new connections.
// - 3.10.8's STOMP plugin has no frame limit of its own (stomp.max_frame_size
//   came with later versions, 4 MiB by default): a 5 MiB SEND is taken. The
//   node is configured with max_message_size = 4 MiB to behave like them:
//   a larger SEND gets ERROR message:precondition_failed, "PRECONDITION_FAILED
//   - message size N is larger than configured max size 4194304", again
//   without receipt-id, and the connection is closed.
// - RabbitMQ hands the publisher's `receipt` header on to subscribers in
//   MESSAGE frames, and a SUBSCRIBE's MESSAGEs name the topic they were sent
//   to (destination:/topic/K) also when read from a named queue.
// - Topic wildcards are RabbitMQ's: "/topic/perfsonar.#", not ".>".
//
// The node is stopped when this object dies (`rabbitmqctl stop`, SIGKILL as
// a last resort), and also when the test process dies without that: each
// start runs the node, its epmd and a watcher of our pid in a process group
// of their own, and the watcher kills the group once we are gone.
// Set GAPLESS_KEEP_BROKER=1 to keep the directory and print the node's log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/tls_material.hpp"
#include "stomp/connection.hpp"

namespace gapless::test {

struct RabbitNodeOptions {
  // Adds the STOMP+TLS listener (client certificate required, its CN is the
  // user: stomp.ssl_cert_login). TLS material is generated once, into dir()/tls.
  bool ssl = false;
  // RabbitMQ's max_message_size, in bytes: a larger SEND is refused.
  int64_t max_message_size = 4 * 1024 * 1024;
};

class RabbitNode {
 public:
  static constexpr const char* kVirtualHost = "/";

  // Picks ports, creates the directory and starts the node; returns once it
  // answers a STOMP CONNECT. Throws gapless::Error with the node's log on failure.
  explicit RabbitNode(RabbitNodeOptions options = {});
  ~RabbitNode();
  RabbitNode(const RabbitNode&) = delete;
  RabbitNode& operator=(const RabbitNode&) = delete;

  // Starts again on the same directory and ports: users, permissions, durable
  // queues and their persistent messages are kept. Throws if running.
  void start();
  // `rabbitmqctl stop`; SIGKILL of the node's process group if that fails or
  // the node is still there 30 s later. Does nothing if not running.
  void stop();
  // SIGKILL of the node (and its epmd): a crash, for fault tests.
  void kill();
  void restart();

  bool running();
  // The Erlang VM's pid, or nothing when stopped.
  std::optional<pid_t> pid() const;

  std::string stomp_uri() const;  // "stomp://127.0.0.1:PORT"
  std::string ssl_uri() const;    // "stomp+ssl://127.0.0.1:PORT" (ssl option)
  uint16_t stomp_port() const { return stomp_port_; }
  uint16_t ssl_port() const { return ssl_port_; }
  uint16_t amqp_port() const { return amqp_port_; }
  const std::string& node_name() const { return node_name_; }

  const std::filesystem::path& dir() const { return dir_; }
  // Certificates and keys for TLS clients. Throws unless ssl was enabled.
  const TlsMaterial& tls() const;
  // What the node wrote to stdout (all starts) and its main log file.
  std::string log() const;
  // Wall time of the last start(): from spawning the node to STOMP CONNECTED.
  std::chrono::milliseconds last_start_duration() const { return last_start_duration_; }

  // `rabbitmqctl -n NODE ARGS...` against this node; throws gapless::Error
  // with its output unless it exits 0. Returns stdout.
  std::string ctl(const std::vector<std::string>& args) const;

  // Topic permissions on amq.topic: `user` may no longer publish to the
  // topics named (routing keys, exact), and still to every other. Replaces
  // an earlier deny. Seen by connections opened after the call.
  void deny_topic_writes(const std::vector<std::string>& routing_keys, const std::string& user = "collector");
  // Removes `user`'s topic permissions: every topic writable again.
  void allow_all_topic_writes(const std::string& user = "collector");

  // Options for a raw STOMP client of this node (virtual host "/").
  stomp::ConnectOptions connect_options(const std::string& login = "collector",
                                        const std::string& passcode = "collector-secret") const;
  // A durable witness (tests/harness/stomp_recorder.hpp) on RabbitMQ: a
  // durable queue named `queue`, bound to amq.topic by `binding` and kept
  // across node restarts with the persistent messages it holds.
  static StompRecorderOptions durable_recorder_options(const std::string& queue, const std::string& binding = "#");

 private:
  void pick_ports();
  void write_files() const;
  void wait_ready(Process& node);
  void kill_group(int sig);
  std::map<std::string, std::string> environment() const;

  RabbitNodeOptions options_;
  std::filesystem::path dir_;
  std::string node_name_;
  uint16_t stomp_port_ = 0;
  uint16_t ssl_port_ = 0;
  uint16_t amqp_port_ = 0;
  uint16_t dist_port_ = 0;
  uint16_t epmd_port_ = 0;
  std::optional<TlsMaterial> tls_;
  // The launcher: a shell that starts epmd and the watcher, then becomes
  // rabbitmq-server; the leader of the node's process group.
  std::optional<Process> group_;
  std::chrono::milliseconds last_start_duration_{0};
};

}  // namespace gapless::test
