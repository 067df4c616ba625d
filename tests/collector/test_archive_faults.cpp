// Proves an archive's faults cost only what failed: each is a FetchError of its kind, never data, and a poll goes on with the rest.
//
// The esmond client against the test archive's injected faults (timeouts,
// HTTP errors, bad bodies, a refused connection), and against a raw socket
// server for what the archive cannot give (descending ts, oversize bodies,
// malformed metadata): nothing partial is returned. Then a poll of the
// collector into a real journal: a failing series, a failing listing, a
// stalled archive and a bad metadata object leave the rest journaled, the
// cursors where they were, and the archive's health counting each failure.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "support/collector_fixture.hpp"
#include "support/esmond_client_fixture.hpp"

namespace {

using gapless::esmond::Client;
using gapless::esmond::ClientOptions;
using gapless::esmond::FailureKind;
using gapless::esmond::FetchError;
using gapless::esmond::SeriesPath;
using gapless::test::EsmondArchive;
using gapless::test::Fault;
using gapless::test::FaultKind;
using gapless::test::esmond::SeriesKind;
using nlohmann::json;

using namespace gapless::test::esmond_client;

using gapless::ArchiveConfig;
using gapless::collector::PollReport;
using gapless::journal::Journal;
using gapless::test::collector_poll::allowed_event_types;
using gapless::test::collector_poll::Fixture;

// Runs `call`, which must throw a FetchError of `kind` whose message names
// the archive and the URL; returns it for further checks.
FetchError expect_failure(const std::function<void()>& call, FailureKind kind) {
  try {
    call();
  } catch (const FetchError& e) {
    INFO(e.what());
    CHECK(gapless::esmond::failure_kind_name(e.kind()) == gapless::esmond::failure_kind_name(kind));
    CHECK(std::string(e.what()).find("archive " + archive_name + ": GET ") == 0);
    CHECK(!e.url().empty());
    CHECK(std::string(e.what()).find(e.url()) != std::string::npos);
    CHECK(std::string(e.what()).find('\n') == std::string::npos);
    return e;
  }
  FAIL("no FetchError thrown, expected " << gapless::esmond::failure_kind_name(kind));
  throw;
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t size = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  ::close(fd);  // bound, never listened on: connecting is refused
  return ntohs(address.sin_port);
}

// Answers every request with one fixed response and closes the connection:
// the answers an esmond archive should never give.
class RawServer {
 public:
  RawServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t size = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RawServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/esmond/perfsonar/archive/";
  }

  // A 200 (or `status_line`) with `content_type` and `body`.
  void answer(const std::string& body, const std::string& content_type = "application/json",
              const std::string& status_line = "HTTP/1.1 200 OK", const std::string& extra_headers = "") {
    raw("" + status_line + "\r\nContent-Type: " + content_type + "\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n" + extra_headers + "Connection: close\r\n\r\n" + body);
  }
  void raw(std::string response) {
    std::lock_guard lock(mutex_);
    response_ = std::move(response);
  }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int conn = ::accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      std::string request;
      char buffer[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        pollfd c{conn, POLLIN, 0};
        if (::poll(&c, 1, 2000) <= 0) break;
        const ssize_t n = ::recv(conn, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        request.append(buffer, static_cast<size_t>(n));
      }
      std::string response;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request);
        response = response_;
      }
      for (size_t sent = 0; sent < response.size();) {
        const ssize_t n = ::send(conn, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      ::shutdown(conn, SHUT_WR);
      ::close(conn);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::string response_;
  std::vector<std::string> requests_;
};

json metadata_object(const std::string& key, json summaries = json::array()) {
  return {{"metadata-key", key},
          {"input-source", "a.example.net"},
          {"event-types", {{{"event-type", "throughput"}, {"summaries", std::move(summaries)}}}}};
}

}  // namespace

// ---------------------------------------------------------------- faults

