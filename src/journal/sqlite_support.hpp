// SQLite plumbing shared by the journal's source files (the format, the
// delivery queue, reporting, resend's selection, the collector's tables,
// requests, archive health). Internal to src/journal: nothing outside includes it.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "journal/journal.hpp"

namespace gapless::journal::detail {

// How long every connection waits for another process's lock.
constexpr int kBusyTimeoutMs = 10'000;

// Makes `db` wait up to kBusyTimeoutMs for a lock, trying again every
// millisecond rather than in SQLite's growing steps (why: docs/journal.md 3).
void wait_for_locks(SQLite::Database& db);

// The journal's bytes in use, (page_count - freelist_count) x page_size:
// what [journal] max_size limits (size_limit.hpp says why this measure). In
// one read snapshot of its own, so that the three agree.
int64_t bytes_in_use(SQLite::Database& db);

// Errors: every one names the journal, the operation and, for writes, what
// became of the change.
std::string context(const std::string& path, std::string_view operation);
std::string describe(const SQLite::Exception& e);
Fault fault_of(const SQLite::Exception& e);

// Runs `work`, turning SQLite's exceptions into JournalError with context.
// gapless::Error thrown by `work` already carries its context and passes.
template <typename Work>
auto with_journal_errors(const std::string& path, std::string_view operation, std::string_view after_failure,
                         Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const SQLite::Exception& e) {
    std::string text = context(path, operation) + describe(e);
    if (!after_failure.empty()) text += "; " + std::string(after_failure);
    throw JournalError(fault_of(e), text);
  }
}

constexpr std::string_view kNothingChanged = "nothing was changed";

// An operator act's sink or destination: absent or empty means every one.
bool means_every(std::optional<std::string_view> name);

// One use of a cached statement, which resets it when the use's scope ends: no
// statement keeps a read transaction open between calls, and one that failed
// is clean for its next use. (reset() would rethrow the failure; tryReset()
// does not.)
class ResetAfterUse {
 public:
  explicit ResetAfterUse(SQLite::Statement& statement) : statement_(statement) {}
  ~ResetAfterUse() { statement_.tryReset(); }
  ResetAfterUse(const ResetAfterUse&) = delete;
  ResetAfterUse& operator=(const ResetAfterUse&) = delete;
  SQLite::Statement* operator->() const { return &statement_; }

 private:
  SQLite::Statement& statement_;
};

// See DURABILITY at the top of format.hpp.
enum class Durability { full, normal };

// The level must be set outside a transaction, so it is set here, just before BEGIN.
SQLite::Transaction begin_write(SQLite::Database& db, Durability durability);
SQLite::Transaction begin_read(SQLite::Database& db);

std::string text_of(const SQLite::Column& column);   // NULL -> ""
std::string bytes_of(const SQLite::Column& column);  // a BLOB's bytes

// "user@host", for the request table.
std::string operator_identity();

}  // namespace gapless::journal::detail
