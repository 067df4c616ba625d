#include "core/listen_address.hpp"

#include <stdexcept>

#include "core/error.hpp"

namespace gapless {

ListenAddress parse_listen(const std::string& listen, std::string_view key) {
  const size_t colon = listen.rfind(':');
  ListenAddress address;
  address.host = listen.substr(0, colon == std::string::npos ? 0 : colon);
  if (address.host.size() >= 2 && address.host.front() == '[' && address.host.back() == ']')
    address.host = address.host.substr(1, address.host.size() - 2);
  try {
    if (colon == std::string::npos) throw std::out_of_range(listen);
    size_t used = 0;
    const std::string port = listen.substr(colon + 1);
    address.port = std::stoi(port, &used);
    if (used != port.size() || address.port < 0 || address.port > 65535) throw std::out_of_range(port);
  } catch (const std::exception&) {
    throw Error(std::string(key) + ": \"" + listen + "\" has no port number from 0 to 65535 after its last ':'");
  }
  return address;
}

}  // namespace gapless