TEST_CASE("every archive fault is a FetchError of its kind naming archive and URL", "[esmond-client]") {
  EsmondArchive archive(options(4));
  archive.start();
  Client client(archive_name, archive.base_url(), quick(std::chrono::milliseconds(400)));
  const auto& series = first_of(archive, SeriesKind::throughput);
  const SeriesPath path{series.key, "throughput", "", 0};
  const auto fetch = [&] { client.fetch_data(path, t0 - hour, t0, 100); };
  const std::string data_url = archive.base_url() + series.key + "/throughput/base";

  struct Case {
    Fault fault;
    FailureKind kind;
    std::vector<std::string> words;  // the message says what happened
  };
  const std::map<std::string, Case> cases = {
      {"http_error 500", {Fault::of(FaultKind::http_error), FailureKind::http_status,
                          {"HTTP 500 Internal Server Error", ": Internal Server Error The server encountered"}}},
      {"http_error 503", {Fault::of(FaultKind::http_error).with_status(503), FailureKind::http_status,
                          {"HTTP 503 Service Unavailable"}}},
      {"close", {Fault::of(FaultKind::close), FailureKind::connect, {"without a response"}}},
      {"short_body", {Fault::of(FaultKind::short_body), FailureKind::connect, {"cut short"}}},
      {"redirect", {Fault::of(FaultKind::redirect), FailureKind::redirect,
                    {"HTTP 302 Found to " + archive.root_url() + "/moved/esmond/perfsonar/archive/", "not followed"}}},
      {"redirect 301 elsewhere", {Fault::of(FaultKind::redirect).with_status(301).to("https://elsewhere.example/x"),
                                  FailureKind::redirect, {"HTTP 301 Moved Permanently to https://elsewhere.example/x"}}},
      {"html", {Fault::of(FaultKind::html), FailureKind::not_json, {"text/html", "Django REST framework"}}},
      {"truncated", {Fault::of(FaultKind::truncated), FailureKind::malformed, {"not valid JSON", "byte"}}},
      {"malformed", {Fault::of(FaultKind::malformed), FailureKind::malformed, {"not valid JSON", "error at byte 2"}}},
      {"missing_field", {Fault::of(FaultKind::missing_field), FailureKind::invalid, {"datapoint ", "no \"val\""}}},
      {"wrong_type", {Fault::of(FaultKind::wrong_type), FailureKind::invalid, {"datapoint ", "\"ts\" is \""}}},
      {"slow", {Fault::of(FaultKind::slow).with_delay_ms(1500), FailureKind::timeout, {"within 400ms"}}},
  };
  for (const auto& [name, c] : cases) {
    DYNAMIC_SECTION(name) {
      Fault fault = c.fault;
      const int id = archive.add_fault(fault.matching(series.key));  // every request until cleared
      const auto started = std::chrono::steady_clock::now();
      const FetchError e = expect_failure(fetch, c.kind);
      const auto took = std::chrono::steady_clock::now() - started;
      CHECK(archive.fault_fired(id) >= 1);
      CHECK(e.url().rfind(data_url + "?", 0) == 0);
      CHECK(contains(e.url(), "format=json"));
      CHECK(contains(e.url(), "limit=100"));
      const std::string what = e.what();
      for (const std::string& word : c.words) CHECK_THAT(what, Catch::Contains(word));
      CHECK(what.size() < e.url().size() * 2 + 400);  // a body excerpt, not the body
      CHECK(took < std::chrono::milliseconds(1400));  // the timeout, not the server, ended a slow answer

      // The same client recovers once the archive does.
      archive.clear_faults();
      CHECK(!client.fetch_data(path, t0 - hour, t0, 100).empty());
    }
  }
}

