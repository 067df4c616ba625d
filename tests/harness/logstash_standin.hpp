// A stand-in for perfSONAR's central Logstash, as an http sink meets it: a
// real HTTP (or HTTPS) server on loopback that records every request and
// answers as it is told, switched at run time:
//   ok           200 "ok": Logstash's http input accepting an event
//   busy         429: the http input when its queue is full
//   down         503 with Apache's proxy error page: Apache in front, the
//                Logstash service behind it stopped
//   unauthorized 401 with WWW-Authenticate: Basic: Apache's Basic auth in front
//   hang         nothing, until switched to another answer (or stopped)
// and, for bodies holding a given marker only, 400, 413 or 422 (a message
// the endpoint refuses). Each shape's source is at its definition in the .cpp.
//
// Used by tests/integration/test_http_sink.cpp; the `logstash-standin`
// program (logstash_standin_main.cpp) runs one for a shell demo.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gapless::test {

class LogstashStandin {
 public:
  enum class Answer { ok, busy, down, unauthorized, hang, bad_request, too_large, unprocessable };

  struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;  // 0: a free port
    std::string cert_file;  // with key_file: HTTPS
    std::string key_file;
    std::string client_ca_file;  // with HTTPS: a client certificate this CA signed is required
    // With both: a request without this Basic authentication is answered 401, whatever answer() says.
    std::string login;
    std::string password;
    Answer answer = Answer::ok;
  };

  struct Request {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;  // as received (names as sent)
    std::string body;
    int remote_port = 0;  // which connection carried it (keep-alive reuses one)
    int status = 0;       // what it was answered (0: no answer, it hung until the stand-in stopped)

    // The value of the first header named `name` (case ignored), or nothing.
    std::optional<std::string> header(const std::string& name) const;
    // How many headers named `name` (case ignored) it carried.
    size_t header_count(const std::string& name) const;
  };

  explicit LogstashStandin(Options options);
  ~LogstashStandin();
  LogstashStandin(const LogstashStandin&) = delete;
  LogstashStandin& operator=(const LogstashStandin&) = delete;

  uint16_t port() const { return port_; }
  // "http(s)://127.0.0.1:PORT" + path.
  std::string url(const std::string& path = "/logstash") const;

  // From now on, every request (those hanging included) gets `answer`.
  void answer(Answer answer);
  // A request whose body holds `marker` gets `answer` instead (the others what answer() says).
  void answer_bodies_containing(const std::string& marker, Answer answer);

  std::vector<Request> requests() const;
  size_t request_count() const;

  static std::optional<Answer> parse_answer(const std::string& name);  // "ok", "busy", "down", ...

 private:
  void handle(const httplib::Request& request, httplib::Response& response);

  Options options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Answer answer_;
  std::map<std::string, Answer> by_marker_;
  bool stopping_ = false;
  std::vector<Request> requests_;
};

}  // namespace gapless::test
