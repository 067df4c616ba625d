// Proves a journal of every past schema version opens in this gapless with every row and count kept, and drains.
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/journal_versions.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Collected;
using gapless::journal::Journal;
using gapless::journal::SeriesKey;
using namespace gapless::test;

namespace {

const std::vector<std::string> kSinks = {"cern", "desy"};

constexpr int kPendingState = 0;
constexpr int kDeliveredState = 1;
constexpr int kParkedState = 2;

// A table's rows as every version wrote them: version 6 added a column to
// sink, which an older journal gains, empty.
std::vector<std::string> kept_rows(SQLite::Database& db, const std::string& table) {
  return rows_of(db, table == "sink" ? "(SELECT id, name, created_ms FROM sink)" : table);
}

// Undoes version 6 in a fresh journal, for the cases that take one back to
// an older version: sink as kSchemaV1 created it (a column with REFERENCES
// cannot be dropped; the rename quotes the name, which the last step undoes).
const char* const kSinkBeforeVersion6 = R"sql(
CREATE TABLE sink_before_v6(
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,          -- as in the configuration
  created_ms INTEGER NOT NULL
);
INSERT INTO sink_before_v6 SELECT id, name, created_ms FROM sink;
DROP TABLE sink;
ALTER TABLE sink_before_v6 RENAME TO sink;
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql, 'CREATE TABLE "sink"', 'CREATE TABLE sink') WHERE name = 'sink';
PRAGMA writable_schema = OFF;
)sql";

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
    tables[name] = kept_rows(sql.database(), name);
  }
  return tables;
}

// The schema's objects (tables, indexes, triggers) with their SQL.
std::map<std::string, std::string> schema_of(SQLite::Database& db) {
  SQLite::Statement query(db, "SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_schema");
  std::map<std::string, std::string> objects;
  while (query.executeStep()) objects[query.getColumn(0).getString()] = query.getColumn(1).getString();
  return objects;
}

}  // namespace

TEST_CASE("a journal of each past schema version opens keeping every row and count, and drains; parked stays parked",
          "[journal][migration]") {
  const int version = GENERATE(1, 2, 3, 4, 5, 6);
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

  auto journal = Journal::open(path, {kSinks.begin(), kSinks.end()});
  // Version 7: a sink registered before it (and named alone since) takes
  // every destination, as it did.
  for (const auto& sink : journal->status()) CHECK_FALSE(sink.accept.has_value());
  if (version >= 6) CHECK(journal->status().size() == kSinks.size());  // the fixture's retired sink stays retired
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

TEST_CASE("a version 1 journal migrates to version 2 (and on), and its counters stay exact across the change",
          "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  {
    auto journal = Journal::open(path, {"cern"});
    append_many(*journal, "m", 20);
    append_many(*journal, "p", 5, "/topic/p");
    // Back to version 1 as an older gapless left it: kSchemaV1's counting
    // trigger, which counted every state change itself, and none of the
    // tables later versions added.
    JournalSql sql(path);
    sql.exec(kSinkBeforeVersion6);
    sql.exec(R"sql(
      DROP TABLE appended_message;
      DROP TABLE archive_failure;
      DROP TABLE archive_poll;
      DROP TRIGGER delivery_count_update;
      CREATE TRIGGER delivery_count_update AFTER UPDATE OF state ON delivery
      WHEN OLD.state <> NEW.state BEGIN
        UPDATE delivery_count SET count = count - 1
          WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
        INSERT INTO delivery_count(sink_id, destination_id, state, count)
          VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
          ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
      END;
      PRAGMA user_version = 1;)sql");
    // What version 1's mark_delivered did: one UPDATE, counted by the trigger.
    sql.exec("UPDATE delivery SET state = 1, delivered_ms = 1 WHERE message_id <= 5");
    journal->park_destination("cern", "/topic/p", "not authorized", 0);
  }
  auto journal = Journal::open(path, {"cern"});
  JournalSql sql(path);
  CHECK(sql.integer("PRAGMA user_version") == 7);
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 5);
  CHECK(status_of(*journal, "cern", "/topic/a").pending == 15);

  // Marks from pending and from parked, and a mark of rows already delivered.
  auto claimed = journal_ids(journal->claim("cern", 10, {}));
  claimed.push_back(1);
  journal->mark_delivered("cern", claimed);
  CHECK(journal->requeue_probe("cern", "/topic/p", 0).has_value());
  SQLite::Statement parked(sql.database(),
                           "SELECT message_id FROM delivery WHERE state = 2 ORDER BY message_id LIMIT 2");
  std::vector<int64_t> parked_ids;
  while (parked.executeStep()) parked_ids.push_back(parked.getColumn(0).getInt64());
  journal->mark_delivered("cern", parked_ids);
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 15);
  CHECK(status_of(*journal, "cern", "/topic/p").delivered == 2);
  CHECK(status_of(*journal, "cern", "/topic/p").parked == 2);
  CHECK(status_of(*journal, "cern", "/topic/p").pending == 1);  // the probe
}

