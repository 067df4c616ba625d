#include "harness/logstash_standin.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "core/error.hpp"

namespace gapless::test {

namespace {

bool same_name(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Logstash's http input answers an accepted event 200 with the body "ok"
// (its response_code and the plugin's fixed body; Elastic docs, "Http input
// plugin").
void answer_ok(httplib::Response& response) {
  response.status = 200;
  response.set_content("ok", "text/plain");
}

// The http input when its queue is full: 429 (Elastic docs, "Http input
// plugin", Blocking Behavior).
void answer_busy(httplib::Response& response) {
  response.status = 429;
  response.set_content("Too Many Requests", "text/plain");
}

// perfSONAR's Apache proxies /logstash to localhost:11283 (perfsonar/archive
// config/apache/apache-logstash.conf); with Logstash stopped, mod_proxy
// answers its stock 503 page (toolkit issue #446 shows these 503s).
void answer_down(httplib::Response& response) {
  response.status = 503;
  response.set_content(
      "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>503 Service Unavailable</title>\n"
      "</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your\n"
      "request due to maintenance downtime or capacity\nproblems. Please try again later.</p>\n</body></html>\n",
      "text/html; charset=iso-8859-1");
}

// Apache's Basic authentication in front of /logstash (the same Apache
// configuration; the login file /etc/perfsonar/opensearch/logstash_login):
// 401, a Basic challenge and Apache's stock page.
void answer_unauthorized(httplib::Response& response) {
  response.status = 401;
  response.set_header("WWW-Authenticate", "Basic realm=\"Logstash\"");
  response.set_content(
      "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>401 Unauthorized</title>\n"
      "</head><body>\n<h1>Unauthorized</h1>\n<p>This server could not verify that you\nare authorized to access "
      "the document\nrequested.  Either you supplied the wrong\ncredentials (e.g., bad password), or your\n"
      "browser doesn't understand how to supply\nthe credentials required.</p>\n</body></html>\n",
      "text/html; charset=iso-8859-1");
}

// Refusals of one message: no source shows Logstash's own words for these,
// so each says plainly what it is.
void answer_refused(httplib::Response& response, int status, const std::string& why) {
  response.status = status;
  response.set_content(why, "text/plain");
}

std::string base64(const std::string& text) {
  static const char* digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(text[i]) << 16) | (static_cast<unsigned char>(text[i + 1]) << 8) |
                       static_cast<unsigned char>(text[i + 2]);
    out += {digits[n >> 18], digits[(n >> 12) & 63], digits[(n >> 6) & 63], digits[n & 63]};
  }
  if (i + 1 == text.size()) {
    const unsigned n = static_cast<unsigned char>(text[i]) << 16;
    out += {digits[n >> 18], digits[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == text.size()) {
    const unsigned n = (static_cast<unsigned char>(text[i]) << 16) | (static_cast<unsigned char>(text[i + 1]) << 8);
    out += {digits[n >> 18], digits[(n >> 12) & 63], digits[(n >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

std::optional<std::string> LogstashStandin::Request::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (same_name(key, name)) return value;
  return std::nullopt;
}

size_t LogstashStandin::Request::header_count(const std::string& name) const {
  return static_cast<size_t>(
      std::count_if(headers.begin(), headers.end(), [&](const auto& header) { return same_name(header.first, name); }));
}

std::optional<LogstashStandin::Answer> LogstashStandin::parse_answer(const std::string& name) {
  static const std::map<std::string, Answer> names = {
      {"ok", Answer::ok},           {"busy", Answer::busy},
      {"down", Answer::down},       {"unauthorized", Answer::unauthorized},
      {"hang", Answer::hang},       {"bad-request", Answer::bad_request},
      {"too-large", Answer::too_large}, {"unprocessable", Answer::unprocessable}};
  const auto found = names.find(name);
  if (found == names.end()) return std::nullopt;
  return found->second;
}

LogstashStandin::LogstashStandin(Options options) : options_(std::move(options)), answer_(options_.answer) {
  ::signal(SIGPIPE, SIG_IGN);  // a client that hung up must not end the test
  if (!options_.cert_file.empty()) {
    auto secure = std::make_unique<httplib::SSLServer>(
        options_.cert_file.c_str(), options_.key_file.c_str(),
        options_.client_ca_file.empty() ? nullptr : options_.client_ca_file.c_str());
    if (!secure->is_valid())
      throw Error("logstash stand-in: cannot load " + options_.cert_file + " and " + options_.key_file);
    server_ = std::move(secure);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  // Hanging requests hold a thread each: room for a sink's whole window.
  server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(60);
  server_->set_payload_max_length(64 * 1024 * 1024);
  const auto handler = [this](const httplib::Request& request, httplib::Response& response) {
    handle(request, response);
  };
  server_->Put(".*", handler);
  server_->Post(".*", handler);
  const int port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                                      : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port <= 0)
    throw Error("logstash stand-in: cannot listen on " + options_.host + ":" + std::to_string(options_.port));
  port_ = static_cast<uint16_t>(port);
  listener_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

LogstashStandin::~LogstashStandin() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  server_->stop();
  if (listener_.joinable()) listener_.join();
}

std::string LogstashStandin::url(const std::string& path) const {
  return std::string(options_.cert_file.empty() ? "http" : "https") + "://" + options_.host + ":" +
         std::to_string(port_) + path;
}

void LogstashStandin::answer(Answer answer) {
  {
    std::lock_guard lock(mutex_);
    answer_ = answer;
  }
  changed_.notify_all();
}

void LogstashStandin::answer_bodies_containing(const std::string& marker, Answer answer) {
  std::lock_guard lock(mutex_);
  by_marker_[marker] = answer;
}

std::vector<LogstashStandin::Request> LogstashStandin::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

size_t LogstashStandin::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

void LogstashStandin::handle(const httplib::Request& request, httplib::Response& response) {
  Request recorded;
  recorded.method = request.method;
  recorded.path = request.path;
  for (const auto& [name, value] : request.headers) recorded.headers.emplace_back(name, value);
  recorded.body = request.body;
  recorded.remote_port = request.remote_port;

  std::unique_lock lock(mutex_);
  const size_t index = requests_.size();
  requests_.push_back(recorded);
  Answer answer = answer_;
  for (const auto& [marker, refusal] : by_marker_)
    if (request.body.find(marker) != std::string::npos) answer = refusal;
  if (!options_.login.empty()) {
    const std::string expected = "Basic " + base64(options_.login + ":" + options_.password);
    if (recorded.header("Authorization").value_or("") != expected) answer = Answer::unauthorized;
  }
  if (answer == Answer::hang) {
    changed_.wait(lock, [&] { return stopping_ || answer_ != Answer::hang; });
    if (stopping_) return;  // no answer: the client's timeout (or the closed socket) ends it
    answer = answer_;
  }
  switch (answer) {
    case Answer::ok: answer_ok(response); break;
    case Answer::busy: answer_busy(response); break;
    case Answer::down: answer_down(response); break;
    case Answer::unauthorized: answer_unauthorized(response); break;
    case Answer::bad_request:
      answer_refused(response, 400, "JSON parse error: unexpected character at offset 0");
      break;
    case Answer::too_large: answer_refused(response, 413, "Payload Too Large"); break;
    case Answer::unprocessable: answer_refused(response, 422, "Unprocessable Entity: not a pScheduler run"); break;
    case Answer::hang: break;
  }
  requests_[index].status = response.status;
}

}  // namespace gapless::test
