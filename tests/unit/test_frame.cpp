// Proves STOMP frames encode and parse exactly (escapes, content-length, NULs), and any malformed input is a ProtocolError, never a crash.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "stomp/frame.hpp"

using gapless::stomp::encode;
using gapless::stomp::Frame;
using gapless::stomp::Limits;
using gapless::stomp::Parser;
using gapless::stomp::ProtocolError;
using namespace std::string_literals;

namespace {

std::string encoded(const Frame& frame) {
  std::string out;
  encode(frame, out);
  return out;
}

// Every frame the bytes hold, fed in one piece.
std::vector<Frame> parse_all(const std::string& bytes, Limits limits = {}) {
  Parser parser(limits);
  parser.feed(bytes);
  std::vector<Frame> frames;
  while (auto frame = parser.next()) frames.push_back(std::move(*frame));
  return frames;
}

// Same, one byte at a time, asking for frames after each byte.
std::vector<Frame> parse_bytewise(const std::string& bytes, Limits limits = {}) {
  Parser parser(limits);
  std::vector<Frame> frames;
  for (char c : bytes) {
    parser.feed(std::string_view(&c, 1));
    while (auto frame = parser.next()) frames.push_back(std::move(*frame));
  }
  return frames;
}

Frame parse_one(const std::string& bytes) {
  auto frames = parse_all(bytes);
  REQUIRE(frames.size() == 1);
  return frames[0];
}

std::string parse_error(const std::string& bytes, Limits limits = {}) {
  Parser parser(limits);
  parser.feed(bytes);
  try {
    while (parser.next()) {
    }
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "no error";
}

bool same(const Frame& a, const Frame& b) {
  return a.command == b.command && a.headers == b.headers && a.body == b.body;
}

}  // namespace

TEST_CASE("Frame::header answers the first occurrence", "[stomp][frame]") {
  Frame frame{"MESSAGE", {}, {}};
  frame.add("a", "1").add("b", "2").add("a", "3");
  REQUIRE(frame.header("a"));
  CHECK(*frame.header("a") == "1");
  CHECK(*frame.header("b") == "2");
  CHECK(frame.header("c") == nullptr);
}

TEST_CASE("encode writes command, headers, blank line, body and NUL", "[stomp][frame]") {
  CHECK(encoded(Frame{"SEND", {{"destination", "/topic/a"}}, "hi"}) ==
        "SEND\ndestination:/topic/a\ncontent-length:2\n\nhi\0"s);
  CHECK(encoded(Frame{"BEGIN", {{"transaction", "t1"}}, {}}) == "BEGIN\ntransaction:t1\n\n\0"s);
  CHECK(encoded(Frame{"ERROR", {}, {}}) == "ERROR\ncontent-length:0\n\n\0"s);
}

TEST_CASE("encode keeps a caller's content-length and checks it", "[stomp][frame]") {
  CHECK(encoded(Frame{"SEND", {{"content-length", "3"}}, "abc"}) == "SEND\ncontent-length:3\n\nabc\0"s);
  CHECK_THROWS_AS(encoded(Frame{"SEND", {{"content-length", "4"}}, "abc"}), ProtocolError);
  CHECK_THROWS_AS(encoded(Frame{"SEND", {{"content-length", "x"}}, "abc"}), ProtocolError);
}

TEST_CASE("encode escapes headers except in CONNECT and CONNECTED", "[stomp][frame]") {
  CHECK(encoded(Frame{"SUBSCRIBE", {{"id", "a:b\\c\nd\re"}, {"k:1", "v"}}, {}}) ==
        "SUBSCRIBE\nid:a\\cb\\\\c\\nd\\re\nk\\c1:v\n\n\0"s);
  CHECK(encoded(Frame{"CONNECT", {{"login", "a:b\\c"}}, {}}) == "CONNECT\nlogin:a:b\\c\n\n\0"s);
}

TEST_CASE("encode refuses frames it cannot write", "[stomp][frame]") {
  CHECK_THROWS_AS(encoded(Frame{"", {}, {}}), ProtocolError);
  CHECK_THROWS_AS(encoded(Frame{"SE\nND", {}, {}}), ProtocolError);
  CHECK_THROWS_AS(encoded(Frame{"SEND", {{"", "v"}}, {}}), ProtocolError);
  CHECK_THROWS_AS(encoded(Frame{"CONNECT", {{"a:b", "v"}}, {}}), ProtocolError);
  CHECK_THROWS_AS(encoded(Frame{"CONNECT", {{"passcode", "se\ncret"}}, {}}), ProtocolError);
  CHECK_THROWS_WITH(encoded(Frame{"SUBSCRIBE", {}, "body"}), Catch::Contains("must not have a body"));
  CHECK_THROWS_WITH(encoded(Frame{"ACK", {}, "x"}), Catch::Contains("ACK"));
  // An unencodable CONNECT value is named, never quoted: it may be the passcode.
  CHECK_THROWS_WITH(encoded(Frame{"CONNECT", {{"passcode", "hunter\n2"}}, {}}), !Catch::Contains("hunter"));
}

TEST_CASE("encode leaves the output untouched when it throws", "[stomp][frame]") {
  std::string out = "earlier";
  CHECK_THROWS(encode(Frame{"CONNECT", {{"ok", "1"}, {"bad", "\n"}}, {}}, out));
  CHECK(out == "earlier");
}

TEST_CASE("parser reads a simple frame", "[stomp][frame]") {
  Frame frame = parse_one("RECEIPT\nreceipt-id:77\n\n\0"s);
  CHECK(frame.command == "RECEIPT");
  REQUIRE(frame.headers.size() == 1);
  CHECK(*frame.header("receipt-id") == "77");
  CHECK(frame.body.empty());
}

TEST_CASE("parser accepts CR LF line endings", "[stomp][frame]") {
  Frame frame = parse_one("MESSAGE\r\ndestination:/topic/x\r\nmessage-id:1\r\n\r\nbody\0\r\n"s);
  CHECK(frame.command == "MESSAGE");
  CHECK(*frame.header("destination") == "/topic/x");
  CHECK(frame.body == "body");
}

TEST_CASE("parser skips heart-beats and ActiveMQ's NUL LF frame ending", "[stomp][frame]") {
  auto frames = parse_all("\n\r\n\nRECEIPT\nreceipt-id:1\n\n\0\n\n\r\nRECEIPT\nreceipt-id:2\n\n\0\n"s);
  REQUIRE(frames.size() == 2);
  CHECK(*frames[1].header("receipt-id") == "2");

  Parser parser;
  parser.feed("\n\n\r\n");
  CHECK_FALSE(parser.next());
  CHECK(parser.buffered() == 0);
}

TEST_CASE("content-length bodies may contain NUL", "[stomp][frame]") {
  Frame frame = parse_one("MESSAGE\ncontent-length:5\n\na\0b\0c\0"s);
  CHECK(frame.body == "a\0b\0c"s);
}

TEST_CASE("bodies without content-length end at the first NUL", "[stomp][frame]") {
  auto frames = parse_all("MESSAGE\nx:1\n\nhello\0MESSAGE\n\nworld\0"s);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].body == "hello");
  CHECK(frames[1].body == "world");
}

