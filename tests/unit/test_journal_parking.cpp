// Proves parking holds back only what it should (a destination or a message, one sink) until a probe, retry or discard.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using namespace gapless::test;

TEST_CASE("a parked destination holds back its messages for that sink only; other destinations flow",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  append_many(*journal, "x", 3, "/topic/x");
  append_many(*journal, "y", 2, "/topic/y");

  journal->park_destination("cern", "/topic/x", "User guest is not authorized to write to: topic://x", 5000);

  const auto x = status_of(*journal, "cern", "/topic/x");
  CHECK(x.pending == 0);
  CHECK(x.parked == 3);
  REQUIRE(x.parked_destination.has_value());
  CHECK(x.parked_destination->reason == "User guest is not authorized to write to: topic://x");
  CHECK(x.parked_destination->next_retry_ms == 5000);
  CHECK(x.parked_destination->attempts == 1);
  CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"y-0", "y-1"});
  CHECK(claim_all(*journal, "itb").size() == 5);  // the other sink is not concerned

  SECTION("later appends arrive parked, with the destination's reason") {
    append_many(*journal, "x-late", 2, "/topic/x");
    CHECK(status_of(*journal, "cern", "/topic/x").parked == 5);
    CHECK(status_of(*journal, "itb", "/topic/x").pending == 5);
    CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"y-0", "y-1"});
    CHECK(count_rows(*journal, "SELECT count(*) FROM delivery WHERE state = 2 AND reason LIKE '%not authorized%'") ==
          5);
    CHECK(journal->parked_messages("cern", 100).empty());  // parked with their destination, not on their own
  }

  SECTION("parking it again counts one more attempt and moves the next retry") {
    journal->park_destination("cern", "/topic/x", "still not authorized", 9000);
    const auto parked = journal->parked_destinations("cern");
    REQUIRE(parked.size() == 1);
    CHECK(parked[0].sink == "cern");
    CHECK(parked[0].destination == "/topic/x");
    CHECK(parked[0].attempts == 2);
    CHECK(parked[0].next_retry_ms == 9000);
    CHECK(parked[0].reason == "still not authorized");
    CHECK(parked[0].parked_at_ms == x.parked_destination->parked_at_ms);
    CHECK(journal->parked_destinations("itb").empty());
    CHECK(journal->parked_destinations().size() == 1);
  }
}

TEST_CASE("requeue_probe releases the oldest message parked with its destination, and only that one",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "x", 4, "/topic/x");
  const auto ids = journal_ids(claim_all(*journal, "cern"));
  journal->park_message("cern", ids[0], "message too large");  // parked on its own: never a probe
  journal->park_destination("cern", "/topic/x", "not authorized", 1000);

  const auto probe = journal->requeue_probe("cern", "/topic/x", 2000);
  REQUIRE(probe.has_value());
  CHECK(*probe == ids[1]);
  CHECK(journal_ids(claim_all(*journal, "cern")) == std::vector<int64_t>{ids[1]});
  const auto x = status_of(*journal, "cern", "/topic/x");
  CHECK(x.pending == 1);
  CHECK(x.parked == 3);
  REQUIRE(x.parked_destination.has_value());  // the destination stays parked
  CHECK(x.parked_destination->next_retry_ms == 2000);

  SECTION("a refused probe is parked again with one more attempt") {
    journal->park_destination("cern", "/topic/x", "not authorized", 3000);
    CHECK(claim_all(*journal, "cern").empty());
    CHECK(journal->parked_destinations("cern").at(0).attempts == 2);
    CHECK(journal->requeue_probe("cern", "/topic/x", 4000) == ids[1]);
  }

  SECTION("a delivered probe lets the sender release the destination") {
    journal->mark_delivered("cern", {*probe});
    CHECK(journal->retry_parked("cern", "/topic/x", false) == 3);  // the too-large one is retried too
    CHECK(journal->parked_destinations().empty());
  }

  SECTION("nothing to probe") {
    CHECK_FALSE(journal->requeue_probe("cern", "/topic/never-seen", 5000).has_value());
    append_many(*journal, "y", 1, "/topic/y");
    journal->park_destination("cern", "/topic/y", "not authorized", 1000);
    CHECK(journal->requeue_probe("cern", "/topic/y", 5000).has_value());
    CHECK_FALSE(journal->requeue_probe("cern", "/topic/y", 5000).has_value());  // its only message is out
  }
}

