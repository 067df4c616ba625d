// `gapless ingest`: journal messages written by local producers as JSON lines
// in the Messaging::Message form used by stompclt's directory queues
// (docs/osg-format.md 3.3), one message per line:
//
//   {"header": {"destination": "/topic/perfsonar.raw.throughput", "summaries": 0, ...},
//    "body": "...", "encoding": "base64", "text": false}
//
// - header values are strings or numbers (rsv-perfsonar wrote ints); numbers
//   are sent in their JSON text form ("0").
// - encoding: "+"-joined; only base64 and utf8 are accepted (zlib, lz4, snappy
//   are refused: a compressed body must never be sent as if it were the data).
// - body bytes: base64-decoded when "base64"; else the UTF-8 bytes of the text
//   when "text" is true or "utf8" is given; else (a byte string) every
//   character must be <= U+00FF and is one byte.
// - `gapless-id` header: kept as the message's id; without it the id is derived
//   from destination and body, so ingesting the same file twice adds nothing.
// - Headers the sender owns (content-length, receipt, transaction, persistent)
//   are dropped; `destination` is required.
// - A message that can never be a valid frame, or carries a refused header
//   (stomp::journal_refusal, rules R1-R5), or whose destination no configured
//   sink takes (core/destination_filter.hpp: destination_takers), is refused
//   like a malformed line: the error names the line and the rule, and says
//   how to mend the line.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"

namespace gapless::ingest {

// Throws gapless::Error saying what is wrong with the line.
journal::NewMessage parse_message_line(std::string_view line);

// One message in that form (a line, or the whole file of a directory-queue
// element: docs/osg-format.md 3.3), parsed and checked at the door
// (stomp::journal_refusal, R1-R5, with config.messages; a sink of
// config.sinks must take its destination): what every producer of this form
// journals. Throws gapless::Error saying what is wrong.
journal::NewMessage parse_message_at_the_door(std::string_view text, const Config& config);

// The id of a message that carries none: destination and body bytes.
std::string derive_gapless_id(std::string_view destination, std::string_view body);

struct IngestResult {
  int64_t lines = 0;       // non-empty lines read
  int64_t appended = 0;
  int64_t duplicates = 0;  // already journaled (same gapless-id)
};

// Thrown by a BeforeBatch when the journal is at its [journal] max_size
// (ingest_command.hpp); what() names the journal, its size, max_size and
// what to do. A producer stops there: what it journaled before stays.
struct AtSizeLimit : Error {
  using Error::Error;
};

// Called before each batch's transaction; throws AtSizeLimit to stop.
using BeforeBatch = std::function<void()>;

// Reads `input` to the end, journaling every `batch_size` lines in one
// transaction. A malformed line, or a message the door refuses, throws
// gapless::Error naming `source_name`, the line number and what is wrong;
// nothing of that line's batch is written, the batches before it are
// (re-running after a fix adds only what is missing). `before_batch`
// stopping throws AtSizeLimit naming the first line not journaled and how
// many messages the batches before it journaled.
IngestResult ingest_stream(std::istream& input, std::string_view source_name, journal::Journal& journal,
                           size_t batch_size, const Config& config, const BeforeBatch& before_batch = {});

}  // namespace gapless::ingest
