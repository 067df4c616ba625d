// Wall-clock time as the journal records it: unix milliseconds.
#pragma once

#include <cstdint>
#include <optional>

namespace gapless {

int64_t unix_now_ms();

// Tests and benchmarks only: while set, unix_now_ms() returns `now_ms`
// instead of the wall clock, in every thread, so that a simulated year of
// journaling and pruning (bench/retention-bench) runs in minutes.
// std::nullopt gives the wall clock back.
void set_simulated_now_ms(std::optional<int64_t> now_ms);

}  // namespace gapless