TEST_CASE("retry_parked releases parked messages by sink and destination, and records the operator's request",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  append_many(*journal, "x", 3, "/topic/x");
  append_many(*journal, "y", 2, "/topic/y");
  journal->park_destination("cern", "/topic/x", "not authorized", 1000);
  journal->park_destination("itb", "/topic/x", "not authorized", 1000);
  const auto y = journal_ids(claim_all(*journal, "cern"));
  REQUIRE(y.size() == 2);
  journal->park_message("cern", y[0], "too large");  // cern parked: x-0..2, y-0

  const auto requests = [&] { return count_rows(*journal, "SELECT count(*) FROM request"); };

  SECTION("everything") {
    CHECK(journal->retry_parked(std::nullopt, std::nullopt, true) == 7);
    CHECK(journal->parked_destinations().empty());
    CHECK(claim_all(*journal, "cern").size() == 5);
    CHECK(claim_all(*journal, "itb").size() == 5);
    JournalSql sql(journal->path());
    SQLite::Statement request(sql.database(),
                              "SELECT kind, created_by, arguments, state, messages, created_ms FROM request");
    REQUIRE(request.executeStep());
    CHECK(request.getColumn(0).getString() == "retry-parked");
    CHECK_THAT(request.getColumn(1).getString(), Contains("@"));
    CHECK(request.getColumn(2).getString() == R"({"destination":null,"sink":null})");
    CHECK(request.getColumn(3).getString() == "done");
    CHECK(request.getColumn(4).getInt64() == 7);
    CHECK(request.getColumn(5).getInt64() > 0);
    CHECK_FALSE(request.executeStep());
  }

  SECTION("one sink") {
    CHECK(journal->retry_parked("cern", std::nullopt, true) == 4);
    CHECK(journal->parked_destinations("cern").empty());
    CHECK(journal->parked_destinations("itb").size() == 1);
    CHECK(status_of(*journal, "itb", "/topic/x").parked == 3);
    CHECK(claim_all(*journal, "cern").size() == 5);
    CHECK(JournalSql(journal->path()).text("SELECT arguments FROM request") ==
          R"({"destination":null,"sink":"cern"})");
  }

  SECTION("one destination, every sink") {
    CHECK(journal->retry_parked(std::nullopt, "/topic/x", true) == 6);
    CHECK(journal->parked_destinations().empty());
    CHECK(status_of(*journal, "cern", "/topic/y").parked == 1);  // y-0 stays parked on its own
    CHECK(status_of(*journal, "itb", "/topic/x").pending == 3);
  }

  SECTION("one sink and destination, not recorded (a successful probe)") {
    CHECK(journal->retry_parked("cern", "/topic/y", false) == 1);
    CHECK(journal->parked_messages("cern", 10).empty());
    CHECK(journal->parked_destinations().size() == 2);
    CHECK(requests() == 0);
  }

  SECTION("unknown names are refused, not taken for 'nothing parked'") {
    CHECK_THROWS_WITH(journal->retry_parked("cerm", std::nullopt, true), Contains("cerm"));
    CHECK_THROWS_WITH(journal->retry_parked(std::nullopt, "/topic/typo", true), Contains("/topic/typo"));
    CHECK(requests() == 0);
    CHECK(journal->parked_destinations().size() == 2);
  }
}

