// systemd's notify protocol (sd_notify(3), through libsystemd) for `gapless
// run` under etc/gapless.service (Type=notify): READY=1 once the journal is
// open and checked, STATUS= with a one-line summary, WATCHDOG=1 while every
// component makes progress, STOPPING=1 on a stop signal, RELOADING=1 then
// READY=1 around a SIGHUP reload (Type=notify tracks a reload by these two). Outside systemd
// (no NOTIFY_SOCKET) every call does nothing.
//
// The watchdog. With WatchdogSec set, systemd passes WATCHDOG_USEC and
// restarts the service when no WATCHDOG=1 comes within that interval. The
// main loop pings every half interval, but only while each watched component
// (each sender, the collector) has beaten its core/heartbeat.hpp within the
// interval: a loop stuck in one call stops the pings, and systemd restarts
// the service. A ping proves more than that the main thread runs.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/heartbeat.hpp"

namespace gapless::daemon {

// A component whose progress the watchdog requires.
struct WatchedComponent {
  std::string name;  // as in the logs: "sender sink=cern", "collector"
  const Heartbeat* heartbeat;
};

class ServiceNotify {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (and WATCHDOG_PID) once.
  ServiceNotify();

  // READY=1 with a STATUS= line: the journal is open and checked.
  void ready(const std::string& status);
  // STATUS=: one line for `systemctl status`; sent only when it changed.
  void status(const std::string& status);
  // RELOADING=1 (with MONOTONIC_USEC=, which newer systemd asks for) and a
  // STATUS= line: a SIGHUP reload began; ready() says when it is done.
  void reloading(const std::string& status);
  // STOPPING=1 with a STATUS= line.
  void stopping(const std::string& status);
  // Call often (the main loop turns every 100 ms): WATCHDOG=1 once half the
  // interval has passed since the last ping, unless a component of `watched`
  // has been silent longer than the interval. Withholding and resuming are
  // logged once each.
  void tend_watchdog(const std::vector<WatchedComponent>& watched);

  // The interval systemd asked for (WatchdogSec), if any.
  std::optional<std::chrono::milliseconds> watchdog_interval() const { return watchdog_interval_; }

 private:
  void send(const std::string& state);

  std::optional<std::chrono::milliseconds> watchdog_interval_;
  std::chrono::steady_clock::time_point last_ping_{};
  std::string last_status_;
  std::string withheld_for_;  // the silent component while pings are withheld
  bool send_failed_ = false;
};

}  // namespace gapless::daemon
