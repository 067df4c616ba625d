// Waiting for a condition a test cannot be told about (a log line, a count
// in status, a set of datapoints on the bus): checked every half second until
// it holds or `timeout` passed, and once more at the end.
#pragma once

#include <chrono>
#include <thread>

namespace gapless::test {

template <typename Condition>
bool eventually(std::chrono::seconds timeout, Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return condition();
}

}  // namespace gapless::test