TEST_CASE("discard removes only parked messages, only of its sink, and records who, what and why", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "itb"});
  append_many(*journal, "x", 3, "/topic/x");
  append_many(*journal, "y", 3, "/topic/y");
  journal->park_destination("cern", "/topic/x", "not authorized", 1000);
  journal->park_destination("itb", "/topic/x", "not authorized", 1000);
  const auto y = journal_ids(claim_all(*journal, "cern"));
  REQUIRE(y.size() == 3);
  journal->park_message("cern", y[0], "a header line of 20485 bytes exceeds max_header_line 10240");
  journal->mark_delivered("cern", {y[1]});  // cern: x-0..2 parked, y-0 parked, y-1 delivered, y-2 pending

  SECTION("one message, by id: the others of its sink stay as they were") {
    const auto result = journal->discard_parked("cern", std::nullopt, y[0], "a poison message, checked by hand");
    CHECK(result.discarded == 1);
    CHECK(journal->parked_messages("cern", 10).empty());
    CHECK(status_of(*journal, "cern", "/topic/y").parked == 0);
    CHECK(status_of(*journal, "cern", "/topic/y").pending == 1);
    CHECK(status_of(*journal, "cern", "/topic/y").delivered == 1);
    CHECK(status_of(*journal, "cern", "/topic/x").parked == 3);
    JournalSql sql(journal->path());
    SQLite::Statement request(sql.database(),
                              "SELECT kind, created_by, arguments, state, messages, note FROM request");
    REQUIRE(request.executeStep());
    CHECK(request.getColumn(0).getString() == "discard");
    CHECK_THAT(request.getColumn(1).getString(), Contains("@"));
    CHECK(request.getColumn(2).getString() ==
          R"({"destination":null,"message_id":)" + std::to_string(y[0]) +
              R"(,"reason":"a poison message, checked by hand","sink":"cern"})");
    CHECK(request.getColumn(3).getString() == "done");
    CHECK(request.getColumn(4).getInt64() == 1);
    CHECK(request.getColumn(5).getString() == "a poison message, checked by hand");
  }

  SECTION("one destination: its parked rows go, the destination stays parked, other sinks keep theirs") {
    CHECK(journal->discard_parked("cern", "/topic/x", std::nullopt, "topic retired").discarded == 3);
    CHECK(status_of(*journal, "cern", "/topic/x").parked == 0);
    CHECK(status_of(*journal, "itb", "/topic/x").parked == 3);
    CHECK(journal->parked_destinations("cern").size() == 1);
    CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 6);  // the messages stay, for other sinks
  }

  SECTION("a pending or delivered message is never discarded, and nothing is recorded") {
    CHECK(journal->discard_parked("cern", std::nullopt, y[2], "wrong id").discarded == 0);
    CHECK(journal->discard_parked("cern", std::nullopt, y[1], "wrong id").discarded == 0);
    CHECK(count_rows(*journal, "SELECT count(*) FROM request") == 0);
    CHECK(status_of(*journal, "cern", "/topic/y").pending == 1);
    CHECK(status_of(*journal, "cern", "/topic/y").delivered == 1);
  }

  SECTION("a reason is required, and unknown names are refused") {
    CHECK_THROWS_WITH(journal->discard_parked("cern", std::nullopt, std::nullopt, ""), Contains("reason"));
    CHECK_THROWS_WITH(journal->discard_parked("cerm", std::nullopt, std::nullopt, "typo"), Contains("cerm"));
    CHECK_THROWS_WITH(journal->discard_parked("cern", "/topic/typo", std::nullopt, "typo"), Contains("/topic/typo"));
    CHECK(status_of(*journal, "cern", "/topic/x").parked == 3);
  }
}

TEST_CASE("park_message parks one message with its reason; the rest of its destination flows", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "m", 3);
  const auto ids = journal_ids(claim_all(*journal, "cern"));

  journal->park_message("cern", ids[1], "message larger than the sink's maximum (2 MB)");
  const auto parked = journal->parked_messages("cern", 10);
  REQUIRE(parked.size() == 1);
  CHECK(parked[0].id == ids[1]);
  CHECK(parked[0].gapless_id == "m-1");
  CHECK(parked[0].destination == "/topic/a");
  CHECK(parked[0].reason == "message larger than the sink's maximum (2 MB)");
  CHECK(parked[0].attempts == 1);
  CHECK(parked[0].updated_ms > 0);
  CHECK(journal_ids(claim_all(*journal, "cern")) == std::vector<int64_t>{ids[0], ids[2]});
  CHECK(status_of(*journal, "cern", "/topic/a").parked == 1);
  CHECK(journal->parked_destinations().empty());

  journal->mark_delivered("cern", {ids[0]});
  journal->park_message("cern", ids[0], "late refusal");  // a delivered message stays delivered
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 1);
  CHECK(journal->parked_messages("cern", 0).empty());
}
