// How many messages a sender may have in flight, as window x transaction_size.
//
// It shrinks when the broker pushes back and grows back after clean commits:
//   - lower(): flow control, a refused COMMIT or an overdue receipt halve it
//     (the window first, then the transaction size, down to one message);
//     ActiveMQ counts an open transaction's messages against its memory limit
//     until COMMIT, so retrying at the same size would never make progress.
//   - narrow_to(n): finding a message the broker drops the connection over
//     (transaction_machine.hpp): at most n messages, so one transaction of n
//     and a window of one while n is below the transaction size.
//   - on_commit(): every kCommitsBeforeGrowing successful COMMITs in a row
//     double it back towards the configured sizes. At the configured size it
//     does nothing: healthy traffic never pays for the shrinking.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gapless::sender {

class InFlightLimit {
 public:
  static constexpr int kCommitsBeforeGrowing = 8;

  InFlightLimit(int transaction_size, int window)
      : configured_size_(std::max(transaction_size, 1)),
        configured_window_(std::max(window, 1)),
        maximum_(int64_t{configured_size_} * configured_window_),
        limit_(maximum_) {}

  int transaction_size() const { return static_cast<int>(std::min<int64_t>(configured_size_, limit_)); }
  int window() const {
    return static_cast<int>(std::clamp<int64_t>(limit_ / transaction_size(), 1, configured_window_));
  }
  int64_t messages() const { return limit_; }

  // False when already at one message.
  bool lower() {
    successes_ = 0;
    if (limit_ == 1) return false;
    limit_ /= 2;
    return true;
  }

  // At most `messages` (at least one). False when it was already that low.
  bool narrow_to(int64_t messages) {
    successes_ = 0;
    messages = std::max<int64_t>(messages, 1);
    if (limit_ <= messages) return false;
    limit_ = messages;
    return true;
  }

  // True when this commit raised the limit.
  bool on_commit() {
    if (limit_ == maximum_ || ++successes_ < kCommitsBeforeGrowing) return false;
    successes_ = 0;
    limit_ = std::min(maximum_, limit_ * 2);
    return true;
  }

 private:
  int configured_size_, configured_window_;
  int64_t maximum_, limit_;
  int successes_ = 0;
};

}  // namespace gapless::sender
