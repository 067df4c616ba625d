// Proves directory-queue lines are journaled as rsv-perfsonar wrote them, once, and a line the door refuses writes nothing of its batch.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <unistd.h>
#include <sstream>

#include "core/error.hpp"
#include "ingest/ingest.hpp"

using gapless::ingest::parse_message_line;
using gapless::MessageRulesConfig;

namespace {

std::string error_of(const std::string& line) {
  try {
    parse_message_line(line);
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "";
}

// A configuration of two stomp sinks, a and b (as TempJournal registers
// them), taking the protocol's default destinations, with `rules`.
gapless::Config config_with(const MessageRulesConfig& rules = {}) {
  gapless::Config config = gapless::default_config();
  config.sinks.front().name = "a";
  config.sinks.push_back(config.sinks.front());
  config.sinks.back().name = "b";
  config.messages = rules;
  return config;
}

// What ingest_stream threw for `lines` (batches of 10), or "" if it journaled them.
std::string ingest_error(gapless::journal::Journal& journal, const std::string& lines,
                         const MessageRulesConfig& rules = {}) {
  std::istringstream input(lines);
  try {
    gapless::ingest::ingest_stream(input, "producer.jsonl", journal, 10, config_with(rules));
  } catch (const gapless::Error& e) {
    return e.what();
  }
  return "";
}

std::string good_line(int number) {
  return R"({"header":{"destination":"/topic/test.a"},"body":"m)" + std::to_string(number) + "\"}\n";
}

struct TempJournal {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("gapless-ingest-test-" + std::to_string(::getpid()));
  std::unique_ptr<gapless::journal::Journal> journal;
  TempJournal() {
    std::filesystem::create_directories(dir);
    journal = gapless::journal::Journal::open((dir / "j.db").string(), {"a", "b"});
  }
  ~TempJournal() {
    journal.reset();
    std::filesystem::remove_all(dir);
  }
  int64_t pending(const std::string& sink) {
    int64_t total = 0;
    for (const auto& status : journal->status())
      if (status.sink == sink)
        for (const auto& destination : status.destinations) total += destination.pending;
    return total;
  }
};

}  // namespace

TEST_CASE("an rsv-perfsonar directory-queue message is read as rsv wrote it", "[ingest]") {
  // Header values as Python wrote them: ints for summaries and ts_start.
  auto message = parse_message_line(
      R"({"header": {"input-source": "a.example", "ts_start": 1473706479, "event-type": "packet-loss-rate",)"
      R"( "rsv-timestamp": "1473706480.12", "summaries": 0, "destination": "/topic/perfsonar.raw.packet-loss-rate"},)"
      R"( "body": "{\"meta\": {}, \"datapoints\": {\"1473706479\": 0.0}}"})");
  CHECK(message.destination == "/topic/perfsonar.raw.packet-loss-rate");
  CHECK(message.body == R"({"meta": {}, "datapoints": {"1473706479": 0.0}})");
  gapless::journal::Headers expected = {{"input-source", "a.example"}, {"ts_start", "1473706479"},
                                        {"event-type", "packet-loss-rate"}, {"rsv-timestamp", "1473706480.12"},
                                        {"summaries", "0"}};
  std::sort(expected.begin(), expected.end());
  auto headers = message.headers;
  std::sort(headers.begin(), headers.end());
  CHECK(headers == expected);
  CHECK(message.gapless_id.size() == 32);
}

TEST_CASE("base64 bodies are decoded to their bytes, NULs included", "[ingest]") {
  auto message = parse_message_line(R"({"header":{"destination":"/topic/test"},"body":"YWJj7g==","encoding":"base64"})");
  CHECK(message.body == std::string("abc\xee", 4));
  auto binary = parse_message_line(R"({"header":{"destination":"/topic/t"},"body":"AAH//g==","encoding":"base64"})");
  CHECK(binary.body == std::string("\x00\x01\xff\xfe", 4));
}

TEST_CASE("text and byte-string bodies keep their bytes", "[ingest]") {
  CHECK(parse_message_line(R"({"header":{"destination":"/topic/t"},"body":"caf\u00e9","text":true})").body ==
        "caf\xc3\xa9");
  CHECK(parse_message_line(R"({"header":{"destination":"/topic/t"},"body":"caf\u00e9"})").body == "caf\xe9");
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t"},"body":"\u20ac"})"),
             Catch::Contains("above U+00FF"));
}

