// Bytes as hexadecimal digits: the one digit table behind ids and digests
// (stable_id), the \xNN escapes of peer bytes in messages (stomp) and
// percent-encoding (esmond URLs).
#pragma once

#include <string>
#include <string_view>

namespace gapless {

// Lower case everywhere gapless chooses; upper case where a standard asks for
// it (RFC 3986 percent-encoding).
enum class HexCase { lower, upper };

// Appends the two digits of `byte` ("0a", or "0A" in upper case).
void append_hex(std::string& out, unsigned char byte, HexCase letters = HexCase::lower);

// Two lower-case digits for each byte of `bytes`.
std::string hex_of(std::string_view bytes);

}  // namespace gapless
