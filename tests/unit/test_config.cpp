#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "core/config.hpp"
#include "core/error.hpp"

using gapless::parse_config;

namespace {

std::string error_of(const std::string& text) {
  try {
    parse_config(text, "test.toml");
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a full sink configuration is read", "[config]") {
  auto config = parse_config(R"(
log_level = "debug"
[journal]
path = "/var/lib/gapless/journal.db"
[[sink]]
name = "cern"
brokers = ["stomp+ssl://a.example:61523", "stomp+ssl://b.example:61523"]
cert_file = "/etc/gapless/cert.pem"
key_file = "/etc/gapless/key.pem"
window = 8
transaction_size = 200
receipt_timeout = "10m"
heartbeat = 5
)", "test.toml");
  CHECK(config.log_level == "debug");
  CHECK(config.journal.path == "/var/lib/gapless/journal.db");
  REQUIRE(config.sinks.size() == 1);
  const auto& sink = config.sinks[0];
  CHECK(sink.name == "cern");
  CHECK(sink.brokers.size() == 2);
  CHECK(sink.window == 8);
  CHECK(sink.transaction_size == 200);
  CHECK(sink.receipt_timeout == std::chrono::minutes(10));
  CHECK(sink.heartbeat == std::chrono::seconds(5));
  CHECK(config.find_sink("cern") == &sink);
  CHECK(config.find_sink("other") == nullptr);
}

TEST_CASE("unknown keys and bad values are errors naming the key", "[config]") {
  CHECK_THAT(error_of("[journal]\npaht = \"x\"\n[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\n"),
             Catch::Contains("journal.paht: unknown key"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\nwindow = \"four\"\n"),
             Catch::Contains("sink[0].window: expected an integer"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\nheartbeat = \"10 parsecs\"\n"),
             Catch::Contains("sink[0].heartbeat: invalid duration"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\n"), Catch::Contains("sink[0].brokers: at least one broker"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\nprotocol=\"amqp\"\n"),
             Catch::Contains("unknown protocol \"amqp\""));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\n[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\n"),
             Catch::Contains("used twice"));
  CHECK_THAT(error_of("[journal\n"), Catch::Contains("not valid TOML"));
  CHECK_THAT(error_of("[journal]\npath=\"j.db\"\n"), Catch::Contains("no [[sink]] configured"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\ncert_file=\"c.pem\"\n"),
             Catch::Contains("cert_file and key_file go together"));
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\nwindow = 0\n"),
             Catch::Contains("sink[0].window: must be between"));
}

TEST_CASE("the passcode can come from a file and is its first line", "[config]") {
  const std::string path = "test-config-passcode.txt";
  std::ofstream(path) << "s3cret\nignored\n";
  auto config = parse_config("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\npasscode_file=\"" + path + "\"\n",
                             "test.toml");
  std::remove(path.c_str());
  CHECK(config.sinks[0].passcode == "s3cret");
  CHECK_THAT(error_of("[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\npasscode_file=\"/nonexistent/p\"\n"),
             Catch::Contains("sink[0].passcode_file: cannot read"));
}

TEST_CASE("the example configuration in etc/ is valid", "[config]") {
  auto config = gapless::load_config(GAPLESS_SOURCE_DIR "/etc/gapless.example.toml");
  CHECK(!config.sinks.empty());
}

TEST_CASE("embedded defaults point at a local broker", "[config]") {
  auto config = gapless::default_config();
  REQUIRE(config.sinks.size() == 1);
  CHECK(config.sinks[0].brokers.at(0) == "stomp://127.0.0.1:61613");
}