TEST_CASE("a carried gapless-id is kept, otherwise destination and body decide", "[ingest]") {
  auto carried = parse_message_line(R"({"header":{"destination":"/topic/t","gapless-id":"abc"},"body":"x"})");
  CHECK(carried.gapless_id == "abc");
  for (const auto& [name, value] : carried.headers) CHECK(name != "gapless-id");
  auto one = parse_message_line(R"({"header":{"destination":"/topic/t","x":"1"},"body":"x"})");
  auto same = parse_message_line(R"({"header":{"destination":"/topic/t","x":"2"},"body":"x"})");
  auto other_body = parse_message_line(R"({"header":{"destination":"/topic/t"},"body":"y"})");
  auto other_topic = parse_message_line(R"({"header":{"destination":"/topic/u"},"body":"x"})");
  CHECK(one.gapless_id == same.gapless_id);
  CHECK(one.gapless_id != other_body.gapless_id);
  CHECK(one.gapless_id != other_topic.gapless_id);
}

TEST_CASE("headers the sender owns are dropped", "[ingest]") {
  auto message = parse_message_line(
      R"({"header":{"destination":"/topic/t","receipt":"r","content-length":"3","transaction":"t","persistent":"false","keep":"me"},"body":"x"})");
  REQUIRE(message.headers.size() == 1);
  CHECK(message.headers[0].first == "keep");
}

TEST_CASE("malformed lines are refused with the reason", "[ingest]") {
  CHECK_THAT(error_of("{not json"), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of("[1,2]"), Catch::Contains("expected a JSON object"));
  CHECK_THAT(error_of(R"({"body":"x"})"), Catch::Contains("\"header\" object is missing"));
  CHECK_THAT(error_of(R"({"header":{},"body":"x"})"), Catch::Contains("\"destination\" is missing"));
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t"},"body":"x","encoding":"zlib"})"),
             Catch::Contains("unsupported encoding \"zlib\""));
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t"},"body":"x","encoding":"base64+lz4"})"),
             Catch::Contains("unsupported encoding \"lz4\""));
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t"},"body":"!!!","encoding":"base64"})"),
             Catch::Contains("not valid base64"));
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t","h":{"a":1}},"body":"x"})"),
             Catch::Contains("header \"h\" must be a string or a number"));
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/t"},"body":"x","extra":1})"),
             Catch::Contains("unknown field \"extra\""));
}

TEST_CASE("a number beyond a double is a malformed line named with its line number, not an escaped json error "
          "(fuzz: ingest_line and dirq_element, 7E777)",
          "[ingest]") {
  CHECK_THAT(error_of(R"({"header":{"destination":"/topic/test.a","summaries":7E777},"body":"x"})"),
             Catch::Contains("not valid JSON") && Catch::Contains("number overflow"));
  CHECK_THAT(error_of("1e511"), Catch::Contains("not valid JSON"));
  TempJournal temp;
  CHECK_THAT(ingest_error(*temp.journal, good_line(1) + R"({"header":{"destination":"/topic/test.a"},"body":"x","text":1e511})"),
             Catch::Contains("producer.jsonl:2: not valid JSON"));
}

TEST_CASE("ingesting the same stream twice journals nothing new", "[ingest]") {
  TempJournal temp;
  std::string lines;
  for (int i = 0; i < 25; ++i)
    lines += R"({"header":{"destination":"/topic/test.a"},"body":"message )" + std::to_string(i) + "\"}\n";
  std::istringstream first(lines);
  auto result = gapless::ingest::ingest_stream(first, "first", *temp.journal, 10, config_with());
  CHECK(result.lines == 25);
  CHECK(result.appended == 25);
  std::istringstream second(lines);
  auto again = gapless::ingest::ingest_stream(second, "second", *temp.journal, 10, config_with());
  CHECK(again.appended == 0);
  CHECK(again.duplicates == 25);
  CHECK(temp.pending("a") == 25);
  CHECK(temp.pending("b") == 25);
}

TEST_CASE("a malformed line names its line number and writes nothing of its batch", "[ingest]") {
  TempJournal temp;
  std::string lines;
  for (int i = 1; i <= 14; ++i)
    lines += (i == 13 ? std::string("{broken\n")
                      : R"({"header":{"destination":"/topic/test.a"},"body":"m)" + std::to_string(i) + "\"}\n");
  std::istringstream input(lines);
  try {
    gapless::ingest::ingest_stream(input, "producer.jsonl", *temp.journal, 10, config_with());
    FAIL("accepted a malformed line");
  } catch (const gapless::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("producer.jsonl:13: not valid JSON"));
    CHECK_THAT(e.what(), Catch::Contains("nothing of lines 11-13 was journaled"));
  }
  CHECK(temp.pending("a") == 10);  // the first batch, lines 1-10
}