TEST_CASE("repeated headers keep wire order and the first wins", "[stomp][frame]") {
  Frame frame = parse_one("MESSAGE\nfoo:1\nfoo:2\ncontent-length:1\ncontent-length:junk\n\nx\0"s);
  REQUIRE(frame.headers.size() == 4);
  CHECK(*frame.header("foo") == "1");
  CHECK(frame.headers[1].second == "2");
  CHECK(frame.body == "x");
}

TEST_CASE("parser unescapes headers except in CONNECT and CONNECTED", "[stomp][frame]") {
  Frame message = parse_one("MESSAGE\nmessage-id:ID\\cvm-1\\c1\nk\\\\\\n:a\\rb\n\n\0"s);
  CHECK(*message.header("message-id") == "ID:vm-1:1");
  CHECK(*message.header("k\\\n") == "a\rb");

  Frame connected = parse_one("CONNECTED\nversion:1.2\nsession:ID\\cx\\t\nserver:a:b\n\n\0"s);
  CHECK(*connected.header("session") == "ID\\cx\\t");
  CHECK(*connected.header("server") == "a:b");
}

TEST_CASE("undefined escapes are protocol errors", "[stomp][frame]") {
  CHECK_THAT(parse_error("MESSAGE\nk:a\\tb\n\n\0"s), Catch::Contains("undefined escape \\t in MESSAGE frame"));
  CHECK_THAT(parse_error("MESSAGE\nk:ab\\\n\n\0"s), Catch::Contains("incomplete escape"));
  CHECK_THAT(parse_error("ERROR\nk\\x:v\n\n\0"s), Catch::Contains("ERROR frame"));
}

