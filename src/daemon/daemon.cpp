// The daemon, `gapless run`; see daemon.hpp.
#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.hpp"
#include "core/backoff.hpp"
#include "core/build_info.hpp"
#include "core/fault_episode.hpp"
#include "core/restart_watch.hpp"
#include "core/heartbeat.hpp"
#include "daemon/service_notify.hpp"
#include "daemon/stop_signals.hpp"
#include "journal/configured_journal.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "journal/file_access.hpp"
#include "journal/health_file.hpp"
#include "journal/journal.hpp"
#include "sender/sender.hpp"

namespace gapless::daemon {

namespace {

// A failed component is started again after kRestartDelayMin, doubling up to
// kRestartDelayMax (core/backoff.hpp); no jitter: one daemon, no lockstep.
constexpr std::chrono::milliseconds kRestartDelayMin = std::chrono::seconds(1);
constexpr std::chrono::milliseconds kRestartDelayMax = std::chrono::seconds(30);

// What is allowed but unwise, said once when the daemon starts.
void log_start_warnings(const Config& config) {
  for (const std::string& warning : config.warnings) spdlog::warn("config: {}", warning);
  if (config.journal.group.empty())
    if (auto warning = journal::exposure_warning(config.journal.path)) spdlog::warn("journal: {}", *warning);
}

// Waits `ms` for a stop signal; true when one came (the daemon then stops).
// No component runs yet: the watchdog is pinged while this start loop turns.
bool signalled_within(StopSignals& signals, int64_t ms, ServiceNotify& notify) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    notify.tend_watchdog({});
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    const int signal_number = signals.wait(std::min<int64_t>(left, 100));
    if (signal_number <= 0) continue;
    spdlog::info("daemon: stopping during start signal={}", strsignal(signal_number));
    notify.stopping("stopping during start (signal " + std::string(strsignal(signal_number)) + ")");
    return true;
  }
}

// Opens (creates, migrates, checks) the journal once at start. The disk may
// already be full: opening creates the -wal and -shm files, which needs a
// little space, and fails with SQLITE_FULL, CANTOPEN or IOERR. The reserve
// is then given back and the open tried again at once; while it still fails
// for lack of space (or a lock held past the busy timeout, an I/O error), it
// is tried again with backoff, the fault published for `gapless status`,
// until it succeeds or a signal asks to stop (false). A damaged journal (the
// quick check) and faults that space does not explain end the start.
bool open_journal_at_start(const Config& config, StopSignals& signals, journal::HealthFile& health,
                           ServiceNotify& notify) {
  journal::DiskReserve reserve(config.journal.path, config.journal.disk_reserve);
  FaultEpisode episode("daemon start");
  for (int failures = 1;; ++failures) {
    try {
      journal::open_configured(config);  // create or migrate once, before the senders open their own connections
      episode.resolved();
      return true;
    } catch (const journal::JournalError& e) {
      if (e.fault() == journal::Fault::damaged) throw;
      const bool space = e.fault() == journal::Fault::full || e.fault() == journal::Fault::io ||
                         journal::disk_nearly_full(config.journal.path);
      if (space && reserve.release()) continue;  // at once, with the space back
      if (!e.transient() && !space) throw;
      episode.occurred(journal::fault_kind(space ? journal::Fault::full : e.fault()),
                       std::string(e.what()) + " (the daemon starts when the journal can be opened)");
      health.publish(open_fault_episodes());
      notify.status("starting, waiting for the journal: " + std::string(e.what()));
      if (signalled_within(signals, journal::journal_retry_delay_ms(failures), notify)) return false;
    }
  }
}

// What to do about a damaged journal, unless the error says it already
// (the quick check's message does).
std::string damaged_advice(const std::string& error, const std::string& journal_path) {
  if (error.find("never repairs") != std::string::npos) return "";
  return ". gapless never repairs or resets a journal; the file is left as it is. Keep a copy, then restore a "
         "backup, or salvage it (sqlite3 " + journal_path + " .recover), or move it aside to start an empty "
         "journal (its undelivered messages would then not be sent)";
}

// The one line `systemctl status` shows while the daemon runs.
std::string running_summary(const std::vector<std::unique_ptr<sender::Sender>>& senders, size_t archives,
                            size_t open_faults) {
  int connected = 0;
  int64_t delivered = 0;
  for (const auto& sender : senders) {
    connected += sender->counters().connected ? 1 : 0;
    delivered += sender->counters().delivered;
  }
  return "running: " + std::to_string(connected) + "/" + std::to_string(senders.size()) + " sinks connected, " +
         std::to_string(delivered) + " messages delivered since start, " + std::to_string(archives) + " archives, " +
         std::to_string(open_faults) + " open faults (gapless status)";
}

}  // namespace

