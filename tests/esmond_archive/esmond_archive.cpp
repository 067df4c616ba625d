#include "esmond_archive.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <limits>
#include <stdexcept>

#include <httplib.h>

#include "query.hpp"
#include "reply.hpp"
#include "runs.hpp"
#include "values.hpp"

namespace gapless::test {

using nlohmann::json;
using esmond::BadRequest;
using esmond::EventType;
using esmond::Series;

namespace {

constexpr std::string_view archive_prefix = "/esmond/perfsonar/archive";
constexpr std::string_view control_prefix = "/_control/";
constexpr int64_t open_end_slack = 3600;       // docs/esmond.md 1.2: open end = now + 3600 s
constexpr int64_t uncapped_fetch = 1'000'000;  // docs/esmond.md 1.3: what esmond fetches without `limit`

int64_t wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > at) parts.emplace_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return parts;
}

int port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  return -1;
}

// httplib gives a handler no socket, so the connection to drop is found by its
// address pair among the process's descriptors and shut down: the client sees
// the connection close before any byte of a response.
bool shut_down_connection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return false;
  bool found = false;
  while (dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof local, peer_size = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) continue;
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port) {
      ::shutdown(fd, SHUT_RDWR);
      found = true;
      break;
    }
  }
  closedir(dir);
  return found;
}

// A client that hangs up must not kill the process with SIGPIPE when the
// server writes to it (nor when the close fault shuts a socket down).
void ignore_sigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
}

esmond::Params params_of(const httplib::Request& req) { return esmond::Params(req.params.begin(), req.params.end()); }

std::string param(const httplib::Request& req, const std::string& name, const std::string& fallback = "") {
  return req.has_param(name) ? req.get_param_value(name) : fallback;
}

int64_t int_param(const httplib::Request& req, const std::string& name, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  auto value = esmond::parse_python_int(req.get_param_value(name));
  if (!value) throw std::invalid_argument(name + " must be an integer");
  return *value;
}

// The subject fields that are IP addresses; esmond resolves a host name given
// for them (docs/esmond.md 1.2). Here the names are the series' own hosts.
bool is_ip_field(std::string_view name) {
  return name == "source" || name == "destination" || name == "measurement-agent";
}

bool is_reserved(std::string_view name) {  // types.py RESERVED_GET_PARAMS
  return name == "format" || name == "limit" || name == "offset" || name == "dns-match-rule" || name == "time" ||
         name == "time-start" || name == "time-end" || name == "time-range";
}

}  // namespace

// ---------------------------------------------------------------- clock

ArchiveClock::ArchiveClock(int64_t now, double speed)
    : anchor_now_(static_cast<double>(now)), anchor_real_(std::chrono::steady_clock::now()), speed_(speed) {}

int64_t ArchiveClock::now() const {
  std::lock_guard lock(mutex_);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - anchor_real_).count();
  return static_cast<int64_t>(std::floor(anchor_now_ + speed_ * elapsed));
}

void ArchiveClock::set_now(int64_t now) {
  std::lock_guard lock(mutex_);
  anchor_now_ = static_cast<double>(now);
  anchor_real_ = std::chrono::steady_clock::now();
}

void ArchiveClock::advance(int64_t seconds) {
  std::lock_guard lock(mutex_);
  const auto real = std::chrono::steady_clock::now();
  anchor_now_ += speed_ * std::chrono::duration<double>(real - anchor_real_).count() + static_cast<double>(seconds);
  anchor_real_ = real;
}

// ---------------------------------------------------------------- setup