TEST_CASE("malformed header lines are protocol errors", "[stomp][frame]") {
  CHECK_THAT(parse_error("MESSAGE\nno colon here\n\n\0"s), Catch::Contains("without ':'"));
  CHECK_THAT(parse_error("MESSAGE\n:value\n\n\0"s), Catch::Contains("empty name"));
  CHECK_THAT(parse_error("MESS\1AGE\n\n\0"s), Catch::Contains("control character"));
}

TEST_CASE("content-length must be a non-negative integer", "[stomp][frame]") {
  for (const char* bad : {"-1", "+1", "", " 1", "1 ", "0x10", "abc", "99999999999999999999999"}) {
    INFO(bad);
    CHECK_THAT(parse_error("MESSAGE\ncontent-length:"s + bad + "\n\n\0"s),
               Catch::Contains("is not a non-negative integer in MESSAGE frame"));
  }
  CHECK(parse_one("MESSAGE\ncontent-length:007\n\nabcdefg\0"s).body == "abcdefg");
}

TEST_CASE("a content-length body must be followed by NUL", "[stomp][frame]") {
  CHECK_THAT(parse_error("MESSAGE\ncontent-length:2\n\nabc\0"s), Catch::Contains("not followed by NUL"));
}

TEST_CASE("only SEND, MESSAGE and ERROR may have a body", "[stomp][frame]") {
  CHECK_THAT(parse_error("RECEIPT\nreceipt-id:1\n\nx\0"s), Catch::Contains("RECEIPT frame must not have a body"));
  CHECK_THAT(parse_error("CONNECTED\ncontent-length:3\n\nabc\0"s), Catch::Contains("must not have a body"));
  CHECK(parse_one("RECEIPT\ncontent-length:0\n\n\0"s).command == "RECEIPT");
  CHECK(parse_one("ERROR\nmessage:x\n\ndetail\0"s).body == "detail");
  CHECK(parse_one("SEND\n\npayload\0"s).body == "payload");
}

TEST_CASE("limits are enforced before the frame is complete", "[stomp][frame]") {
  Limits limits;
  limits.max_command_length = 16;
  limits.max_header_line = 32;
  limits.max_headers = 3;
  limits.max_body = 64;

  SECTION("command") {
    Parser parser(limits);
    parser.feed(std::string(17, 'A'));
    CHECK_NOTHROW(parser.next());  // 16 bytes and a CR are still possible
    parser.feed("AA");
    CHECK_THROWS_WITH(parser.next(), "STOMP command longer than 16 bytes");
    CHECK_THAT(parse_error(std::string(17, 'A') + "\n\n\0"s, limits), Catch::Contains("longer than 16"));
    CHECK(parse_all(std::string(16, 'A') + "\r\n\n\0"s, limits).size() == 1);
  }
  SECTION("header line") {
    Parser parser(limits);
    parser.feed("MESSAGE\nk:" + std::string(40, 'v'));
    CHECK_THROWS_WITH(parser.next(), "STOMP header line longer than 32 bytes in MESSAGE frame");
    CHECK(parse_all("MESSAGE\nk:" + std::string(30, 'v') + "\r\n\n\0"s, limits).size() == 1);
  }
  SECTION("header count") {
    CHECK(parse_all("MESSAGE\na:1\nb:2\nc:3\n\n\0"s, limits).size() == 1);
    Parser parser(limits);
    parser.feed("MESSAGE\na:1\nb:2\nc:3\nd:4\n");
    CHECK_THROWS_WITH(parser.next(), "STOMP frame has more than 3 headers in MESSAGE frame");
  }
  SECTION("body announced by content-length") {
    Parser parser(limits);
    parser.feed("MESSAGE\ncontent-length:65\n");
    CHECK_THROWS_WITH(parser.next(), Catch::Contains("exceeds the limit of 64 bytes in MESSAGE frame"));
  }
  SECTION("body without content-length") {
    Parser parser(limits);
    parser.feed("MESSAGE\n\n" + std::string(64, 'x'));
    CHECK_FALSE(parser.next());
    parser.feed("x");
    CHECK_THROWS_WITH(parser.next(), "STOMP body longer than 64 bytes in MESSAGE frame");
    CHECK(parse_all("MESSAGE\n\n" + std::string(64, 'x') + "\0"s, limits).size() == 1);
  }
}

