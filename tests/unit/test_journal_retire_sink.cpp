// Proves retiring a sink (Journal::retire_sink, journal invariants 3 and 6)
// removes exactly what the journal kept for it, keeps the counters equal to
// the rows, is on record, stops new rows for it, and that a sink registered
// (again, or for the first time) receives new messages only.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using namespace gapless::test;

namespace {

// (sink, destination, state) whose delivery_count differs from its rows
// (invariant 7); 0 when every counter is exact.
int64_t counters_off(const std::string& path) {
  return JournalSql(path).integer(
      "SELECT (SELECT count(*) FROM delivery_count c WHERE c.count <> (SELECT count(*) FROM delivery d"
      "  WHERE d.sink_id = c.sink_id AND d.destination_id = c.destination_id AND d.state = c.state))"
      " + (SELECT count(*) FROM (SELECT sink_id, destination_id, state FROM delivery GROUP BY 1, 2, 3) g"
      "  WHERE NOT EXISTS (SELECT 1 FROM delivery_count c"
      "   WHERE c.sink_id = g.sink_id AND c.destination_id = g.destination_id AND c.state = g.state))");
}

int64_t rows_of_sink(const std::string& path, const std::string& sink, int state) {
  return JournalSql(path).integer("SELECT count(*) FROM delivery JOIN sink ON sink.id = delivery.sink_id "
                                  "WHERE sink.name = '" + sink + "' AND delivery.state = " + std::to_string(state));
}

bool status_lists(Journal& journal, const std::string& sink) {
  for (const auto& s : journal.status())
    if (s.sink == sink) return true;
  return false;
}

}  // namespace

TEST_CASE("retire_sink removes the sink's pending and parked rows and parked destinations, on record, others untouched",
          "[journal][retire]") {
  TempDir dir("retire");
  const std::string path = dir.file("journal.db");
  auto journal = Journal::open(path, {"cern", "old"});
  append_many(*journal, "a", 6);
  append_many(*journal, "r", 3, "/topic/refused");
  journal->mark_delivered("old", journal_ids(journal->claim("old", 2, {})));            // 2 delivered
  journal->park_message("old", journal->claim("old", 1, {}).at(0).id, "too large");   // 1 parked alone
  journal->park_destination("old", "/topic/refused", "not authorized", 0);            // 3 parked with it
  const auto cern_before = counts_from_rows(path);
  REQUIRE(rows_of_sink(path, "old", 0) == 3);

  const auto result = journal->retire_sink("old", "the OSG broker at old.example was shut down");
  CHECK(result.pending == 3);
  CHECK(result.parked == 4);
  CHECK(result.parked_destinations == 1);
  CHECK(rows_of_sink(path, "old", 0) == 0);
  CHECK(rows_of_sink(path, "old", 2) == 0);
  CHECK(rows_of_sink(path, "old", 1) == 2);  // delivered rows stay, pruned with their messages
  CHECK(journal->parked_destinations("old").empty());
  CHECK(counters_off(path) == 0);  // invariant 7
  CHECK_FALSE(status_lists(*journal, "old"));

  // cern: every row as it was.
  auto cern_after = counts_from_rows(path);
  for (auto it = cern_before.begin(); it != cern_before.end(); ++it)
    if (it->first.first == "cern") CHECK(cern_after.at(it->first) == it->second);

  const auto requests = journal->requests(10);
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].id == result.request_id);
  CHECK(requests[0].kind == "retire-sink");
  CHECK(requests[0].messages == 7);
  CHECK(requests[0].note == "the OSG broker at old.example was shut down");
  CHECK_FALSE(requests[0].created_by.empty());
  const auto arguments = nlohmann::json::parse(requests[0].arguments);
  CHECK(arguments["sink"] == "old");
  CHECK(arguments["pending"] == 3);
  CHECK(arguments["parked"] == 4);
}

TEST_CASE("a retired sink gets no rows for new messages; registered again, it receives new messages only",
          "[journal][retire]") {
  TempDir dir("retire-again");
  const std::string path = dir.file("journal.db");
  {
    auto journal = Journal::open(path, {"cern", "old"});
    append_many(*journal, "before", 2);
    journal->retire_sink("old", "moved away");
    append_many(*journal, "while-retired", 3);
    CHECK(rows_of_sink(path, "old", 0) == 0);
    CHECK(rows_of_sink(path, "cern", 0) == 5);
    CHECK(counters_off(path) == 0);
  }
  // The sink is in the configuration again: the daemon opens the journal with it.
  auto journal = Journal::open(path, {"cern", "old"});
  CHECK(claim_all(*journal, "old").empty());  // nothing older, nothing appended while retired
  append_many(*journal, "after", 2);
  CHECK(gapless_ids(claim_all(*journal, "old")) == std::vector<std::string>{"after-0", "after-1"});
  CHECK(status_lists(*journal, "old"));
  CHECK(counters_off(path) == 0);
}

TEST_CASE("a sink new to the journal receives new messages only (a resend gives it history)", "[journal][retire]") {
  TempDir dir("new-sink");
  const std::string path = dir.file("journal.db");
  Journal::open(path, {"cern"})->append({message("old-message")});
  auto journal = Journal::open(path, {"cern", "infn"});
  CHECK(claim_all(*journal, "infn").empty());
  journal->append({message("new-message")});
  CHECK(gapless_ids(claim_all(*journal, "infn")) == std::vector<std::string>{"new-message"});
  CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"old-message", "new-message"});
}

TEST_CASE("retire_sink refuses an unknown sink, a sink retired already and an empty reason, changing nothing",
          "[journal][retire]") {
  TempDir dir("retire-refused");
  const std::string path = dir.file("journal.db");
  auto journal = Journal::open(path, {"cern", "old"});
  append_many(*journal, "a", 2);
  CHECK_THROWS_WITH(journal->retire_sink("cerm", "typo"), Catch::Contains("no sink named \"cerm\""));
  CHECK_THROWS_WITH(journal->retire_sink("old", ""), Catch::Contains("a reason is required"));
  CHECK(rows_of_sink(path, "old", 0) == 2);
  const auto first = journal->retire_sink("old", "gone");
  CHECK_THROWS_WITH(journal->retire_sink("old", "again"),
                    Catch::Contains("retired already (request " + std::to_string(first.request_id) + ")"));
  CHECK(journal->requests(10).size() == 1);
}

TEST_CASE("pruning after a retirement takes the retired sink's delivered rows with their messages, leaving no orphan",
          "[journal][retire]") {
  TempDir dir("retire-prune");
  const std::string path = dir.file("journal.db");
  auto journal = Journal::open(path, {"cern", "old"});
  append_many(*journal, "a", 4);
  journal->mark_delivered("old", journal_ids(journal->claim("old", 2, {})));  // 2 delivered, 2 pending for old
  journal->retire_sink("old", "gone");
  journal->mark_delivered("cern", journal_ids(claim_all(*journal, "cern")));
  // Every message is now delivered to every sink that still owes it.
  journal->prune_delivered(INT64_MAX);
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 0);
  CHECK(count_rows(*journal, "SELECT count(*) FROM delivery") == 0);  // none left without its message
  CHECK(counters_off(path) == 0);
}
