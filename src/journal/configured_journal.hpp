// The journal a configuration names, opened as the daemon and the operator
// commands of `gapless` open it, in one place so that they cannot differ:
// Journal::open with every configured sink registered with its accept list, then shared with
// `[journal] group` when one is set (file_access.hpp).
#pragma once

#include <memory>

#include "core/config.hpp"
#include "core/destination_filter.hpp"
#include "journal/file_access.hpp"
#include "journal/journal.hpp"

namespace gapless::journal {

// Every configured sink with the destinations it takes (invariant 3), for
// Journal::open: what a configuration registers.
inline std::vector<SinkRegistration> sink_registrations(const std::vector<SinkConfig>& sinks) {
  std::vector<SinkRegistration> registrations;
  for (const SinkConfig& sink : sinks) registrations.emplace_back(sink.name, accept_of(sink));
  return registrations;
}

inline std::unique_ptr<Journal> open_configured(const Config& config, bool check_integrity = true) {
  auto journal = Journal::open(config.journal.path, sink_registrations(config.sinks), check_integrity);
  if (!config.journal.group.empty()) share_with_group(config.journal.path, config.journal.group);
  return journal;
}

}  // namespace gapless::journal
