// Proves a full disk refuses a batch whole, naming the cause, while what is journaled still drains.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::journal::NewMessage;
using namespace gapless::test;

TEST_CASE("a full disk refuses the batch with a clear message and keeps what is journaled", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  auto journal = Journal::open(path, {"cern"});
  append_many(*journal, "kept", 10);
  auto& db = journal->connection_for_tests();
  // SQLite reports a database at its page limit exactly as a full disk.
  const int64_t pages = db.execAndGet("PRAGMA page_count").getInt64();
  db.exec("PRAGMA max_page_count = " + std::to_string(pages));

  std::vector<NewMessage> big;
  for (int i = 0; i < 50; ++i) {
    big.push_back(message("big-" + std::to_string(i)));
    big.back().body.assign(16 * 1024, 'v');
  }
  CHECK_THROWS_WITH(journal->append(big), Contains("journal " + path + ": append: the disk is full") &&
                                              Contains("nothing of this batch was written"));
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 10);
  CHECK(status_of(*journal, "cern", "/topic/a").pending == 10);
  journal->mark_delivered("cern", journal_ids(journal->claim("cern", 4, {})));  // draining goes on
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 4);

  db.exec("PRAGMA max_page_count = 1000000");
  CHECK(journal->append(big).appended == 50);
  CHECK(db.execAndGet("PRAGMA quick_check").getString() == "ok");
}
