#include "core/constant_time.hpp"

namespace gapless {

bool equal_in_constant_time(std::string_view presented, std::string_view secret) {
  if (secret.empty()) return false;
  unsigned char difference = presented.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i)
    difference |= static_cast<unsigned char>(secret[i] ^ (i < presented.size() ? presented[i] : 0));
  return difference == 0;
}

}  // namespace gapless
