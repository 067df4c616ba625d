// Proves `gapless check` passes a healthy journal and catches each broken invariant it checks, naming it, with exit code 1.
//
// Each journal is broken as a bug or another program could break it: through
// a second connection (support/journal_sql.hpp), e.g. a trigger dropped
// before a row changes, so the counters drift.
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "journal/integrity_check.hpp"
#include "journal/journal.hpp"
#include "support/collected_read.hpp"
#include "support/gapless_command.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::IntegrityReport;
using gapless::journal::Journal;
using namespace gapless::test;

namespace {

const std::string kArchive = "https://ps.example.org/esmond/perfsonar/archive/";

// A journal in every state a daemon leaves: two sinks, rows pending,
// delivered and parked (alone and with their destination), two destinations,
// appended messages, and a series read twice (a cursor, two coverage rows).
struct HealthyJournal {
  TempDir dir{"integrity-check"};
  std::string path = dir.file("journal.db");
  std::unique_ptr<Journal> journal = Journal::open(path, {"cern", "fnal"});

  HealthyJournal() {
    append_many(*journal, "a", 6, "/topic/a");
    append_many(*journal, "b", 3, "/topic/b");
    const auto claimed = journal_ids(claim_all(*journal, "cern"));
    journal->mark_delivered("cern", {claimed[0], claimed[1]});
    journal->park_message("cern", claimed[2], "too large");
    journal->park_destination("fnal", "/topic/b", "not authorized", 0);

    const auto series = journal->register_series({kArchive, "key1", "throughput", "", 0}, "{}");
    auto first = collected_read(series.id, "series-1", "/topic/perfsonar.raw.throughput", {1000, 1100}, 1000, 1101);
    first.cursor_ts = 1101;
    journal->record_collected(first);
    auto backfill = collected_read(series.id, "series-2", "/topic/perfsonar.raw.throughput", {500}, 400, 600);
    journal->record_collected(backfill);
  }

  IntegrityReport check() { return gapless::journal::check_integrity(*journal); }
  JournalSql sql() { return JournalSql(path); }
};

std::string report_text(const IntegrityReport& report) { return gapless::journal::format_integrity_report(report); }

// The report's line for the check whose name starts with `check`.
std::string line_of(const std::string& report, const std::string& check) {
  for (const std::string status : {"ok    ", "FAIL  "}) {
    const size_t at = report.find(status + check);
    if (at != std::string::npos) return report.substr(at, report.find('\n', at) - at);
  }
  return "(no line for " + check + ")";
}

}  // namespace

TEST_CASE("check: a healthy journal (every delivery state, parked destination, series, coverage) is reported broken",
          "[check]") {
  HealthyJournal healthy;
  const IntegrityReport report = healthy.check();
  INFO(report_text(report));
  CHECK(report.ok());
  CHECK(report.results.size() == 9);
  CHECK_THAT(report_text(report), Contains("check: all 9 checks ok"));
}

TEST_CASE("check: an index that disagrees with its table passes (only the full integrity_check sees it)", "[check]") {
  HealthyJournal broken;
  // The parked-alone index now claims to hold pending rows, which it does
  // not: open()'s quick_check reads no index entries and misses this.
  broken.sql().exec("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, 'state = 2', "
                    "'state = 0') WHERE name = 'delivery_parked_alone'; PRAGMA writable_schema = OFF;");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "file: PRAGMA integrity_check"), Contains("FAIL") && Contains("problem"));
  CHECK_THAT(report, Contains("delivery_parked_alone"));
}

TEST_CASE("check: a row referring to a missing series passes", "[check]") {
  HealthyJournal broken;
  broken.sql().exec("INSERT INTO datapoint(series_id, ts, digest, message_id) VALUES (999, 1, x'00', 1)");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "file: PRAGMA foreign_key_check"), Contains("FAIL  file: PRAGMA foreign_key_check: 1 problem"));
  CHECK_THAT(report, Contains("datapoint a row refers to a missing series"));
}

TEST_CASE("check: counters that drifted from their rows (a trigger dropped, a row deleted) pass", "[check]") {
  HealthyJournal broken;
  const int64_t message = id_of(*broken.journal, "a-5");
  broken.sql().exec("DROP TRIGGER delivery_count_delete; DELETE FROM delivery WHERE sink_id = (SELECT id FROM sink "
                    "WHERE name = 'fnal') AND message_id = " + std::to_string(message));
  const IntegrityReport report = broken.check();
  INFO(report_text(report));
  CHECK_FALSE(report.ok());
  CHECK_THAT(line_of(report_text(report), "invariant 7"), Contains("FAIL  invariant 7") && Contains("1 problem"));
  CHECK_THAT(report_text(report), Contains("sink fnal destination /topic/a pending: counter 6, rows 5"));
  CHECK_THAT(line_of(report_text(report), "invariant 6"), Contains("ok"));  // the others still hold
}