TEST_CASE("a version 2 journal migrates to version 3 keeping every row and schema object, and records polls",
          "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  const std::vector<std::string> version_2_tables = {"sink",     "destination",        "request", "message",
                                                     "delivery", "delivery_count",     "series",  "coverage",
                                                     "datapoint", "parked_destination"};
  std::map<std::string, std::vector<std::string>> rows_before;
  std::map<std::string, std::string> schema_before;
  {
    auto journal = Journal::open(path, {"cern", "desy"});
    append_many(*journal, "m", 20);
    append_many(*journal, "p", 5, "/topic/p");
    journal->mark_delivered("cern", journal_ids(journal->claim("cern", 8, {})));
    journal->park_destination("desy", "/topic/p", "not authorized", 0);
    const int64_t request = journal->begin_request("backfill", R"({"from": 1})");
    journal->update_request(request, "done", 1, "a note");
    const auto series = journal->register_series(SeriesKey{kArchiveUrl, "key1", "throughput", "", 0}, "{}");
    Collected collected;
    collected.series_id = series.id;
    collected.messages = {message("s-1", "/topic/s")};
    collected.datapoints = {{100, std::string(32, 'a'), 0}};
    collected.read_from = 50;
    collected.read_to = 101;
    collected.points_read = 1;
    collected.cursor_ts = 101;
    journal->record_collected(collected);
    // Back to version 2 as the gapless before it left it: version 3 only added
    // the two archive tables.
    JournalSql sql(path);
    auto& db = sql.database();
    db.exec(kSinkBeforeVersion6);
    db.exec("DROP TABLE appended_message; DROP TABLE archive_failure; DROP TABLE archive_poll; "
            "PRAGMA user_version = 2;");
    for (const std::string& table : version_2_tables) {
      rows_before[table] = kept_rows(db, table);
      REQUIRE_FALSE(rows_before[table].empty());  // the comparison below must compare something
    }
    schema_before = schema_of(db);
  }

  auto journal = Journal::open(path, {"cern", "desy"});
  JournalSql sql(path);
  auto& db = sql.database();
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
  for (const std::string& table : version_2_tables) {
    INFO("table " << table);
    CHECK(kept_rows(db, table) == rows_before[table]);
  }
  std::map<std::string, std::string> added;
  for (const auto& [object, sql] : schema_of(db)) {
    INFO("schema object " << object);
    if (object == "table sink")
      CHECK(sql == schema_before.at(object).substr(0, schema_before.at(object).size() - 1) +
                       ", retired_request_id INTEGER REFERENCES request(id), accept TEXT)");  // versions 6 and 7
    else if (schema_before.count(object) != 0)
      CHECK(schema_before.at(object) == sql);  // unchanged
    else
      added[object] = sql;
  }
  CHECK(added.size() == 3);  // and version 4's table (its own test case below; version 5 dropped its view)
  CHECK(added.count("table archive_poll") == 1);
  CHECK(added.count("table archive_failure") == 1);
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
  CHECK(claim_all(*journal, "cern").size() == 18);  // 26 journaled, 8 delivered

  CHECK(journal->archive_health().empty());
  journal->record_poll(archive_poll(1000, {{"timeout", 1}}, 0, "archive psds: GET " + kArchiveUrl + ": timeout"));
  CHECK(health_of(*journal).failures.at("timeout").count == 1);
  CHECK(db.execAndGet("PRAGMA quick_check").getString() == "ok");
}