namespace {

EsmondArchive::Options checked(EsmondArchive::Options options) {
  if (options.cadence <= 0) throw std::invalid_argument("esmond archive: cadence must be positive");
  if (options.series < 0) throw std::invalid_argument("esmond archive: series must not be negative");
  if (options.threads <= 0) throw std::invalid_argument("esmond archive: threads must be positive");
  if (options.elmond_missing_field_rate < 0 || options.elmond_missing_field_rate >= 1)
    throw std::invalid_argument("esmond archive: elmond_missing_field_rate must be in [0, 1)");
  if (!options.now) options.now = wall_clock_now();
  if (!options.start) options.start = *options.now - 7 * 86400;
  return options;
}

esmond::SeriesPlan plan_of(const EsmondArchive::Options& o) {
  return {o.series, o.kinds, o.event_types, o.cadence, o.seed, o.series_end, o.flavour == ArchiveFlavour::elmond};
}

esmond::StoreConfig store_config_of(const EsmondArchive::Options& o) {
  return {o.seed, *o.start, o.cadence, o.ingest_delay, o.retention};
}

}  // namespace

EsmondArchive::EsmondArchive(Options options)
    : options_(checked(std::move(options))),
      series_(esmond::build_series(plan_of(options_))),
      store_(store_config_of(options_)),
      clock_(*options_.now, options_.clock_speed) {
  if (!options_.runs.empty() && options_.flavour != ArchiveFlavour::elmond)
    throw std::invalid_argument("esmond archive: runs are served in elmond mode only");
  for (esmond::RunSeries& loaded : esmond::series_from_runs(options_.runs, static_cast<int>(series_.size()))) {
    esmond::Series& s = loaded.series;
    s.end = std::numeric_limits<int64_t>::min() / 4;  // no generated run
    for (esmond::EventType& et : s.event_types) et.summaries = esmond::elmond_summaries(et.name);
    series_.push_back(std::move(s));
    const esmond::Series& kept = series_.back();
    for (esmond::RunPoint& point : loaded.points)
      if (const esmond::EventType* et = kept.find(point.event_type))
        store_.put(kept, *et, point.ts, std::move(point.val), point.ts);  // written when the run ran
  }
  for (size_t i = 0; i < series_.size(); ++i) by_key_[series_[i].key] = i;
}

EsmondArchive::~EsmondArchive() { stop(); }

