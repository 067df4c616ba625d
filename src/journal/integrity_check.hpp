// `gapless check`: the journal's full integrity check. SQLite's own checks of
// the file first (PRAGMA integrity_check, which reads every page and index:
// minutes on a large journal, where open()'s quick_check skips the indexes;
// then PRAGMA foreign_key_check), then each invariant of format.hpp that a
// query can check, named by its number. Reports what it finds; repairs nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::journal {

struct IntegrityCheckResult {
  std::string check;                  // "invariant 7: each delivery counter equals its rows"
  int64_t problems = 0;               // 0: the check holds
  std::vector<std::string> examples;  // up to kIntegrityExamples of them, naming rows by their ids
};

constexpr int kIntegrityExamples = 5;

struct IntegrityReport {
  std::string journal_path;
  std::vector<IntegrityCheckResult> results;  // in the order run
  bool ok() const;
};

// Every check, in one read snapshot of its own read-only connection on
// `journal`'s file (opened, so its identity and version are already proven:
// invariant 1), so nothing it runs can write and a daemon may run beside it.
IntegrityReport check_integrity(const Journal& journal);

// One line per check, "ok" or its problem count and examples, then a summary line.
std::string format_integrity_report(const IntegrityReport& report);

}  // namespace gapless::journal