TEST_CASE("check: a sink accept list that is not a JSON array of strings passes", "[check][accept]") {
  HealthyJournal broken;
  CHECK_THAT(line_of(report_text(broken.check()), "invariant 3"), Contains("ok"));
  broken.sql().exec("UPDATE sink SET accept = '[\"/topic/>\", 7]' WHERE name = 'fnal'");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 3"), Contains("FAIL  invariant 3") && Contains("1 problem"));
  CHECK_THAT(report, Contains("sink fnal: accept [\"/topic/>\", 7]"));
}

TEST_CASE("check: delivery rows whose message was deleted pass", "[check]") {
  HealthyJournal broken;
  const int64_t message = id_of(*broken.journal, "a-3");
  broken.sql().exec("DELETE FROM message WHERE id = " + std::to_string(message));
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 6"), Contains("FAIL  invariant 6") && Contains("2 problems"));
  CHECK_THAT(report, Contains("sink cern message " + std::to_string(message) + " (pending): no such message"));
  CHECK_THAT(line_of(report, "invariant 15"), Contains("FAIL"));  // its appended_message row is left too
}

TEST_CASE("check: a message moved to another destination than its delivery rows passes", "[check]") {
  HealthyJournal broken;
  const int64_t message = id_of(*broken.journal, "a-4");
  broken.sql().exec("UPDATE message SET destination_id = (SELECT id FROM destination WHERE name = '/topic/b') "
                    "WHERE id = " + std::to_string(message));
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 8"), Contains("FAIL  invariant 8") && Contains("2 problems"));
  CHECK_THAT(report, Contains("message " + std::to_string(message) + ": row destination"));
}

TEST_CASE("check: a cursor run ahead of what coverage says was read passes", "[check]") {
  HealthyJournal broken;
  broken.sql().exec("UPDATE series SET cursor_ts = 5000");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 11"), Contains("FAIL  invariant 11") && Contains("1 problem"));
  CHECK_THAT(report, Contains("cursor_ts 5000, coverage ends at 1101"));
}

TEST_CASE("check: coverage rows of a series that overlap pass", "[check]") {
  HealthyJournal broken;
  broken.sql().exec("INSERT INTO coverage(series_id, ts_from, ts_to, points, read_ms) "
                    "SELECT id, 550, 700, 0, 0 FROM series");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 13"), Contains("FAIL  invariant 13") && Contains("1 problem"));
  CHECK_THAT(report, Contains("[400, 600) and [550, 700)"));
}

TEST_CASE("check: an appended_message row without its message passes", "[check]") {
  HealthyJournal broken;
  broken.sql().exec("UPDATE appended_message SET message_id = 99999 WHERE message_id = (SELECT max(message_id) "
                    "FROM appended_message)");
  const std::string report = report_text(broken.check());
  INFO(report);
  CHECK_THAT(line_of(report, "invariant 15"), Contains("FAIL  invariant 15") && Contains("1 problem"));
  CHECK_THAT(report, Contains("message 99999"));
}

TEST_CASE("gapless check exits 0 on a healthy journal and 1, naming the invariant, on a broken one", "[check]") {
  HealthyJournal journal;
  const std::string config = journal.dir.file("gapless.toml");
  std::ofstream(config) << "[journal]\npath = " << nlohmann::json(journal.path).dump() << "\n"
                        << "[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
                        << "[[sink]]\nname = \"fnal\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n";
  const std::string stderr_file = journal.dir.file("stderr");

  const CommandResult healthy = run_gapless({"check", "--config", config}, stderr_file);
  INFO(healthy.out << healthy.err);
  CHECK(healthy.exit_code == 0);
  CHECK_THAT(healthy.out, Contains("ok    file: PRAGMA integrity_check") && Contains("check: all 9 checks ok"));

  journal.sql().exec("UPDATE delivery_count SET count = count + 1");
  const CommandResult broken = run_gapless({"check", "--config", config}, stderr_file);
  INFO(broken.out << broken.err);
  CHECK(broken.exit_code == 1);
  CHECK_THAT(broken.out, Contains("FAIL  invariant 7") && Contains("check: 1 of 9 checks failed"));
}
