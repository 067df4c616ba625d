#include "core/heartbeat.hpp"

#include <algorithm>

#include "core/stop_wait.hpp"

namespace gapless {

namespace {

// Well below any sensible watchdog interval (systemd's WatchdogSec).
constexpr std::chrono::milliseconds kBeatDuringWaits{1000};

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Heartbeat::Heartbeat() : last_beat_ms_(steady_now_ms()) {}

void Heartbeat::beat() noexcept { last_beat_ms_.store(steady_now_ms()); }

void Heartbeat::retire() noexcept { last_beat_ms_.store(kRetired); }

std::chrono::milliseconds Heartbeat::own_silence() const noexcept {
  const int64_t last = last_beat_ms_.load();
  if (last == kRetired) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::max<int64_t>(0, steady_now_ms() - last));
}

std::chrono::milliseconds Heartbeat::silence() const {
  if (last_beat_ms_.load() == kRetired) return std::chrono::milliseconds(0);
  std::chrono::milliseconds longest = own_silence();
  std::lock_guard lock(members_mutex_);
  for (const Heartbeat* member : members_) longest = std::max(longest, member->silence());
  return longest;
}

void Heartbeat::join(const Heartbeat& member) {
  std::lock_guard lock(members_mutex_);
  members_.push_back(&member);
}

void Heartbeat::leave(const Heartbeat& member) {
  std::lock_guard lock(members_mutex_);
  std::erase(members_, &member);
}

bool sleep_beating(std::chrono::milliseconds delay, const std::atomic<bool>& stop, Heartbeat& heartbeat) {
  for (;;) {
    heartbeat.beat();
    const std::chrono::milliseconds step = std::min(delay, kBeatDuringWaits);
    if (!sleep_unless_stopped(step, stop)) return false;
    delay -= step;
    if (delay <= std::chrono::milliseconds(0)) {
      heartbeat.beat();
      return true;
    }
  }
}

}  // namespace gapless
