// Text from outside made safe to log and to store as a reason: a broker's
// words, and the bytes of a frame or a producer's header quoted in an error.
//
// An ERROR frame's text comes from the other end of a network connection:
// ActiveMQ puts a Java stack trace in the body of most errors, and a hostile
// or broken broker can send anything. Before it reaches a log line (one event
// per line, "key=value" with quoted values) or the journal (a parked reason,
// shown by `gapless status`), it is cleaned: control characters (newlines
// included) become spaces, runs of spaces collapse, and it is cut to a bounded
// length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "stomp/frame.hpp"

namespace gapless::stomp {

constexpr size_t kMaxErrorText = 512;

// A control byte (0x00-0x1f, 0x7f): never written raw into a log line or an
// error message.
bool is_control(unsigned char byte);

// One byte from outside as an error message shows it: itself, or \xNN for a
// control byte.
std::string printable(char byte);

// Bytes from outside (a broker's frame, a producer's header name) quoted in
// an error message: in double quotes, a control byte as \xNN, at most 64 bytes
// ("..." after the closing quote marks a cut).
std::string quoted(std::string_view bytes);

// `text` without control characters (bytes 0x00-0x1f and 0x7f become one
// space), quotes turned into apostrophes (log values are "quoted"), runs of
// spaces collapsed, trimmed, and at most `max_length` bytes ("..." marks a
// cut; a cut never splits a UTF-8 sequence).
std::string clean_error_text(std::string_view text, size_t max_length = kMaxErrorText);

// The broker's words for an ERROR frame, cleaned: its `message` header, else
// the first line of its body, else "ERROR frame without a message".
std::string error_text(const Frame& error);

// An ERROR frame in full, for an error that ends a connection (a refused
// CONNECT), where the body's detail is worth its length: the cleaned
// `message` header (else "ERROR without a message header"), then the cleaned
// body in parentheses when it says something else.
std::string error_text_with_body(const Frame& error);

}  // namespace gapless::stomp
