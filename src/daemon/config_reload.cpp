// What a SIGHUP reload changes; see config_reload.hpp.
#include "daemon/config_reload.hpp"

#include <algorithm>
#include <limits>
#include <set>

#include "core/destination_filter.hpp"

namespace gapless::daemon {

namespace {

// Added, removed and changed items, matched by name.
template <typename Item>
void compare_named(const std::vector<Item>& running, const std::vector<Item>& next, std::vector<std::string>& added,
                   std::vector<std::string>& removed, std::vector<std::string>& changed) {
  const auto find = [](const std::vector<Item>& items, const std::string& name) -> const Item* {
    for (const Item& item : items)
      if (item.name == name) return &item;
    return nullptr;
  };
  for (const Item& item : next) {
    const Item* before = find(running, item.name);
    if (before == nullptr)
      added.push_back(item.name);
    else if (!(*before == item))
      changed.push_back(item.name);
  }
  for (const Item& item : running)
    if (find(next, item.name) == nullptr) removed.push_back(item.name);
}

// The collector splits its messages below this (collector::read_options).
int64_t smallest_sink_message_size(const Config& config) {
  int64_t smallest = std::numeric_limits<int64_t>::max();
  for (const SinkConfig& sink : config.sinks) smallest = std::min(smallest, sink.max_message_size);
  return smallest;
}

// Whether the collector's door (a series whose destination no sink takes is
// refused, core/destination_filter.hpp) must read the sinks again: a kept
// sink's accept list changed, or an added sink brings an entry no running
// sink has. (A removed sink stays registered in the journal, so the running
// door refuses nothing the journal would take.)
bool door_changed(const Config& running, const Config& next) {
  std::set<std::string> entries;
  for (const SinkConfig& sink : running.sinks)
    for (const std::string& entry : accept_of(sink)) entries.insert(entry);
  for (const SinkConfig& sink : next.sinks) {
    const SinkConfig* before = running.find_sink(sink.name);
    if (before != nullptr && accept_of(*before) != accept_of(sink)) return true;
    for (const std::string& entry : accept_of(sink))
      if (entries.count(entry) == 0) return true;
  }
  return false;
}

std::string list(const std::vector<std::string>& names) {
  std::string text = "[";
  for (const std::string& name : names) text += (text.size() > 1 ? "," : "") + name;
  return text + "]";
}

}  // namespace

bool ReloadPlan::changes_nothing() const {
  return sinks_added.empty() && sinks_removed.empty() && sinks_changed.empty() && !restart_collector &&
         !log_level_changed;
}

std::string ReloadPlan::summary() const {
  return "sinks_added=" + list(sinks_added) + " sinks_removed=" + list(sinks_removed) +
         " sinks_changed=" + list(sinks_changed) + " archives_added=" + list(archives_added) +
         " archives_removed=" + list(archives_removed) + " archives_changed=" + list(archives_changed) +
         " restart_collector=" + (restart_collector ? "true" : "false") +
         " log_level_changed=" + (log_level_changed ? "true" : "false");
}

std::vector<std::string> restart_needed(const Config& running, const Config& next) {
  std::vector<std::string> keys;
  const auto check = [&](bool same, const char* key) {
    if (!same) keys.push_back(std::string(key) + ": restart needed (the running daemon keeps its value)");
  };
  const JournalConfig& a = running.journal;
  const JournalConfig& b = next.journal;
  check(a.path == b.path, "journal.path");
  check(a.group == b.group, "journal.group");
  check(a.disk_reserve == b.disk_reserve, "journal.disk_reserve");
  check(a.keep_delivered == b.keep_delivered, "journal.keep_delivered");
  check(a.max_size == b.max_size, "journal.max_size");
  const HttpConfig& x = running.http;
  const HttpConfig& y = next.http;
  check(x.listen == y.listen, "http.listen");
  check(x.stalled_after == y.stalled_after, "http.stalled_after");
  check(x.failed_polls == y.failed_polls, "http.failed_polls");
  check(x.token_file == y.token_file, "http.token_file");
  check(x.cert_file == y.cert_file, "http.cert_file");
  check(x.key_file == y.key_file, "http.key_file");
  const PushConfig& p = running.push;
  const PushConfig& q = next.push;
  check(p.listen == q.listen, "push.listen");
  check(p.cert_file == q.cert_file, "push.cert_file");
  check(p.key_file == q.key_file, "push.key_file");
  check(p.login == q.login, "push.login");
  check(p.password_file == q.password_file, "push.password_file");
  check(p.token_file == q.token_file, "push.token_file");
  check(p.max_body_size == q.max_body_size, "push.max_body_size");
  check(p.paths == q.paths, "push.paths");
  check(p.threads == q.threads, "push.threads");
  check(p.archive_url == q.archive_url, "push.archive_url");
  check(p.retry_after == q.retry_after, "push.retry_after");
  return keys;
}

ReloadDecision plan_reload(const Config& running, const Config& next) {
  if (const std::vector<std::string> keys = restart_needed(running, next); !keys.empty()) {
    std::string refusal = next.origin + ": ";
    for (size_t i = 0; i < keys.size(); ++i) refusal += (i > 0 ? "; " : "") + keys[i];
    return {std::nullopt, refusal};
  }
  ReloadPlan plan;
  compare_named(running.sinks, next.sinks, plan.sinks_added, plan.sinks_removed, plan.sinks_changed);
  compare_named(running.archives, next.archives, plan.archives_added, plan.archives_removed, plan.archives_changed);
  plan.restart_collector = !plan.archives_added.empty() || !plan.archives_removed.empty() ||
                           !plan.archives_changed.empty() || !(running.collector == next.collector) ||
                           !(running.messages == next.messages) ||
                           smallest_sink_message_size(running) != smallest_sink_message_size(next) ||
                           door_changed(running, next);
  plan.log_level_changed = running.log_level != next.log_level;
  return {plan, ""};
}

ReloadDecision decide_reload(const Config& running, const std::function<Config()>& read_next, Config& next) {
  try {
    next = read_next();
  } catch (const std::exception& e) {
    return {std::nullopt, e.what()};
  }
  return plan_reload(running, next);
}

}  // namespace gapless::daemon
