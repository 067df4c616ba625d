// Proves the hot paths (claim, mark, status, append, resend's window) seek indexes; none scans a big table.

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using namespace gapless::test;

TEST_CASE("claims, marks and status seek indexes; none scans the big tables", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  for (int d = 0; d < 10; ++d) append_many(*journal, "d" + std::to_string(d), 300, "/topic/" + std::to_string(d));
  journal->mark_delivered("cern", journal_ids(journal->claim("cern", 1000, {})));
  journal->park_destination("itb", "/topic/3", "not authorized", 0);
  journal->park_message("cern", journal_ids(journal->claim("cern", 1, {})).at(0), "too large");

  const std::set<std::string> big_tables = {"message", "delivery", "datapoint", "coverage"};
  const auto lines = journal->explain_hot_paths();
  std::set<std::string> paths;
  for (const auto& line : lines) {
    INFO(line);
    const std::string path = line.substr(0, line.find(':'));
    paths.insert(path);
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string verb, table;
    words >> verb >> table;
    if (verb == "SCAN") CHECK(big_tables.count(table) == 0);
    // A seek on the sink alone walks every row of that sink.
    CHECK_THAT(line, !Contains("USING PRIMARY KEY (sink_id=?)"));
    CHECK_THAT(line, !Contains("TEMP B-TREE"));
  }
  for (const char* path : {"claim/ids", "claim/rows", "mark_delivered", "mark_delivered/counted", "status/counts", "status/oldest",
                           "status/journaled_ms", "park_destination", "requeue_probe/candidate",
                           "retry_parked/sink", "retry_parked/destination", "parked_messages"})
    CHECK(paths.count(path) == 1);

  const auto plan_of = [&](const std::string& path) {
    std::string plan;
    for (const auto& line : lines)
      if (line.rfind(path + ": ", 0) == 0) plan += line + "\n";
    return plan;
  };
  CHECK_THAT(plan_of("claim/ids"), Contains("COVERING INDEX delivery_claim (sink_id=? AND state=?)"));
  CHECK_THAT(plan_of("mark_delivered"), Contains("PRIMARY KEY (sink_id=? AND message_id=?)"));
  CHECK_THAT(plan_of("status/oldest"),
             Contains("delivery_by_destination (sink_id=? AND destination_id=? AND state=?)"));
}

TEST_CASE("resend's selection of appended messages seeks its window, then each message by id", "[journal][resend]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  for (int d = 0; d < 10; ++d) append_many(*journal, "d" + std::to_string(d), 300, "/topic/" + std::to_string(d));

  std::map<std::string, std::string> plans;
  for (const auto& line : journal->explain_hot_paths()) {
    const std::string path = line.substr(0, line.find(':'));
    plans[path] += line.substr(line.find(':') + 2) + "\n";
  }
  INFO(plans["resend/appended"] << plans["append/appended"]);
  CHECK_THAT(plans["resend/appended"],
             Contains("SEARCH appended_message USING PRIMARY KEY (window_ts>? AND window_ts<?)"));
  CHECK_THAT(plans["resend/appended"], Contains("SEARCH message USING INTEGER PRIMARY KEY (rowid=?)"));
  CHECK_THAT(plans["resend/appended"], Contains("SEARCH destination USING INTEGER PRIMARY KEY (rowid=?)"));
  CHECK_THAT(plans["append/appended"], Contains("SEARCH message USING INTEGER PRIMARY KEY (rowid>?)"));
  for (const char* path : {"resend/appended", "append/appended"}) {
    CHECK_THAT(plans[path], !Contains("SCAN message") && !Contains("SCAN appended_message") &&
                                !Contains("datapoint") && !Contains("TEMP B-TREE"));
  }
}

// /healthz's "stalled" counts from the oldest pending message; counted from
// the oldest undelivered one, a message parked long ago made an idle sink
// look stalled. Read by the status/oldest seek above, once per state.
TEST_CASE("status's oldest pending message leaves an older parked one out", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "a", 3);
  JournalSql(journal->path()).exec("UPDATE message SET journaled_ms = 1000 + id");  // distinct times, in journal order
  const auto ids = journal_ids(claim_all(*journal, "cern"));
  journal->park_message("cern", ids[0], "too large");

  auto status = status_of(*journal, "cern", "/topic/a");
  CHECK(status.oldest_undelivered_ms == 1000 + ids[0]);
  CHECK(status.oldest_pending_ms == 1000 + ids[1]);
  journal->mark_delivered("cern", {ids[1], ids[2]});
  status = status_of(*journal, "cern", "/topic/a");
  CHECK(status.oldest_undelivered_ms == 1000 + ids[0]);
  CHECK_FALSE(status.oldest_pending_ms.has_value());
}
