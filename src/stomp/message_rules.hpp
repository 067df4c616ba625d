// Which messages can be sent as STOMP SEND frames: the one statement of the
// rules, checked in two places.
//
// At the door (every producer calls journal_refusal before it journals a
// message: `gapless ingest`, the collector, backfills). A message refused
// here is never journaled, so it can never stop a sender:
//   R1 A destination is present and not empty.
//   R2 The destination holds no control character (bytes 0x00-0x1f, 0x7f):
//      brokers take it as a name, and a newline or NUL in a name is a
//      different frame on the wire.
//   R3 Every header name is non-empty (STOMP 1.2 grammar: header-name is
//      1*<any OCTET except CR, LF or ":">; we escape CR, LF and ":").
//   R4 No header name or value holds a NUL: STOMP 1.2 has no escape for it,
//      and a NUL ends the frame for a broker reading without content-length.
//   R5 No header is one of `refused_headers` (configuration [messages];
//      default "expires" and "transformation"): headers with which ActiveMQ
//      drops or fails a message after accepting it. `expires` in the past
//      makes the broker discard it after its RECEIPT, a silent loss;
//      `transformation` needs XStream, which Debian's ActiveMQ lacks.
//
// Per sink (the sender calls sink_refusal on each SEND frame it is about to
// send; a message refused here is parked for that sink alone, with the
// limit named in the reason, and never sent):
//   S1 No encoded header line ("name:value", escaped, without its LF) longer
//      than max_header_line: ActiveMQ closes the connection over a header
//      line above 10 KiB, a fixed limit.
//   S2 No more than max_headers headers: ActiveMQ's fixed limit is 1000.
//   S3 The whole encoded frame (command, headers, body, NUL) no larger than
//      max_message_size: RabbitMQ's default frame limit is 4 MiB, ActiveMQ's
//      maxDataLength 100 MiB.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stomp/frame.hpp"

namespace gapless::stomp {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// R1-R5: nothing when the message may be journaled, else the rule it
// breaks and how to mend the message, in words an operator can act on ("a
// header has an empty name (rule R3: every header needs a name; name it or
// remove it)"); the caller adds which input it was. `headers` are all the
// headers the message will carry besides its destination (a producer's
// gapless-id included). Values are never quoted (they may be long or secret).
std::optional<std::string> journal_refusal(std::string_view destination, const HeaderList& headers,
                                           const std::vector<std::string>& refused_headers);

struct SinkLimits {
  int64_t max_message_size = 4 * 1024 * 1024;
  int64_t max_header_line = 10 * 1024;
  int64_t max_headers = 1000;
};

// S1-S3 for `send` exactly as it will be encoded (content-length included
// when the encoder would add it): nothing, or the limit exceeded, named as
// the configuration names it ("a header line of 20485 bytes (header
// \"big\") exceeds max_header_line 10240").
std::optional<std::string> sink_refusal(const Frame& send, const SinkLimits& limits);

// Bytes the encoded frame takes on the wire (what encode() appends).
size_t encoded_size(const Frame& frame);

}  // namespace gapless::stomp