TEST_CASE("faults on the metadata listing", "[esmond-client]") {
  EsmondArchive archive(options(10));
  archive.start();
  Client client(archive_name, archive.base_url(), quick());
  const std::string key = archive.series()[6].key;  // on the second page of 4
  const auto list = [&] { client.list_metadata(0, 4); };

  SECTION("an object without metadata-key") {
    archive.add_fault(Fault::of(FaultKind::missing_field).matching(key));
    const FetchError e = expect_failure(list, FailureKind::invalid);
    CHECK_THAT(e.what(), Catch::Contains("metadata object at listing index 6: has no \"metadata-key\""));
    CHECK_THAT(e.url(), Catch::Contains("offset=4"));
  }
  SECTION("event-types of the wrong type") {
    archive.add_fault(Fault::of(FaultKind::wrong_type).matching(key));
    const FetchError e = expect_failure(list, FailureKind::invalid);
    CHECK_THAT(e.what(), Catch::Contains("metadata-key " + key + " at listing index 6: \"event-types\" is a string"));
  }
  SECTION("an object without event-types") {
    const auto& latency = first_of(archive, SeriesKind::latency);
    archive.add_fault(Fault::of(FaultKind::missing_field).matching(latency.key).on_field("event-types"));
    const FetchError e = expect_failure(list, FailureKind::invalid);
    CHECK_THAT(e.what(), Catch::Contains("metadata-key " + latency.key) && Catch::Contains("no \"event-types\""));
  }
  SECTION("HTTP errors and HTML") {
    archive.add_fault(Fault::of(FaultKind::http_error).with_status(503).matching("offset=4"));
    const FetchError e = expect_failure(list, FailureKind::http_status);
    CHECK_THAT(e.what(), Catch::Contains("HTTP 503 Service Unavailable"));
    archive.clear_faults();
    archive.add_fault(Fault::of(FaultKind::html));
    expect_failure(list, FailureKind::not_json);
  }
  SECTION("the listing's request: time-start only, explicit limit and offset") {
    archive.add_fault(Fault::of(FaultKind::http_error));
    const FetchError e = expect_failure([&] { client.list_metadata(t0 - day, 7); }, FailureKind::http_status);
    CHECK(e.url() == archive.base_url() + "?format=json&time-start=" + std::to_string(t0 - day) + "&limit=7&offset=0");
  }
}

TEST_CASE("a refused connection is a connect failure", "[esmond-client]") {
  const int port = closed_port();
  Client client(archive_name, "http://127.0.0.1:" + std::to_string(port) + "/esmond/perfsonar/archive/", quick());
  const FetchError e = expect_failure([&] { client.fetch_data({"abc", "throughput", "", 0}, 0, 10, 5); },
                                      FailureKind::connect);
  CHECK_THAT(e.what(), Catch::Contains(std::to_string(port)));
  expect_failure([&] { client.list_metadata(0); }, FailureKind::connect);
}

// ---------------------------------------------------------------- answers esmond never gives

