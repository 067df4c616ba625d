// A journal file as a past gapless wrote it, from the fixtures of
// tests/journal_versions/ (v1.sql ... v6.sql; how each was made is in its
// first lines and in make_fixtures.sh there).
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>

namespace gapless::test {

inline const std::string kJournalVersionsDir = GAPLESS_SOURCE_DIR "/tests/journal_versions/";

inline void write_journal_of_version(const std::string& path, int version) {
  const std::string fixture = kJournalVersionsDir + "v" + std::to_string(version) + ".sql";
  std::ifstream in(fixture, std::ios::binary);
  REQUIRE(in);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(text);
  REQUIRE(db.execAndGet("PRAGMA user_version").getInt() == version);
}

}  // namespace gapless::test
