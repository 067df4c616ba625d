// The daemon, `gapless run`; see daemon.hpp.
#include "daemon/daemon.hpp"

#include <spdlog/spdlog.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.hpp"
#include "daemon/pruner.hpp"
#include "core/backoff.hpp"
#include "core/build_info.hpp"
#include "core/clock.hpp"
#include "core/fault_episode.hpp"
#include "core/restart_watch.hpp"
#include "core/heartbeat.hpp"
#include "core/log.hpp"
#include "daemon/config_reload.hpp"
#include "daemon/service_notify.hpp"
#include "daemon/stop_signals.hpp"
#include "http/endpoint.hpp"
#include "push/endpoint.hpp"
#include "journal/configured_journal.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/fault_retry.hpp"
#include "journal/file_access.hpp"
#include "journal/health_file.hpp"
#include "journal/journal.hpp"
#include "sender/sink_sender.hpp"

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
// A SIGHUP meanwhile sets `reload_asked`: the reload runs once started.
bool signalled_within(StopSignals& signals, int64_t ms, ServiceNotify& notify, bool& reload_asked) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    notify.tend_watchdog({});
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    const int signal_number = signals.wait(std::min<int64_t>(left, 100));
    if (signal_number <= 0) continue;
    if (signal_number == SIGHUP) {
      spdlog::info("daemon: reload asked during start; it runs once the journal is open");
      reload_asked = true;
      continue;
    }
    spdlog::info("daemon: stopping during start signal={}", strsignal(signal_number));
    notify.stopping("stopping during start (signal " + std::string(strsignal(signal_number)) + ")");
    return true;
  }
}

// The sinks `config` names: what the health file lists as sent to before the
// senders run (retire-sink refuses them).
std::vector<std::string> sink_names(const Config& config) {
  std::vector<std::string> names;
  for (const SinkConfig& sink : config.sinks) names.push_back(sink.name);
  return names;
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
                           ServiceNotify& notify, bool& reload_asked) {
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
      health.publish(open_fault_episodes(), sink_names(config));
      notify.status("starting, waiting for the journal: " + std::string(e.what()));
      if (signalled_within(signals, journal::journal_retry_delay_ms(failures), notify, reload_asked)) return false;
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

// One sink's sender and its thread. Each has its own stop flag, so that a
// reload can stop one sender (the way SIGTERM stops them all) while the
// others go on.
struct SenderRun {
  SinkConfig sink;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};  // its thread has returned: join it
  std::unique_ptr<sender::SinkSender> sender;  // its protocol's (sender/sink_sender.hpp)
  std::thread thread;
};

// The collector, its configuration (which it reads by reference) and its
// thread; a reload stops it and starts another with the new archive list.
struct CollectorRun {
  std::shared_ptr<const Config> config;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::unique_ptr<collector::Collector> collector;
  std::thread thread;
};

// The senders running now. A reload changes the list in the main thread;
// other threads (a status or metrics reader) take a snapshot, whose senders
// stay alive while the snapshot is held.
class SenderList {
 public:
  void add(std::shared_ptr<SenderRun> run) {
    std::lock_guard lock(mutex_);
    runs_.push_back(std::move(run));
  }
  // Removes and returns the sender of `sink` (nothing when none runs).
  std::shared_ptr<SenderRun> take(const std::string& sink) {
    std::lock_guard lock(mutex_);
    for (auto it = runs_.begin(); it != runs_.end(); ++it)
      if ((*it)->sink.name == sink) {
        std::shared_ptr<SenderRun> run = *it;
        runs_.erase(it);
        return run;
      }
    return nullptr;
  }
  std::vector<std::shared_ptr<SenderRun>> snapshot() const {
    std::lock_guard lock(mutex_);
    return runs_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<SenderRun>> runs_;
};

// The one line `systemctl status` shows while the daemon runs.
std::string running_summary(const std::vector<std::shared_ptr<SenderRun>>& senders, size_t archives,
                            size_t open_faults) {
  int connected = 0;
  int64_t delivered = 0;
  for (const auto& run : senders) {
    connected += run->sender->counters().connected ? 1 : 0;
    delivered += run->sender->counters().delivered;
  }
  return "running: " + std::to_string(connected) + "/" + std::to_string(senders.size()) + " sinks connected, " +
         std::to_string(delivered) + " messages delivered since start, " + std::to_string(archives) + " archives, " +
         std::to_string(open_faults) + " open faults (gapless status)";
}

}  // namespace