TEST_CASE("datapoints are validated; nothing partial is returned", "[esmond-client]") {
  RawServer server;
  Client client(archive_name, server.base_url(), quick());
  const SeriesPath path{"abc", "throughput", "", 0};
  const auto fetch = [&] { client.fetch_data(path, 100, 200, 10); };

  SECTION("a good page, with a Content-Type parameter") {
    server.answer(R"([{"ts":100,"val":7016320000.0},{"ts":150,"val":{"59":600}},{"ts":199,"val":null}])",
                  "application/json; charset=utf-8");
    const auto got = client.fetch_data(path, 100, 200, 10);
    REQUIRE(got.size() == 3);
    CHECK(got[0].value == "7016320000.0");
    CHECK(got[1].value == R"({"59":600})");
    CHECK(got[2].value == "null");
    // What was asked: JSON, an explicit limit, esmond's inclusive time-end.
    const std::string request = server.requests().back();
    CHECK(contains(request, "GET /esmond/perfsonar/archive/abc/throughput/base?format=json&time-start=100"
                            "&time-end=199&limit=10 HTTP/1.1\r\n"));
    CHECK(contains(request, "\r\nAccept: application/json\r\n"));
    CHECK(contains(request, "\r\nUser-Agent: gapless/0.1\r\n"));
  }
  SECTION("ts not ascending") {
    server.answer(R"([{"ts":100,"val":1},{"ts":150,"val":2},{"ts":150,"val":3}])");
    const FetchError e = expect_failure(fetch, FailureKind::invalid);
    CHECK_THAT(e.what(), Catch::Contains("datapoint 2") && Catch::Contains("not strictly ascending"));
  }
  SECTION("ts before time-start") {
    server.answer(R"([{"ts":99,"val":1}])");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("before time-start"));
  }
  SECTION("ts at time-end") {
    server.answer(R"([{"ts":150,"val":1},{"ts":200,"val":1}])");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("datapoint 1"));
  }
  SECTION("ts a float") {
    server.answer(R"([{"ts":100.0,"val":1}])");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("\"ts\" is 100.0 (a float)"));
  }
  SECTION("an element that is not an object") {
    server.answer(R"([{"ts":100,"val":1},[101,2]])");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("datapoint 1 is an array"));
  }
  SECTION("an object instead of an array") {
    server.answer(R"({"detail":"Not found."})");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("expected a JSON array"));
  }
  SECTION("plain text") {
    server.answer("[]", "text/plain");
    CHECK_THAT(expect_failure(fetch, FailureKind::not_json).what(), Catch::Contains("Content-Type text/plain"));
  }
  SECTION("no Content-Type") {
    server.raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]");
    CHECK_THAT(expect_failure(fetch, FailureKind::not_json).what(), Catch::Contains("no Content-Type"));
  }
  SECTION("an error body is quoted on one line, briefly") {
    server.answer(std::string(5000, 'x') + "\n\ttail", "text/plain", "HTTP/1.1 429 Slow Down");
    const FetchError e = expect_failure(fetch, FailureKind::http_status);
    CHECK_THAT(e.what(), Catch::Contains("HTTP 429 Slow Down: xxxx") && Catch::EndsWith("x..."));
    CHECK(std::string(e.what()).size() < e.url().size() + 300);
  }
  SECTION("a relative redirect names the absolute target") {
    server.answer("", "text/html", "HTTP/1.1 307 Temporary Redirect", "Location: /other/archive/\r\n");
    CHECK_THAT(expect_failure(fetch, FailureKind::redirect).what(),
               Catch::Contains("HTTP 307 Temporary Redirect to http://127.0.0.1:"));
  }
  SECTION("a body larger than 256 MiB is refused before it is read") {
    server.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300000000\r\n"
               "Connection: close\r\n\r\n[");
    CHECK_THAT(expect_failure(fetch, FailureKind::invalid).what(), Catch::Contains("larger than 256 MiB"));
  }
}

