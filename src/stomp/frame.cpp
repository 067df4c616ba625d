#include "stomp/frame.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "stomp/error_text.hpp"

namespace gapless::stomp {

namespace {

// CONNECT and CONNECTED keep STOMP 1.0's unescaped headers so that a 1.2
// client can still talk to a 1.0 server during negotiation (spec "Value Encoding").
bool escapes_headers(std::string_view command) {
  return command != "CONNECT" && command != "CONNECTED";
}

bool may_have_body(std::string_view command) {
  return command == "SEND" || command == "MESSAGE" || command == "ERROR";
}

std::string in_frame(std::string_view command) {
  return " in " + std::string(command) + " frame";
}

// content-length is a plain decimal octet count; signs, spaces and hex are
// rejected rather than guessed at.
std::optional<uint64_t> parse_content_length(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || stop != end || text.front() == '-') return std::nullopt;
  return value;
}

std::string unescape(std::string_view raw, std::string_view command) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
      continue;
    }
    if (++i == raw.size())
      throw ProtocolError("STOMP header ends with an incomplete escape" + in_frame(command) +
                          ": " + quoted(raw));
    switch (raw[i]) {
      case '\\': out += '\\'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 'c': out += ':'; break;
      default:
        throw ProtocolError("STOMP header has undefined escape \\" + printable(raw[i]) + in_frame(command) +
                            " (only \\\\, \\n, \\r and \\c are defined)");
    }
  }
  return out;
}

void append_escaped(std::string_view text, std::string& out) {
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case ':': out += "\\c"; break;
      default: out += c;
    }
  }
}

// Error texts name the header but never quote its value: CONNECT carries the passcode.
void append_header(const Frame& frame, const std::string& name, const std::string& value,
                   bool escaped, std::string& out) {
  if (name.empty()) throw ProtocolError("cannot encode an empty header name" + in_frame(frame.command));
  // STOMP 1.2 has no escape for NUL, and a broker reading a frame without
  // content-length would end it there.
  if (name.find('\0') != std::string::npos)
    throw ProtocolError("cannot encode header name " + quoted(name) + in_frame(frame.command) + ": it holds a NUL byte");
  if (value.find('\0') != std::string::npos)
    throw ProtocolError("cannot encode the value of header " + quoted(name) + in_frame(frame.command) +
                        ": it holds a NUL byte");
  if (escaped) {
    append_escaped(name, out);
    out += ':';
    append_escaped(value, out);
  } else {
    if (name.find_first_of(":\r\n") != std::string::npos)
      throw ProtocolError("cannot encode header name " + quoted(name) + in_frame(frame.command) +
                          ": its headers are not escaped, so ':', CR and LF cannot be sent");
    if (value.find_first_of("\r\n") != std::string::npos)
      throw ProtocolError("cannot encode the value of header " + quoted(name) + in_frame(frame.command) +
                          ": its headers are not escaped, so CR and LF cannot be sent");
    out += name;
    out += ':';
    out += value;
  }
  out += '\n';
}

void check_encodable(const Frame& frame) {
  if (frame.command.empty()) throw ProtocolError("cannot encode a STOMP frame without a command");
  for (char c : frame.command)
    if (is_control(static_cast<unsigned char>(c)))
      throw ProtocolError("cannot encode STOMP command " + quoted(frame.command) +
                          ": it contains a control character");
  if (!frame.body.empty() && !may_have_body(frame.command))
    throw ProtocolError("a " + frame.command + " frame must not have a body (only SEND, MESSAGE and ERROR may)");
  if (const std::string* length = frame.header("content-length")) {
    auto parsed = parse_content_length(*length);
    if (!parsed || *parsed != frame.body.size())
      throw ProtocolError("content-length " + quoted(*length) + " does not match the " +
                          std::to_string(frame.body.size()) + "-byte body" + in_frame(frame.command));
  }
}

}  // namespace

const std::string* Frame::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name) return &value;
  return nullptr;
}