TEST_CASE("a version 3 journal migrates to version 4 (and on): its messages no datapoint names become appended ones",
          "[journal][resend]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  const std::vector<std::string> version_3_tables = {
      "sink",     "destination", "request",   "message",           "delivery",     "delivery_count",
      "series",   "coverage",    "datapoint", "parked_destination", "archive_poll", "archive_failure"};
  std::map<std::string, std::vector<std::string>> rows_before;
  std::map<std::string, std::string> schema_before;
  int64_t second = 0;
  {
    auto journal = Journal::open(path, {"cern", "desy"});
    journal->append({with_headers("ingested", {{"event-type", "throughput"}, {"ts_start", "1500"}}),
                     with_headers("ingested-without-ts_start", {{"event-type", "throughput"}})});
    const auto series = journal->register_series(SeriesKey{kArchiveUrl, "key1", "throughput", "", 0}, "{}");
    journal->record_collected(collected_read(series.id,
                                             {with_headers("collected", {{"ts_start", "1500"}}),
                                              with_headers("collected-without-ts_start", {})},
                                             {1500, 1600}));
    journal->mark_delivered("cern", journal_ids(journal->claim("cern", 3, {})));
    journal->park_destination("desy", "/topic/perfsonar.raw.throughput", "not authorized", 0);
    journal->record_poll(archive_poll(1000, {{"timeout", 1}}, 2, "timeout"));
    journal->begin_request("resend", "{}");
    second = journaled_second(*journal, "ingested-without-ts_start");
    // Back to version 3 as the gapless before it left it: version 4 only
    // added the view and the table, and version 5 dropped the view.
    JournalSql sql(path);
    auto& db = sql.database();
    db.exec(kSinkBeforeVersion6);
    db.exec("DROP TABLE appended_message; PRAGMA user_version = 3;");
    for (const std::string& table : version_3_tables) {
      rows_before[table] = kept_rows(db, table);
      REQUIRE_FALSE(rows_before[table].empty());
    }
    schema_before = schema_of(db);
  }

  auto journal = Journal::open(path, {"cern", "desy"});
  JournalSql sql(path);
  auto& db = sql.database();
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
  for (const std::string& table : version_3_tables) {
    INFO("table " << table);
    CHECK(kept_rows(db, table) == rows_before[table]);
  }
  std::set<std::string> added;
  for (const auto& [object, sql] : schema_of(db)) {
    INFO("schema object " << object);
    if (object == "table sink")
      CHECK_THAT(sql, Catch::Contains("retired_request_id"));  // version 6's column
    else if (schema_before.count(object) != 0)
      CHECK(schema_before.at(object) == sql);
    else
      added.insert(object);
  }
  CHECK(added == std::set<std::string>{"table appended_message"});

  // The messages no datapoint names, each at its time; the collected ones not.
  std::vector<std::string> appended = {
      "1500|" + std::to_string(id_of(*journal, "ingested")),
      std::to_string(second) + "|" + std::to_string(id_of(*journal, "ingested-without-ts_start"))};
  std::sort(appended.begin(), appended.end());
  CHECK(rows_of(db, "appended_message") == appended);
  CHECK(journal->appended_messages(window(1000, 2000)) == ids_of(*journal, {"ingested"}));
  CHECK(journal->appended_messages(window(second, second + 1)) == ids_of(*journal, {"ingested-without-ts_start"}));

  // From now on append() records its messages itself.
  journal->append({with_headers("after", {{"ts_start", "1700"}})});
  CHECK(journal->appended_messages(window(1000, 2000)) == ids_of(*journal, {"ingested", "after"}));
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
  CHECK(db.execAndGet("PRAGMA quick_check").getString() == "ok");
}

