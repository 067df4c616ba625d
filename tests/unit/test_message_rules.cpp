// Proves every message rule refuses exactly what it names, at the door or for one sink, and sizes match what is sent.
//
// The rules of stomp/message_rules.hpp: R1-R5 at the door (journal_refusal),
// S1-S3 per sink (sink_refusal), and encoded_size, which S3 and the
// collector's split rely on, against what stomp::encode really writes.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/config.hpp"
#include "stomp/frame.hpp"
#include "stomp/message_rules.hpp"

using Catch::Matchers::Contains;
using gapless::stomp::encode;
using gapless::stomp::encoded_size;
using gapless::stomp::Frame;
using gapless::stomp::HeaderList;
using gapless::stomp::journal_refusal;
using gapless::stomp::sink_refusal;
using gapless::stomp::SinkLimits;

namespace {

const std::vector<std::string> kDefaultRefused = gapless::MessageRulesConfig{}.refused_headers;

// The refusal text, or "" when the message may be journaled.
std::string refusal_of(std::string_view destination, const HeaderList& headers,
                       const std::vector<std::string>& refused = kDefaultRefused) {
  return journal_refusal(destination, headers, refused).value_or("");
}

std::string sink_refusal_of(const Frame& frame, const SinkLimits& limits) {
  return sink_refusal(frame, limits).value_or("");
}

size_t bytes_encoded(const Frame& frame) {
  std::string out = "bytes already in the buffer";
  const size_t before = out.size();
  encode(frame, out);
  return out.size() - before;
}

const std::string kTopic = "/topic/perfsonar.raw.throughput";

}  // namespace

TEST_CASE("a well-formed message passes the door, escapable bytes included", "[message-rules]") {
  CHECK(refusal_of(kTopic, {}).empty());
  CHECK(refusal_of(kTopic, {{"event-type", "throughput"}, {"gapless-id", "abc"}}).empty());
  // ':', CR, LF and backslash are escaped on the wire (STOMP 1.2): not refused.
  CHECK(refusal_of(kTopic, {{"odd:name\r\n\\", "value:with\nnewline"}}).empty());
  // Non-ASCII bytes are fine in a destination; only control characters are not.
  CHECK(refusal_of("/topic/caf\xc3\xa9", {}).empty());
}

TEST_CASE("R1: a missing destination is refused", "[message-rules]") {
  CHECK_THAT(refusal_of("", {{"event-type", "x"}}), Contains("rule R1") && Contains("destination is missing"));
}

TEST_CASE("R2: a destination with a control character is refused", "[message-rules]") {
  for (const std::string& destination : {std::string("/topic/a\nb"), std::string("/topic/a\rb"),
                                        std::string("/topic/a\x01"), std::string("/topic/a\x7f"),
                                        std::string("/topic/a\0b", 9)}) {
    INFO("destination " << destination.size() << " bytes");
    CHECK_THAT(refusal_of(destination, {}), Contains("rule R2") && Contains("control character"));
  }
  // Shown escaped, so the refusal itself stays one log line.
  CHECK_THAT(refusal_of("/topic/a\nb", {}), Contains("\"/topic/a\\x0ab\""));
}

TEST_CASE("R3: an empty header name is refused", "[message-rules]") {
  const std::string refusal = refusal_of(kTopic, {{"event-type", "x"}, {"", "v"}});
  CHECK_THAT(refusal, Contains("rule R3") && Contains("empty name"));
  // And it is what made the sender fail before the door existed.
  Frame send{"SEND", {{"destination", kTopic}, {"", "v"}}, "a"};
  std::string out;
  CHECK_THROWS_WITH(encode(send, out), Contains("empty header name"));
}

TEST_CASE("R4: a NUL in a header name or value is refused, and stomp::encode refuses it too", "[message-rules]") {
  const std::string nul_name("na\0me", 5);
  const std::string nul_value("secret\0x", 8);
  CHECK_THAT(refusal_of(kTopic, {{nul_name, "v"}}), Contains("rule R4") && Contains("name of header"));
  CHECK_THAT(refusal_of(kTopic, {{"h", nul_value}}), Contains("rule R4") && Contains("value of header \"h\""));
  // The value itself is never quoted (it may be long or secret).
  CHECK_THAT(refusal_of(kTopic, {{"h", nul_value}}), !Contains("secret"));

  std::string out = "kept";
  CHECK_THROWS_WITH(encode(Frame{"SEND", {{"destination", kTopic}, {"h", nul_value}}, "a"}, out),
                    Contains("NUL"));
  CHECK_THROWS_WITH(encode(Frame{"SEND", {{"destination", kTopic}, {nul_name, "v"}}, "a"}, out), Contains("NUL"));
  CHECK(out == "kept");  // nothing of a refused frame is left in the buffer
  // A NUL in the body is fine: content-length carries it.
  CHECK_NOTHROW(encode(Frame{"SEND", {{"destination", kTopic}}, std::string("a\0b", 3)}, out));
}

