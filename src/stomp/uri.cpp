#include "stomp/uri.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/error.hpp"

namespace gapless::stomp {

namespace {

constexpr uint16_t kDefaultStompPort = 61613;
constexpr uint16_t kDefaultStompSslPort = 61612;

struct Scheme {
  std::string_view name;
  bool tls;
};

// tcp:// and ssl:// are the spellings stompclt accepted; existing
// configurations keep working when moved over.
constexpr Scheme kSchemes[] = {
    {"stomp", false}, {"tcp", false}, {"stomp+ssl", true}, {"ssl", true},
};

std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// An IPv6 literal, optionally with a zone ("fe80::1%eth0") that getaddrinfo understands.
bool is_ipv6_literal(std::string_view host) {
  const size_t percent = host.find('%');
  std::string address(host.substr(0, percent));
  in6_addr parsed{};
  if (inet_pton(AF_INET6, address.c_str(), &parsed) != 1) return false;
  if (percent == std::string_view::npos) return true;
  std::string_view zone = host.substr(percent + 1);
  return !zone.empty() &&
         std::all_of(zone.begin(), zone.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-' || c == '.'; });
}

// Host names and IPv4 literals; anything else (userinfo, paths, spaces) is a typo.
bool is_host_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_';
  });
}

}  // namespace

BrokerUri BrokerUri::parse(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return Error("broker URI \"" + std::string(text) + "\": " + why +
                 " (expected stomp://HOST:PORT or stomp+ssl://HOST:PORT)");
  };

  const size_t separator = text.find("://");
  if (separator == std::string_view::npos) throw fail("no scheme");
  const std::string scheme = lowercase(text.substr(0, separator));
  auto known = std::find_if(std::begin(kSchemes), std::end(kSchemes),
                            [&](const Scheme& s) { return s.name == scheme; });
  if (known == std::end(kSchemes))
    throw fail("unknown scheme \"" + scheme + "\" (known: stomp, stomp+ssl, tcp, ssl)");

  BrokerUri uri;
  uri.tls = known->tls;
  std::string_view rest = text.substr(separator + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);

  std::string_view host;
  std::string_view after_host;  // ":PORT" or empty
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) throw fail("'[' without ']'");
    host = rest.substr(1, close - 1);
    after_host = rest.substr(close + 1);
    if (!is_ipv6_literal(host)) throw fail("\"" + std::string(host) + "\" is not an IPv6 address");
  } else {
    const size_t colon = rest.find(':');
    host = rest.substr(0, colon);
    after_host = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
    if (after_host.find(':', 1) != std::string_view::npos)
      throw fail("IPv6 addresses must be written in brackets, e.g. stomp://[::1]:61613");
    if (host.empty()) throw fail("no host");
    if (!is_host_name(host)) throw fail("\"" + std::string(host) + "\" is not a host name or address");
  }
  uri.host = std::string(host);

  if (after_host.empty()) {
    uri.port = uri.tls ? kDefaultStompSslPort : kDefaultStompPort;
  } else {
    if (after_host.front() != ':') throw fail("unexpected \"" + std::string(after_host) + "\" after the host");
    std::string_view port = after_host.substr(1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      throw fail("port \"" + std::string(port) + "\" is not a number from 1 to 65535");
    uri.port = static_cast<uint16_t>(value);
  }
  return uri;
}

std::string BrokerUri::str() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return std::string(tls ? "stomp+ssl://" : "stomp://") + (ipv6 ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

}  // namespace gapless::stomp
