#include "core/stop_wait.hpp"

#include <algorithm>
#include <thread>

namespace gapless {

namespace {

// How late a stop request may be noticed.
constexpr std::chrono::milliseconds kStopCheckInterval{50};

}  // namespace

bool sleep_unless_stopped(std::chrono::milliseconds delay, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + delay;
  while (!stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, kStopCheckInterval));
  }
  return false;
}

}  // namespace gapless
