#include "stomp/message_rules.hpp"

#include <algorithm>

#include "stomp/error_text.hpp"

namespace gapless::stomp {

namespace {

// The escaped length of a header name or value (frame.cpp's append_escaped:
// backslash, LF, CR and ':' take two bytes).
size_t escaped_length(std::string_view text) {
  size_t length = text.size();
  for (const char c : text)
    if (c == '\\' || c == '\n' || c == '\r' || c == ':') ++length;
  return length;
}

bool has_body(std::string_view command) { return command == "SEND" || command == "MESSAGE" || command == "ERROR"; }

// CONNECT and CONNECTED keep STOMP 1.0's unescaped headers (frame.cpp).
size_t header_text_length(std::string_view command, std::string_view text) {
  return command == "CONNECT" || command == "CONNECTED" ? text.size() : escaped_length(text);
}

}  // namespace

std::optional<std::string> journal_refusal(std::string_view destination, const HeaderList& headers,
                                           const std::vector<std::string>& refused_headers) {
  if (destination.empty())
    return "the destination is missing or empty (rule R1: every message needs a destination; give it one)";
  for (const char c : destination)
    if (is_control(static_cast<unsigned char>(c)))
      return "the destination " + quoted(destination) +
             " holds a control character (rule R2: a destination is a name without control characters; "
             "remove them)";
  for (const auto& [name, value] : headers) {
    // No position is given: producers' header order is not what the
    // operator sees (a JSON object's keys come back sorted).
    if (name.empty())
      return "a header has an empty name (rule R3: every header needs a name; name it or remove it)";
    if (name.find('\0') != std::string::npos)
      return "the name of header " + quoted(name) +
             " holds a NUL byte (rule R4: STOMP cannot carry a NUL in a header; remove it)";
    if (value.find('\0') != std::string::npos)
      return "the value of header " + quoted(name) +
             " holds a NUL byte (rule R4: STOMP cannot carry a NUL in a header; remove it)";
    if (std::find(refused_headers.begin(), refused_headers.end(), name) != refused_headers.end())
      return "header " + quoted(name) +
             " is refused: a broker drops or fails such a message after accepting it (rule R5: remove the "
             "header, or take it out of [messages] refused_headers if every broker honours it safely)";
  }
  return std::nullopt;
}

size_t encoded_size(const Frame& frame) {
  size_t size = frame.command.size() + 1;
  for (const auto& [name, value] : frame.headers)
    size += header_text_length(frame.command, name) + 1 + header_text_length(frame.command, value) + 1;
  if (has_body(frame.command) && !frame.header("content-length"))
    size += std::string_view("content-length:").size() + std::to_string(frame.body.size()).size() + 1;
  return size + 1 + frame.body.size() + 1;
}

std::optional<std::string> sink_refusal(const Frame& send, const SinkLimits& limits) {
  const size_t header_count = send.headers.size() + (has_body(send.command) && !send.header("content-length") ? 1 : 0);
  if (static_cast<int64_t>(header_count) > limits.max_headers)
    return std::to_string(header_count) + " headers exceed max_headers " + std::to_string(limits.max_headers);
  for (const auto& [name, value] : send.headers) {
    const size_t line = escaped_length(name) + 1 + escaped_length(value);
    if (static_cast<int64_t>(line) > limits.max_header_line)
      return "a header line of " + std::to_string(line) + " bytes (header " + quoted(name) +
             ") exceeds max_header_line " + std::to_string(limits.max_header_line);
  }
  const size_t size = encoded_size(send);
  if (static_cast<int64_t>(size) > limits.max_message_size)
    return "a frame of " + std::to_string(size) + " bytes exceeds max_message_size " +
           std::to_string(limits.max_message_size);
  return std::nullopt;
}

}  // namespace gapless::stomp
