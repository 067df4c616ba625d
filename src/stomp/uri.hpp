// Broker addresses as configured: stomp://HOST:PORT or stomp+ssl://HOST:PORT
// (also ssl:// and tcp:// as stompclt accepted). IPv6 hosts in brackets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gapless::stomp {

struct BrokerUri {
  bool tls = false;
  std::string host;
  uint16_t port = 0;

  // Throws gapless::Error naming the URI and what is wrong with it.
  static BrokerUri parse(std::string_view text);
  std::string str() const;  // canonical form, for logs
};

}  // namespace gapless::stomp