TEST_CASE("metadata objects are validated field by field", "[esmond-client]") {
  RawServer server;
  Client client(archive_name, server.base_url(), quick());
  const auto list = [&] { client.list_metadata(0); };
  const auto page = [](json objects) {
    objects[0]["metadata-count-total"] = objects.size();
    return objects.dump();
  };

  SECTION("summary-window as a string or an integer") {
    json summaries = {{{"summary-type", "average"}, {"summary-window", "86400"}},
                      {{"summary-type", "statistics"}, {"summary-window", 0}}};
    server.answer(page({metadata_object("k1", summaries), metadata_object("k2")}));
    const auto got = client.list_metadata(0);
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("event-types")[0].at("summaries") == summaries);
    CHECK(!got[0].contains("metadata-count-total"));
    CHECK(got[1].at("input-source") == "a.example.net");
  }
  SECTION("a bad summary-window") {
    server.answer(page({metadata_object("k1"), metadata_object("k2", {{{"summary-type", "average"},
                                                                      {"summary-window", "1d"}}})}));
    CHECK_THAT(expect_failure(list, FailureKind::invalid).what(),
               Catch::Contains("metadata-key k2") &&
                   Catch::Contains("\"event-types\"[0].\"summaries\"[0].\"summary-window\" is \"1d\""));
  }
  SECTION("a summary without summary-type") {
    server.answer(page({metadata_object("k1", {{{"summary-window", "60"}}})}));
    CHECK_THAT(expect_failure(list, FailureKind::invalid).what(), Catch::Contains("no \"summary-type\""));
  }
  SECTION("an event type without summaries") {
    json m = metadata_object("k1");
    m["event-types"][0].erase("summaries");
    server.answer(page({m}));
    CHECK_THAT(expect_failure(list, FailureKind::invalid).what(),
               Catch::Contains("\"event-types\"[0] has no \"summaries\""));
  }
  SECTION("a numeric metadata-key") {
    json m = metadata_object("k1");
    m["metadata-key"] = 12;
    server.answer(page({m}));
    CHECK_THAT(expect_failure(list, FailureKind::invalid).what(),
               Catch::Contains("at listing index 0: \"metadata-key\" is an integer"));
  }
  SECTION("no metadata-count-total to page by") {
    server.answer(json::array({metadata_object("k1")}).dump());
    CHECK_THAT(expect_failure(list, FailureKind::invalid).what(), Catch::Contains("metadata-count-total"));
  }
  SECTION("an object listed on two pages is kept once; paging ends at the count") {
    // The listing grew by two between the pages: the second page repeats the first.
    json objects = {metadata_object("k1"), metadata_object("k2")};
    objects[0]["metadata-count-total"] = 4;
    server.answer(objects.dump());
    const auto got = client.list_metadata(0, 2);
    REQUIRE(got.size() == 2);
    CHECK(got[0].at("metadata-key") == "k1");
    CHECK(got[1].at("metadata-key") == "k2");
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(contains(requests[0], "&limit=2&offset=0 HTTP/1.1"));
    CHECK(contains(requests[1], "&limit=2&offset=2 HTTP/1.1"));
    CHECK(!contains(requests[0], "time-end"));
  }
  SECTION("a page size below 1 is a programming error") {
    CHECK_THROWS_AS(client.list_metadata(0, 0), std::invalid_argument);
  }
  SECTION("an empty archive") {
    server.answer("[]");
    CHECK(client.list_metadata(0).empty());
  }
}

// ---------------------------------------------------------------- a poll, into the journal

TEST_CASE("a failing series is skipped and retried while the others are journaled", "[collector]") {
  Fixture f;
  const std::string broken = f.archive->metadata_keys().front();
  const FaultKind kind = GENERATE(FaultKind::http_error, FaultKind::malformed, FaultKind::truncated, FaultKind::html,
                                  FaultKind::close, FaultKind::wrong_type);
  INFO("fault " << gapless::test::fault_kind_name(kind));
  // Data requests only: the listing (no key in its target) stays healthy.
  const int fault = f.archive->add_fault(Fault::of(kind).matching(broken + "/"));

  const PollReport report = f.poll();
  CHECK(report.listed);
  CHECK(report.series_failed > 0);
  CHECK_FALSE(report.failures.empty());
  CHECK(f.archive->fault_fired(fault) > 0);
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    if (s.key.metadata_key == broken) {
      CHECK(f.journaled(s).empty());  // nothing partial
      CHECK_FALSE(s.cursor_ts.has_value());
    } else {
      CHECK(f.journaled(s) == f.served(s));
    }
  }

  // The archive's health shows the same failures, by kind.
  const auto failing = f.health();
  CHECK(failing.consecutive_failed_polls == 1);
  CHECK_FALSE(failing.last_success_ms.has_value());
  CHECK_THAT(failing.last_error, Catch::Matchers::Contains(f.client->base_url() + broken));
  std::map<std::string, int64_t> recorded;
  for (const auto& [failure_kind, failures] : failing.failures) recorded[failure_kind] = failures.count;
  CHECK(recorded == report.failures);

  f.archive->clear_faults();
  const PollReport retried = f.poll();
  CHECK(retried.failures.empty());
  CHECK(f.health().consecutive_failed_polls == 0);
  CHECK(f.health().last_success_ms.has_value());
  for (const auto& s : f.series()) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    CHECK(f.journaled(s) == f.served(s));
  }
}

