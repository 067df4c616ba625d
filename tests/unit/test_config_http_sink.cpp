// Proves an http sink's keys are read as etc/gapless.example.toml documents
// them, and that a key of the other protocol, a bad URL, method, header or
// password file is an error naming the key: a typo must never fall back to a
// default or be silently ignored.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/config.hpp"
#include "core/error.hpp"

using gapless::parse_config;

namespace {

std::string error_of(const std::string& sink_keys) {
  try {
    parse_config("[[sink]]\nname = \"central\"\n" + sink_keys, "test.toml");
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "accepted";
}

const std::string kHttp = "protocol = \"http\"\nurl = \"https://logstash.example.org/logstash\"\n";

}  // namespace

TEST_CASE("an http sink is read with its defaults: PUT, 30 s, 8 requests, TLS verified", "[config]") {
  const auto config = parse_config("[[sink]]\nname = \"central\"\n" + kHttp, "test.toml");
  const gapless::SinkConfig& sink = config.sinks.at(0);
  CHECK(sink.protocol == "http");
  CHECK(sink.url == "https://logstash.example.org/logstash");
  CHECK(sink.method == "put");
  CHECK(sink.timeout == std::chrono::seconds(30));
  CHECK(sink.max_requests_in_flight == 8);
  CHECK(sink.headers.empty());
  CHECK(sink.ca_file.empty());
  CHECK(sink.brokers.empty());
}

TEST_CASE("an http sink's keys: method, headers, timeout, requests in flight, TLS files, backoff", "[config]") {
  const auto config = parse_config("[[sink]]\nname = \"central\"\n" + kHttp + R"(
method = "post"
headers = { x-ps-observer = "192.0.2.10", content-type = "application/json" }
timeout = "10s"
max_requests_in_flight = 25
ca_file = "/etc/gapless/ca.pem"
cert_file = "/etc/gapless/client.pem"
key_file = "/etc/gapless/client.key"
reconnect_min = "2s"
reconnect_max = "5m"
max_message_size = 1048576
)", "test.toml");
  const gapless::SinkConfig& sink = config.sinks.at(0);
  CHECK(sink.method == "post");
  const std::vector<std::pair<std::string, std::string>> headers = {{"content-type", "application/json"},
                                                                    {"x-ps-observer", "192.0.2.10"}};
  CHECK(sink.headers == headers);
  CHECK(sink.timeout == std::chrono::seconds(10));
  CHECK(sink.max_requests_in_flight == 25);
  CHECK(sink.ca_file == "/etc/gapless/ca.pem");
  CHECK(sink.reconnect_max == std::chrono::minutes(5));
  CHECK(sink.max_message_size == 1048576);
}

TEST_CASE("a stomp key given to an http sink, or an http key to a stomp sink, is an error naming it", "[config]") {
  for (const char* key : {"brokers = [\"stomp://h:1\"]", "window = 2", "transaction_size = 10",
                          "virtual_host = \"v\"", "passcode = \"p\"", "heartbeat = 5"}) {
    INFO(key);
    CHECK_THAT(error_of(kHttp + key + "\n"),
               Catch::Contains("sink[0].") && Catch::Contains("not a key of an http sink"));
  }
  const std::string stomp = "brokers = [\"stomp://127.0.0.1:61613\"]\n";
  for (const char* key : {"url = \"http://h/\"", "method = \"put\"", "timeout = 5", "max_requests_in_flight = 2",
                          "headers = { a = \"b\" }", "password_file = \"/p\""}) {
    INFO(key);
    CHECK_THAT(error_of(stomp + key + "\n"), Catch::Contains("not a key of a stomp sink"));
  }
  CHECK_THAT(error_of("protocol = \"amqp\"\n"), Catch::Contains("sink[0].protocol: unknown protocol \"amqp\""));
}

TEST_CASE("an http sink's bad values are errors naming the key", "[config]") {
  CHECK_THAT(error_of("protocol = \"http\"\n"), Catch::Contains("sink[0].url: required"));
  CHECK_THAT(error_of("protocol = \"http\"\nurl = \"ftp://h/\"\n"), Catch::Contains("sink[0].url: expected an http"));
  CHECK_THAT(error_of(kHttp + "method = \"PATCH\"\n"), Catch::Contains("sink[0].method"));
  CHECK_THAT(error_of(kHttp + "headers = { \"bad name\" = \"v\" }\n"), Catch::Contains("sink[0].headers"));
  CHECK_THAT(error_of(kHttp + "headers = { a = 1 }\n"), Catch::Contains("sink[0].headers.a: expected a string"));
  CHECK_THAT(error_of(kHttp + "headers = { a = \"x\", A = \"y\" }\n"), Catch::Contains("given twice"));
  CHECK_THAT(error_of(kHttp + "headers = \"x-ps-observer: 1\"\n"),
             Catch::Contains("sink[0].headers: expected a table"));
  CHECK_THAT(error_of(kHttp + "login = \"u\"\n"), Catch::Contains("login and password_file go together"));
  CHECK_THAT(error_of(kHttp + "timeout = \"10ms\"\n"), Catch::Contains("sink[0].timeout"));
  CHECK_THAT(error_of(kHttp + "max_requests_in_flight = 5000\n"), Catch::Contains("sink[0].max_requests_in_flight"));
  CHECK_THAT(error_of(kHttp + "cert_file = \"c.pem\"\n"), Catch::Contains("cert_file and key_file go together"));
  CHECK_THAT(error_of(kHttp + "login = \"u\"\npassword_file = \"/nonexistent/pw\"\n"),
             Catch::Contains("sink[0].password_file: cannot read"));
}

TEST_CASE("a password in an http sink's URL is refused without quoting it: logs and status show the URL",
          "[config]") {
  for (const std::string url : {"https://perfsonar:pw-71ac@logstash.example.org/logstash",
                                "http://pw-71ac@127.0.0.1:11283/", "htps://perfsonar:pw-71ac@logstash.example.org/"}) {
    const std::string error = error_of("protocol = \"http\"\nurl = \"" + url + "\"\n");
    CHECK_THAT(error, Catch::Contains("sink[0].url: must not hold credentials") && !Catch::Contains("pw-71ac"));
  }
  // An '@' past the host is no credential.
  CHECK(parse_config("[[sink]]\nname = \"c\"\nprotocol = \"http\"\nurl = \"https://h.example/in?by=a@b\"\n",
                     "test.toml")
            .sinks.at(0)
            .url == "https://h.example/in?by=a@b");
}

TEST_CASE("an http sink's Basic password is password_file's first line; in clear text to another host a warning",
          "[config]") {
  const std::string path = "/tmp/gapless-test-http-password-" + std::to_string(::getpid());
  std::ofstream(path) << "s3cret\nsecond line\n";
  ::chmod(path.c_str(), 0600);
  const std::string keys = "login = \"perfsonar\"\npassword_file = \"" + path + "\"\n";
  const auto https = parse_config("[[sink]]\nname = \"c\"\n" + kHttp + keys, "test.toml");
  CHECK(https.sinks.at(0).login == "perfsonar");
  CHECK(https.sinks.at(0).password == "s3cret");
  CHECK(https.warnings.empty());
  const auto plain = parse_config(
      "[[sink]]\nname = \"c\"\nprotocol = \"http\"\nurl = \"http://logstash.example.org/\"\n" + keys, "test.toml");
  REQUIRE(plain.warnings.size() == 1);
  CHECK_THAT(plain.warnings[0], Catch::Contains("clear text"));
  const auto local = parse_config(
      "[[sink]]\nname = \"c\"\nprotocol = \"http\"\nurl = \"http://127.0.0.1:11283/\"\n" + keys, "test.toml");
  CHECK(local.warnings.empty());
  std::ofstream(path, std::ios::trunc) << "\n";
  CHECK_THAT(error_of(kHttp + keys), Catch::Contains("password_file") && Catch::Contains("empty"));
  std::remove(path.c_str());
}

TEST_CASE("the example configuration's commented http sink is valid once uncommented", "[config]") {
  std::ifstream in(GAPLESS_SOURCE_DIR "/etc/gapless.example.toml");
  std::string line, text;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("# [[sink]]  # an http sink", 0) == 0) inside = true;
    else if (inside && line.rfind("# ", 0) != 0 && line != "#") break;
    if (inside) text += (line.size() > 2 ? line.substr(2) : "") + "\n";
  }
  REQUIRE_FALSE(text.empty());
  // Its password file is an example path: drop Basic authentication to read the rest.
  std::string readable;
  std::istringstream lines(text);
  while (std::getline(lines, line))
    if (line.rfind("login", 0) != 0 && line.rfind("password_file", 0) != 0) readable += line + "\n";
  const auto config = parse_config(readable, "example");
  const gapless::SinkConfig& sink = config.sinks.at(0);
  CHECK(sink.protocol == "http");
  CHECK(sink.method == gapless::SinkConfig{}.method);
  CHECK(sink.timeout == gapless::SinkConfig{}.timeout);
  CHECK(sink.max_requests_in_flight == gapless::SinkConfig{}.max_requests_in_flight);
}
