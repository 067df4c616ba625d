// Proves a configuration is read as documented, and every bad key or value is refused with an error naming it.
#include <sys/stat.h>

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

TEST_CASE("a configuration that is not UTF-8 is refused naming the byte, never read past its end "
          "(fuzz: config_parser, a literal string holding a cut UTF-8 sequence)",
          "[config]") {
  // toml11 3.7.1 read past the end of its buffer on this input (ASan: heap-buffer-overflow).
  CHECK_THAT(error_of("'\xf0'"), Catch::Contains("test.toml: not valid TOML: not UTF-8 (byte 2"));
  CHECK_THAT(error_of("log_level = \"info\"\n# caf\xc3\n"), Catch::Contains("not UTF-8 (byte 25"));
  CHECK_THAT(error_of("x = \"\xed\xa0\x80\"\n"), Catch::Contains("not UTF-8 (byte 6"));  // a surrogate
  CHECK_THAT(error_of("# caf\xc3\xa9 \xf0\x9f\x98\x80\n[journal\n"), !Catch::Contains("not UTF-8"));
}

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

TEST_CASE("an empty passcode_file is an error, not \"no passcode\"; one others can read is a warning", "[config]") {
  const std::string path = "test-config-passcode-mode.txt";
  const std::string sink = "[[sink]]\nname=\"a\"\nbrokers=[\"stomp://127.0.0.1:1\"]\npasscode_file=\"" + path + "\"\n";
  std::ofstream(path) << "\nsecret on the second line\n";
  CHECK_THAT(error_of(sink), Catch::Contains("sink[0].passcode_file") && Catch::Contains("is empty"));

  std::ofstream(path) << "s3cret\n";
  ::chmod(path.c_str(), 0640);
  auto shared = parse_config(sink, "test.toml");
  REQUIRE(shared.warnings.size() == 1);
  CHECK_THAT(shared.warnings[0], Catch::Contains(path) && Catch::Contains("0640") && Catch::Contains("chmod 600"));

  ::chmod(path.c_str(), 0600);
  CHECK(parse_config(sink, "test.toml").warnings.empty());
  std::remove(path.c_str());
}

TEST_CASE("a passcode in clear text to another host is a warning; to this host or over TLS it is not", "[config]") {
  const auto warnings_for = [](const std::string& broker) {
    return parse_config("[[sink]]\nname=\"a\"\nbrokers=[\"" + broker + "\"]\nlogin=\"u\"\npasscode=\"p\"\n",
                        "test.toml")
        .warnings;
  };
  const auto remote = warnings_for("stomp://mb.example.org:61613");
  REQUIRE(remote.size() == 1);
  CHECK_THAT(remote[0], Catch::Contains("clear text") && Catch::Contains("stomp://mb.example.org:61613"));
  CHECK(warnings_for("stomp://127.0.0.1:61613").empty());
  CHECK(warnings_for("stomp://localhost:61613").empty());
  CHECK(warnings_for("stomp://[::1]:61613").empty());
  CHECK(warnings_for("stomp+ssl://mb.example.org:61612").empty());
}

TEST_CASE("the example configuration shows every sink and journal key with its default", "[config]") {
  auto config = gapless::load_config(GAPLESS_SOURCE_DIR "/etc/gapless.example.toml");
  const gapless::SinkConfig& example = config.sinks.at(0);
  gapless::SinkConfig defaults;
  CHECK(example.max_message_size == defaults.max_message_size);
  CHECK(example.max_header_line == defaults.max_header_line);
  CHECK(example.max_headers == defaults.max_headers);
  CHECK(example.max_in_flight_bytes == defaults.max_in_flight_bytes);
  CHECK(example.message_attempts == defaults.message_attempts);
  CHECK(config.journal.group == gapless::JournalConfig{}.group);
  CHECK(config.journal.disk_reserve == gapless::JournalConfig{}.disk_reserve);
  CHECK(config.journal.keep_delivered == gapless::JournalConfig{}.keep_delivered);
  CHECK(config.journal.max_size == gapless::JournalConfig{}.max_size);
  const gapless::HttpConfig http_defaults;
  CHECK(config.http.listen == http_defaults.listen);
  CHECK(config.http.stalled_after == http_defaults.stalled_after);
  CHECK(config.http.failed_polls == http_defaults.failed_polls);
  CHECK(config.http.token_file == http_defaults.token_file);
  CHECK(config.messages.refused_headers == gapless::MessageRulesConfig{}.refused_headers);
}

