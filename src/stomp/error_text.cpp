#include "stomp/error_text.hpp"

#include <algorithm>

#include "core/hex.hpp"

namespace gapless::stomp {

namespace {

// ActiveMQ's stack traces run to kilobytes; the first KiB names the cause.
constexpr size_t kMaxErrorBody = 1024;

constexpr size_t kMaxQuoted = 64;

}  // namespace

bool is_control(unsigned char byte) { return byte < 0x20 || byte == 0x7f; }

std::string printable(char byte) {
  const auto c = static_cast<unsigned char>(byte);
  if (!is_control(c)) return std::string(1, byte);
  std::string escape = "\\x";
  append_hex(escape, c);
  return escape;
}

std::string quoted(std::string_view bytes) {
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < kMaxQuoted; ++i) out += printable(bytes[i]);
  return out + (bytes.size() > kMaxQuoted ? "\"..." : "\"");
}

std::string clean_error_text(std::string_view text, size_t max_length) {
  std::string out;
  out.reserve(std::min(text.size(), max_length));
  bool cut = false;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const char shown = is_control(byte) ? ' ' : c == '"' ? '\'' : c;
    if (shown == ' ' && (out.empty() || out.back() == ' ')) continue;
    if (out.size() >= max_length) {
      cut = true;
      break;
    }
    out += shown;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (!cut) return out;
  // Room for the marker, and never half a UTF-8 sequence (continuation bytes are 10xxxxxx).
  size_t keep = max_length > 3 ? max_length - 3 : 0;
  keep = std::min(keep, out.size());
  while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80) --keep;
  out.resize(keep);
  return out + "...";
}

std::string error_text(const Frame& error) {
  if (const std::string* message = error.header("message"); message && !message->empty()) {
    std::string cleaned = clean_error_text(*message);
    if (!cleaned.empty()) return cleaned;
  }
  std::string cleaned = clean_error_text(std::string_view(error.body).substr(0, error.body.find('\n')));
  return cleaned.empty() ? "ERROR frame without a message" : cleaned;
}

std::string error_text_with_body(const Frame& error) {
  const std::string* message = error.header("message");
  std::string text = message ? clean_error_text(*message) : "ERROR without a message header";
  const std::string body = clean_error_text(error.body, kMaxErrorBody);
  if (!body.empty() && body != text) text += " (" + body + ")";
  return text;
}

}  // namespace gapless::stomp