TEST_CASE("a parser that failed keeps failing", "[stomp][frame]") {
  Parser parser;
  parser.feed("MESSAGE\nk:\\q\n\n\0"s);
  CHECK_THROWS_AS(parser.next(), ProtocolError);
  parser.feed("RECEIPT\nreceipt-id:1\n\n\0"s);
  CHECK_THROWS_WITH(parser.next(), Catch::Contains("undefined escape"));
}

TEST_CASE("frames split anywhere come out whole", "[stomp][frame]") {
  const std::string stream = "\nMESSAGE\r\nmessage-id:ID\\c7\ncontent-length:4\n\n\0\0\0\0\0\n"
                             "RECEIPT\nreceipt-id:9\n\n\0"
                             "ERROR\nmessage:bad\n\ndetail\0\r\n"s;
  auto whole = parse_all(stream);
  REQUIRE(whole.size() == 3);
  CHECK(whole[0].body == "\0\0\0\0"s);
  CHECK(*whole[0].header("message-id") == "ID:7");
  auto bytewise = parse_bytewise(stream);
  REQUIRE(bytewise.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(same(whole[i], bytewise[i]));
}

TEST_CASE("buffered counts bytes not yet returned", "[stomp][frame]") {
  Parser parser;
  parser.feed("RECEIPT\nreceipt-id:1\n\n\0RECEIPT\nrec"s);
  CHECK(parser.buffered() == 34);
  CHECK(parser.next());
  CHECK(parser.buffered() == 11);
  CHECK_FALSE(parser.next());
  CHECK(parser.buffered() == 11);
  parser.feed("eipt-id:2\n\n\0\n"s);
  CHECK(parser.next());
  CHECK_FALSE(parser.next());
  CHECK(parser.buffered() == 0);
}

TEST_CASE("encode and parse round-trip random frames", "[stomp][frame]") {
  std::mt19937 random(20261125);
  const char* commands[] = {"SEND", "MESSAGE", "ERROR", "RECEIPT", "SUBSCRIBE", "CONNECT", "CONNECTED"};
  const std::string alphabet = "ab:\\\n\r\0 xyz\xff"s;
  // Headers never hold a NUL (STOMP has no escape for it; encode refuses it), bodies may.
  auto random_text = [&](size_t max_length, bool allow_eol, bool allow_nul = false) {
    std::string text;
    const size_t length = random() % (max_length + 1);
    while (text.size() < length) {
      char c = alphabet[random() % alphabet.size()];
      if (!allow_eol && (c == '\n' || c == '\r' || c == ':')) continue;
      if (!allow_nul && c == '\0') continue;
      text += c;
    }
    return text;
  };
  std::string stream;
  std::vector<Frame> sent;
  for (int i = 0; i < 300; ++i) {
    Frame frame;
    frame.command = commands[random() % std::size(commands)];
    const bool escaped = frame.command != "CONNECT" && frame.command != "CONNECTED";
    const size_t headers = random() % 5;
    for (size_t h = 0; h < headers; ++h) {
      std::string name = "h" + random_text(6, escaped);
      frame.add(name, random_text(12, escaped));
    }
    if (frame.command == "SEND" || frame.command == "MESSAGE" || frame.command == "ERROR")
      frame.body = random_text(40, true, true);
    encode(frame, stream);
    if (random() % 3 == 0) stream += "\n";
    if (frame.command == "SEND" || frame.command == "MESSAGE" || frame.command == "ERROR")
      frame.headers.emplace_back("content-length", std::to_string(frame.body.size()));
    sent.push_back(frame);
  }
  auto received = parse_bytewise(stream);
  REQUIRE(received.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    INFO("frame " << i);
    CHECK(same(sent[i], received[i]));
  }
}

// A hostile or broken peer must get a ProtocolError, never a crash, a hang or
// an exception of another kind.
TEST_CASE("random and mutated input yields frames or ProtocolError only", "[stomp][frame]") {
  std::mt19937 random(7);
  const std::vector<std::string> seeds = {
      "CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0\n"s,
      "MESSAGE\ndestination:/topic/a\nmessage-id:ID\\c1\ncontent-length:3\n\na\0b\0\n"s,
      "RECEIPT\r\nreceipt-id:x\r\n\r\n\0"s,
      "ERROR\nmessage:oops\n\nstack trace\0\n"s,
      "\n\n\r\n"s,
  };
  const std::string special = ":\\\n\r\0cn0123456789-"s;
  Limits small;
  small.max_command_length = 12;
  small.max_header_line = 40;
  small.max_headers = 4;
  small.max_body = 20;

  size_t frames = 0;
  size_t errors = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string input;
    if (round % 5 == 0) {
      input.resize(random() % 200);
      for (char& c : input) c = static_cast<char>(random() % 256);
    } else {
      for (int n = 1 + random() % 3; n > 0; --n) input += seeds[random() % seeds.size()];
      for (int m = 1 + random() % 6; m > 0 && !input.empty(); --m) {
        const size_t at = random() % input.size();
        const char byte = random() % 2 ? special[random() % special.size()] : static_cast<char>(random() % 256);
        switch (random() % 4) {
          case 0: input[at] = byte; break;
          case 1: input.insert(at, 1, byte); break;
          case 2: input.erase(at, 1 + random() % 4); break;
          default: input.insert(at, input.substr(0, random() % input.size())); break;
        }
      }
    }
    Parser parser(round % 2 ? small : Limits{});
    size_t offset = 0;
    try {
      while (offset < input.size()) {
        const size_t chunk = std::min<size_t>(1 + random() % 16, input.size() - offset);
        parser.feed(std::string_view(input).substr(offset, chunk));
        offset += chunk;
        while (auto frame = parser.next()) {
          ++frames;
          CHECK_FALSE(frame->command.empty());
        }
      }
    } catch (const ProtocolError&) {
      ++errors;
      CHECK_THROWS_AS(parser.next(), ProtocolError);
    }
  }
  CHECK(frames > 1000);
  CHECK(errors > 1000);
}

// With a re-scan from the frame start on every call, this would read about
// 16 MiB for each of the 32768 chunks; it must take one pass instead.
TEST_CASE("large bodies arriving in small pieces are parsed in linear time", "[stomp][frame]") {
  const size_t body_size = 32 * 1024 * 1024;
  const std::string chunk(1024, 'x');
  Parser parser;
  const auto start = std::chrono::steady_clock::now();
  parser.feed("MESSAGE\ndestination:/topic/big\n\n");
  for (size_t fed = 0; fed < body_size; fed += chunk.size()) {
    parser.feed(chunk);
    REQUIRE_FALSE(parser.next());
  }
  parser.feed("\0RECEIPT\nreceipt-id:1\n\n"s);
  auto frame = parser.next();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(frame);
  CHECK(frame->body.size() == body_size);
  CHECK(elapsed < std::chrono::seconds(5));
  CHECK_FALSE(parser.next());
  parser.feed("\0"s);
  CHECK(parser.next());
  CHECK(parser.buffered() == 0);
}
