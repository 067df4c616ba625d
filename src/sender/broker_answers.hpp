// What a broker's answer says, for both sets of delivery rules
// (delivery_machine.hpp): our receipt ids read back, and what an ERROR's
// words refuse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "stomp/frame.hpp"

namespace gapless::sender {

// Receipt ids: "<group>:<send index>" for SENDs, "<group>:commit" for a
// COMMIT. Strictly what we send; anything else is not ours.
std::string send_receipt_id(int64_t group, size_t index);
std::string commit_receipt_id(int64_t group);
struct ParsedReceipt {
  int64_t group = 0;
  std::optional<size_t> send;  // nothing: the COMMIT
};
std::optional<ParsedReceipt> parse_receipt(const std::string& text);

// What an ERROR is about, from the broker's words:
//   - destination: the sink may not write there (ActiveMQ "not authorized to
//     write to" / "to create", RabbitMQ "ACCESS_REFUSED" in the body, its
//     `message` header "access_refused"), or RabbitMQ has no
//     such kind of destination ("is not a valid destination"): park the
//     destination;
//   - flow_control: ActiveMQ's producer flow control ("Usage Manager ...");
//   - follow_on: RabbitMQ's "Processing error", its answer to each frame that
//     arrives after the frame that failed the session: it names nothing, the
//     ERROR that does follows;
//   - message: anything else, which belongs to the message.
enum class Refusal { destination, flow_control, follow_on, message };
Refusal classify(const std::string& words);

// The kind of an ERROR frame by the same rule (on its `message` header, else
// its body's first line), for counting broker errors: "not-authorized",
// "flow-control", else "refused".
const char* error_kind(const stomp::Frame& error);

// Whether the broker's words name this destination, as RabbitMQ's do:
// "access to topic 'perfsonar.raw.x' in exchange 'amq.topic'" names
// /topic/perfsonar.raw.x, "'/bogus/x' is not a valid destination" names
// /bogus/x, "access to exchange 'e'" names /exchange/e/<key>.
bool words_name(const std::string& words, const std::string& destination);

}  // namespace gapless::sender
