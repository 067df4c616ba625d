#include "core/backoff.hpp"

#include <algorithm>

namespace gapless {

std::chrono::milliseconds doubling_delay(std::chrono::milliseconds minimum, std::chrono::milliseconds maximum,
                                         int failures) {
  std::chrono::milliseconds delay = minimum;
  for (int i = 1; i < failures && delay < maximum; ++i) delay *= 2;
  return std::min(delay, maximum);
}

}  // namespace gapless