TEST_CASE("a version 4 journal migrates to version 5: the view message_window_ts goes, every row stays",
          "[journal][resend]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  const std::vector<std::string> version_4_tables = {
      "sink",     "destination", "request",   "message",            "delivery",     "delivery_count",
      "series",   "coverage",    "datapoint", "parked_destination", "archive_poll", "archive_failure",
      "appended_message"};
  std::map<std::string, std::vector<std::string>> rows_before;
  std::map<std::string, std::string> schema_before;
  int64_t second = 0;
  {
    auto journal = Journal::open(path, {"cern", "desy"});
    journal->append({with_headers("ingested", {{"event-type", "throughput"}, {"ts_start", "1500"}}),
                     with_headers("ingested-without-ts_start", {{"event-type", "throughput"}})});
    const auto series = journal->register_series(SeriesKey{kArchiveUrl, "key1", "throughput", "", 0}, "{}");
    journal->record_collected(collected_read(series.id, {with_headers("collected", {{"ts_start", "1500"}})}, {1500}));
    journal->mark_delivered("cern", journal_ids(journal->claim("cern", 3, {})));
    journal->park_destination("desy", "/topic/perfsonar.raw.throughput", "not authorized", 0);
    journal->record_poll(archive_poll(1000, {{"timeout", 1}}, 2, "timeout"));
    journal->begin_request("resend", "{}");
    second = journaled_second(*journal, "ingested-without-ts_start");
    // Back to version 4 as the gapless before it left it: with the view that
    // computed window_ts from the ts_start header (kMigrationV4's text).
    JournalSql sql(path);
    auto& db = sql.database();
    db.exec(kSinkBeforeVersion6);
    db.exec(R"sql(
      CREATE VIEW message_window_ts(message_id, window_ts) AS
      SELECT id, coalesce((
          SELECT CAST(value AS INTEGER) FROM (
            SELECT value, min(key) FROM (
              SELECT pair.key AS key, json_extract(pair.value, '$[0]') AS name, json_extract(pair.value, '$[1]') AS value
              FROM json_each(message.headers) AS pair)
            WHERE name = 'ts_start' AND value GLOB '[0-9]*' AND value NOT GLOB '*[^0-9]*' AND length(value) <= 18)),
        journaled_ms / 1000)
      FROM message;
      PRAGMA user_version = 4;)sql");
    // The rows version 4 wrote are the ones version 5 writes: the same rule.
    CHECK(rows_of(db, "appended_message") ==
          rows_of(db, "(SELECT window_ts, message_id FROM message_window_ts "
                      "WHERE message_id NOT IN (SELECT message_id FROM datapoint))"));
    for (const std::string& table : version_4_tables) {
      rows_before[table] = kept_rows(db, table);
      REQUIRE_FALSE(rows_before[table].empty());
    }
    schema_before = schema_of(db);
  }

  auto journal = Journal::open(path, {"cern", "desy"});
  JournalSql sql(path);
  auto& db = sql.database();
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
  for (const std::string& table : version_4_tables) {
    INFO("table " << table);
    CHECK(kept_rows(db, table) == rows_before[table]);
  }
  std::map<std::string, std::string> schema_after = schema_of(db);
  CHECK(schema_before.erase("view message_window_ts") == 1);
  CHECK_THAT(schema_after["table sink"], Catch::Contains("retired_request_id"));  // version 6's column
  schema_after.erase("table sink");
  schema_before.erase("table sink");
  CHECK(schema_after == schema_before);

  CHECK(journal->appended_messages(window(1000, 2000)) == ids_of(*journal, {"ingested"}));
  CHECK(journal->appended_messages(window(second, second + 1)) == ids_of(*journal, {"ingested-without-ts_start"}));
  journal->append({with_headers("after", {{"ts_start", "1700"}})});
  CHECK(journal->appended_messages(window(1000, 2000)) == ids_of(*journal, {"ingested", "after"}));
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
  CHECK(db.execAndGet("PRAGMA quick_check").getString() == "ok");
}

TEST_CASE("a version 6 journal migrates to version 7: sinks take every destination until registered with a list",
          "[journal][migration][accept]") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  write_journal_of_version(path, 6);
  {
    auto journal = Journal::open(path, {kSinks.begin(), kSinks.end()});
    JournalSql sql(path);
    CHECK(sql.integer("PRAGMA user_version") == 7);
    CHECK(sql.integer("SELECT count(*) FROM sink WHERE accept IS NULL") == 3);  // cern, desy and the retired one
    journal->append({message("anywhere", "/anywhere/x")});
    const auto cern = gapless_ids(claim_all(*journal, "cern"));
    CHECK(std::count(cern.begin(), cern.end(), "anywhere") == 1);
  }
  // The daemon's next start registers the configured lists: new messages follow them.
  auto journal = Journal::open(path, {{"cern", {"/topic/>"}}, {"desy", {"/queue/>"}}});
  journal->append({message("topic", "/topic/x")});
  const auto cern = gapless_ids(claim_all(*journal, "cern"));
  const auto desy = gapless_ids(claim_all(*journal, "desy"));
  CHECK(std::count(cern.begin(), cern.end(), "topic") == 1);
  CHECK(std::count(desy.begin(), desy.end(), "topic") == 0);  // desy takes /queue/ only now
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));
}