Frame& Frame::add(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

void encode(const Frame& frame, std::string& out) {
  check_encodable(frame);
  const size_t start = out.size();
  try {
    const bool escaped = escapes_headers(frame.command);
    out += frame.command;
    out += '\n';
    for (const auto& [name, value] : frame.headers) append_header(frame, name, value, escaped, out);
    // Without content-length a body ends at its first NUL; with it, any bytes go through.
    if (may_have_body(frame.command) && !frame.header("content-length"))
      out += "content-length:" + std::to_string(frame.body.size()) + "\n";
    out += '\n';
    out += frame.body;
    out += '\0';
  } catch (...) {
    out.resize(start);  // a caller's outgoing buffer must never hold half a frame
    throw;
  }
}

Parser::Parser(Limits limits) : limits_(limits) {}

void Parser::feed(std::string_view bytes) {
  compact();
  buffer_.append(bytes);
}

std::optional<Frame> Parser::next() {
  if (stage_ == Stage::failed) throw ProtocolError(failure_);
  try {
    return parse_available();
  } catch (const ProtocolError& e) {
    // After a framing error we no longer know where frames start.
    stage_ = Stage::failed;
    failure_ = e.what();
    throw;
  }
}

std::optional<Frame> Parser::parse_available() {
  for (;;) {
    switch (stage_) {
      case Stage::between_frames:
        if (!skip_heart_beats()) return std::nullopt;
        break;
      case Stage::command:
        if (!parse_command()) return std::nullopt;
        break;
      case Stage::headers:
        if (!parse_header_line()) return std::nullopt;
        break;
      case Stage::body:
        return parse_body();
      case Stage::failed:
        throw ProtocolError(failure_);
    }
  }
}

// EOLs between frames are heart-beats (and ActiveMQ's "\0\n" frame ending).
bool Parser::skip_heart_beats() {
  while (consumed_ < buffer_.size()) {
    const char c = buffer_[consumed_];
    if (c == '\n') {
      ++consumed_;
    } else if (c == '\r' && consumed_ + 1 == buffer_.size()) {
      break;  // CR of a CR LF whose LF has not arrived
    } else if (c == '\r' && buffer_[consumed_ + 1] == '\n') {
      consumed_ += 2;
    } else {
      line_start_ = scan_from_ = consumed_;
      stage_ = Stage::command;
      return true;
    }
  }
  line_start_ = scan_from_ = consumed_;
  return false;
}

bool Parser::parse_command() {
  const size_t max = limits_.max_command_length;
  auto too_long = [&] { return ProtocolError("STOMP command longer than " + std::to_string(max) + " bytes"); };
  auto lf = find_from_scan('\n');
  if (!lf) {
    // +1: the last byte may be the CR of the line's CR LF.
    if (buffer_.size() - line_start_ > max + 1) throw too_long();
    return false;
  }
  std::string_view command = take_line(*lf);
  if (command.size() > max) throw too_long();
  for (char c : command)
    if (is_control(static_cast<unsigned char>(c)))
      throw ProtocolError("STOMP command " + quoted(command) + " contains a control character");
  frame_ = Frame{};
  frame_.command = command;
  content_length_.reset();
  stage_ = Stage::headers;
  return true;
}

bool Parser::parse_header_line() {
  const size_t max = limits_.max_header_line;
  auto too_long = [&] {
    return ProtocolError("STOMP header line longer than " + std::to_string(max) + " bytes" +
                         in_frame(frame_.command));
  };
  auto lf = find_from_scan('\n');
  if (!lf) {
    if (buffer_.size() - line_start_ > max + 1) throw too_long();
    return false;
  }
  std::string_view line = take_line(*lf);
  if (line.empty()) {
    stage_ = Stage::body;
    return true;
  }
  if (line.size() > max) throw too_long();
  if (frame_.headers.size() >= limits_.max_headers)
    throw ProtocolError("STOMP frame has more than " + std::to_string(limits_.max_headers) + " headers" +
                        in_frame(frame_.command));
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos)
    throw ProtocolError("STOMP header line without ':'" + in_frame(frame_.command) + ": " + quoted(line));
  const bool escaped = escapes_headers(frame_.command);
  std::string name = escaped ? unescape(line.substr(0, colon), frame_.command) : std::string(line.substr(0, colon));
  std::string value = escaped ? unescape(line.substr(colon + 1), frame_.command) : std::string(line.substr(colon + 1));
  if (name.empty()) throw ProtocolError("STOMP header with an empty name" + in_frame(frame_.command));

  // Repeated headers: the first wins, so only the first content-length counts.
  if (name == "content-length" && !content_length_) {
    auto length = parse_content_length(value);
    if (!length)
      throw ProtocolError("STOMP content-length " + quoted(value) + " is not a non-negative integer" +
                          in_frame(frame_.command));
    if (*length > limits_.max_body)
      throw ProtocolError("STOMP body of " + std::to_string(*length) + " bytes exceeds the limit of " +
                          std::to_string(limits_.max_body) + " bytes" + in_frame(frame_.command));
    if (*length > 0 && !may_have_body(frame_.command))
      throw ProtocolError("a " + frame_.command + " frame must not have a body (content-length " +
                          std::to_string(*length) + ")");
    content_length_ = static_cast<size_t>(*length);
  }
  frame_.headers.emplace_back(std::move(name), std::move(value));
  return true;
}

