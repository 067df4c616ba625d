// Fuzzes the STOMP frame decoder (stomp/frame.hpp) with what a broker could
// send. Catches: a crash, a hang or an exception other than ProtocolError on
// any input; a frame sequence that depends on how the bytes were split into
// reads (the parser keeps its place between feeds); a decoded frame that the
// encoder writes back differently (decode(encode(frame)) != frame, with only
// the content-length the encoder adds to a body frame that had none).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "stomp/frame.hpp"

namespace {

using gapless::stomp::Frame;
using gapless::stomp::Parser;
using gapless::stomp::ProtocolError;

// Small limits, so that inputs of a few KiB reach every limit check.
gapless::stomp::Limits small_limits() {
  gapless::stomp::Limits limits;
  limits.max_command_length = 32;
  limits.max_header_line = 256;
  limits.max_headers = 16;
  limits.max_body = 4096;
  return limits;
}

struct Decoded {
  std::vector<Frame> frames;
  std::string failure;  // the ProtocolError that ended the stream, if any
};

// Feeds `bytes` in pieces of `piece` bytes, taking every frame after each.
Decoded decode(std::string_view bytes, size_t piece) {
  Decoded out;
  Parser parser(small_limits());
  try {
    for (size_t at = 0; at < bytes.size(); at += piece) {
      parser.feed(bytes.substr(at, piece));
      while (auto frame = parser.next()) out.frames.push_back(std::move(*frame));
    }
  } catch (const ProtocolError& e) {
    out.failure = e.what();
  }
  return out;
}

bool same(const Frame& a, const Frame& b) {
  return a.command == b.command && a.headers == b.headers && a.body == b.body;
}

void check_round_trip(const Frame& frame) {
  std::string wire;
  try {
    gapless::stomp::encode(frame, wire);
  } catch (const ProtocolError&) {
    FUZZ_CHECK(wire.empty(), "encode left half a frame in the buffer after refusing");
    return;                           // a frame the encoder refuses (e.g. CR in a CONNECT header)
  }
  Parser parser;
  parser.feed(wire);
  auto back = parser.next();  // a ProtocolError here escapes: the encoder wrote a bad frame
  FUZZ_CHECK(back && !parser.next() && parser.buffered() == 0, "the encoding is not exactly one frame");
  Frame expected = frame;
  const bool body_frame = frame.command == "SEND" || frame.command == "MESSAGE" || frame.command == "ERROR";
  if (body_frame && !frame.header("content-length")) expected.add("content-length", std::to_string(frame.body.size()));
  FUZZ_CHECK(same(*back, expected), "decode(encode(frame)) differs from frame");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Decoded whole = decode(bytes, bytes.size() + 1);
  // Split into reads of 1 to 16 bytes, chosen by the input's length.
  const Decoded pieces = decode(bytes, 1 + size % 16);
  FUZZ_CHECK(whole.failure == pieces.failure, "the error depends on how the input was split");
  FUZZ_CHECK(whole.frames.size() == pieces.frames.size(), "the frames depend on how the input was split");
  for (size_t i = 0; i < whole.frames.size(); ++i)
    FUZZ_CHECK(same(whole.frames[i], pieces.frames[i]), "a frame depends on how the input was split");
  for (const Frame& frame : whole.frames) check_round_trip(frame);
  return 0;
}
