// The journal a configuration names, opened as the daemon and the operator
// commands of `gapless` open it, in one place so that they cannot differ:
// Journal::open with every configured sink registered, then shared with
// `[journal] group` when one is set (file_access.hpp).
#pragma once

#include <memory>

#include "core/config.hpp"
#include "journal/file_access.hpp"
#include "journal/journal.hpp"

namespace gapless::journal {

inline std::unique_ptr<Journal> open_configured(const Config& config, bool check_integrity = true) {
  auto journal = Journal::open(config.journal.path, config.sink_names(), check_integrity);
  if (!config.journal.group.empty()) share_with_group(config.journal.path, config.journal.group);
  return journal;
}

}  // namespace gapless::journal
