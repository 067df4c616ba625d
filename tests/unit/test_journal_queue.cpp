// Proves the delivery rules: a batch is journaled whole, once per gapless-id, claimed and marked in order per sink.

#include <catch2/catch.hpp>
#include <string>
#include <unordered_set>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::journal::NewMessage;
using gapless::journal::Priority;
using namespace gapless::test;

TEST_CASE("claims bring live data first, then backfill, then resends, each in journal order", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  journal->append({message("b1", "/topic/a", Priority::backfill), message("l1"),
                   message("r1", "/topic/a", Priority::resend)});
  journal->append({message("l2", "/topic/b"), message("b2", "/topic/b", Priority::backfill)});

  CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"l1", "l2", "b1", "b2", "r1"});
  CHECK(gapless_ids(journal->claim("cern", 3, {})) == std::vector<std::string>{"l1", "l2", "b1"});
  CHECK(journal->claim("cern", 0, {}).empty());
}

TEST_CASE("a claimed message is the appended one: destination, headers in order, body bytes as they are",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  NewMessage m = message("id-1", "/topic/perfsonar.raw.throughput", Priority::backfill);
  m.headers = {{"z-last", "1"}, {"a-first", "2"}, {"z-last", "again"}, {"empty", ""}, {"utf8", "d\xc3\xa9j\xc3\xa0"}};
  m.body = std::string("\x00\x01\xff binary \n\r\x00", 14);
  journal->append({m});

  const auto claimed = claim_all(*journal, "cern");
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].gapless_id == "id-1");
  CHECK(claimed[0].destination == "/topic/perfsonar.raw.throughput");
  CHECK(claimed[0].headers == m.headers);
  CHECK(claimed[0].body == m.body);
  CHECK(claimed[0].priority == Priority::backfill);
  CHECK_FALSE(claimed[0].resend_request_id.has_value());
  CHECK(claimed[0].id > 0);
}

TEST_CASE("a gapless-id already journaled is not journaled again, and is counted as a duplicate", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  auto first = journal->append({message("a"), message("b")});
  CHECK(first.appended == 2);
  CHECK(first.duplicates == 0);

  journal->mark_delivered("cern", journal_ids(claim_all(*journal, "cern")));
  auto second = journal->append({message("b"), message("c"), message("c"), message("a", "/topic/other")});
  CHECK(second.appended == 1);
  CHECK(second.duplicates == 3);

  // The duplicates created no delivery rows: "b" stays delivered for cern.
  CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"c"});
  CHECK(gapless_ids(claim_all(*journal, "itb")) == std::vector<std::string>{"a", "b", "c"});
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 3);
  CHECK(status_of(*journal, "itb", "/topic/other").pending == 0);
}

TEST_CASE("claims skip the messages in flight, which stay pending on disk", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "m", 5);
  const auto all = journal_ids(claim_all(*journal, "cern"));
  REQUIRE(all.size() == 5);

  std::unordered_set<int64_t> in_flight;
  const auto first = journal->claim("cern", 2, in_flight);
  CHECK(journal_ids(first) == std::vector<int64_t>{all[0], all[1]});
  in_flight.insert(all[0]);
  in_flight.insert(all[1]);
  const auto second = journal->claim("cern", 2, in_flight);
  CHECK(journal_ids(second) == std::vector<int64_t>{all[2], all[3]});
  in_flight.insert(all[2]);
  in_flight.insert(all[3]);
  CHECK(journal_ids(journal->claim("cern", 10, in_flight)) == std::vector<int64_t>{all[4]});
  in_flight.insert(all[4]);
  CHECK(journal->claim("cern", 10, in_flight).empty());
  CHECK(status_of(*journal, "cern", "/topic/a").pending == 5);

  // A message in flight that got delivered meanwhile does not shorten a claim.
  journal->mark_delivered("cern", {all[0]});
  in_flight.erase(all[4]);
  CHECK(journal_ids(journal->claim("cern", 10, in_flight)) == std::vector<int64_t>{all[4]});
}

TEST_CASE("a claim stops once its messages reach the byte budget, in claim order, and always takes one",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "m", 6);  // each: a 12-byte body and 20 bytes of headers
  const auto all = journal_ids(claim_all(*journal, "cern"));
  REQUIRE(all.size() == 6);
  // 32 bytes each: the third reaches 96, the fourth crosses 100 and is the last.
  CHECK(journal_ids(journal->claim("cern", 10, {}, 96)) == std::vector<int64_t>{all[0], all[1], all[2]});
  CHECK(journal_ids(journal->claim("cern", 10, {}, 100)) == std::vector<int64_t>{all[0], all[1], all[2], all[3]});
  // A message larger than the whole budget still goes, alone: nothing waits for ever.
  CHECK(journal_ids(journal->claim("cern", 10, {}, 1)) == std::vector<int64_t>{all[0]});
  CHECK(journal_ids(journal->claim("cern", 10, {all[0]}, 1)) == std::vector<int64_t>{all[1]});
  CHECK(journal->claim("cern", 10, {}).size() == 6);  // no budget: only the count limits
}

