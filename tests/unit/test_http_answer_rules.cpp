// Proves what an http sink does with each answer of its URL (a central
// Logstash) without a socket: only 2xx delivers; 429, 5xx, a timeout or no
// answer keep the row pending; 401/403/404 and redirects pause the sink,
// never park; 400/413/422 park that message alone with the status and body;
// and what a request carries (the message's headers, the configured ones
// winning, gapless-id), or why it cannot be sent at all.
#include <catch2/catch.hpp>

#include "sender/http_answer_rules.hpp"

using gapless::sender::HttpAnswer;
using gapless::sender::HttpHeaders;
using gapless::sender::HttpVerdict;
using gapless::sender::judge_answer;
using gapless::sender::request_headers;
using gapless::sender::request_refusal;

namespace {

constexpr const char* kUrl = "https://logstash.example.org/logstash";

HttpAnswer status(long code, std::string body = "") {
  HttpAnswer answer;
  answer.status = code;
  answer.body = std::move(body);
  return answer;
}

HttpAnswer failed(HttpAnswer::Failure failure, std::string error) {
  HttpAnswer answer;
  answer.failure = failure;
  answer.error = std::move(error);
  return answer;
}

}  // namespace

TEST_CASE("only a 2xx answer delivers a message", "[http-sink]") {
  for (long code : {200L, 201L, 202L, 204L, 299L})
    CHECK(judge_answer(status(code, "ok"), kUrl).verdict == HttpVerdict::delivered);
  for (long code : {100L, 199L, 300L, 400L, 500L})
    CHECK(judge_answer(status(code), kUrl).verdict != HttpVerdict::delivered);
}

TEST_CASE("a backlogged, stopped or hung Logstash keeps the row pending and is retried", "[http-sink]") {
  for (long code : {429L, 500L, 502L, 503L, 504L, 599L, 408L}) {
    INFO(code);
    CHECK(judge_answer(status(code), kUrl).verdict == HttpVerdict::retry);
  }
  const auto down =
      judge_answer(failed(HttpAnswer::Failure::unreachable, "Failed to connect to 127.0.0.1 port 9"), kUrl);
  CHECK(down.verdict == HttpVerdict::retry);
  CHECK_THAT(down.reason, Catch::Contains(kUrl) && Catch::Contains("Failed to connect"));
  const auto hung = judge_answer(failed(HttpAnswer::Failure::timed_out, "Operation timed out after 2000 ms"), kUrl);
  CHECK(hung.verdict == HttpVerdict::retry);
  CHECK_THAT(hung.reason, Catch::Contains("timeout"));
}

TEST_CASE("an Apache proxy error page becomes a one-line reason without its markup", "[http-sink]") {
  const std::string page =
      "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>503 Service Unavailable</title>\n"
      "</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your\nrequest "
      "due to maintenance downtime or capacity\nproblems. Please try again later.</p>\n</body></html>\n";
  const auto judged = judge_answer(status(503, page), kUrl);
  CHECK(judged.verdict == HttpVerdict::retry);
  CHECK_THAT(judged.reason, Catch::Contains("HTTP 503") && Catch::Contains("Service Unavailable"));
  CHECK(judged.reason.find('<') == std::string::npos);
  CHECK(judged.reason.find('\n') == std::string::npos);
}

TEST_CASE("wrong credentials, a wrong URL or a redirect pause the sink and park nothing", "[http-sink]") {
  for (long code : {401L, 403L, 404L, 405L, 407L}) {
    INFO(code);
    const auto judged = judge_answer(status(code, "Unauthorized"), kUrl);
    CHECK(judged.verdict == HttpVerdict::sink_rejected);
    CHECK_THAT(judged.reason, Catch::Contains(kUrl) && Catch::Contains("HTTP " + std::to_string(code)));
  }
  HttpAnswer moved = status(301);
  moved.location = "https://new.example.org/logstash";
  const auto redirect = judge_answer(moved, kUrl);
  CHECK(redirect.verdict == HttpVerdict::sink_rejected);
  CHECK_THAT(redirect.reason, Catch::Contains("https://new.example.org/logstash"));
  const auto tls = judge_answer(failed(HttpAnswer::Failure::tls_rejected, "SSL certificate problem"), kUrl);
  CHECK(tls.verdict == HttpVerdict::sink_rejected);
  CHECK_THAT(tls.reason, Catch::Contains("ca_file"));
}

TEST_CASE("a 4xx that names no message, or a status no server should send, pauses the sink, never drops",
          "[http-sink]") {
  for (long code : {402L, 409L, 410L, 411L, 415L, 418L, 451L, 499L, 100L, 600L, 0L}) {
    INFO(code);
    CHECK(judge_answer(status(code), kUrl).verdict == HttpVerdict::sink_rejected);
  }
}

TEST_CASE("a message the sink refuses (400, 413, 422) is parked with the status and the answer's body", "[http-sink]") {
  for (long code : {400L, 413L, 422L}) {
    INFO(code);
    const auto judged = judge_answer(status(code, "JSON parse error:\nunexpected token at 'x'"), kUrl);
    CHECK(judged.verdict == HttpVerdict::message_refused);
    CHECK_THAT(judged.reason, Catch::Contains("HTTP " + std::to_string(code)) &&
                                  Catch::Contains("JSON parse error: unexpected token"));
  }
  // A body of any size becomes a bounded reason.
  const auto long_body = judge_answer(status(400, std::string(100000, 'x')), kUrl);
  CHECK(long_body.reason.size() < 400);
}

TEST_CASE("a request carries the message's headers, the configured ones winning, and its gapless-id", "[http-sink]") {
  const HttpHeaders message = {{"x-ps-observer", "192.0.2.10"},
                               {"content-type", "application/json"},
                               {"Content-Type", "application/json"},
                               {"Content-Length", "12"},
                               {"gapless-id", "forged"}};
  const HttpHeaders configured = {{"X-PS-Observer", "198.51.100.1"}, {"x-site", "uc"}};
  const HttpHeaders headers = request_headers(message, configured, "abc123", std::nullopt);
  const HttpHeaders expected = {{"content-type", "application/json"},
                                {"Content-Type", "application/json"},
                                {"X-PS-Observer", "198.51.100.1"},
                                {"x-site", "uc"},
                                {"gapless-id", "abc123"}};
  CHECK(headers == expected);
  const HttpHeaders resent = request_headers({}, {}, "abc123", 7);
  CHECK(resent == HttpHeaders{{"gapless-id", "abc123"}, {"gapless-resend", "7"}});
}

TEST_CASE("a message HTTP cannot carry is refused before it is sent", "[http-sink]") {
  CHECK_FALSE(request_refusal({{"x-ps-observer", "192.0.2.10"}}, 850, 1024));
  CHECK_THAT(request_refusal({}, 2048, 1024).value_or(""), Catch::Contains("max_message_size"));
  CHECK_THAT(request_refusal({{"x-a", "one\r\nInjected: yes"}}, 1, 1024).value_or(""),
             Catch::Contains("control character"));
  CHECK_THAT(request_refusal({{"bad name", "v"}}, 1, 1024).value_or(""), Catch::Contains("not a valid HTTP header"));
}
