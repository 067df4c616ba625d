// Fuzzes the directory-queue element parser of `gapless import-dirq` (the
// whole file of an element, ingest::parse_message_at_the_door with the
// default configuration's sink). Catches: a crash; an element that passes
// the door but cannot be sent: its SEND frame (as the sender builds it) is
// refused by the encoder or comes back from the wire with another
// destination, headers or body. import-dirq removes an element once it is
// journaled, so such an element would be lost for good.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "fuzz_check.hpp"
#include "ingest/ingest.hpp"
#include "stomp/frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const gapless::Config config = gapless::default_config();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  gapless::journal::NewMessage message;
  try {
    message = gapless::ingest::parse_message_at_the_door(text, config);
  } catch (const gapless::Error&) {
    return 0;  // left in the queue, with the reason import-dirq reports
  }
  gapless::stomp::Frame send{"SEND", {}, message.body};
  send.add("destination", message.destination).add("receipt", "1").add("persistent", "true");
  send.add("gapless-id", message.gapless_id);
  for (const auto& [name, value] : message.headers) send.add(name, value);
  std::string wire;
  try {
    gapless::stomp::encode(send, wire);
  } catch (const gapless::stomp::ProtocolError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    FUZZ_CHECK(false, "an element passed the door but its SEND frame cannot be encoded");
  }
  gapless::stomp::Parser parser;
  parser.feed(wire);
  const auto back = parser.next();
  FUZZ_CHECK(back && back->body == message.body, "an element's body changed on the wire");
  FUZZ_CHECK(back->header("destination") && *back->header("destination") == message.destination,
             "an element's destination changed on the wire");
  FUZZ_CHECK(back->header("gapless-id") && *back->header("gapless-id") == message.gapless_id,
             "an element's gapless-id changed on the wire");
  // The frame's own four headers, the element's in order, the encoder's content-length.
  FUZZ_CHECK(back->headers.size() == 4 + message.headers.size() + 1 &&
                 std::equal(message.headers.begin(), message.headers.end(), back->headers.begin() + 4),
             "an element's headers changed on the wire");
  return 0;
}
