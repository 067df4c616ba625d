// The stop-signal rule both programs share (daemon/stop_signals.hpp): the
// first SIGINT or SIGTERM asks to stop, the second exits at once with 130;
// the daemon's SIGHUP (a reload) is never a stop.
// Each case runs in a child process, which the second signal ends.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "daemon/stop_signals.hpp"

using gapless::daemon::kInterruptedExitCode;

namespace {

// Runs `body` in a child process; how the child ended (128 + the signal when
// a signal killed it). Each failure in `body` exits with a code of its own.
template <typename Body>
int exit_code_of_child(Body body) {
  const pid_t child = ::fork();
  if (child == 0) {
    body();
    std::_Exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("stop_on_signals: the first SIGINT or SIGTERM sets the flag, the second exits with 130", "[signals]") {
  const int exit_code = exit_code_of_child([] {
    static std::atomic<bool> stop{false};
    gapless::daemon::stop_on_signals(stop);
    ::raise(SIGTERM);
    if (!stop) std::_Exit(10);  // the first only asks
    ::raise(SIGINT);
    std::_Exit(11);  // not reached: the second exits
  });
  CHECK(exit_code == kInterruptedExitCode);
}

TEST_CASE("StopSignals: blocked signals are taken by wait, the first returned, the second exits with 130",
          "[signals]") {
  const int exit_code = exit_code_of_child([] {
    gapless::daemon::StopSignals signals;
    if (signals.wait(0) != 0) std::_Exit(10);  // none yet
    ::raise(SIGINT);                            // blocked: pending until taken
    if (signals.wait(1000) != SIGINT) std::_Exit(11);
    ::raise(SIGTERM);
    signals.wait(1000);
    std::_Exit(12);  // not reached: the second exits
  });
  CHECK(exit_code == kInterruptedExitCode);
}

TEST_CASE("StopSignals: SIGHUP is returned every time and never counts as a stop (a reload is no second signal)",
          "[signals]") {
  const int exit_code = exit_code_of_child([] {
    gapless::daemon::StopSignals signals;
    ::raise(SIGHUP);  // blocked: without StopSignals, the default action would end the child
    if (signals.wait(1000) != SIGHUP) std::_Exit(10);
    ::raise(SIGTERM);
    if (signals.wait(1000) != SIGTERM) std::_Exit(11);
    ::raise(SIGHUP);  // after a stop signal still a reload, not the second signal
    if (signals.wait(1000) != SIGHUP) std::_Exit(12);
    ::raise(SIGINT);
    signals.wait(1000);
    std::_Exit(13);  // not reached: the second stop signal exits
  });
  CHECK(exit_code == kInterruptedExitCode);
}
