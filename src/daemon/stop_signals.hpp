// SIGINT and SIGTERM, as both gapless programs take them: the first asks the
// program to stop cleanly (the daemon's senders wait for their receipts, a
// backfill stops at its next page), a second exits at once with
// kInterruptedExitCode. Exiting at once is safe because the journal is
// consistent at every instant.
//
// One rule, taken two ways. The daemon blocks both signals before it starts
// any thread and waits for them in its main thread (StopSignals), so no
// handler runs inside a sender's journal write (docs/architecture.md,
// "Signals taken by one thread"). gapless-replay works in its main thread,
// so a handler sets the flag that its work checks (stop_on_signals).
//
// The daemon also takes SIGHUP, the reload request (config_reload.hpp),
// through the same wait: it is never a stop, so it counts towards no second
// signal. gapless-replay leaves SIGHUP as it is (it ends the process).
//
// Part of the daemon module (its threads, signals and shutdown);
// tools/replay, above it, shares it.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace gapless::daemon {

// How a program stopped by a signal exits (128 + SIGINT, what a shell reports
// for Ctrl-C).
constexpr int kInterruptedExitCode = 130;

// From now on, the first SIGINT or SIGTERM sets `stop` (which must outlive
// the program), a second exits at once.
void stop_on_signals(std::atomic<bool>& stop);

// SIGINT, SIGTERM and SIGHUP blocked in the calling thread, and so in every
// thread it starts afterwards, and taken by wait() alone.
class StopSignals {
 public:
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Waits up to `ms` for one: its number, or 0 when none came. The second
  // stop signal (SIGINT or SIGTERM) exits at once, saying so in the log;
  // SIGHUP is returned each time it comes.
  int wait(int64_t ms);

 private:
  sigset_t signals_;
  int stops_seen_ = 0;
};

}  // namespace gapless::daemon
