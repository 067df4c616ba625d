#include "core/clock.hpp"

#include <atomic>
#include <chrono>
#include <limits>

namespace gapless {
namespace {

constexpr int64_t kWallClock = std::numeric_limits<int64_t>::min();
std::atomic<int64_t> simulated_now_ms{kWallClock};

}  // namespace

int64_t unix_now_ms() {
  if (const int64_t simulated = simulated_now_ms.load(std::memory_order_relaxed); simulated != kWallClock)
    return simulated;
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void set_simulated_now_ms(std::optional<int64_t> now_ms) {
  simulated_now_ms.store(now_ms.value_or(kWallClock), std::memory_order_relaxed);
}

}  // namespace gapless
