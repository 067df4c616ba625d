// A component's sign of life for the service watchdog (daemon/service_notify.hpp):
// the sender and the collector beat it each time their loop turns, and while
// they wait on purpose (a reconnect backoff, an archive not yet due); the
// daemon's main loop asks how long each has been silent and stops pinging
// systemd's watchdog when one has been silent for longer than the watchdog
// interval, so a loop stuck in one call gets the service restarted.
//
// A component of several loops (the collector's polling threads) is watched
// as its most silent loop: each loop at work is a member of the component's
// heartbeat, so one stuck loop is not hidden by the beats of the others.
//
// Here in core because the beaters (sender, collector) sit below the daemon
// that reads it (docs/architecture.md, "Layers").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

namespace gapless {

class Heartbeat {
 public:
  Heartbeat();
  // The loop turned, or a deliberate wait took another step.
  void beat() noexcept;
  // The component returned on purpose (stopped, drained): no longer watched.
  void retire() noexcept;
  // Time since the last beat, or the longest silence of a member if that is
  // longer; zero once retired.
  std::chrono::milliseconds silence() const;

  // While joined, `member`'s silence counts as this heartbeat's (see the
  // top). A member leaves before it is destroyed.
  void join(const Heartbeat& member);
  void leave(const Heartbeat& member);

 private:
  std::chrono::milliseconds own_silence() const noexcept;
  static constexpr int64_t kRetired = INT64_MIN;
  std::atomic<int64_t> last_beat_ms_;  // steady clock
  mutable std::mutex members_mutex_;
  std::vector<const Heartbeat*> members_;
};

// sleep_unless_stopped (core/stop_wait.hpp) that beats `heartbeat` about once
// a second: a wait that goes on as planned is progress, not a stuck loop.
// true: the whole delay passed; false: `stop` was raised.
bool sleep_beating(std::chrono::milliseconds delay, const std::atomic<bool>& stop, Heartbeat& heartbeat);

}  // namespace gapless