TEST_CASE("a misconfigured http endpoint or journal limit is refused, naming the key", "[config]") {
  const auto error_of = [](const std::string& text) {
    try {
      gapless::parse_config(text + "\n[[sink]]\nname = \"a\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n", "t.toml");
    } catch (const gapless::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK_THAT(error_of("[http]\nlisten = \"9464\""), Catch::Contains("http.listen"));
  CHECK_THAT(error_of("[http]\ncert_file = \"c.pem\""), Catch::Contains("http.cert_file"));
  CHECK_THAT(error_of("[http]\nstaled_after = \"1m\""), Catch::Contains("http.staled_after: unknown key"));
  CHECK_THAT(error_of("[journal]\nmax_size = 1000"), Catch::Contains("journal.max_size"));
  CHECK_THAT(error_of("[journal]\nkeep_delivered = \"7 days\""), Catch::Contains("journal.keep_delivered"));
  CHECK(error_of("[http]\nlisten = \"127.0.0.1:9464\"\n[journal]\nmax_size = 1073741824") == "accepted");
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

TEST_CASE("the example configuration shows every archive key with its default", "[config]") {
  auto config = gapless::load_config(GAPLESS_SOURCE_DIR "/etc/gapless.example.toml");
  REQUIRE(config.archives.size() == 1);
  const gapless::ArchiveConfig& example = config.archives[0];
  gapless::ArchiveConfig defaults;
  CHECK(example.poll_interval == defaults.poll_interval);
  CHECK(example.lookback == defaults.lookback);
  CHECK(example.event_types == gapless::osg_event_types());
  CHECK(example.summaries == defaults.summaries);
  CHECK(example.http_timeout == defaults.http_timeout);
  CHECK(example.overlap == defaults.overlap);
  CHECK(example.summary_grace == defaults.summary_grace);
  CHECK(example.page_size == defaults.page_size);
  CHECK(example.datapoints_per_message == defaults.datapoints_per_message);
  CHECK(example.max_message_size == defaults.max_message_size);
  CHECK(example.gzip == defaults.gzip);
  CHECK(config.collector.max_concurrent_requests == gapless::CollectorConfig{}.max_concurrent_requests);
}

TEST_CASE("archives: durations with units, defaults, and errors naming the key", "[config]") {
  const std::string sink = "[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\n";
  auto config = gapless::parse_config(sink + "[[archive]]\nname=\"x\"\nurl=\"http://h/esmond/perfsonar/archive\"\n"
                                             "poll_interval=\"30s\"\nlookback=\"21d\"\noverlap=7200\n",
                                      "test");
  REQUIRE(config.archives.size() == 1);
  CHECK(config.archives[0].url == "http://h/esmond/perfsonar/archive/");  // the slash esmond's URLs end with
  CHECK(config.archives[0].poll_interval == std::chrono::seconds(30));
  CHECK(config.archives[0].lookback == std::chrono::hours(21 * 24));
  CHECK(config.archives[0].overlap == std::chrono::hours(2));
  CHECK(config.archives[0].summaries);

  const auto error_of = [&](const std::string& archive) {
    try {
      gapless::parse_config(sink + archive, "test");
    } catch (const gapless::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"ftp://h/\"\n"), Catch::Contains("archive[0].url"));
  CHECK_THAT(error_of("[[archive]]\nurl=\"http://h/\"\n"), Catch::Contains("archive[0].name: required"));
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\npoll_intervl=\"5m\"\n"),
             Catch::Contains("archive[0].poll_intervl: unknown key"));
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\nlookback=\"soon\"\n"),
             Catch::Contains("archive[0].lookback"));
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\nsummaries=\"yes\"\n"),
             Catch::Contains("archive[0].summaries: expected true or false"));
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\ncompression=\"brotli\"\n"),
             Catch::Contains("archive[0].compression: expected \"gzip\" or \"none\", got \"brotli\""));
  CHECK_FALSE(gapless::parse_config(sink + "[[archive]]\nname=\"x\"\nurl=\"http://h/\"\ncompression=\"none\"\n", "test")
                  .archives[0]
                  .gzip);
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\n[[archive]]\nname=\"x\"\nurl=\"http://i/\"\n"),
             Catch::Contains("archive name \"x\" is used twice"));
  CHECK_THAT(error_of("[[archive]]\nname=\"x\"\nurl=\"http://h/\"\n[[archive]]\nname=\"y\"\nurl=\"http://h/\"\n"),
             Catch::Contains("configured twice"));
  CHECK_THAT(error_of("[collector]\nmax_concurrent_requests=0\n"),
             Catch::Contains("collector.max_concurrent_requests"));
}

TEST_CASE("a stomp sink's broker is auto unless set; an unknown broker, or broker on an http sink, is an error naming "
          "the key",
          "[config]") {
  const std::string sink = "[[sink]]\nname=\"a\"\nbrokers=[\"stomp://h:1\"]\n";
  CHECK(parse_config(sink, "test.toml").sinks[0].broker == "auto");
  CHECK(parse_config(sink + "broker = \"rabbitmq\"\n", "test.toml").sinks[0].broker == "rabbitmq");
  CHECK(parse_config(sink + "broker = \"activemq\"\n", "test.toml").sinks[0].broker == "activemq");
  CHECK_THAT(error_of(sink + "broker = \"rabbit\"\n"),
             Catch::Contains("sink[0].broker: unknown broker \"rabbit\" (supported: auto, activemq, rabbitmq)"));
  CHECK_THAT(error_of("[[sink]]\nname=\"h\"\nprotocol=\"http\"\nurl=\"http://h/\"\nbroker=\"rabbitmq\"\n"),
             Catch::Contains("sink[0].broker: not a key of an http sink"));
}
