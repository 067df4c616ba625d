#include "core/hex.hpp"

namespace gapless {

void append_hex(std::string& out, unsigned char byte, HexCase letters) {
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  const char* digits = letters == HexCase::upper ? kUpper : kLower;
  out += digits[byte >> 4];
  out += digits[byte & 0xf];
}

std::string hex_of(std::string_view bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (const char byte : bytes) append_hex(out, static_cast<unsigned char>(byte));
  return out;
}

}  // namespace gapless