TEST_CASE("a listing that fails leaves every cursor where it was", "[collector]") {
  Fixture f;
  f.poll();
  const auto before = f.series();
  f.archive->advance(30 * 60);
  f.archive->add_fault(Fault::of(FaultKind::http_error).with_status(503));
  const PollReport report = f.poll();
  CHECK_FALSE(report.listed);
  CHECK(report.failures.count("http-status") == 1);
  const auto after = f.series();
  REQUIRE(after.size() == before.size());
  for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].cursor_ts == before[i].cursor_ts);
}

TEST_CASE("an archive's failures accumulate by kind in its health until a poll succeeds", "[collector]") {
  Fixture f;
  const int64_t healthy_points = f.poll().points_journaled;
  REQUIRE(healthy_points > 0);
  const int64_t first_success = f.health().last_success_ms.value_or(0);

  // Two polls whose listing fails, then one whose listing works and a series fails.
  f.archive->add_fault(Fault::of(FaultKind::http_error).with_status(503).times(2));
  CHECK_FALSE(f.poll().listed);
  CHECK_FALSE(f.poll().listed);
  auto health = f.health();
  CHECK(health.consecutive_failed_polls == 2);
  CHECK(health.failures.at("http-status").count == 2);
  CHECK(health.last_success_ms == first_success);
  CHECK_THAT(health.last_error, Catch::Matchers::Contains(f.client->base_url()));
  CHECK_THAT(health.last_error, Catch::Matchers::Contains("503"));

  f.archive->advance(30 * 60);
  const std::string broken = f.archive->metadata_keys().front();
  f.archive->add_fault(Fault::of(FaultKind::malformed).matching(broken + "/"));
  const PollReport partly = f.poll();
  REQUIRE(partly.listed);
  REQUIRE(partly.series_failed > 0);
  health = f.health();
  CHECK(health.consecutive_failed_polls == 3);
  CHECK(health.failed_polls_total == 3);
  CHECK(health.failures.at("http-status").count == 2);
  int64_t series_failures = 0;
  for (const auto& [kind, count] : partly.failures) series_failures += count;
  CHECK(series_failures == partly.series_failed);
  CHECK(health.failures.size() == 1 + partly.failures.size());
  CHECK(health.points_journaled_total == healthy_points + partly.points_journaled);

  f.archive->clear_faults();
  const PollReport recovered = f.poll();
  REQUIRE(recovered.failures.empty());
  health = f.health();
  CHECK(health.consecutive_failed_polls == 0);
  CHECK(health.last_success_ms > first_success);
  CHECK(health.polls_total == 5);
  CHECK(health.failed_polls_total == 3);
  CHECK(health.failures.at("http-status").count == 2);  // counters keep the history
  CHECK(health.points_journaled_total == healthy_points + partly.points_journaled + recovered.points_journaled);
}

// Every OSG message carries input-source, so refusing that header at the
// door refuses every series: the collector's path for a message the door
// refuses, which real archive data reaches with, say, a NUL in a metadata field.

TEST_CASE("a poll that skips a series still backing off is no success", "[collector]") {
  Fixture f;
  f.settings.retry_min = std::chrono::hours(1);
  f.settings.retry_max = std::chrono::hours(1);
  const std::string broken = f.archive->metadata_keys().front();
  f.archive->add_fault(Fault::of(FaultKind::http_error).matching(broken + "/"));
  REQUIRE(f.poll().series_failed > 0);
  f.archive->clear_faults();

  const PollReport skipping = f.poll();  // the broken series waits for its backoff
  CHECK(skipping.failures.empty());
  CHECK(skipping.series_backing_off > 0);
  const auto health = f.health();
  CHECK(health.polls_total == 2);
  CHECK(health.consecutive_failed_polls == 1);
  CHECK_FALSE(health.last_success_ms.has_value());
}

