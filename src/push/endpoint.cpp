#include "push/endpoint.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.hpp"
#include "core/listen_address.hpp"
#include "osg/pscheduler_run.hpp"
#include "push/credentials.hpp"
#include "push/group_commit.hpp"
#include "push/request_rules.hpp"
#include "push/run_forms.hpp"

namespace gapless::push {

namespace {

// The archiver gives up after 30 s (its default timeout); a commit waits at
// most SQLite's busy timeout, so a request is answered well within.
constexpr auto kReadTimeout = std::chrono::seconds(30);
// A kept-alive connection holds a pool thread while idle: long enough for a
// busy host's next run, short enough that a host that went quiet frees it.
constexpr time_t kKeepAliveSeconds = 15;

std::optional<uint64_t> content_length(const httplib::Request& request) {
  if (!request.has_header("Content-Length")) return std::nullopt;
  try {
    return std::stoull(request.get_header_value("Content-Length"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void carry(const Answer& answer, httplib::Response& response) {
  response.status = answer.status;
  for (const auto& [name, value] : answer.headers) response.set_header(name, value);
  response.set_content(answer.text, "text/plain; charset=utf-8");
}

}  // namespace

struct Endpoint::Impl {
  Config config;
  RequestRules rules;
  std::function<std::shared_ptr<const Config>()> in_force;
  // The forms' settings of the configuration in force, built once per
  // configuration (a copy of every sink), not once per push.
  std::mutex forms_mutex;
  std::shared_ptr<const Config> forms_of_config;  // what `forms` was built from; null: `config`
  std::shared_ptr<const FormsSettings> forms;
  GroupCommit commit;
  Counters counters;
  std::unique_ptr<httplib::Server> server;
  int port = 0;
  std::thread listener;

  Impl(const Config& c, Credentials credentials)
      : config(c), rules(c.push, std::move(credentials)),
        forms(std::make_shared<const FormsSettings>(FormsSettings::of(c))),
        commit(c, static_cast<size_t>(c.push.threads)) {}

  std::shared_ptr<const FormsSettings> forms_in_force();
  void push(const httplib::Request& request, httplib::Response& response);
};

std::shared_ptr<const FormsSettings> Endpoint::Impl::forms_in_force() {
  std::shared_ptr<const Config> current = in_force ? in_force() : nullptr;
  std::lock_guard lock(forms_mutex);
  if (current && current != forms_of_config) {
    forms = std::make_shared<const FormsSettings>(FormsSettings::of(*current));
    forms_of_config = std::move(current);
  }
  return forms;
}

void Endpoint::Impl::push(const httplib::Request& request, httplib::Response& response) {
  const auto started = std::chrono::steady_clock::now();
  if (const auto refused = rules.before_body(request.method, request.path, content_length(request),
                                             request.get_header_value("Authorization"))) {
    carry(*refused, response);
    return;
  }
  if (request.body.size() > static_cast<size_t>(config.push.max_body_size)) {
    carry(rules.too_large(), response);
    return;
  }
  RunForms run;
  try {
    run = forms_of(request.body, request.get_header_value("x-ps-observer"), *forms_in_force());
  } catch (const osg::RunError& e) {
    spdlog::warn("push: run refused status=400 remote={} path={} field={} error=\"{}\"", request.remote_addr,
                 request.path, e.field(), e.what());
    carry(rules.not_a_run(e.field(), e.what()), response);
    return;
  } catch (const NoSinkTakes& e) {
    spdlog::error("push: run refused status=500 remote={} error=\"{}\"", request.remote_addr, e.what());
    carry(rules.no_sink_takes(e.what()), response);
    return;
  }
  const Outcome outcome = commit.journal(std::move(run.pushed));
  switch (outcome.kind) {
    case Outcome::Kind::journaled: {
      const bool duplicate = outcome.result.appended.appended == 0 && outcome.result.series.appended == 0;
      counters.journaled(duplicate, outcome.result.series.appended);
      carry(rules.journaled(run.run_id, duplicate), response);
      if (!run.osg_refusal.empty())
        spdlog::warn("push: run journaled without its OSG messages remote={} run={} error=\"{}\"",
                     request.remote_addr, run.run_id, run.osg_refusal);
      spdlog::debug("push: run journaled remote={} run={} duplicate={} series_messages={}", request.remote_addr,
                    run.run_id, duplicate, outcome.result.series.appended);
      break;
    }
    case Outcome::Kind::unavailable:
      spdlog::debug("push: run refused status=503 remote={} run={} reason=\"{}\"", request.remote_addr, run.run_id,
                    outcome.reason);
      carry(rules.unavailable(outcome.reason), response);
      break;
    case Outcome::Kind::failed:
      spdlog::error("push: run not journaled status=500 remote={} run={} error=\"{}\"", request.remote_addr,
                    run.run_id, outcome.reason);
      carry({500, "not journaled: " + outcome.reason + "\n", {}}, response);
      break;
  }
  counters.timed(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started));
}

Endpoint::Endpoint(const Config& config, std::function<std::shared_ptr<const Config>()> in_force) {
  const ListenAddress address = parse_listen(config.push.listen, "push.listen");
  if (!some_sink_takes_pushes(config.sinks))
    throw Error("push.listen: no [[sink]] takes anything a pushed run becomes (the run, to /pscheduler/run/<test "
                "type>, or its OSG messages, to /topic/perfsonar.raw.<event type>): give a sink an accept list that "
                "takes one, or remove [push]");
  impl_ = std::make_unique<Impl>(config, Credentials::load(config.push));
  impl_->in_force = std::move(in_force);
  if (!config.push.cert_file.empty()) {
    for (const auto& [key, path] : {std::pair{"push.cert_file", &config.push.cert_file},
                                    std::pair{"push.key_file", &config.push.key_file}})
      if (::access(path->c_str(), R_OK) != 0)
        throw Error(std::string(key) + ": cannot read " + *path + ": " + std::strerror(errno));
    auto secure = std::make_unique<httplib::SSLServer>(config.push.cert_file.c_str(), config.push.key_file.c_str());
    if (!secure->is_valid())
      throw Error("push.cert_file, push.key_file: cannot set up TLS with " + config.push.cert_file + " and " +
                  config.push.key_file + " (a PEM certificate and its own private key)");
    impl_->server = std::move(secure);
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *impl_->server;
  const size_t threads = static_cast<size_t>(config.push.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_socket_options([](int socket) {  // SO_REUSEADDR only, as the daemon's endpoint (http/endpoint.cpp)
    const int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // An answer goes out in more than one write: without TCP_NODELAY the
  // second waits for the client's delayed ACK (40 ms on Linux) per run.
  server.set_tcp_nodelay(true);
  server.set_read_timeout(kReadTimeout);
  server.set_write_timeout(kReadTimeout);
  server.set_keep_alive_timeout(kKeepAliveSeconds);
  server.set_keep_alive_max_count(1'000'000);
  // A Content-Length over the limit is refused 413 by the server before it
  // stores the body; a chunked one as it passes the limit.
  server.set_payload_max_length(static_cast<size_t>(config.push.max_body_size));
  Impl* impl = impl_.get();
  server.set_expect_100_continue_handler([impl](const httplib::Request& request, httplib::Response& response) {
    if (const auto refused = impl->rules.before_body(request.method, request.path, content_length(request),
                                                     request.get_header_value("Authorization"))) {
      carry(*refused, response);
      // cpp-httplib writes this answer as it is (no Content-Length of its
      // own on this path), and the body was never sent: the connection ends.
      response.set_header("Content-Length", std::to_string(refused->text.size()));
      response.set_header("Connection", "close");
      return refused->status;
    }
    return 100;
  });
  server.set_logger([impl](const httplib::Request&, const httplib::Response& response) {
    impl->counters.answered(response.status);
  });
  const auto handler = [impl](const httplib::Request& request, httplib::Response& response) {
    try {
      impl->push(request, response);
    } catch (const std::exception& e) {
      spdlog::error("push: request failed method={} path={} error=\"{}\"", request.method, request.path, e.what());
      carry({500, std::string("not journaled: ") + e.what() + "\n", {}}, response);
    }
  };
  server.Put(".*", handler);
  server.Post(".*", handler);
  server.Get(".*", handler);
  server.Delete(".*", handler);
  server.Options(".*", handler);
  server.Patch(".*", handler);

  if (address.port == 0) {
    impl_->port = server.bind_to_any_port(address.host);
    if (impl_->port < 0) impl_->port = 0;
  } else if (server.bind_to_port(address.host, address.port)) {
    impl_->port = address.port;
  }
  if (impl_->port <= 0)
    throw Error("push.listen: cannot listen on " + config.push.listen + ": " + std::strerror(errno) +
                " (another process on that port, or an address this host does not have)");
  impl_->listener = std::thread([impl] {
    try {
      if (!impl->server->listen_after_bind()) spdlog::error("push: the endpoint stopped serving (listen failed)");
    } catch (const std::exception& e) {
      spdlog::error("push: the endpoint stopped serving error=\"{}\"", e.what());
    }
  });
  std::string paths;
  for (const std::string& path : config.push.paths) paths += (paths.empty() ? "" : ",") + path;
  spdlog::info("push: listening address={}:{} tls={} auth={} paths={} threads={}", address.host, impl_->port,
               config.push.cert_file.empty() ? "off" : "on",
               !config.push.token_file.empty() ? "bearer" : !config.push.password_file.empty() ? "basic" : "none",
               paths, threads);
}

Endpoint::~Endpoint() { stop(); }

void Endpoint::stop() {
  if (!impl_) return;
  // The server first: it stops taking connections and its pool answers the
  // requests in flight, which need the committer; then the committer.
  impl_->server->stop();
  if (impl_->listener.joinable()) impl_->listener.join();
  impl_->commit.stop();
}

int Endpoint::port() const { return impl_->port; }

CountersSnapshot Endpoint::counters() const {
  CountersSnapshot snapshot = impl_->counters.snapshot();
  snapshot.groups = impl_->commit.groups();
  return snapshot;
}

}  // namespace gapless::push
