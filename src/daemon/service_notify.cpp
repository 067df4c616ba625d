// systemd's notify protocol for `gapless run`; see service_notify.hpp.
#include "daemon/service_notify.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace gapless::daemon {

namespace {

// STATUS= is one line: a newline would end it and start another assignment.
std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

}  // namespace

ServiceNotify::ServiceNotify() {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is ours).
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    watchdog_interval_ = std::chrono::milliseconds(std::max<uint64_t>(usec / 1000, 1));
  if (watchdog_interval_)
    spdlog::info("daemon: systemd watchdog interval_ms={}", watchdog_interval_->count());
}

void ServiceNotify::send(const std::string& state) {
  // 0: no NOTIFY_SOCKET (not under systemd); < 0: the socket refused it,
  // which must not stop delivery (said once, not every second).
  const int result = sd_notify(0, state.c_str());
  if (result < 0 && !send_failed_)
    spdlog::warn("daemon: systemd notification failed state=\"{}\" error=\"{}\"", state.substr(0, state.find('\n')),
                 std::strerror(-result));
  send_failed_ = result < 0;
}

void ServiceNotify::ready(const std::string& status) {
  last_status_ = one_line(status);
  send("READY=1\nSTATUS=" + last_status_);
}

void ServiceNotify::status(const std::string& status) {
  if (one_line(status) == last_status_) return;
  last_status_ = one_line(status);
  send("STATUS=" + last_status_);
}

void ServiceNotify::reloading(const std::string& status) {
  last_status_ = one_line(status);
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch());
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(now_us.count()) + "\nSTATUS=" + last_status_);
}

void ServiceNotify::stopping(const std::string& status) {
  last_status_ = one_line(status);
  send("STOPPING=1\nSTATUS=" + last_status_);
}

void ServiceNotify::tend_watchdog(const std::vector<WatchedComponent>& watched) {
  if (!watchdog_interval_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ping_ < *watchdog_interval_ / 2) return;
  for (const WatchedComponent& component : watched) {
    const std::chrono::milliseconds silence = component.heartbeat->silence();
    if (silence <= *watchdog_interval_) continue;
    if (withheld_for_ != component.name)
      spdlog::error("daemon: watchdog pings withheld, a component makes no progress component=\"{}\" silent_ms={} "
                    "interval_ms={} (systemd restarts the service if it stays stuck)",
                    component.name, silence.count(), watchdog_interval_->count());
    withheld_for_ = component.name;
    return;
  }
  if (!withheld_for_.empty())
    spdlog::info("daemon: watchdog pings resumed component=\"{}\"", withheld_for_);
  withheld_for_.clear();
  last_ping_ = now;
  send("WATCHDOG=1");
}

}  // namespace gapless::daemon