TEST_CASE("a stalled archive does not delay the others", "[collector]") {
  // Two archives polled by the daemon's scheduler: one answers every request
  // after 4 s (beyond the 1 s timeout), the other is healthy.
  Fixture stalled(2);
  Fixture healthy(2);
  stalled.archive->add_fault(Fault::of(FaultKind::slow).with_delay_ms(4000));

  gapless::Config config;
  config.journal.path = healthy.dir.file("shared.db");
  gapless::SinkConfig sink;
  sink.name = "local";
  sink.brokers = {"stomp://127.0.0.1:1"};
  config.sinks.push_back(sink);
  config.collector.max_concurrent_requests = 2;
  for (Fixture* f : {&stalled, &healthy}) {
    ArchiveConfig archive = f->config;
    archive.name = f == &stalled ? "stalled" : "healthy";
    archive.http_timeout = std::chrono::seconds(1);
    archive.poll_interval = std::chrono::seconds(60);
    config.archives.push_back(archive);
  }
  std::atomic<bool> stop{false};
  gapless::collector::Collector collector(config, stop);
  const auto started = std::chrono::steady_clock::now();
  std::thread running([&] { collector.run(); });

  // The healthy archive is fully journaled while the other one still stalls.
  auto journal = Journal::open(config.journal.path, {"local"});
  bool complete = false;
  while (!complete && std::chrono::steady_clock::now() - started < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto series = journal->series_of_archive(healthy.archive->base_url());
    complete = series.size() == allowed_event_types(*healthy.archive, healthy.config);
    for (const auto& s : series) {
      std::map<int64_t, std::string> served = healthy.served(s);
      complete = complete && journal->datapoint_digests(s.id, INT64_MIN, INT64_MAX) == served;
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // The healthy poll is recorded once it returns, a moment after its data is
  // journaled; a poll that `stop` cut short would be no success.
  const auto recorded = [&] {
    for (const auto& archive : journal->archive_health())
      if (archive.name == "healthy") return true;
    return false;
  };
  while (!recorded() && std::chrono::steady_clock::now() - started < std::chrono::seconds(20))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  running.join();
  CHECK(complete);
  CHECK(elapsed < std::chrono::seconds(10));
  CHECK(journal->series_of_archive(stalled.archive->base_url()).empty());  // its listing never answered in time

  // Each archive's health, as the scheduler recorded it.
  std::map<std::string, gapless::journal::ArchiveHealth> health;
  for (const auto& archive : journal->archive_health()) health[archive.name] = archive;
  REQUIRE(health.count("stalled") == 1);
  REQUIRE(health.count("healthy") == 1);
  CHECK(health["stalled"].archive_url == stalled.client->base_url());
  CHECK(health["stalled"].failures.count("timeout") == 1);
  CHECK(health["stalled"].consecutive_failed_polls >= 1);
  CHECK_FALSE(health["stalled"].last_success_ms.has_value());
  CHECK(health["healthy"].last_success_ms.has_value());
  CHECK(health["healthy"].failures.empty());
}

TEST_CASE("a metadata object with a missing field is left out and the other series are journaled", "[collector]") {
  Fixture f;
  const std::string broken = f.archive->metadata_keys().back();
  f.archive->add_fault(Fault::of(FaultKind::missing_field).matching(broken).on_field("event-types"));
  const PollReport report = f.poll();
  CHECK(report.listed);
  CHECK(report.failures.count("invalid-metadata") == 1);
  size_t others = 0;
  for (const auto& s : f.series()) {
    CHECK(s.key.metadata_key != broken);
    CHECK(f.journaled(s) == f.served(s));
    ++others;
  }
  CHECK(others > 0);
}