TEST_CASE("mark_delivered settles messages for one sink only, once, and status counts them", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  append_many(*journal, "a", 4, "/topic/a");
  append_many(*journal, "b", 2, "/topic/b");
  const auto claimed = journal_ids(journal->claim("cern", 3, {}));

  journal->mark_delivered("cern", claimed);
  journal->mark_delivered("cern", claimed);  // receipts can be replayed: no change
  journal->mark_delivered("cern", {});

  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 3);
  CHECK(status_of(*journal, "cern", "/topic/a").pending == 1);
  CHECK(status_of(*journal, "cern", "/topic/b").pending == 2);
  CHECK(status_of(*journal, "itb", "/topic/a").pending == 4);
  CHECK(status_of(*journal, "itb", "/topic/a").delivered == 0);
  CHECK(claim_all(*journal, "cern").size() == 3);
  CHECK(claim_all(*journal, "itb").size() == 6);
  CHECK(count_rows(*journal, "SELECT count(*) FROM delivery WHERE state = 1 AND delivered_ms IS NOT NULL") == 3);
}

TEST_CASE("state survives closing and reopening; nothing stays in flight", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  std::vector<int64_t> ids;
  {
    auto journal = Journal::open(path, {"cern"});
    append_many(*journal, "a", 4, "/topic/a");
    append_many(*journal, "x", 2, "/topic/x");
    ids = journal_ids(journal->claim("cern", 3, {}));  // in flight when the process dies
    journal->mark_delivered("cern", {ids[0]});
    journal->park_destination("cern", "/topic/x", "not authorized", 7000);
  }
  auto journal = Journal::open(path, {"cern"});
  CHECK(journal_ids(journal->claim("cern", 2, {})) == std::vector<int64_t>{ids[1], ids[2]});
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 1);
  CHECK(status_of(*journal, "cern", "/topic/a").pending == 3);
  CHECK(status_of(*journal, "cern", "/topic/x").parked == 2);
  CHECK(journal->parked_destinations().at(0).next_retry_ms == 7000);
  CHECK(journal->append({message("a-0")}).duplicates == 1);
}

TEST_CASE("a sink registered later receives the messages appended from then on", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  append_many(*Journal::open(path, {"cern"}), "old", 2);
  auto journal = Journal::open(path, {"cern", "itb"});
  append_many(*journal, "new", 1);
  CHECK(claim_all(*journal, "cern").size() == 3);
  CHECK(gapless_ids(claim_all(*journal, "itb")) == std::vector<std::string>{"new-0"});
  // Left out of the configuration, a sink stays registered: nothing is silently dropped for it.
  append_many(*Journal::open(path, {"itb"}), "newer", 1);
  CHECK(claim_all(*journal, "cern").size() == 4);
}

TEST_CASE("a batch with an invalid message writes nothing and names the message", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  NewMessage no_id = message("");
  NewMessage no_destination = message("c", "");
  NewMessage bad_header = message("d");
  bad_header.headers = {{"name", "\xff\xfe not utf-8"}};

  CHECK_THROWS_WITH(journal->append({message("a"), no_id, message("b")}),
                    Contains("message 1 of the batch has no gapless-id") && Contains("nothing of this batch"));
  CHECK_THROWS_WITH(journal->append({message("a"), message("b"), no_destination}),
                    Contains("message 2") && Contains("no destination"));
  CHECK_THROWS_WITH(journal->append({bad_header}), Contains("message 0") && Contains("not valid UTF-8"));
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 0);
  CHECK(count_rows(*journal, "SELECT count(*) FROM destination") == 0);
  CHECK(journal->status().at(0).destinations.empty());
  CHECK(journal->append({message("a"), message("b")}).appended == 2);  // the ids were not taken
}

TEST_CASE("appending with no sink registered is refused: those messages would never be sent", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {});
  CHECK_THROWS_WITH(journal->append({message("a")}), Contains("no sink is registered"));
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 0);
}

TEST_CASE("an unknown sink is named in the error", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  CHECK_THROWS_WITH(journal->claim("nowhere", 10, {}), Contains("nowhere") && Contains(dir.file("j.db")));
  CHECK_THROWS_WITH(journal->mark_delivered("nowhere", {1}), Contains("nowhere"));
}
