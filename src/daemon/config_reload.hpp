// What a SIGHUP reload of `gapless run` changes, decided without threads or
// sockets: the daemon (daemon.cpp) carries the plan out.
//
// The rules:
// - A configuration that does not load (not TOML, an unknown key, a bad
//   value) is refused with load_config's error, which names the file and the
//   key; the running configuration stays.
// - Keys that cannot change without a restart refuse the whole reload, each
//   named with that reason (etc/gapless.example.toml marks them "restart
//   needed"): every key of [journal] (the file, its group and reserve are
//   opened and held at start; retention and the size limit are read by
//   components started once), of [http] (the endpoint listens from start)
//   and of [push] (likewise; its runs' forms do follow the sinks a reload
//   puts in force).
// - Sinks are matched by name. A removed or changed sink's sender stops as on
//   SIGTERM (receipts awaited up to its shutdown_timeout, then DISCONNECT;
//   what was in flight stays pending in the journal); a changed one then
//   starts again with its new settings, an added one starts at once. A
//   removed sink stays registered in the journal (its rows wait, `gapless
//   status` shows it orphaned) until it returns or is retired.
// - An added or changed sink is registered in the journal with its accept
//   list at once (journal invariant 3): messages journaled from then on
//   follow the new list; rows journaled before stay as they are (a sink
//   that no longer takes a destination still delivers what it has of it).
// - The collector restarts (its cursors are in the journal) when anything it
//   reads changed: the archives, [collector], [messages], the smallest
//   sink max_message_size (it splits messages below it), or what the sinks
//   accept (a kept sink's list, an added sink's new entry: its door refuses a
//   series no sink takes).
// - log_level applies at once.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"

namespace gapless::daemon {

struct ReloadPlan {
  // Sink and archive names, in the order of the configuration they come from.
  std::vector<std::string> sinks_added, sinks_removed, sinks_changed;
  std::vector<std::string> archives_added, archives_removed, archives_changed;
  bool restart_collector = false;
  bool log_level_changed = false;

  bool changes_nothing() const;
  // "sinks_added=[a] sinks_removed=[] ... restart_collector=true", for the log.
  std::string summary() const;
};

// Either a plan, or why the reload is refused (the running configuration stays).
struct ReloadDecision {
  std::optional<ReloadPlan> plan;
  std::string refusal;  // names the key; set when there is no plan
};

// The restart-only keys that differ, each "journal.path: restart needed ..."
// (empty: none).
std::vector<std::string> restart_needed(const Config& running, const Config& next);

// What reloading from `running` to `next` (a configuration that loaded) does.
ReloadDecision plan_reload(const Config& running, const Config& next);

// `read_next` reads the configuration again (load_config and the command
// line's additions); what it throws becomes the refusal. On success `next`
// receives the new configuration.
ReloadDecision decide_reload(const Config& running, const std::function<Config()>& read_next, Config& next);

}  // namespace gapless::daemon
