// Proves journal invariant 3's accept rule: a message gets a delivery row
// exactly for the registered sinks whose accept list takes its destination,
// a batch with a message no sink takes is refused whole, and a changed list
// applies to new messages while rows already journaled stay.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using gapless::journal::JournalError;
using gapless::journal::SinkRegistration;
using namespace gapless::test;

namespace {

const std::vector<std::string> kTopics = {"/topic/>"};
const std::vector<std::string> kRuns = {"/pscheduler/>"};

std::vector<std::string> sorted_ids(Journal& journal, const std::string& sink) {
  std::vector<std::string> ids = gapless_ids(claim_all(journal, sink));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::optional<std::vector<std::string>> accept_of(Journal& journal, const std::string& sink) {
  for (const auto& status : journal.status())
    if (status.sink == sink) return status.accept;
  FAIL("sink " << sink << " not in status");
  return std::nullopt;
}

}  // namespace

TEST_CASE("append gives a message rows only for the sinks whose accept list takes its destination",
          "[journal][accept]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {{"broker", kTopics}, {"logstash", kRuns}});
  const auto result = journal->append({message("osg-1", "/topic/perfsonar.raw.throughput"),
                                       message("run-1", "/pscheduler/run/throughput"),
                                       message("osg-2", "/topic/perfsonar.raw.packet-loss-rate")});
  CHECK(result.appended == 3);
  CHECK(sorted_ids(*journal, "broker") == std::vector<std::string>{"osg-1", "osg-2"});
  CHECK(sorted_ids(*journal, "logstash") == std::vector<std::string>{"run-1"});
  CHECK(counts_from_status(*journal) == counts_from_rows(*journal));  // invariant 7 follows
  CHECK(count_rows(*journal, "SELECT count(*) FROM delivery") == 3);

  // A batch all of whose destinations every sink takes (the fast path) is unchanged.
  auto both = Journal::open(dir.file("both.db"), {{"a", kTopics}, {"b", {"/topic/perfsonar.>"}}});
  append_many(*both, "m", 5, "/topic/perfsonar.raw.throughput");
  CHECK(claim_all(*both, "a").size() == 5);
  CHECK(claim_all(*both, "b").size() == 5);
}

TEST_CASE("a batch with a message no registered sink takes is refused whole, naming the destination",
          "[journal][accept]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {{"broker", kTopics}, {"logstash", kRuns}});
  try {
    journal->append({message("osg-1", "/topic/perfsonar.raw.throughput"), message("odd", "/elsewhere/x")});
    FAIL("journaled a message for nobody");
  } catch (const JournalError& e) {
    CHECK_THAT(e.what(), Catch::Contains("no registered sink takes destination \"/elsewhere/x\""));
    CHECK_THAT(e.what(), Catch::Contains("sink broker accepts [/topic/>]"));
    CHECK_THAT(e.what(), Catch::Contains("nothing of this batch was written"));
  }
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 0);

  // The collector's transaction too: nothing of the read, no coverage.
  const auto series = journal->register_series({kArchiveUrl, "k", "throughput", "", 0}, "{}");
  CHECK_THROWS_WITH(journal->record_collected(collected_read(series.id, {message("c-1", "/elsewhere/x")}, {100})),
                    Catch::Contains("/elsewhere/x"));
  CHECK(journal->coverage(series.id, 0, 1000).empty());
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 0);
}

TEST_CASE("record_collected gives a collected message rows only for the sinks that take it", "[journal][accept]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {{"broker", kTopics}, {"logstash", kRuns}});
  const auto series = journal->register_series({kArchiveUrl, "k", "throughput", "", 0}, "{}");
  journal->record_collected(collected_read(series.id, {message("c-1", "/topic/perfsonar.raw.throughput")}, {100}));
  CHECK(sorted_ids(*journal, "broker") == std::vector<std::string>{"c-1"});
  CHECK(claim_all(*journal, "logstash").empty());
}

TEST_CASE("a changed accept list applies to new messages; rows journaled before stay as they are",
          "[journal][accept]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  {
    auto journal = Journal::open(path, {{"a", kTopics}, {"b", kTopics}});
    journal->append({message("before", "/topic/x")});
  }
  auto journal = Journal::open(path, {{"a", {"/queue/>"}}, {"b", kTopics}});  // as a reload registers it
  CHECK(accept_of(*journal, "a") == std::vector<std::string>{"/queue/>"});
  journal->append({message("after", "/topic/x"), message("queued", "/queue/q")});
  CHECK(sorted_ids(*journal, "a") == std::vector<std::string>{"before", "queued"});  // "before" kept its row
  CHECK(sorted_ids(*journal, "b") == std::vector<std::string>{"after", "before"});

  // An opener that names the sink alone (no list) keeps the registered list.
  auto plain = Journal::open(path, {"a"});
  CHECK(accept_of(*plain, "a") == std::vector<std::string>{"/queue/>"});
}

TEST_CASE("a sink registered without a list takes every destination until it is registered with one",
          "[journal][accept]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  auto journal = Journal::open(path, {"old"});
  CHECK_FALSE(accept_of(*journal, "old").has_value());
  journal->append({message("anything", "/anywhere/at/all")});
  CHECK(claim_all(*journal, "old").size() == 1);
  auto registered = Journal::open(path, {{"old", kTopics}});
  CHECK_THROWS_WITH(registered->append({message("now-refused", "/anywhere/at/all")}),
                    Catch::Contains("no registered sink takes destination \"/anywhere/at/all\""));
}

TEST_CASE("registering a sink with an empty or malformed accept list is refused naming the sink", "[journal][accept]") {
  TempDir dir;
  CHECK_THROWS_WITH(Journal::open(dir.file("j.db"), {{"a", std::vector<std::string>{}}}),
                    Catch::Contains("sink a: accept is empty"));
  CHECK_THROWS_WITH(Journal::open(dir.file("j.db"), {{"a", {"topic"}}}),
                    Catch::Contains("sink a: accept \"topic\" must start with /"));
}
