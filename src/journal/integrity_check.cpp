// The queries of `gapless check`, each tagged with the invariant of
// format.hpp it checks. Each invariant query selects its violations: the
// total count (a window over all of them) and one line per example, naming
// the rows by their ids and names.

#include "journal/integrity_check.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>

#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

// A delivery row's names, for the examples.
#define GAPLESS_SINK_NAME(alias) "coalesce((SELECT name FROM sink WHERE id = " alias ".sink_id), " alias ".sink_id)"
#define GAPLESS_STATE_NAME(alias)                                                                            \
  "CASE " alias ".state WHEN 0 THEN 'pending' WHEN 1 THEN 'delivered' WHEN 2 THEN 'parked' ELSE " alias \
  ".state END"

struct InvariantQuery {
  const char* check;
  const char* sql;  // (total count, example text) per violation, at most ?1 rows
};

constexpr InvariantQuery kInvariantQueries[] = {
    // Invariant 3: a sink's accept list is NULL (every destination) or a
    // non-empty JSON array of strings (append would read a malformed one as
    // taking nothing). Each entry's syntax is core/destination_filter's.
    {"invariant 3: each sink's accept list is a JSON array of strings",
     "SELECT count(*) OVER (), 'sink ' || s.name || ': accept ' || s.accept "
     "FROM sink AS s WHERE s.accept IS NOT NULL AND (NOT json_valid(s.accept) OR json_type(s.accept) <> 'array' "
     "  OR json_array_length(s.accept) = 0 "
     "  OR EXISTS (SELECT 1 FROM json_each(s.accept) AS e WHERE e.type <> 'text')) "
     "ORDER BY s.id LIMIT ?1"},
    // Invariant 7: the counters that status reads equal the rows they count.
    {"invariant 7: each delivery counter equals its rows",
     "WITH counted AS (SELECT sink_id, destination_id, state, count(*) AS n FROM delivery "
     "                 GROUP BY sink_id, destination_id, state), "
     "keys AS (SELECT sink_id, destination_id, state FROM counted "
     "         UNION SELECT sink_id, destination_id, state FROM delivery_count) "
     "SELECT count(*) OVER (), 'sink ' || " GAPLESS_SINK_NAME("k") " || ' destination ' || "
     "  coalesce((SELECT name FROM destination WHERE id = k.destination_id), k.destination_id) || ' ' || "
     GAPLESS_STATE_NAME("k") " || ': counter ' || coalesce(c.count, 0) || ', rows ' || coalesce(r.n, 0) "
     "FROM keys AS k "
     "LEFT JOIN counted AS r ON r.sink_id = k.sink_id AND r.destination_id = k.destination_id AND r.state = k.state "
     "LEFT JOIN delivery_count AS c "
     "  ON c.sink_id = k.sink_id AND c.destination_id = k.destination_id AND c.state = k.state "
     "WHERE coalesce(c.count, 0) <> coalesce(r.n, 0) "
     "ORDER BY k.sink_id, k.destination_id, k.state LIMIT ?1"},
    // Invariant 6: a message stays while any of its delivery rows does
    // (pruning deletes the rows with their message), so a delivered or
    // undelivered row never outlives what it would send.
    {"invariant 6: each delivery row has its message",
     "SELECT count(*) OVER (), 'sink ' || " GAPLESS_SINK_NAME("d") " || ' message ' || d.message_id || ' (' || "
     GAPLESS_STATE_NAME("d") " || '): no such message' "
     "FROM delivery AS d WHERE NOT EXISTS (SELECT 1 FROM message AS m WHERE m.id = d.message_id) "
     "ORDER BY d.message_id, d.sink_id LIMIT ?1"},
    // Invariant 8: a delivery row's destination is its message's.
    {"invariant 8: each delivery row has its message's destination",
     "SELECT count(*) OVER (), 'sink ' || " GAPLESS_SINK_NAME("d") " || ' message ' || d.message_id || "
     "  ': row destination ' || d.destination_id || ', message destination ' || m.destination_id "
     "FROM delivery AS d JOIN message AS m ON m.id = d.message_id WHERE d.destination_id <> m.destination_id "
     "ORDER BY d.message_id, d.sink_id LIMIT ?1"},
    // Invariant 11 with 13: the cursor moves only with the coverage of the
    // read that moved it, so it lies inside or at the end of a coverage row.
    // A series without coverage (its only reads found nothing) is not judged.
    {"invariant 11: each series' cursor lies inside its coverage",
     "SELECT count(*) OVER (), 'series ' || s.id || ': cursor_ts ' || s.cursor_ts || ', coverage ends at ' || "
     "  (SELECT max(ts_to) FROM coverage WHERE series_id = s.id) "
     "FROM series AS s WHERE s.cursor_ts IS NOT NULL "
     "AND EXISTS (SELECT 1 FROM coverage WHERE series_id = s.id) "
     "AND NOT EXISTS (SELECT 1 FROM coverage AS c "
     "                WHERE c.series_id = s.id AND c.ts_from <= s.cursor_ts AND s.cursor_ts <= c.ts_to) "
     "ORDER BY s.id LIMIT ?1"},
    // Invariant 13: rows of a series never overlap nor touch (they are merged).
    {"invariant 13: coverage rows of a series neither overlap nor touch",
     "WITH ordered AS (SELECT series_id, ts_from, ts_to, "
     "                  lag(ts_to) OVER (PARTITION BY series_id ORDER BY ts_from) AS previous_to, "
     "                  lag(ts_from) OVER (PARTITION BY series_id ORDER BY ts_from) AS previous_from "
     "                 FROM coverage) "
     "SELECT count(*) OVER (), 'series ' || series_id || ': [' || previous_from || ', ' || previous_to || ') and [' "
     "  || ts_from || ', ' || ts_to || ')' "
     "FROM ordered WHERE previous_to >= ts_from ORDER BY series_id, ts_from LIMIT ?1"},
    // Invariant 15: an appended_message row goes with its message.
    {"invariant 15: each appended_message row has its message",
     "SELECT count(*) OVER (), 'message ' || a.message_id || ' (window_ts ' || a.window_ts || '): no such message' "
     "FROM appended_message AS a WHERE NOT EXISTS (SELECT 1 FROM message AS m WHERE m.id = a.message_id) "
     "ORDER BY a.message_id LIMIT ?1"},
};

