#include "http/endpoint.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/listen_address.hpp"
#include "http/health.hpp"
#include "http/metrics.hpp"
#include "http/resend_request.hpp"
#include "journal/fault_retry.hpp"
#include "journal/journal.hpp"
#include "status/status_report.hpp"

namespace gapless::http {

namespace {

// How long POST /v1/resend waits for the resend to end before answering 202.
constexpr auto kResendAnswerWithin = std::chrono::seconds(5);

// The journal for one request: its own connection, no integrity check, no
// sink registered (it writes nothing; a resend opens its own).
std::unique_ptr<journal::Journal> open_for_reading(const Config& config) {
  return journal::Journal::open(config.journal.path, {}, false);
}

void answer_text(httplib::Response& response, int status, const std::string& body) {
  response.status = status;
  response.set_content(body, "text/plain; charset=utf-8");
}

void answer_json(httplib::Response& response, int status, const nlohmann::json& body) {
  response.status = status;
  response.set_content(body.dump(2) + "\n", "application/json");
}

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

// The failures of the requests to each path, one log-only episode per path
// (core/fault_episode.hpp): a scraper that asks every 15 s while the journal
// cannot be read gets its first failure of a kind logged, then a count a
// minute, then the first success. Requests are served by several threads.
class FailingRequests {
 public:
  void failed(const std::string& path, std::string_view kind, std::string_view error) {
    std::lock_guard lock(mutex_);
    std::unique_ptr<FaultEpisode>& episode = by_path_[path];
    if (!episode) episode = std::make_unique<FaultEpisode>("http " + path, FaultEpisode::Listing::log_only);
    episode->occurred(kind, error);
  }
  void succeeded(const std::string& path) {
    std::lock_guard lock(mutex_);
    if (const auto found = by_path_.find(path); found != by_path_.end()) found->second->resolved();
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<FaultEpisode>> by_path_;
};

}  // namespace

struct Endpoint::Impl {
  Config config;
  SnapshotSource snapshot;
  std::unique_ptr<httplib::Server> server;
  int port = 0;
  std::thread listener;

  // The one resend that may run.
  std::mutex resend_mutex;
  std::condition_variable resend_done;
  std::thread resend_thread;
  bool resend_running = false;
  std::optional<nlohmann::json> resend_result;  // of the latest one
  int resend_status = 200;
  std::atomic<bool> stop_resend{false};

  FailingRequests failing;