std::optional<Frame> Parser::parse_body() {
  const size_t available = buffer_.size() - line_start_;
  size_t end = 0;  // offset of the NUL that ends the frame
  if (!may_have_body(frame_.command)) {
    if (available == 0) return std::nullopt;
    if (buffer_[line_start_] != '\0')
      throw ProtocolError("a " + frame_.command + " frame must not have a body");
    end = line_start_;
  } else if (content_length_) {
    if (available <= *content_length_) return std::nullopt;
    end = line_start_ + *content_length_;
    if (buffer_[end] != '\0')
      throw ProtocolError("STOMP body of content-length " + std::to_string(*content_length_) +
                          " is not followed by NUL" + in_frame(frame_.command));
  } else {
    auto too_large = [&] {
      return ProtocolError("STOMP body longer than " + std::to_string(limits_.max_body) + " bytes" +
                           in_frame(frame_.command));
    };
    auto nul = find_from_scan('\0');
    if (!nul) {
      if (available > limits_.max_body) throw too_large();
      return std::nullopt;
    }
    end = *nul;
    if (end - line_start_ > limits_.max_body) throw too_large();
  }
  frame_.body.assign(buffer_, line_start_, end - line_start_);
  consumed_ = line_start_ = scan_from_ = end + 1;
  stage_ = Stage::between_frames;
  Frame done = std::move(frame_);
  frame_ = Frame{};
  return done;
}

std::optional<size_t> Parser::find_from_scan(char byte) {
  const void* hit = std::memchr(buffer_.data() + scan_from_, byte, buffer_.size() - scan_from_);
  if (!hit) {
    scan_from_ = buffer_.size();
    return std::nullopt;
  }
  return static_cast<size_t>(static_cast<const char*>(hit) - buffer_.data());
}

// The line from line_start_ up to the LF at `lf`, without its optional CR;
// the next line starts after the LF.
std::string_view Parser::take_line(size_t lf) {
  std::string_view line(buffer_.data() + line_start_, lf - line_start_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line_start_ = scan_from_ = lf + 1;
  return line;
}

// Dropping the finished prefix copies what follows it; doing so only once the
// prefix is at least as long as the rest keeps the total copying linear in the
// input. A buffer that once held a huge frame gives the memory back.
void Parser::compact() {
  if (consumed_ == 0 || consumed_ < buffer_.size() - consumed_) return;
  buffer_.erase(0, consumed_);
  line_start_ -= consumed_;
  scan_from_ -= consumed_;
  consumed_ = 0;
  constexpr size_t kKeepCapacity = 1 << 20;
  if (buffer_.capacity() > kKeepCapacity && buffer_.size() < buffer_.capacity() / 4) buffer_.shrink_to_fit();
}

}  // namespace gapless::stomp
