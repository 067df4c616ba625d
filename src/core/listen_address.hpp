// "HOST:PORT" of a listening endpoint ([http] listen, [push] listen), with
// "[::1]:PORT" for IPv6. Port 0: any free port (tests).
#pragma once

#include <string>
#include <string_view>

namespace gapless {

struct ListenAddress {
  std::string host;
  int port = 0;
};

// Throws gapless::Error naming `key` when there is no port from 0 to 65535
// after the last ':'.
ListenAddress parse_listen(const std::string& listen, std::string_view key);

}  // namespace gapless