#undef GAPLESS_SINK_NAME
#undef GAPLESS_STATE_NAME

// PRAGMA integrity_check (full: every page, every index entry against its
// row; quick_check at open leaves out the indexes): "ok", or one line per problem.
IntegrityCheckResult file_integrity(SQLite::Database& db) {
  IntegrityCheckResult result{"file: PRAGMA integrity_check", 0, {}};
  SQLite::Statement pragma(db, "PRAGMA integrity_check");
  while (pragma.executeStep()) {
    const std::string line = pragma.getColumn(0).getString();
    if (line == "ok") continue;
    if (++result.problems <= kIntegrityExamples) result.examples.push_back(line);
  }
  return result;
}

// PRAGMA foreign_key_check: each row's REFERENCES (a sink, a destination, a
// series, a request) name a row that exists.
IntegrityCheckResult foreign_keys(SQLite::Database& db) {
  IntegrityCheckResult result{"file: PRAGMA foreign_key_check", 0, {}};
  SQLite::Statement pragma(db, "PRAGMA foreign_key_check");
  while (pragma.executeStep()) {
    if (++result.problems > kIntegrityExamples) continue;
    const std::string row = pragma.getColumn(1).isNull() ? "a row" : "row " + pragma.getColumn(1).getString();
    result.examples.push_back(pragma.getColumn(0).getString() + " " + row + " refers to a missing " +
                              pragma.getColumn(2).getString());
  }
  return result;
}

IntegrityCheckResult run_invariant(SQLite::Database& db, const InvariantQuery& query) {
  IntegrityCheckResult result{query.check, 0, {}};
  SQLite::Statement statement(db, query.sql);
  statement.bind(1, kIntegrityExamples);
  while (statement.executeStep()) {
    result.problems = statement.getColumn(0).getInt64();
    result.examples.push_back(statement.getColumn(1).getString());
  }
  return result;
}

}  // namespace

bool IntegrityReport::ok() const {
  return std::all_of(results.begin(), results.end(), [](const IntegrityCheckResult& r) { return r.problems == 0; });
}

IntegrityReport check_integrity(const Journal& journal) {
  return with_journal_errors(journal.path(), "check", "", [&] {
    SQLite::Database db(journal.path(), SQLite::OPEN_READONLY);
    wait_for_locks(db);
    IntegrityReport report{journal.path(), {}};
    auto snapshot = begin_read(db);  // every check sees the same commit
    report.results.push_back(file_integrity(db));
    report.results.push_back(foreign_keys(db));
    for (const InvariantQuery& query : kInvariantQueries) report.results.push_back(run_invariant(db, query));
    return report;
  });
}

std::string format_integrity_report(const IntegrityReport& report) {
  std::string text = "check: journal " + report.journal_path + "\n";
  size_t failed = 0;
  for (const IntegrityCheckResult& result : report.results) {
    if (result.problems == 0) {
      text += "ok    " + result.check + "\n";
      continue;
    }
    ++failed;
    text += "FAIL  " + result.check + ": " + std::to_string(result.problems) +
            (result.problems == 1 ? " problem" : " problems") + ", e.g.\n";
    for (const std::string& example : result.examples) text += "        " + example + "\n";
  }
  text += failed == 0 ? "check: all " + std::to_string(report.results.size()) + " checks ok\n"
                      : "check: " + std::to_string(failed) + " of " + std::to_string(report.results.size()) +
                            " checks failed: the journal breaks the invariants named above (src/journal/format.hpp)\n";
  return text;
}

}  // namespace gapless::journal