int run(const Config& config, bool until_drained) {
  // Signals are taken synchronously by this thread (sigtimedwait), so no
  // handler runs inside a sender in the middle of a journal write. Blocked
  // before anything else: a SIGTERM during start-up (the journal's integrity
  // check can take seconds) then means a clean stop, not death by default action.
  StopSignals signals;
  RestartWatch restart_watch;  // upgrade safety: the files this process runs, as they are at its start

  log_start_warnings(config);
  journal::DaemonLock lock(config.journal.path);
  // Open fault episodes, for `gapless status` (journal/health_file.hpp).
  journal::HealthFile health(config.journal.path);
  health.publish({});
  ServiceNotify notify;  // systemd's notify protocol; nothing outside systemd
  notify.status("starting, opening the journal " + config.journal.path);
  if (!open_journal_at_start(config, signals, health, notify)) return kInterruptedExitCode;
  spdlog::info("daemon: start journal={} sinks={} config={} pid={} version={} revision={}", config.journal.path,
               config.sinks.size(), config.origin, ::getpid(), build_version(), build_revision());
  notify.ready("running: journal " + config.journal.path + " open, " + std::to_string(config.sinks.size()) +
               " sinks, " + std::to_string(config.archives.size()) + " archives");

  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::atomic<bool> failed{false};
  std::vector<std::unique_ptr<sender::Sender>> senders;
  std::vector<std::thread> threads;

  // One component's thread: runs `body` until it returns. Nothing one
  // component meets stops the others: a failure is logged and the component
  // started again after a backoff (1 s doubling to 30 s; back to 1 s after 5
  // minutes without one). Only a damaged journal stops the daemon: a person
  // must look at it.
  //
  // `progress` is the component's heartbeat (for the watchdog): the restart
  // wait beats it, as a deliberate wait; once the component has returned it
  // is watched no more.
  const auto supervise = [&](const std::string& component, Heartbeat& progress, const std::function<void()>& body) {
    int failures = 0;
    struct Retire {
      Heartbeat& heartbeat;
      ~Retire() { heartbeat.retire(); }
    } retire_on_return{progress};
    for (;;) {
      const auto began = std::chrono::steady_clock::now();
      std::string error;
      progress.beat();
      try {
        body();
        return;
      } catch (const journal::JournalError& e) {
        if (e.fault() == journal::Fault::damaged) {
          spdlog::critical("daemon: stopping, the journal is damaged component=\"{}\" error=\"{}{}\"", component,
                           e.what(), damaged_advice(e.what(), config.journal.path));
          failed = true;
          stop = true;
          return;
        }
        error = std::string(e.what()) + " (journal fault: " + journal::fault_name(e.fault()) + ")";
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (stop) return;
      if (std::chrono::steady_clock::now() - began > std::chrono::minutes(5)) failures = 0;
      const int64_t delay = doubling_delay(kRestartDelayMin, kRestartDelayMax, ++failures).count();
      spdlog::critical("daemon: component failed, restarting component=\"{}\" failures={} restart_in_ms={} "
                       "error=\"{}\"",
                       component, failures, delay, error);
      if (!sleep_beating(std::chrono::milliseconds(delay), stop, progress)) return;
      spdlog::info("daemon: component restarted component=\"{}\"", component);
    }
  };

  // With --until-drained, every archive is polled once and the senders start
  // when that is done: "drained" must include what the poll collected.
  collector::Collector collector(config, stop);
  std::atomic<bool> collected{!until_drained || config.archives.empty()};
  if (!config.archives.empty()) {
    ++running;
    threads.emplace_back([&] {
      supervise("collector", collector.progress(), [&] {
        if (until_drained)
          collector.run_once();
        else
          collector.run();
      });
      collected = true;
      --running;
    });
  }

  for (const SinkConfig& sink : config.sinks) {
    senders.push_back(std::make_unique<sender::Sender>(sink, config.journal.path, config.journal.disk_reserve, stop));
    ++running;
    threads.emplace_back([&, sender = senders.back().get(), name = sink.name] {
      while (!collected && !stop) sleep_beating(std::chrono::milliseconds(50), stop, sender->progress());
      supervise("sender sink=" + name, sender->progress(), [&] { sender->run(until_drained); });
      --running;
    });
  }

  // What the watchdog requires to make progress (service_notify.hpp).
  std::vector<WatchedComponent> watched;
  if (!config.archives.empty()) watched.push_back({"collector", &collector.progress()});
  for (size_t i = 0; i < senders.size(); ++i)
    watched.push_back({"sender sink=" + config.sinks[i].name, &senders[i]->progress()});

  int ticks = 0;
  bool stopping_told = false;
  while (running > 0) {
    restart_watch.poll();
    // About once a second: what status shows. Written in place, so even on a full disk.
    if (ticks++ % 10 == 0) {
      const std::vector<FaultSnapshot> faults = open_fault_episodes();
      health.publish(faults);
      if (!stop) notify.status(running_summary(senders, config.archives.size(), faults.size()));
    }
    if (!stop) notify.tend_watchdog(watched);
    const int signal_number = signals.wait(100);  // a second signal exits at once
    if (signal_number <= 0) continue;
    spdlog::info("daemon: stopping signal={} (again to exit at once)", strsignal(signal_number));
    notify.stopping("stopping (signal " + std::string(strsignal(signal_number)) +
                    "): waiting for the brokers' receipts, then disconnecting");
    stopping_told = true;
    stop = true;
  }
  if (!stopping_told)
    notify.stopping(failed ? "stopping: the journal is damaged (see the log)" : "stopping: every component returned");
  for (std::thread& thread : threads) thread.join();
  int64_t delivered = 0;
  for (const auto& sender : senders) delivered += sender->counters().delivered;
  spdlog::info("daemon: stopped delivered={}", delivered);
  return failed ? 1 : 0;
}

}  // namespace gapless::daemon
