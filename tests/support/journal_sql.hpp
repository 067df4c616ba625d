// Test-only SQL access to a journal file: a second SQLite connection, as
// another process would open, to inspect rows or arrange states (an old
// schema, a dropped table) that no public Journal method writes. The journal
// runs in WAL mode, so this connection and the Journal's own see each other's
// commits. Tests that need the Journal's own connection (a per-connection
// pragma, a commit hook) are the exception, not the rule.
#pragma once

#include <cstdint>
#include <string>

#include <SQLiteCpp/SQLiteCpp.h>

namespace gapless::test {

class JournalSql {
 public:
  explicit JournalSql(const std::string& journal_path)
      : db_(journal_path, SQLite::OPEN_READWRITE) {
    db_.setBusyTimeout(10'000);
  }

  void exec(const std::string& sql) { db_.exec(sql); }
  int64_t integer(const std::string& sql) { return db_.execAndGet(sql).getInt64(); }
  std::string text(const std::string& sql) { return db_.execAndGet(sql).getString(); }
  SQLite::Database& database() { return db_; }

 private:
  SQLite::Database db_;
};

}  // namespace gapless::test
