// Fuzzes the frame validator (stomp/message_rules.hpp): the door's rules
// R1-R5 and one sink's limits S1-S3, on a SEND frame built as the sender
// builds it. Catches: a message the door accepts that the encoder then
// refuses (it would be journaled and could never be sent); one that comes
// back from the wire with another destination, headers or body; a frame
// within a sink's limits whose encoding exceeds them (the broker would close
// the connection on every retry); encoded_size differing from the encoding.
//
// Input, one field a line, escapes \n \r \0 \c (':') and \\ in the fields:
//   destination
//   name:value          (headers, up to an empty line)
//
//   body                (the rest, raw)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "stomp/frame.hpp"
#include "stomp/message_rules.hpp"

namespace {

using gapless::stomp::Frame;

std::string unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    switch (text[++i]) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case 'c': out += ':'; break;
      default: out += text[i];
    }
  }
  return out;
}

// Headers the sender writes itself on every SEND (ingest drops them from a
// producer's message; sender.cpp send_frame).
bool sender_owned(const std::string& name) {
  return name == "content-length" || name == "receipt" || name == "transaction" || name == "persistent";
}

// The encoded header lines of `wire` (between the command and the blank line).
std::vector<std::string_view> header_lines(std::string_view wire) {
  std::vector<std::string_view> lines;
  size_t at = wire.find('\n') + 1;
  for (size_t lf = wire.find('\n', at); lf != std::string_view::npos && lf != at; lf = wire.find('\n', at)) {
    lines.push_back(wire.substr(at, lf - at));
    at = lf + 1;
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto next_line = [&]() {
    const size_t lf = std::min(input.find('\n'), input.size());
    std::string_view line = input.substr(0, lf);
    input.remove_prefix(std::min(lf + 1, input.size()));
    return line;
  };
  const std::string destination = unescape(next_line());
  gapless::stomp::HeaderList headers;
  for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
    const size_t colon = std::min(line.find(':'), line.size());
    std::string name = unescape(line.substr(0, colon));
    if (!sender_owned(name)) headers.emplace_back(std::move(name), unescape(line.substr(std::min(colon + 1, line.size()))));
  }
  const std::string gapless_id = "ingest/v1-0123456789abcdef";

  gapless::stomp::HeaderList door_headers = headers;
  door_headers.emplace_back("gapless-id", gapless_id);
  const auto refusal = gapless::stomp::journal_refusal(destination, door_headers, {"expires", "transformation"});

  Frame send{"SEND", {}, std::string(input)};
  send.add("destination", destination).add("transaction", "7").add("receipt", "7-1").add("persistent", "true");
  send.add("gapless-id", gapless_id);
  for (const auto& [name, value] : headers) send.add(name, value);

  std::string wire;
  try {
    gapless::stomp::encode(send, wire);
  } catch (const gapless::stomp::ProtocolError&) {
    FUZZ_CHECK(refusal.has_value(), "the door accepted a message the encoder refuses");
    return 0;
  }
  FUZZ_CHECK(gapless::stomp::encoded_size(send) == wire.size(), "encoded_size differs from the encoding's size");

  if (!refusal) {
    gapless::stomp::Parser parser;
    parser.feed(wire);
    const auto back = parser.next();
    FUZZ_CHECK(back && back->command == "SEND", "an accepted message does not decode as one SEND");
    FUZZ_CHECK(back->body == send.body, "an accepted message's body changed on the wire");
    FUZZ_CHECK(back->header("destination") && *back->header("destination") == destination,
               "an accepted message's destination changed on the wire");
    // The encoder adds content-length after the sender's headers.
    FUZZ_CHECK(back->headers.size() == send.headers.size() + 1 &&
                   std::equal(send.headers.begin(), send.headers.end(), back->headers.begin()),
               "an accepted message's headers changed on the wire");
  }

  // Small limits, so that short inputs cross them.
  gapless::stomp::SinkLimits limits;
  limits.max_message_size = 2048;
  limits.max_header_line = 128;
  limits.max_headers = 12;
  if (!gapless::stomp::sink_refusal(send, limits)) {
    FUZZ_CHECK(static_cast<int64_t>(wire.size()) <= limits.max_message_size,
               "a frame within max_message_size encodes larger");
    const auto lines = header_lines(wire);
    FUZZ_CHECK(static_cast<int64_t>(lines.size()) <= limits.max_headers, "a frame within max_headers encodes more");
    for (const std::string_view line : lines)
      FUZZ_CHECK(static_cast<int64_t>(line.size()) <= limits.max_header_line,
                 "a frame within max_header_line encodes a longer line");
  }
  return 0;
}