TEST_CASE("an empty header name is refused at the door: line and rule named, nothing of its batch written",
          "[ingest]") {
  TempJournal temp;
  std::string lines;
  for (int i = 1; i <= 14; ++i)
    lines += i == 13 ? std::string(R"({"header":{"destination":"/topic/perfsonar.raw.x","":"v"},"body":"a"})") + "\n"
                     : good_line(i);
  const std::string error = ingest_error(*temp.journal, lines);
  CHECK_THAT(error, Catch::Contains("producer.jsonl:13: message refused: a header has an empty name"));
  CHECK_THAT(error, Catch::Contains("rule R3"));
  CHECK_THAT(error, Catch::Contains("nothing of lines 11-13 was journaled"));
  CHECK_THAT(error, Catch::Contains("mend or remove line 13 and run the same command again"));
  CHECK(temp.pending("a") == 10);  // the first batch, lines 1-10; nothing of 11-13
  CHECK(temp.pending("b") == 10);
}

TEST_CASE("expires and transformation are refused by default, each named with its line", "[ingest]") {
  TempJournal temp;
  const std::string expires = good_line(1) + R"({"header":{"destination":"/topic/t","expires":0},"body":"e"})" + "\n";
  std::string error = ingest_error(*temp.journal, expires);
  CHECK_THAT(error, Catch::Contains("producer.jsonl:2: message refused: header \"expires\" is refused"));
  CHECK_THAT(error, Catch::Contains("rule R5"));
  CHECK_THAT(error, Catch::Contains("[messages] refused_headers"));

  const std::string transformation =
      R"({"header":{"destination":"/topic/t","transformation":"jms-map-json"},"body":"t"})" "\n";
  error = ingest_error(*temp.journal, transformation);
  CHECK_THAT(error, Catch::Contains("producer.jsonl:1: message refused: header \"transformation\" is refused"));
  CHECK(temp.pending("a") == 0);  // line 1 of the first input shared the refused line's batch
}

TEST_CASE("a configuration that allows expires and transformation journals them", "[ingest]") {
  TempJournal temp;
  MessageRulesConfig allowing;
  allowing.refused_headers = {};
  const std::string lines =
      R"({"header":{"destination":"/topic/t","expires":0},"body":"e"})" "\n"
      R"({"header":{"destination":"/topic/t","transformation":"jms-map-json"},"body":"t"})" "\n";
  CHECK(ingest_error(*temp.journal, lines, allowing).empty());
  CHECK(temp.pending("a") == 2);
}

TEST_CASE("the door sees the gapless-id and the destination, not the sender-owned headers it drops", "[ingest]") {
  TempJournal temp;
  CHECK_THAT(ingest_error(*temp.journal, R"({"header":{"destination":"/topic/t","gapless-id":"a\u0000b"},"body":"x"})"),
             Catch::Contains("producer.jsonl:1: message refused: the value of header \"gapless-id\" holds a NUL"));
  CHECK_THAT(ingest_error(*temp.journal, R"({"header":{"destination":"/topic/t\nx"},"body":"x"})"),
             Catch::Contains("rule R2"));
  // Dropped before the door, as before: the sender sets its own.
  CHECK(ingest_error(*temp.journal, R"({"header":{"destination":"/topic/t","persistent":"\u0000"},"body":"x"})")
            .empty());
  CHECK(temp.pending("a") == 1);
}

TEST_CASE("a line whose destination no sink takes is refused like a malformed line, naming line and destination",
          "[ingest][accept]") {
  TempJournal temp;
  std::string lines;
  for (int i = 1; i <= 12; ++i)
    lines += i == 12 ? std::string(R"({"header":{"destination":"/pscheduler/run/rtt"},"body":"r"})") + "\n"
                     : good_line(i);
  const std::string error = ingest_error(*temp.journal, lines);
  CHECK_THAT(error, Catch::Contains("producer.jsonl:12: message refused: no sink takes destination \"/pscheduler/run/rtt\""));
  CHECK_THAT(error, Catch::Contains("sink \"a\" accepts [/topic/>, /queue/>]"));
  CHECK_THAT(error, Catch::Contains("nothing of lines 11-12 was journaled"));
  CHECK(temp.pending("a") == 10);  // the first batch only
}