  const Config& in_force(const DaemonSnapshot& daemon) const { return daemon.config ? *daemon.config : config; }
  void routes();
  // `handle`, whose exception is answered 500 and counted in `failing`.
  Handler guarded(const std::string& path, Handler handle);
  void metrics(httplib::Response& response);
  void healthz(httplib::Response& response);
  void resend(const httplib::Request& request, httplib::Response& response);
};

void Endpoint::Impl::metrics(httplib::Response& response) {
  const DaemonSnapshot daemon = snapshot();
  auto journal = open_for_reading(config);
  std::ostringstream text;
  write_metrics(in_force(daemon), *journal, daemon, text);
  response.set_content(text.str(), "text/plain; version=0.0.4; charset=utf-8");
}

void Endpoint::Impl::healthz(httplib::Response& response) {
  const DaemonSnapshot daemon = snapshot();
  HealthInputs inputs;
  inputs.now_ms = unix_now_ms();
  inputs.daemon_started_ms = daemon.started_ms;
  inputs.faults = daemon.faults;
  for (const SinkCounters& sink : daemon.sinks) inputs.last_delivered_ms[sink.sink] = sink.counters.last_delivered_ms;
  try {
    auto journal = open_for_reading(config);
    inputs.sinks = journal->status();
    for (const journal::SinkStatus& sink : inputs.sinks)
      inputs.parked_messages[sink.sink] = journal->parked_messages(sink.sink, 100);
    inputs.archives = journal->archive_health();
  } catch (const std::exception& e) {
    answer_text(response, 503, std::string("journal cannot be read: ") + e.what() + "\n");
    return;
  }
  const std::vector<std::string> reasons = health_reasons(inputs, config.http);
  if (reasons.empty()) {
    answer_text(response, 200, "ok\n");
    return;
  }
  std::string body;
  for (const std::string& reason : reasons) body += reason + "\n";
  answer_text(response, 503, body);
}

void Endpoint::Impl::resend(const httplib::Request& request, httplib::Response& response) {
  if (config.http.token_file.empty()) {
    answer_text(response, 403,
                "resend over HTTP is off: set http.token_file (a file whose first line is the bearer token) in the "
                "configuration\n");
    return;
  }
  const std::string token = read_token(config.http.token_file);
  if (!authorized(request.get_header_value("Authorization"), token)) {
    response.set_header("WWW-Authenticate", "Bearer");
    answer_text(response, 401, "unauthorized: send Authorization: Bearer <the first line of http.token_file>\n");
    return;
  }
  const std::shared_ptr<const Config> resend_config = std::make_shared<const Config>(in_force(snapshot()));
  ResendRequest parsed;
  try {
    parsed = parse_resend_request(request.body, *resend_config);
  } catch (const BadField& e) {
    answer_json(response, 400, {{"error", e.what()}, {"field", e.field()}});
    return;
  }
  const std::string origin = "POST /v1/resend from " + request.remote_addr;
  parsed.reason = parsed.reason.empty() ? origin : parsed.reason + " (" + origin + ")";

  std::unique_lock lock(resend_mutex);
  if (resend_running) {
    answer_json(response, 409, {{"error", "a resend is running; try again when it has ended (gapless-replay requests)"}});
    return;
  }
  if (resend_thread.joinable()) resend_thread.join();
  resend_running = true;
  resend_result.reset();
  spdlog::info("http: resend requested remote={} sink={} from={} to={} dry_run={}", request.remote_addr, parsed.sink,
               parsed.selection.from, parsed.selection.to, parsed.dry_run);
  resend_thread = std::thread([this, parsed, resend_config] {
    nlohmann::json result;
    int status = 200;
    try {
      const replay::ResendResult done = replay::resend(*resend_config, parsed.selection, parsed.sink, parsed.destinations,
                                                       parsed.rate, parsed.reason, parsed.dry_run, stop_resend, {});
      result = {{"request_id", done.request_id ? nlohmann::json(*done.request_id) : nullptr},
                {"sink", parsed.sink},
                {"dry_run", parsed.dry_run},
                {"series", done.series},
                {"ingested", done.ingested},
                {"messages", done.messages}};
      spdlog::info("http: resend done sink={} request={} messages={} dry_run={}", parsed.sink,
                   done.request_id.value_or(0), done.messages, parsed.dry_run);
    } catch (const std::exception& e) {
      status = 500;
      result = {{"error", e.what()}};
      spdlog::error("http: resend failed sink={} error=\"{}\"", parsed.sink, e.what());
    }
    std::lock_guard guard(resend_mutex);
    resend_result = std::move(result);
    resend_status = status;
    resend_running = false;
    resend_done.notify_all();
  });
  if (resend_done.wait_for(lock, kResendAnswerWithin, [&] { return !resend_running; })) {
    answer_json(response, resend_status, *resend_result);
    return;
  }
  answer_json(response, 202,
              {{"state", "running"},
               {"sink", parsed.sink},
               {"note", "the resend goes on in the daemon; gapless-replay requests shows it when it has ended"}});
}

Handler Endpoint::Impl::guarded(const std::string& path, Handler handle) {
  return [this, path, handle = std::move(handle)](const httplib::Request& request, httplib::Response& response) {
    std::string kind = "error", what = "unknown error";
    try {
      handle(request, response);
      failing.succeeded(path);
      return;
    } catch (const journal::JournalError& e) {
      kind = journal::fault_kind(e.fault());
      what = e.what();
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    failing.failed(path, kind, request.method + " " + path + ": " + what);
    spdlog::debug("http: request failed method={} path={} kind={} error=\"{}\"", request.method, path, kind, what);
    answer_text(response, 500, what + "\n");
  };
}

void Endpoint::Impl::routes() {
  server->Get("/metrics", guarded("/metrics", [this](const httplib::Request&, httplib::Response& response) {
                metrics(response);
              }));
  server->Get("/healthz", guarded("/healthz", [this](const httplib::Request&, httplib::Response& response) {
                healthz(response);
              }));
  server->Get("/v1/status", guarded("/v1/status", [this](const httplib::Request&, httplib::Response& response) {
                const DaemonSnapshot daemon = snapshot();
                auto journal = open_for_reading(config);
                nlohmann::json status = status::to_json(in_force(daemon), *journal);
                if (daemon.push) {  // only the running daemon knows what was pushed to it
                  nlohmann::json answers = nlohmann::json::object();
                  for (const auto& [code, count] : daemon.push->answers) answers[std::to_string(code)] = count;
                  status["push"] = {{"runs_journaled", daemon.push->runs_journaled},
                                    {"duplicates", daemon.push->duplicates},
                                    {"series_messages", daemon.push->series_messages},
                                    {"commits", daemon.push->groups},
                                    {"answers", answers}};
                }
                answer_json(response, 200, status);
              }));
  server->Post("/v1/resend", guarded("/v1/resend", [this](const httplib::Request& request, httplib::Response& response) {
                 resend(request, response);
               }));
}

Endpoint::Endpoint(const Config& config, SnapshotSource snapshot) : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->snapshot = std::move(snapshot);
  const ListenAddress address = parse_listen(config.http.listen, "http.listen");
  if (!config.http.cert_file.empty()) {
    // Each file checked first, so that the error names the key to fix;
    // cpp-httplib only says that the pair did not load.
    for (const auto& [key, path] : {std::pair{"http.cert_file", &config.http.cert_file},
                                    std::pair{"http.key_file", &config.http.key_file}})
      if (::access(path->c_str(), R_OK) != 0)
        throw Error(std::string(key) + ": cannot read " + *path + ": " + std::strerror(errno));
    auto secure = std::make_unique<httplib::SSLServer>(config.http.cert_file.c_str(), config.http.key_file.c_str());
    if (!secure->is_valid())
      throw Error("http.cert_file, http.key_file: cannot set up TLS with " + config.http.cert_file + " and " +
                  config.http.key_file + " (a PEM certificate and its own private key)");
    impl_->server = std::move(secure);
  } else {
    impl_->server = std::make_unique<httplib::Server>();
  }
  impl_->routes();
  // SO_REUSEADDR only: cpp-httplib also sets SO_REUSEPORT by default, which
  // would let a second daemon (or anything else) share the port silently
  // instead of failing to start.
  impl_->server->set_socket_options([](int socket) {
    const int yes = 1;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl_->server->set_read_timeout(std::chrono::seconds(10));
  impl_->server->set_write_timeout(std::chrono::seconds(10));
  impl_->server->set_payload_max_length(1 << 20);
  if (address.port == 0) {
    impl_->port = impl_->server->bind_to_any_port(address.host);
    if (impl_->port < 0) impl_->port = 0;
  } else if (impl_->server->bind_to_port(address.host, address.port)) {
    impl_->port = address.port;
  }
  if (impl_->port <= 0)
    throw Error("http.listen: cannot listen on " + config.http.listen + ": " + std::strerror(errno) +
                " (another process on that port, or an address this host does not have)");
  impl_->listener = std::thread([impl = impl_.get()] {
    try {
      if (!impl->server->listen_after_bind())
        spdlog::error("http: the endpoint stopped serving (listen failed); delivery goes on");
    } catch (const std::exception& e) {
      spdlog::error("http: the endpoint stopped serving error=\"{}\"; delivery goes on", e.what());
    }
  });
  spdlog::info("http: listening address={}:{} tls={} resend={}", address.host, impl_->port,
               config.http.cert_file.empty() ? "off" : "on", config.http.token_file.empty() ? "off" : "token");
}

Endpoint::~Endpoint() { stop(); }

void Endpoint::stop() {
  if (!impl_) return;
  impl_->stop_resend = true;
  impl_->server->stop();
  if (impl_->listener.joinable()) impl_->listener.join();
  if (impl_->resend_thread.joinable()) impl_->resend_thread.join();
}

int Endpoint::port() const { return impl_->port; }

}  // namespace gapless::http
