// core/clock's simulated time for one test: unix_now_ms() answers `now_ms`
// (in every thread) while this lives, and the wall clock again after.
#pragma once

#include <cstdint>
#include <optional>

#include "core/clock.hpp"

namespace gapless::test {

struct SimulatedClock {
  explicit SimulatedClock(int64_t now_ms) { set(now_ms); }
  ~SimulatedClock() { gapless::set_simulated_now_ms(std::nullopt); }
  SimulatedClock(const SimulatedClock&) = delete;
  SimulatedClock& operator=(const SimulatedClock&) = delete;
  void set(int64_t now_ms) { gapless::set_simulated_now_ms(now_ms); }
};

}  // namespace gapless::test
