// Waiting that a stop request cuts short: the one sleep of every thread that
// must leave promptly when the daemon stops (a sender's reconnect backoff, a
// journal fault's retry, a component's restart).
#pragma once

#include <atomic>
#include <chrono>

namespace gapless {

// Sleeps `delay` in steps of at most 50 ms, so that a raised `stop` ends it
// within one step. true: the whole delay passed; false: `stop` was raised.
bool sleep_unless_stopped(std::chrono::milliseconds delay, const std::atomic<bool>& stop);

}  // namespace gapless
