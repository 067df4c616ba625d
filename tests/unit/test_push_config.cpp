// Proves [push] is read as etc/gapless.example.toml documents it, and that
// keys that contradict each other (two authentications, a login without its
// password file, half a TLS pair) or a bad value are errors naming the key:
// a typo must never leave the endpoint open or silently off.
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "core/error.hpp"

using gapless::parse_config;

namespace {

const std::string kSink = "[[sink]]\nname = \"central\"\nbrokers = [\"stomp://localhost:61613\"]\n";

std::string error_of(const std::string& push_keys) {
  try {
    parse_config(kSink + "[push]\n" + push_keys, "test.toml");
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("without [push] there is no push endpoint", "[config][push]") {
  CHECK(parse_config(kSink, "test.toml").push.listen.empty());
}

TEST_CASE("[push] is read with its defaults: / and /logstash, 32 threads, 16 MiB, Retry-After 30 s", "[config][push]") {
  const auto config = parse_config(kSink + "[push]\nlisten = \"127.0.0.1:11284\"\n", "test.toml");
  CHECK(config.push.listen == "127.0.0.1:11284");
  CHECK(config.push.paths == std::vector<std::string>{"/", "/logstash"});
  CHECK(config.push.threads == 32);
  CHECK(config.push.max_body_size == 16 * 1024 * 1024);
  CHECK(config.push.retry_after == std::chrono::seconds(30));
  CHECK(config.push.archive_url.empty());
}

TEST_CASE("[push] keys are read as written", "[config][push]") {
  const auto config = parse_config(kSink +
                                       "[push]\nlisten = \"[::1]:8080\"\nlogin = \"archiver\"\n"
                                       "password_file = \"/etc/gapless/push-password\"\nmax_body_size = 4096\n"
                                       "paths = [\"/in\"]\nthreads = 4\nretry_after = \"2m\"\n"
                                       "archive_url = \"https://ps.example.org/esmond/perfsonar/archive/\"\n"
                                       "cert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
                                   "test.toml");
  CHECK(config.push.login == "archiver");
  CHECK(config.push.password_file == "/etc/gapless/push-password");
  CHECK(config.push.max_body_size == 4096);
  CHECK(config.push.paths == std::vector<std::string>{"/in"});
  CHECK(config.push.threads == 4);
  CHECK(config.push.retry_after == std::chrono::minutes(2));
  CHECK(config.push.archive_url == "https://ps.example.org/esmond/perfsonar/archive/");
  CHECK(config.push.cert_file == "c.pem");
}

TEST_CASE("[push] errors name the key", "[config][push]") {
  CHECK_THAT(error_of("listen = \"11284\"\n"), Catch::Contains("push.listen"));
  CHECK_THAT(error_of("cert_file = \"c.pem\"\n"), Catch::Contains("push.cert_file"));
  CHECK_THAT(error_of("login = \"a\"\n"), Catch::Contains("push.login"));
  CHECK_THAT(error_of("password_file = \"p\"\n"), Catch::Contains("push.login"));
  CHECK_THAT(error_of("login = \"a\"\npassword_file = \"p\"\ntoken_file = \"t\"\n"),
             Catch::Contains("push.token_file") && Catch::Contains("at most one"));
  CHECK_THAT(error_of("login = \"a:b\"\npassword_file = \"p\"\n"), Catch::Contains("push.login"));
  CHECK_THAT(error_of("max_body_size = 100\n"), Catch::Contains("push.max_body_size"));
  CHECK_THAT(error_of("paths = []\n"), Catch::Contains("push.paths"));
  CHECK_THAT(error_of("paths = [\"logstash\"]\n"), Catch::Contains("push.paths"));
  CHECK_THAT(error_of("threads = 0\n"), Catch::Contains("push.threads"));
  CHECK_THAT(error_of("archive_url = \"ps.example.org\"\n"), Catch::Contains("push.archive_url"));
  CHECK_THAT(error_of("retry_after = \"0s\"\n"), Catch::Contains("push.retry_after"));
  CHECK_THAT(error_of("lisen = \"127.0.0.1:1\"\n"), Catch::Contains("push.lisen: unknown key"));
}
