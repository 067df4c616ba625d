// The two ways to take the stop signals; see stop_signals.hpp.
#include "daemon/stop_signals.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <ctime>

namespace gapless::daemon {

namespace {

// What the handler of stop_on_signals reaches: only lock-free atomics, so it
// is safe in a signal handler.
std::atomic<bool>* handler_stop = nullptr;
std::atomic<int> handler_signals_seen{0};

void on_stop_signal(int) {
  if (handler_signals_seen.fetch_add(1) > 0) std::_Exit(kInterruptedExitCode);
  *handler_stop = true;
}

}  // namespace

void stop_on_signals(std::atomic<bool>& stop) {
  handler_stop = &stop;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

StopSignals::StopSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int StopSignals::wait(int64_t ms) {
  timespec timeout{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
  const int signal_number = sigtimedwait(&signals_, nullptr, &timeout);
  if (signal_number <= 0) return 0;
  if (signal_number == SIGHUP) return signal_number;
  if (++stops_seen_ > 1) {
    // Safe: the journal is crash-consistent at every instant.
    spdlog::warn("daemon: second signal, exiting now");
    std::_Exit(kInterruptedExitCode);
  }
  return signal_number;
}

}  // namespace gapless::daemon
