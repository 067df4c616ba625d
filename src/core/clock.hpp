// Wall-clock time as the journal records it: unix milliseconds.
#pragma once

#include <cstdint>

namespace gapless {

int64_t unix_now_ms();

}  // namespace gapless