TEST_CASE("R5: expires and transformation are refused by default, and only the configured headers are",
          "[message-rules]") {
  CHECK_THAT(refusal_of(kTopic, {{"expires", "0"}}), Contains("rule R5") && Contains("\"expires\""));
  CHECK_THAT(refusal_of(kTopic, {{"transformation", "jms-map-json"}}),
             Contains("rule R5") && Contains("\"transformation\""));
  CHECK_THAT(refusal_of(kTopic, {{"expires", "0"}}), Contains("refused_headers"));  // how to allow it
  // Header names are case-sensitive in STOMP: only the exact name is the broker's.
  CHECK(refusal_of(kTopic, {{"Expires", "0"}}).empty());
  // A site that allows them, and one that refuses something else.
  CHECK(refusal_of(kTopic, {{"expires", "0"}, {"transformation", "x"}}, {}).empty());
  CHECK_THAT(refusal_of(kTopic, {{"priority", "9"}}, {"priority"}), Contains("rule R5"));
}

TEST_CASE("S1: a header line longer than max_header_line is refused, counted escaped", "[message-rules]") {
  SinkLimits limits;
  limits.max_header_line = 100;
  // "h:" + 98 bytes = 100: at the limit.
  Frame send{"SEND", {{"destination", kTopic}, {"h", std::string(98, 'x')}}, "a"};
  CHECK(sink_refusal_of(send, limits).empty());
  send.headers[1].second += 'x';
  CHECK_THAT(sink_refusal_of(send, limits),
             Contains("header line of 101 bytes") && Contains("\"h\"") && Contains("max_header_line 100"));
  // 49 colons are 98 bytes on the wire (\c each): the escaped length counts.
  send.headers[1].second = std::string(49, ':');
  CHECK(sink_refusal_of(send, limits).empty());
  send.headers[1].second += '\n';  // \n: two more bytes
  CHECK_THAT(sink_refusal_of(send, limits), Contains("header line of 102 bytes"));
  // The name counts too, escaped.
  Frame named{"SEND", {{"destination", kTopic}, {std::string(50, ':'), "v"}}, "a"};
  CHECK_THAT(sink_refusal_of(named, limits), Contains("header line of 102 bytes"));
}

TEST_CASE("S2: more headers than max_headers are refused, the content-length the encoder adds counted",
          "[message-rules]") {
  SinkLimits limits;
  limits.max_headers = 10;
  Frame send{"SEND", {{"destination", kTopic}}, "body"};
  for (int i = 1; i < 9; ++i) send.add("h" + std::to_string(i), "v");
  REQUIRE(send.headers.size() == 9);
  CHECK(sink_refusal_of(send, limits).empty());  // 9 + content-length = 10
  send.add("h9", "v");
  CHECK_THAT(sink_refusal_of(send, limits), Contains("11 headers exceed max_headers 10"));
  // With the caller's own content-length nothing is added.
  send.headers.back() = {"content-length", "4"};
  CHECK(sink_refusal_of(send, limits).empty());
}

TEST_CASE("S3: a frame larger than max_message_size is refused, headers and all", "[message-rules]") {
  Frame send{"SEND", {{"destination", kTopic}, {"gapless-id", "abc"}}, std::string(1000, 'b')};
  const size_t size = bytes_encoded(send);
  SinkLimits limits;
  limits.max_message_size = static_cast<int64_t>(size);
  CHECK(sink_refusal_of(send, limits).empty());
  limits.max_message_size = static_cast<int64_t>(size) - 1;
  CHECK_THAT(sink_refusal_of(send, limits), Contains("frame of " + std::to_string(size) + " bytes") &&
                                                Contains("max_message_size " + std::to_string(size - 1)));
  // A body below the limit does not make the frame fit: the headers count.
  limits.max_message_size = 1001;
  CHECK_THAT(sink_refusal_of(send, limits), Contains("exceeds max_message_size 1001"));
}

TEST_CASE("encoded_size is exactly what stomp::encode appends", "[message-rules]") {
  const std::vector<Frame> frames = {
      Frame{"SEND", {{"destination", kTopic}, {"gapless-id", "abc"}}, "{\"meta\":{}}"},
      Frame{"SEND", {{"destination", kTopic}}, ""},
      // Escapes in names and values: each escaped byte takes two.
      Frame{"SEND", {{"destination", kTopic}, {"a:b", "c\\d\r\ne:f"}}, "x"},
      // The caller's content-length, and a binary body with NULs.
      Frame{"SEND", {{"destination", kTopic}, {"content-length", "5"}}, std::string("a\0b\0c", 5)},
      Frame{"MESSAGE", {{"subscription", "1"}, {"message-id", "id:1:2"}}, std::string(70000, 'm')},
      Frame{"ERROR", {{"message", "refused: a\nb"}}, "details"},
      Frame{"BEGIN", {{"transaction", "12"}}, ""},
      // CONNECT keeps STOMP 1.0's unescaped headers: a ':' in a value is one byte.
      Frame{"CONNECT", {{"accept-version", "1.2"}, {"host", "broker:61613"}, {"passcode", "p:w"}}, ""},
      Frame{"CONNECTED", {{"version", "1.2"}, {"server", "ActiveMQ/5:x"}}, ""},
  };
  for (const Frame& frame : frames) {
    INFO(frame.command << " with " << frame.headers.size() << " headers and a " << frame.body.size()
                       << "-byte body");
    CHECK(encoded_size(frame) == bytes_encoded(frame));
  }
}