void EsmondArchive::start() {
  if (server_) return;
  ignore_sigpipe();
  server_ = std::make_unique<httplib::Server>();
  const size_t threads = static_cast<size_t>(options_.threads);
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(10000);
  server_->Get(".*", [this](const httplib::Request& req, httplib::Response& res) { handle_get(req, res); });
  server_->Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind(control_prefix, 0) == 0) return handle_control(req, res);
    // The archive is read-only: no metadata or data is written over HTTP.
    res.status = 405;
    res.set_content(json{{"detail", "Method \"POST\" not allowed."}}.dump(), "application/json");
  });
  server_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(error_page(500), "text/html; charset=utf-8");
  });
  port_ = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                             : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0) {
    server_.reset();
    throw std::runtime_error("esmond archive: cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port));
  }
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = false;
  }
  listener_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is a no-op until the server runs; wait so that it never is.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void EsmondArchive::stop() {
  if (!server_) return;
  {
    std::lock_guard lock(stop_mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  server_->stop();
  if (listener_.joinable()) listener_.join();
  server_.reset();
}

std::string EsmondArchive::root_url() const { return "http://" + options_.host + ":" + std::to_string(port_); }

std::string EsmondArchive::base_url() const { return root_url() + std::string(archive_prefix) + "/"; }

bool EsmondArchive::sleep_unless_stopped(int milliseconds) {
  std::unique_lock lock(stop_mutex_);
  return !stop_cv_.wait_for(lock, std::chrono::milliseconds(milliseconds), [this] { return stopping_; });
}

// ---------------------------------------------------------------- model access

const Series* EsmondArchive::find_series(const std::string& key) const {
  auto found = by_key_.find(key);
  return found == by_key_.end() ? nullptr : &series_[found->second];
}

std::vector<std::string> EsmondArchive::metadata_keys() const {
  std::vector<std::string> keys;
  for (const Series& s : series_) keys.push_back(s.key);
  return keys;
}

json EsmondArchive::event_type_json(const Series& s, const EventType& et, int64_t now) const {
  const std::string uri = std::string(archive_prefix) + "/" + s.key + "/" + et.name + "/";
  // esmond updates time-updated on every row of the event type at each write,
  // so the summaries share the base row's value.
  const std::optional<int64_t> updated = store_.time_updated(s, et, now);
  const json time_updated = updated ? json(*updated) : json(nullptr);
  json summaries = json::array();
  for (const esmond::Summary& summary : et.summaries) {
    const std::string window = std::to_string(summary.window);
    summaries.push_back({{"summary-type", summary.type},
                         {"summary-window", window},  // a string (docs/esmond.md 1.5)
                         {"time-updated", time_updated},
                         {"uri", uri + esmond::summary_type_plural(summary.type) + "/" + window}});
  }
  return {{"base-uri", uri + "base"}, {"event-type", et.name}, {"summaries", summaries}, {"time-updated", time_updated}};
}

// docs/esmond.md 1.5: every field of ArchiveSerializer, the flattened subject, and the
// free-form parameters as strings.
json EsmondArchive::metadata_json(const Series& s, const std::string& root, int64_t now) const {
  const std::string uri = std::string(archive_prefix) + "/" + s.key + "/";
  json event_types = json::array();
  for (const EventType& et : s.event_types) event_types.push_back(event_type_json(s, et, now));
  json m = {
      {"url", root + uri},
      {"uri", uri},
      {"metadata-key", s.key},
      {"subject-type", s.subject_type},
      {"source", s.source},
      {"destination", s.destination},
      {"measurement-agent", s.measurement_agent},
      {"tool-name", s.tool_name},
      {"input-source", s.input_source},
      {"input-destination", s.input_destination},
      {"event-types", event_types},
  };
  for (const auto& [name, value] : s.parameters) m[name] = value;
  return m;
}

json EsmondArchive::metadata(const std::string& key) const {
  const Series* s = find_series(key);
  if (s == nullptr) throw std::invalid_argument("esmond archive: no metadata-key " + key);
  if (options_.flavour == ArchiveFlavour::elmond) return elmond_metadata_json(*s, root_url(), now());
  return metadata_json(*s, root_url(), now());
}

void EsmondArchive::serve_points(const Series& s, const std::string& event_type, const std::string& summary_type,
                                 int64_t window, int64_t begin, int64_t end, int64_t now,
                                 const esmond::Emit& emit) const {
  // A key, event type or summary the archive does not hold is an empty
  // answer, not an error: esmond just finds no rows.
  const EventType* et = s.find(event_type);
  if (et == nullptr) return;
  if (summary_type == "base") return store_.base_points(s, *et, begin, end, now, emit);
  if (const esmond::Summary* summary = et->find_summary(summary_type, window))
    store_.summary_points(s, *et, *summary, begin, end, now, emit);
}

json EsmondArchive::points(const std::string& key, const std::string& event_type, const std::string& summary_type,
                           int64_t window, int64_t begin, std::optional<int64_t> end) const {
  const int64_t at = now();
  json list = json::array();
  const Series* s = find_series(key);
  if (s == nullptr) return list;
  if (options_.flavour == ArchiveFlavour::elmond) {
    if (summary_type != "base" && window > 0) return list;  // elmond serves rollups empty (README.md)
    elmond_documents(*s, event_type, summary_type, begin, end.value_or(INT64_MAX), at,
                     [&](int64_t ts, const json* val) {
                       if (val != nullptr) list.push_back({{"ts", ts}, {"val", *val}});
                       return true;
                     });
    return list;
  }
  serve_points(*s, event_type, summary_type, window, begin, end.value_or(at + open_end_slack), at,
               [&](int64_t ts, const json& val) {
                 list.push_back({{"ts", ts}, {"val", val}});
                 return true;
               });
  return list;
}

namespace {

struct Target {
  const Series* series;
  const EventType* event_type;
};

Target must_find(const std::vector<Series>& all, const std::string& key, const std::string& event_type) {
  for (const Series& s : all) {
    if (s.key != key) continue;
    if (const EventType* et = s.find(event_type)) return {&s, et};
    throw std::invalid_argument("esmond archive: metadata " + key + " has no event type " + event_type);
  }
  throw std::invalid_argument("esmond archive: no metadata-key " + key);
}

}  // namespace

json EsmondArchive::insert_point(const std::string& key, const std::string& event_type, int64_t ts,
                                 std::optional<json> val) {
  const Target t = must_find(series_, key, event_type);
  json value = val ? std::move(*val) : esmond::generate_value(options_.seed, *t.series, event_type, ts);
  store_.put(*t.series, *t.event_type, ts, value, now());
  return value;
}

json EsmondArchive::correct_point(const std::string& key, const std::string& event_type, int64_t ts,
                                  std::optional<json> val) {
  const Target t = must_find(series_, key, event_type);
  const int64_t at = now();
  const std::optional<json> old = store_.value_at(*t.series, *t.event_type, ts, at);
  if (!old) throw std::invalid_argument("esmond archive: no " + event_type + " point at " + std::to_string(ts));
  json value = val ? std::move(*val) : esmond::corrected_value(*t.series, event_type, *old);
  store_.put(*t.series, *t.event_type, ts, value, at);
  return value;
}

// ---------------------------------------------------------------- HTTP

namespace {

std::string absolute_path(const httplib::Request& req, const std::string& root) {
  const std::string host = req.get_header_value("Host");
  return (host.empty() ? root : "http://" + host) + req.path;
}

std::string root_of(const httplib::Request& req, const std::string& root) {
  const std::string host = req.get_header_value("Host");
  return host.empty() ? root : "http://" + host;
}

// A browser asking for text/html, or ?format=api, gets DRF's browsable API
// page (docs/esmond.md 1.2: DRF enables both renderers).
bool wants_html(const httplib::Request& req) {
  if (req.has_param("format")) return req.get_param_value("format") == "api";
  return req.get_header_value("Accept").find("text/html") != std::string::npos;
}

}  // namespace

void EsmondArchive::handle_get(const httplib::Request& req, httplib::Response& res) {
  if (req.path.rfind(control_prefix, 0) == 0) return handle_control(req, res);
  ++requests_;
  const int64_t now = clock_.now();
  Reply reply;
  try {
    reply = route(req, now);
  } catch (const BadRequest& e) {  // esmond's ParseError
    reply = Reply::of_json({{"detail", e.what()}}, 400);
  }
  const FaultTable::Selection faults = faults_.take(req.target, reply.listed_keys);
  if (faults.delay_ms > 0 && !sleep_unless_stopped(faults.delay_ms)) {
    shut_down_connection(req);  // stopping: no half-made answer
    return;
  }
  if (faults.action) return apply_fault(req, res, *faults.action, reply);
  if (options_.flavour == ArchiveFlavour::esmond && reply.content_type == "application/json" &&
      reply.status == 200 && wants_html(req)) {  // elmond (Flask) answers JSON only
    reply.body = browsable_api_page(req.target, reply.body);
    reply.content_type = "text/html; charset=utf-8";
  }
  points_ += reply.points;
  send(res, std::move(reply));
}

void EsmondArchive::send(httplib::Response& res, Reply reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  if (reply.content_type == "application/json") {
    res.set_header("Vary", "Accept");
    res.set_header("Allow", "GET, POST, HEAD, OPTIONS");
  }
  res.set_content(std::move(reply.body), reply.content_type);
}

void EsmondArchive::apply_fault(const httplib::Request& req, httplib::Response& res, const Fault& fault,
                                Reply& reply) {
  switch (fault.kind) {
    case FaultKind::http_error: {
      const int status = fault.status ? fault.status : 500;
      res.status = status;
      res.set_content(error_page(status), "text/html; charset=utf-8");
      return;
    }
    case FaultKind::close:
      shut_down_connection(req);
      res.status = 500;  // never reaches the client
      return;
    case FaultKind::short_body: {
      auto body = std::make_shared<std::string>(std::move(reply.body));
      res.status = 200;
      res.set_content_provider(body->size(), reply.content_type,
                               [body](size_t, size_t, httplib::DataSink& sink) {
                                 sink.write(body->data(), body->size() / 2);
                                 return false;  // httplib closes the connection here
                               });
      return;
    }
    case FaultKind::redirect:
      res.status = fault.status ? fault.status : 302;
      res.set_header("Location", fault.location.empty() ? root_of(req, root_url()) + "/moved" + req.target
                                                        : fault.location);
      res.set_content(error_page(res.status), "text/html; charset=utf-8");
      return;
    case FaultKind::html:
      res.status = 200;
      res.set_content(browsable_api_page(req.target, reply.body), "text/html; charset=utf-8");
      return;
    case FaultKind::truncated: reply.body = truncate_json(reply.body); break;
    case FaultKind::malformed: reply.body = malform_json(reply.body); break;
    case FaultKind::missing_field: reply.body = drop_field(reply.body, fault); break;
    case FaultKind::wrong_type: reply.body = retype_field(reply.body, fault); break;
    case FaultKind::slow: break;
  }
  send(res, std::move(reply));
}

EsmondArchive::Reply EsmondArchive::route(const httplib::Request& req, int64_t now) {
  const std::string_view path = req.path;
  if (path.rfind(archive_prefix, 0) != 0 ||
      (path.size() > archive_prefix.size() && path[archive_prefix.size()] != '/')) {
    Reply reply;
    reply.status = 404;
    reply.body = "<h1>Not Found</h1><p>The requested URL " + req.path + " was not found on this server.</p>";
    reply.content_type = "text/html; charset=utf-8";
    return reply;
  }
  if (options_.flavour == ArchiveFlavour::elmond) return elmond_route(req, now);
  if (req.has_param("format")) {  // DRF: an unknown format is a 404
    const std::string format = req.get_param_value("format");
    if (format != "json" && format != "api") return Reply::of_json({{"detail", "Not found."}}, 404);
  }
  const std::vector<std::string> parts = split_path(path.substr(archive_prefix.size()));
  switch (parts.size()) {
    case 0: return listing(req, now);
    case 1: return metadata_detail(req, parts[0], now);
    case 2: return event_type_detail(parts[0], parts[1], now);
    case 3:
    case 4: return data(req, parts, now);
    default: return Reply::of_json({{"detail", "Not found."}}, 404);
  }
}

// ---------------------------------------------------------------- listing

namespace {

// The IP addresses a source/destination/measurement-agent filter stands for:
// the address itself, or the address of one of the archive's host names
// (esmond resolves names with DNS, honouring dns-match-rule; docs/esmond.md 1.2).
std::vector<std::string> resolve(const std::string& host, const std::string& rule, const std::vector<Series>& all) {
  static const std::vector<std::string> rules = {"v4v6", "only-v4", "only-v6", "prefer-v4", "prefer-v6"};
  if (std::find(rules.begin(), rules.end(), rule) == rules.end())
    throw BadRequest("Invalid dns-match-rule parameter " + rule);
  std::vector<std::string> found;
  for (const Series& s : all) {
    if (host == s.source || host == s.destination || host == s.measurement_agent) found = {host};
    if (host == s.input_source) found = {s.source};
    if (host == s.input_destination) found = {s.destination};
    if (!found.empty()) break;
  }
  if (found.empty() && host.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
      host.find_first_of(".:") != std::string::npos)
    found = {host};  // an address no series has: matches nothing
  const bool v6 = !found.empty() && found[0].find(':') != std::string::npos;
  if (found.empty() || (rule == "only-v4" && v6) || (rule == "only-v6" && !v6))
    throw BadRequest("Unable to find address for host " + host);
  return found;
}

// One row of esmond's ps_event_types table: the base row or a summary row of
// an event type. They share time-updated.
struct EventRow {
  const std::string& event_type;
  std::string_view summary_type;
  int64_t window;
  std::optional<int64_t> time_updated;
};

// The listing's filters, evaluated as esmond's get_queryset builds them:
// subject fields, metadata-key and subject-type on the metadata; event-type,
// summary-type, summary-window and the time filters all on ONE event-type
// row, the time filters against its time-updated (docs/esmond.md 1.2); every other
// non-reserved name against the free-form parameters.
class ListingFilter {
 public:
  ListingFilter(const esmond::Params& params, int64_t now, const std::vector<Series>& all,
                const esmond::Store& store)
      : now_(now), store_(store), time_(esmond::parse_time_filter(params, now)) {
    for (const auto& [name, value] : params) filters_[name] = value;  // QueryDict.get: the last value
    const std::string rule = esmond::last_value(params, "dns-match-rule").value_or("v4v6");
    for (const auto& [name, value] : filters_)
      if (is_ip_field(name)) addresses_[name] = resolve(value, rule, all);
    event_type_ = esmond::last_value(params, "event-type");
    summary_type_ = esmond::last_value(params, "summary-type");
    if (auto window = esmond::last_value(params, "summary-window")) {
      window_given_ = true;
      window_ = esmond::parse_python_int(*window);  // junk matches no row
    }
    has_row_filters_ = event_type_ || summary_type_ || window_given_ || time_.has_filters;
  }

  bool matches(const Series& s) const { return subject_matches(s) && rows_match(s); }

 private:
  static const std::string* subject_field(const Series& s, std::string_view name) {
    if (name == "source") return &s.source;
    if (name == "destination") return &s.destination;
    if (name == "measurement-agent") return &s.measurement_agent;
    if (name == "tool-name") return &s.tool_name;
    if (name == "input-source") return &s.input_source;
    if (name == "input-destination") return &s.input_destination;
    if (name == "subject-type") return &s.subject_type;
    if (name == "metadata-key") return &s.key;
    return nullptr;
  }

  bool subject_matches(const Series& s) const {
    for (const auto& [name, value] : filters_) {
      if (is_reserved(name) || name == "event-type" || name == "summary-type" || name == "summary-window") continue;
      if (const std::string* field = subject_field(s, name)) {
        if (is_ip_field(name)) {
          const auto& ips = addresses_.at(name);
          if (std::find(ips.begin(), ips.end(), *field) == ips.end()) return false;
        } else if (*field != value) {
          return false;
        }
        continue;
      }
      const std::pair<std::string, std::string> wanted{name, value};
      if (std::find(s.parameters.begin(), s.parameters.end(), wanted) == s.parameters.end()) return false;
    }
    return true;
  }

  bool row_matches(const EventRow& row) const {
    if (event_type_ && row.event_type != *event_type_) return false;
    if (summary_type_ && row.summary_type != *summary_type_) return false;
    if (window_given_ && window_ != row.window) return false;
    if (time_.has_filters) {  // SQL: a NULL time-updated matches no comparison
      if (!row.time_updated || *row.time_updated < time_.begin) return false;
      if (time_.end && *row.time_updated > *time_.end) return false;
    }
    return true;
  }

  bool rows_match(const Series& s) const {
    if (!has_row_filters_) return true;
    for (const EventType& et : s.event_types) {
      const std::optional<int64_t> updated = time_.has_filters ? store_.time_updated(s, et, now_) : std::nullopt;
      if (row_matches({et.name, "base", 0, updated})) return true;
      for (const esmond::Summary& summary : et.summaries)
        if (row_matches({et.name, summary.type, summary.window, updated})) return true;
    }
    return false;
  }

  int64_t now_;
  const esmond::Store& store_;
  esmond::TimeFilter time_;
  std::map<std::string, std::string> filters_;
  std::map<std::string, std::vector<std::string>> addresses_;
  std::optional<std::string> event_type_, summary_type_;
  std::optional<int64_t> window_;
  bool window_given_ = false;
  bool has_row_filters_ = false;
};

}  // namespace

EsmondArchive::Reply EsmondArchive::listing(const httplib::Request& req, int64_t now) {
  const esmond::Params params = params_of(req);
  const ListingFilter filter(params, now, series_, store_);
  std::vector<const Series*> matched;
  for (const Series& s : series_)
    if (filter.matches(s)) matched.push_back(&s);

  const esmond::Page page = esmond::parse_page(params);
  const auto count = static_cast<int64_t>(matched.size());
  const std::string root = root_of(req, root_url());
  Reply reply;
  json list = json::array();
  for (int64_t i = page.offset; i < std::min(count, page.offset + page.limit); ++i) {
    list.push_back(metadata_json(*matched[i], root, now));
    reply.listed_keys.push_back(matched[i]->key);
  }
  const esmond::Links links = esmond::page_links(absolute_path(req, root_url()), params, page, count);
  if (!list.empty()) {  // PSMetadataPaginator: the counts ride on the first element (docs/esmond.md 1.3)
    list[0]["metadata-count-total"] = count;
    list[0]["metadata-previous-page"] = links.previous.empty() ? json(nullptr) : json(links.previous);
    list[0]["metadata-next-page"] = links.next.empty() ? json(nullptr) : json(links.next);
  }
  reply.body = list.dump();
  if (const std::string link = esmond::link_header(links); !link.empty()) reply.headers.push_back({"Link", link});
  return reply;
}

EsmondArchive::Reply EsmondArchive::metadata_detail(const httplib::Request& req, const std::string& key,
                                                    int64_t now) {
  const Series* s = find_series(key);
  if (s == nullptr) return Reply::of_json({{"detail", "Not found."}}, 404);
  Reply reply = Reply::of_json(metadata_json(*s, root_of(req, root_url()), now));
  reply.listed_keys.push_back(key);
  return reply;
}

// api_v2.py EventTypeDetailViewset.retrieve: a list, empty when unknown.
EsmondArchive::Reply EsmondArchive::event_type_detail(const std::string& key, const std::string& event_type,
                                                      int64_t now) {
  json list = json::array();
  if (const Series* s = find_series(key))
    if (const EventType* et = s->find(event_type)) list.push_back(event_type_json(*s, *et, now));
  return Reply::of_json(list);
}

// ---------------------------------------------------------------- data

// A summary URL without a window: the summaries of that type, not data (docs/esmond.md 1.1).
EsmondArchive::Reply EsmondArchive::summary_details(const std::string& key, const std::string& event_type,
                                                    const std::string& summary_type, int64_t now) {
  json list = json::array();
  if (const Series* s = find_series(key)) {
    if (const EventType* et = s->find(event_type)) {
      const json detail = event_type_json(*s, *et, now);
      for (const json& summary : detail.at("summaries"))
        if (summary.at("summary-type") == summary_type) list.push_back(summary);
    }
  }
  return Reply::of_json(list);
}

EsmondArchive::Reply EsmondArchive::data(const httplib::Request& req, const std::vector<std::string>& parts,
                                         int64_t now) {
  const std::string& key = parts[0];
  const std::string& event_type = parts[1];
  if (!esmond::value_type_of(event_type))
    throw BadRequest("Unsupported event type '" + event_type + "' provided");
  const std::optional<std::string> summary_type = esmond::summary_type_from_plural(parts[2]);
  if (!summary_type) throw BadRequest("Invalid summary type '" + parts[2] + "'");
  int64_t window = 0;
  if (parts.size() == 4) {
    const auto parsed = esmond::parse_python_int(parts[3]);
    if (!parsed) throw BadRequest("Summary window parameter must be an integer");
    window = *parsed;
  } else if (*summary_type != "base") {
    return summary_details(key, event_type, *summary_type, now);
  }

  const esmond::Params params = params_of(req);
  const esmond::TimeFilter time = esmond::parse_time_filter(params, now);
  const int64_t end = time.end.value_or(now + open_end_slack);  // docs/esmond.md 1.2
  const esmond::Page page = esmond::parse_page(params);
  // docs/esmond.md 1.3: with `limit`, esmond fetches only limit+offset points, so the
  // paginator never sees more and never links "next"; without it, it fetches
  // up to a million and links the next 1500 - a page whose own fetch is then
  // capped at 3000, so it has no next link.
  const int64_t fetched_at_most = page.limit_sent ? page.limit + page.offset : uncapped_fetch;
  const int64_t enough = std::min(fetched_at_most, page.offset + page.limit + 1);

  Reply reply;
  reply.listed_keys.push_back(key);
  reply.body = "[";
  int64_t seen = 0;
  if (const Series* s = find_series(key)) {
    serve_points(*s, event_type, *summary_type, window, time.begin, end, now, [&](int64_t ts, const json& val) {
      if (seen >= page.offset && seen < page.offset + page.limit) {
        if (reply.points > 0) reply.body += ',';
        reply.body += "{\"ts\":";
        reply.body += std::to_string(ts);
        reply.body += ",\"val\":";
        reply.body += val.dump();
        reply.body += '}';
        ++reply.points;
      }
      return ++seen < enough;
    });
  }
  reply.body += ']';
  const esmond::Links links = esmond::page_links(absolute_path(req, root_url()), params, page, seen);
  if (const std::string link = esmond::link_header(links); !link.empty()) reply.headers.push_back({"Link", link});
  return reply;
}

// ---------------------------------------------------------------- control

namespace {

// POST /_control/fault?kind=K[&match=M][&count=N][&status=S][&delay_ms=D][&location=URL][&field=F]
Fault fault_of_query(const httplib::Request& req) {
  const auto kind = fault_kind_from_name(param(req, "kind"));
  if (!kind) throw std::invalid_argument("unknown fault kind '" + param(req, "kind") + "'");
  Fault fault = Fault::of(*kind);
  fault.match = param(req, "match");
  fault.count = static_cast<int>(int_param(req, "count", -1));
  fault.status = static_cast<int>(int_param(req, "status", 0));
  fault.delay_ms = static_cast<int>(int_param(req, "delay_ms", fault.delay_ms));
  fault.location = param(req, "location");
  fault.field = param(req, "field");
  return fault;
}

}  // namespace

void EsmondArchive::handle_control(const httplib::Request& req, httplib::Response& res) {
  const std::string what = req.path.substr(std::min(req.path.size(), control_prefix.size()));
  const bool post = req.method == "POST";
  json answer;
  try {
    if (what == "clock") {
      if (post && req.has_param("now")) set_now(int_param(req, "now", 0));
      if (post && req.has_param("advance")) advance(int_param(req, "advance", 0));
      answer = {{"now", now()}};
    } else if (what == "fault" && post) {
      answer = {{"id", add_fault(fault_of_query(req))}};
    } else if (what == "faults") {
      answer = faults_.describe();
    } else if (what == "faults/clear" && post) {
      clear_faults();
      answer = json::object();
    } else if (what == "fault/remove" && post) {
      answer = {{"removed", remove_fault(static_cast<int>(int_param(req, "id", 0)))}};
    } else if (what == "point" && post) {
      std::optional<json> val;
      if (req.has_param("val")) val = json::parse(param(req, "val"));
      const std::string key = param(req, "key"), event_type = param(req, "event-type");
      const int64_t ts = int_param(req, "ts", 0);
      const json written = param(req, "correct") == "1" ? correct_point(key, event_type, ts, val)
                                                        : insert_point(key, event_type, ts, val);
      answer = {{"ts", ts}, {"val", written}};
    } else if (what == "stats") {
      answer = {{"now", now()},
                {"requests", requests_served()},
                {"points", points_served()},
                {"series", series_.size()},
                {"base_url", base_url()}};
    } else {
      res.status = 404;
      res.set_content(json{{"error", "unknown control endpoint " + req.path}}.dump(), "application/json");
      return;
    }
  } catch (const std::exception& e) {
    res.status = 400;
    res.set_content(json{{"error", e.what()}}.dump(), "application/json");
    return;
  }
  res.set_content(answer.dump(), "application/json");
}

}  // namespace gapless::test
