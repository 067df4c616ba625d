// Proves the push endpoint's answers (push/request_rules.hpp,
// push/credentials.hpp) without a socket: a wrong path is 404, a wrong
// method 405 with Allow, missing or wrong credentials 401 with the
// challenge, a declared body over max_body_size 413 before it is read, a
// body that is not a run 400 naming the field, the journal unavailable 503
// with Retry-After; and only a request that passes every check reads its
// body. pScheduler's archiver counts any 2xx as archived, so a check that
// let a bad request through, or refused a good one, loses runs silently.
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "push/credentials.hpp"
#include "push/request_rules.hpp"

using gapless::PushConfig;
using gapless::push::Answer;
using gapless::push::Credentials;
using gapless::push::RequestRules;

namespace {

std::string header(const Answer& answer, const std::string& name) {
  for (const auto& [key, value] : answer.headers)
    if (key == name) return value;
  return "";
}

PushConfig push_config() {
  PushConfig config;
  config.max_body_size = 2 * 1024 * 1024;
  return config;
}

// "Basic " + base64("archiver:s3cret")
const char* const kBasicGood = "Basic YXJjaGl2ZXI6czNjcmV0";
const char* const kBasicWrong = "Basic YXJjaGl2ZXI6d3Jvbmc=";  // archiver:wrong

}  // namespace

TEST_CASE("a PUT or POST of a run on an accepted path reads its body", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  CHECK_FALSE(rules.before_body("PUT", "/logstash", 850, ""));
  CHECK_FALSE(rules.before_body("POST", "/", 850, ""));
  CHECK_FALSE(rules.before_body("PUT", "/", std::nullopt, ""));  // chunked: checked as it is read
}

TEST_CASE("a path not in push.paths is 404 naming the accepted ones", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  const auto answer = rules.before_body("PUT", "/elsewhere", 10, "");
  REQUIRE(answer);
  CHECK(answer->status == 404);
  CHECK_THAT(answer->text, Catch::Contains("/logstash"));
}

TEST_CASE("a method other than PUT or POST is 405 with Allow", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  for (const char* method : {"GET", "DELETE", "PATCH", "HEAD"}) {
    const auto answer = rules.before_body(method, "/logstash", std::nullopt, "");
    REQUIRE(answer);
    CHECK(answer->status == 405);
    CHECK(header(*answer, "Allow") == "PUT, POST");
  }
}

TEST_CASE("Basic credentials missing or wrong are 401 with the Basic challenge; right ones pass", "[push]") {
  const RequestRules rules(push_config(), Credentials::basic("archiver", "s3cret"));
  for (const char* presented : {"", kBasicWrong, "Bearer s3cret", "Basic", "Basic YXJjaGl2ZXI6czNjcmV0x"}) {
    const auto answer = rules.before_body("PUT", "/logstash", 10, presented);
    REQUIRE(answer);
    CHECK(answer->status == 401);
    CHECK_THAT(header(*answer, "WWW-Authenticate"), Catch::StartsWith("Basic realm="));
  }
  CHECK_FALSE(rules.before_body("PUT", "/logstash", 10, kBasicGood));
  CHECK_FALSE(rules.before_body("PUT", "/logstash", 10, "basic YXJjaGl2ZXI6czNjcmV0"));  // the scheme in any case
}

TEST_CASE("a bearer token missing or wrong is 401 with the Bearer challenge; the right one passes", "[push]") {
  const RequestRules rules(push_config(), Credentials::bearer("t0ken"));
  for (const char* presented : {"", "Bearer t0ke", "Bearer t0kenn", "Basic t0ken", "t0ken"}) {
    const auto answer = rules.before_body("POST", "/", 10, presented);
    REQUIRE(answer);
    CHECK(answer->status == 401);
    CHECK(header(*answer, "WWW-Authenticate") == "Bearer");
  }
  CHECK_FALSE(rules.before_body("POST", "/", 10, "Bearer t0ken"));
}

TEST_CASE("the path is checked before the credentials, the credentials before the size", "[push]") {
  const RequestRules rules(push_config(), Credentials::bearer("t0ken"));
  CHECK(rules.before_body("PUT", "/nope", 1 << 30, "")->status == 404);
  CHECK(rules.before_body("PUT", "/", 1 << 30, "")->status == 401);  // no size told to a stranger
  CHECK(rules.before_body("PUT", "/", 1 << 30, "Bearer t0ken")->status == 413);
}

TEST_CASE("a declared body over max_body_size is 413 before it is read; at the limit it is read", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  const auto over = rules.before_body("PUT", "/", 2 * 1024 * 1024 + 1, "");
  REQUIRE(over);
  CHECK(over->status == 413);
  CHECK_THAT(over->text, Catch::Contains("push.max_body_size"));
  CHECK_FALSE(rules.before_body("PUT", "/", 2 * 1024 * 1024, ""));
}

TEST_CASE("a body that is not a run is 400 whose text names the field", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  const Answer answer = rules.not_a_run("schedule.start", "not a pScheduler run: \"schedule.start\" is missing");
  CHECK(answer.status == 400);
  CHECK_THAT(answer.text, Catch::Contains("schedule.start"));
  CHECK(header(answer, "X-Gapless-Field") == "schedule.start");
}

TEST_CASE("the journal unavailable is 503 with Retry-After in seconds, never a 2xx", "[push]") {
  PushConfig config = push_config();
  config.retry_after = std::chrono::seconds(45);
  const RequestRules rules(config, Credentials::none());
  const Answer answer = rules.unavailable("journal at max_size");
  CHECK(answer.status == 503);
  CHECK(header(answer, "Retry-After") == "45");
  CHECK_THAT(answer.text, Catch::Contains("max_size"));
}

TEST_CASE("a journaled run is 200, and one journaled before too, saying so", "[push]") {
  const RequestRules rules(push_config(), Credentials::none());
  CHECK(rules.journaled("a44e", false).status == 200);
  const Answer again = rules.journaled("a44e", true);
  CHECK(again.status == 200);
  CHECK_THAT(again.text, Catch::Contains("already journaled"));
}
