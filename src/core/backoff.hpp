// The one rule of waiting after repeated failures: `minimum`, doubled after
// each further failure, never above `maximum`. Callers add their own jitter,
// where many of them might otherwise retry in lockstep (see each caller).
#pragma once

#include <chrono>

namespace gapless {

// The delay after the `failures`-th failure in a row (1 for the first):
// minimum, 2 x minimum, 4 x minimum, ... capped at maximum.
std::chrono::milliseconds doubling_delay(std::chrono::milliseconds minimum, std::chrono::milliseconds maximum,
                                         int failures);

}  // namespace gapless
