// Proves a fresh journal's format: docs/journal-schema.sql byte for byte, WAL, gapless's id, foreign keys on.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using gapless::test::JournalSql;
using gapless::test::TempDir;

namespace {

const std::string kSchemaFile = GAPLESS_SOURCE_DIR "/docs/journal-schema.sql";
// Where a failing run leaves the fresh journal's text, with the file's
// leading comment, ready to replace docs/journal-schema.sql.
const std::string kActualFile = "journal-schema.actual.sql";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) FAIL("cannot read " << path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The file's leading comment (lines starting with "--", and blank lines
// among them), which the test does not compare, and the rest, which it does.
std::pair<std::string, std::string> split_leading_comment(const std::string& text) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (!line.empty() && line.rfind("--", 0) != 0) break;
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return {text.substr(0, at), text.substr(at)};
}

// What the sqlite3 shell's `.schema` prints for a view after its SQL: a
// comment naming its columns, "/* name(a,b) */" (the shell's
// shellFakeSchema; our names need no quoting).
std::string view_columns_comment(SQLite::Database& db, const std::string& view) {
  SQLite::Statement columns(db, "SELECT name FROM pragma_table_info(?1) ORDER BY cid");
  columns.bind(1, view);
  std::string names;
  while (columns.executeStep()) names += (names.empty() ? "" : ",") + columns.getColumn(0).getString();
  return "\n/* " + view + "(" + names + ") */";
}

std::string auto_vacuum_name(int64_t mode) {
  switch (mode) {
    case 0: return "NONE";
    case 1: return "FULL";
    case 2: return "INCREMENTAL";
  }
  return std::to_string(mode);
}

// The PRAGMAs that define the format, then every schema object in creation
// order, each statement as SQLite stored it and ended with ";", as
// `sqlite3 FILE .schema` prints them.
std::string format_of(SQLite::Database& db) {
  std::string text;
  text += "PRAGMA application_id = " + std::to_string(db.execAndGet("PRAGMA application_id").getInt64()) + ";\n";
  text += "PRAGMA user_version = " + std::to_string(db.execAndGet("PRAGMA user_version").getInt64()) + ";\n";
  text += "PRAGMA auto_vacuum = " + auto_vacuum_name(db.execAndGet("PRAGMA auto_vacuum").getInt64()) + ";\n";
  std::string journal_mode = db.execAndGet("PRAGMA journal_mode").getString();
  for (char& c : journal_mode) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  text += "PRAGMA journal_mode = " + journal_mode + ";\n";
  SQLite::Statement objects(db, "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid");
  while (objects.executeStep()) {
    text += objects.getColumn(2).getString();
    if (objects.getColumn(0).getString() == "view") text += view_columns_comment(db, objects.getColumn(1).getString());
    text += ";\n";
  }
  return text;
}

// A line diff (longest common subsequence): "-" the file's lines, "+" the
// fresh journal's, with a line of context around each change.
std::string line_diff(const std::string& expected, const std::string& actual) {
  const std::vector<std::string> a = lines_of(expected), b = lines_of(actual);
  std::vector<std::vector<int>> common(a.size() + 1, std::vector<int>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;)
    for (size_t j = b.size(); j-- > 0;)
      common[i][j] = a[i] == b[j] ? common[i + 1][j + 1] + 1 : std::max(common[i + 1][j], common[i][j + 1]);
  std::vector<std::string> edits;  // each line with its mark: ' ', '-' or '+'
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      edits.push_back(" " + a[i++]);
      ++j;
    } else if (i < a.size() && (j == b.size() || common[i + 1][j] >= common[i][j + 1])) {
      edits.push_back("-" + a[i++]);
    } else {
      edits.push_back("+" + b[j++]);
    }
  }
  std::string diff;
  bool skipped = false;
  for (size_t k = 0; k < edits.size(); ++k) {
    const auto changed = [&](size_t at) { return at < edits.size() && edits[at][0] != ' '; };
    if (changed(k) || changed(k + 1) || (k > 0 && changed(k - 1))) {
      if (skipped) diff += "...\n";
      skipped = false;
      diff += edits[k] + "\n";
    } else {
      skipped = true;
    }
  }
  return diff;
}

}  // namespace

TEST_CASE("a fresh journal's schema is docs/journal-schema.sql, byte for byte", "[journal][schema]") {
  TempDir dir("journal-schema");
  const std::string path = dir.file("journal.db");
  Journal::open(path, {"cern"}).reset();
  JournalSql sql(path);
  const std::string actual = format_of(sql.database());

  const auto [leading_comment, expected] = split_leading_comment(read_text(kSchemaFile));
  if (actual != expected) {
    std::ofstream(kActualFile, std::ios::binary) << leading_comment << actual;
    FAIL("the journal's schema changed: update docs/journal-schema.sql and add a migration.\n"
         "The fresh journal's format, with the file's comment, is in "
         << kActualFile << " (in the test's working directory). Differences (- the file, + a fresh journal):\n"
         << line_diff(expected, actual));
  }
  SUCCEED("a fresh journal has the format of " << kSchemaFile);
}

TEST_CASE("a new journal is one WAL file, incrementally vacuumed, marked as gapless's, at schema version 6",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  JournalSql sql(journal->path());
  auto& db = sql.database();
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA auto_vacuum").getInt() == 2);  // incremental
  CHECK(db.execAndGet("PRAGMA application_id").getInt64() == 0x47504c53);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
  // A setting of each connection: the journal's own must have it.
  CHECK(journal->connection_for_tests().execAndGet("PRAGMA foreign_keys").getInt() == 1);
  for (const char* table : {"sink", "destination", "request", "message", "delivery", "delivery_count",
                            "parked_destination", "series", "coverage", "datapoint", "archive_poll",
                            "archive_failure", "appended_message"})
    CHECK(db.tableExists(table));
}
