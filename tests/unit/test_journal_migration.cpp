// Proves a journal of every past schema version opens in this gapless with every row and count kept, and drains.
#include <SQLiteCpp/SQLiteCpp.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using gapless::test::counts_from_rows;
using gapless::test::counts_from_status;
using gapless::test::CountsBySinkDestination;
using gapless::test::JournalSql;
using gapless::test::rows_of;
using gapless::test::TempDir;

namespace {

// v1.sql ... v4.sql: a journal as the gapless of that schema version wrote
// it (how, in each file's first lines and in make_fixtures.sh there).
const std::string kVersionsDir = GAPLESS_SOURCE_DIR "/tests/journal_versions/";
const std::string kArchiveUrl = "https://psds.example.org/esmond/perfsonar/archive/";
const std::vector<std::string> kSinks = {"cern", "desy"};

constexpr int kPendingState = 0;
constexpr int kDeliveredState = 1;
constexpr int kParkedState = 2;

// The journal file a past version left, from its fixture's SQL text.
void write_journal_of_version(const std::string& path, int version) {
  const std::string fixture = kVersionsDir + "v" + std::to_string(version) + ".sql";
  std::ifstream in(fixture, std::ios::binary);
  REQUIRE(in);
  const std::string text(std::istreambuf_iterator<char>(in), {});
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec(text);
  REQUIRE(db.execAndGet("PRAGMA user_version").getInt() == version);
}

// (sink, message id) of the delivery rows in `state`.
std::set<std::pair<std::string, int64_t>> rows_in_state(const std::string& path, int state) {
  JournalSql sql(path);
  SQLite::Statement query(sql.database(),
                          "SELECT sink.name, delivery.message_id FROM delivery JOIN sink ON sink.id = delivery.sink_id "
                          "WHERE delivery.state = ?1");
  query.bind(1, state);
  std::set<std::pair<std::string, int64_t>> rows;
  while (query.executeStep()) rows.insert({query.getColumn(0).getString(), query.getColumn(1).getInt64()});
  return rows;
}

// Every table of the file with its rows.
std::map<std::string, std::vector<std::string>> tables_of(const std::string& path) {
  JournalSql sql(path);
  std::map<std::string, std::vector<std::string>> tables;
  SQLite::Statement names(sql.database(), "SELECT name FROM sqlite_schema WHERE type = 'table'");
  while (names.executeStep()) {
    const std::string name = names.getColumn(0).getString();
    tables[name] = rows_of(sql.database(), name);
  }
  return tables;
}

}  // namespace

TEST_CASE("a journal of each past schema version opens keeping every row and count, and drains; parked stays parked",
          "[journal][migration]") {
  const int version = GENERATE(1, 2, 3, 4);
  INFO("a journal of schema version " << version << " (tests/journal_versions/v" << version << ".sql)");
  TempDir dir("journal-migration");
  const std::string path = dir.file("journal.db");
  write_journal_of_version(path, version);

  const CountsBySinkDestination before = counts_from_rows(path);
  const auto delivered_before = rows_in_state(path, kDeliveredState);
  const auto parked_before = rows_in_state(path, kParkedState);
  const auto tables_before = tables_of(path);
  // The fixture holds what the test must see kept: each sink has pending,
  // delivered and parked rows.
  for (const std::string& sink : kSinks) {
    INFO("sink " << sink);
    std::array<int64_t, 3> totals{};
    for (const auto& [key, counts] : before)
      if (key.first == sink)
        for (size_t state = 0; state < totals.size(); ++state) totals[state] += counts.by_state[state];
    CHECK(totals[kPendingState] > 0);
    CHECK(totals[kDeliveredState] > 0);
    CHECK(totals[kParkedState] > 0);
  }

  auto journal = Journal::open(path, kSinks);
  CHECK(counts_from_status(*journal) == before);
  CHECK(counts_from_rows(*journal) == before);
  CHECK(rows_in_state(path, kDeliveredState) == delivered_before);
  auto tables_after = tables_of(path);
  for (const auto& [table, rows] : tables_before) {
    INFO("table " << table);
    CHECK(tables_after[table] == rows);  // a migration adds, it never rewrites
  }
  const auto parked_destinations = journal->parked_destinations("cern");
  REQUIRE(parked_destinations.size() == 1);
  CHECK(parked_destinations.front().destination == "/topic/refused");
  CHECK_FALSE(journal->requests().empty());
  if (version >= 2) {  // the collector's tables: series with cursor and coverage
    const auto series = journal->series_of_archive(kArchiveUrl);
    REQUIRE(series.size() == 2);
    for (const auto& s : series) {
      CHECK(s.cursor_ts.has_value());
      CHECK_FALSE(journal->coverage(s.id, 0, INT64_MAX).empty());
    }
  }
  if (version >= 3) CHECK(journal->archive_health().size() == 1);

  // Drained as a sender would: claim, then mark delivered, until nothing is pending.
  for (const std::string& sink : kSinks) {
    INFO("sink " << sink);
    for (;;) {
      const auto claimed = journal->claim(sink, 4, {});
      if (claimed.empty()) break;
      std::vector<int64_t> ids;
      for (const auto& message : claimed) {
        CHECK(delivered_before.count({sink, message.id}) == 0);  // nothing delivered is sent again
        ids.push_back(message.id);
      }
      journal->mark_delivered(sink, ids);
    }
  }
  const CountsBySinkDestination after = counts_from_status(*journal);
  CHECK(after == counts_from_rows(*journal));
  REQUIRE(after.size() == before.size());
  for (const auto& [key, counts] : before) {
    INFO("sink " << key.first << ", destination " << key.second);
    const auto& drained = after.at(key).by_state;
    CHECK(drained[kPendingState] == 0);
    CHECK(drained[kDeliveredState] == counts.by_state[kDeliveredState] + counts.by_state[kPendingState]);
    CHECK(drained[kParkedState] == counts.by_state[kParkedState]);
  }
  CHECK(rows_in_state(path, kParkedState) == parked_before);
}