int run(const Config& config, bool until_drained, const std::function<Config()>& read_config) {
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
  health.publish({}, sink_names(config));
  ServiceNotify notify;  // systemd's notify protocol; nothing outside systemd
  notify.status("starting, opening the journal " + config.journal.path);
  bool reload_asked = false;
  if (!open_journal_at_start(config, signals, health, notify, reload_asked)) return kInterruptedExitCode;
  spdlog::info("daemon: start journal={} sinks={} config={} pid={} version={} revision={}", config.journal.path,
               config.sinks.size(), config.origin, ::getpid(), build_version(), build_revision());

  // The configuration in force: the one given, then each reload's. The
  // restart-only keys ([journal], [http]) never differ from `config`'s.
  std::shared_ptr<const Config> current = std::make_shared<const Config>(config);
  std::mutex current_mutex;  // `current` as the endpoint's threads read it; written by this thread only
  std::atomic<bool> stop{false};  // the daemon stops: every component's own flag follows it
  std::atomic<int> running{0};
  std::atomic<bool> failed{false};
  SenderList senders;
  std::vector<std::shared_ptr<SenderRun>> stopping_senders;  // stopped by a reload, not yet returned
  std::vector<std::string> sinks_to_start;  // by a reload, once their old sender has returned
  std::unique_ptr<CollectorRun> collector_run, stopping_collector;
  bool collector_to_start = false;
  bool reload_ready_owed = false;  // READY=1 once a reload's components have started
  std::vector<std::thread> threads;

  // The push endpoint ([push] listen; src/push/endpoint.hpp), for the same
  // reason before READY=1: a port it cannot bind, a secret it cannot read,
  // or no sink for what it journals ends the start naming the push key.
  // Its runs' forms follow the sinks of the configuration in force.
  std::unique_ptr<push::Endpoint> push_endpoint;
  if (!config.push.listen.empty())
    push_endpoint = std::make_unique<push::Endpoint>(config, [&] {
      std::lock_guard guard(current_mutex);
      return current;
    });
  // The HTTP endpoint ([http] listen; src/http/endpoint.hpp), before any
  // component starts, so that a port it cannot bind is a start error. Its
  // snapshot copies the counters of the senders running at that instant
  // (SenderList hands out shared owners under its lock, so a reload can
  // replace senders meanwhile). Stopped after the main loop.
  std::unique_ptr<http::Endpoint> endpoint;
  if (!config.http.listen.empty())
    endpoint = std::make_unique<http::Endpoint>(config, [&, started_ms = unix_now_ms()] {
      http::DaemonSnapshot snapshot{started_ms, {}, open_fault_episodes(), nullptr};
      {
        std::lock_guard guard(current_mutex);
        snapshot.config = current;
      }
      for (const auto& run : senders.snapshot())
        snapshot.sinks.push_back({run->sink.name, run->sender->counters().snapshot()});
      if (push_endpoint) snapshot.push = push_endpoint->counters();
      return snapshot;
    });
  // READY=1 only now: a port the endpoint cannot bind ends the start before
  // systemd is told the service runs.
  notify.ready("running: journal " + config.journal.path + " open, " + std::to_string(config.sinks.size()) +
               " sinks, " + std::to_string(config.archives.size()) + " archives");

  // One component's thread: runs `body` until it returns. Nothing one
  // component meets stops the others: a failure is logged and the component
  // started again after a backoff (1 s doubling to 30 s; back to 1 s after 5
  // minutes without one). Only a damaged journal stops the daemon: a person
  // must look at it.
  //
  // `progress` is the component's heartbeat (for the watchdog): the restart
  // wait beats it, as a deliberate wait; once the component has returned it
  // is watched no more. `own_stop` is the component's stop flag (a reload
  // stops one component); without it, the daemon's.
  const auto supervise = [&](const std::string& component, Heartbeat& progress, const std::function<void()>& body,
                             const std::atomic<bool>* own_stop = nullptr) {
    const std::atomic<bool>& halt = own_stop != nullptr ? *own_stop : stop;
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
      if (halt || stop) return;
      if (std::chrono::steady_clock::now() - began > std::chrono::minutes(5)) failures = 0;
      const int64_t delay = doubling_delay(kRestartDelayMin, kRestartDelayMax, ++failures).count();
      spdlog::critical("daemon: component failed, restarting component=\"{}\" failures={} restart_in_ms={} "
                       "error=\"{}\"",
                       component, failures, delay, error);
      if (!sleep_beating(std::chrono::milliseconds(delay), halt, progress)) return;
      spdlog::info("daemon: component restarted component=\"{}\"", component);
    }
  };

  // With --until-drained, every archive is polled once and the senders start
  // when that is done: "drained" must include what the poll collected.
  std::atomic<bool> collected{!until_drained || config.archives.empty()};
  const auto start_collector = [&] {  // collector_run is empty here (a reload moved it to stopping_collector)
    if (current->archives.empty()) return;
    auto run = std::make_unique<CollectorRun>();
    run->config = current;
    run->collector = std::make_unique<collector::Collector>(*run->config, run->stop);
    ++running;
    run->thread = std::thread([&, run = run.get()] {
      supervise("collector", run->collector->progress(), [&] {
        if (until_drained)
          run->collector->run_once();
        else
          run->collector->run();
      }, &run->stop);
      collected = true;
      run->done = true;
      --running;
    });
    collector_run = std::move(run);
  };

  const auto start_sender = [&](const SinkConfig& sink) {
    auto run = std::make_shared<SenderRun>();
    run->sink = sink;
    run->sender = sender::make_sender(sink, config.journal.path, config.journal.disk_reserve, run->stop);
    ++running;
    run->thread = std::thread([&, run = run.get()] {
      while (!collected && !run->stop) sleep_beating(std::chrono::milliseconds(50), run->stop, run->sender->progress());
      supervise("sender sink=" + run->sink.name, run->sender->progress(), [&] { run->sender->run(until_drained); },
                &run->stop);
      run->done = true;
      --running;
    });
    senders.add(std::move(run));
  };

  start_collector();
  for (const SinkConfig& sink : config.sinks) start_sender(sink);
  // Retention (daemon/pruner.hpp): no part of "drained" nor of the watchdog;
  // its own stop flag, raised once every other component has returned.
  std::atomic<bool> pruner_stop{false};
  Pruner pruner(config, pruner_stop);
  threads.emplace_back([&] { supervise("pruner", pruner.progress(), [&] { pruner.run(); }, &pruner_stop); });

  // SIGHUP: the configuration file read again and the difference carried
  // out (config_reload.hpp), or refused with the running one kept.
  const auto reload = [&] {
    if (!read_config) {
      spdlog::warn("daemon: reload asked, but there is no configuration file to read again (gapless run was "
                   "started without --config, on the embedded defaults); nothing changes");
      return;
    }
    notify.reloading("reloading the configuration " + current->origin);
    Config next;
    const ReloadDecision decision = decide_reload(*current, read_config, next);
    if (!decision.plan) {
      spdlog::error("daemon: reload refused, the running configuration stays error=\"{}\"", decision.refusal);
      notify.ready("running; reload refused: " + decision.refusal);
      return;
    }
    const ReloadPlan& plan = *decision.plan;
    for (const std::string& warning : next.warnings) spdlog::warn("config: {}", warning);
    auto next_config = std::make_shared<const Config>(std::move(next));
    if (!plan.sinks_added.empty() || !plan.sinks_changed.empty()) {
      // Registered now, with their accept lists (journal invariant 3), so
      // that messages journaled from now on get their rows, and follow a
      // changed list, even before the sender opens the journal (which
      // registers its sink too: a failure here only delays that).
      std::vector<SinkConfig> registered;
      for (const std::string& sink : plan.sinks_added) registered.push_back(*next_config->find_sink(sink));
      for (const std::string& sink : plan.sinks_changed) registered.push_back(*next_config->find_sink(sink));
      try {
        journal::Journal::open(config.journal.path, journal::sink_registrations(registered), false);
      } catch (const std::exception& e) {
        spdlog::warn("daemon: reload could not register the added or changed sinks yet (each sender does when it opens the "
                     "journal) error=\"{}\"",
                     e.what());
      }
    }
    const auto stop_sender = [&](const std::string& sink) {
      if (std::shared_ptr<SenderRun> run = senders.take(sink)) {
        run->stop = true;  // as on SIGTERM: receipts awaited up to shutdown_timeout, then DISCONNECT
        stopping_senders.push_back(std::move(run));
      }
    };
    for (const std::string& sink : plan.sinks_removed) stop_sender(sink);
    for (const std::string& sink : plan.sinks_changed) stop_sender(sink);
    // A sink removed by an earlier reload and not started yet stays away.
    std::erase_if(sinks_to_start, [&](const std::string& sink) { return next_config->find_sink(sink) == nullptr; });
    for (const std::string& sink : plan.sinks_changed) sinks_to_start.push_back(sink);
    for (const std::string& sink : plan.sinks_added) sinks_to_start.push_back(sink);
    if (plan.restart_collector) {
      if (collector_run) {
        collector_run->stop = true;
        stopping_collector = std::move(collector_run);
      }
      collector_to_start = true;
    }
    if (plan.log_level_changed) set_log_level(next_config->log_level);
    {
      std::lock_guard guard(current_mutex);
      current = next_config;
    }
    reload_ready_owed = true;
    spdlog::info("daemon: reloaded config={} {}", current->origin, plan.summary());
  };

  // Starts what a reload left to start once what it replaces has returned
  // (never two senders of one sink, never two collectors), and joins what
  // a reload stopped. Called by the main loop.
  const auto carry_on_reload = [&] {
    std::erase_if(stopping_senders, [&](const std::shared_ptr<SenderRun>& run) {
      if (!run->done) return false;
      run->thread.join();
      spdlog::info("daemon: sender stopped by the reload sink={} delivered={}", run->sink.name,
                   run->sender->counters().delivered.load());
      return true;
    });
    if (stopping_collector && stopping_collector->done) {
      stopping_collector->thread.join();
      stopping_collector.reset();
      spdlog::info("daemon: collector stopped by the reload");
    }
    if (stop) {
      sinks_to_start.clear();
      collector_to_start = false;
      return;
    }
    std::erase_if(sinks_to_start, [&](const std::string& sink) {
      for (const auto& run : stopping_senders)
        if (run->sink.name == sink) return false;  // its old sender still waits for receipts
      if (const SinkConfig* configured = current->find_sink(sink)) {
        start_sender(*configured);
        spdlog::info("daemon: sender started by the reload sink={}", sink);
      }
      return true;
    });
    if (collector_to_start && !stopping_collector) {
      collector_to_start = false;
      start_collector();
      spdlog::info("daemon: collector started by the reload archives={}", current->archives.size());
    }
    if (reload_ready_owed && sinks_to_start.empty() && !collector_to_start) {
      reload_ready_owed = false;
      notify.ready("running: configuration " + current->origin + " reloaded");
    }
  };

  // What the watchdog requires to make progress (service_notify.hpp): the
  // components running now, rebuilt each turn since a reload changes them.
  const auto watched_components = [&] {
    std::vector<WatchedComponent> watched;
    if (collector_run) watched.push_back({"collector", &collector_run->collector->progress()});
    if (stopping_collector) watched.push_back({"collector", &stopping_collector->collector->progress()});
    for (const auto& run : senders.snapshot())
      watched.push_back({"sender sink=" + run->sink.name, &run->sender->progress()});
    for (const auto& run : stopping_senders)
      watched.push_back({"sender sink=" + run->sink.name, &run->sender->progress()});
    return watched;
  };

  // The sinks this daemon sends to, as the health file lists them: the
  // configuration's, and those whose sender a reload is still stopping (it
  // may still mark rows of theirs delivered).
  const auto sending_to = [&] {
    std::vector<std::string> names = sink_names(*current);
    for (const auto& run : stopping_senders) names.push_back(run->sink.name);
    return names;
  };

  if (reload_asked) reload();
  int ticks = 0;
  std::vector<std::string> published_sinks = sink_names(config);
  bool stopping_told = false;
  while (running > 0 || !sinks_to_start.empty() || collector_to_start) {
    carry_on_reload();
    if (stop) {  // each component's own flag follows the daemon's
      for (const auto& run : senders.snapshot()) run->stop = true;
      for (const auto& run : stopping_senders) run->stop = true;
      if (collector_run) collector_run->stop = true;
      if (stopping_collector) stopping_collector->stop = true;
    }
    restart_watch.poll();
    // About once a second: what status shows. Written in place, so even on a full disk.
    // At once when the sinks sent to change, so that retire-sink reads them right after a reload.
    std::vector<std::string> sinks_now = sending_to();
    const bool sinks_changed = sinks_now != published_sinks;
    if (sinks_changed) published_sinks = std::move(sinks_now);
    if (ticks++ % 10 == 0 || sinks_changed) {
      const std::vector<FaultSnapshot> faults = open_fault_episodes();
      health.publish(faults, published_sinks);
      if (!stop && !reload_ready_owed)
        notify.status(running_summary(senders.snapshot(), current->archives.size(), faults.size()));
    }
    if (!stop) notify.tend_watchdog(watched_components());
    const int signal_number = signals.wait(100);  // a second stop signal exits at once
    if (signal_number <= 0) continue;
    if (signal_number == SIGHUP) {
      if (stop)
        spdlog::info("daemon: reload asked while stopping; ignored");
      else
        reload();
      continue;
    }
    spdlog::info("daemon: stopping signal={} (again to exit at once)", strsignal(signal_number));
    notify.stopping("stopping (signal " + std::string(strsignal(signal_number)) +
                    "): waiting for the brokers' receipts, then disconnecting");
    stopping_told = true;
    stop = true;
  }
  if (!stopping_told)
    notify.stopping(failed ? "stopping: the journal is damaged (see the log)" : "stopping: every component returned");
  if (push_endpoint) push_endpoint->stop();  // first: each run in flight answered, committed or refused
  if (endpoint) endpoint->stop();  // the HTTP endpoint: no request outlives the components it reads
  pruner_stop = true;  // retention (daemon/pruner.hpp)
  for (std::thread& thread : threads) thread.join();
  if (collector_run) collector_run->thread.join();
  if (stopping_collector) stopping_collector->thread.join();
  int64_t delivered = 0;
  for (const auto& run : stopping_senders) run->thread.join();
  for (const auto& run : senders.snapshot()) {
    run->thread.join();
    delivered += run->sender->counters().delivered;
  }
  spdlog::info("daemon: stopped delivered={}", delivered);
  return failed ? 1 : 0;
}

}  // namespace gapless::daemon
