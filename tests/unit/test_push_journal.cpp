// Proves Journal::record_pushed (src/journal/pushed.cpp): a group of pushed
// runs is one transaction; a run sent twice is journaled once; a run's own
// message is found by a resend window at the run's start (invariant 15)
// while its series messages are not appended ones; a pushed point leaves the
// series' cursor and coverage alone (a later poll or backfill still reads
// there) but records the digest a backfill compares against; and a point a
// backfill journaled first is not journaled again under another gapless-id.
#include <catch2/catch.hpp>

#include "../support/journal_sql.hpp"
#include "../support/temp_dir.hpp"
#include "journal/journal.hpp"

using namespace gapless::journal;

namespace {

constexpr int64_t kStart = 1568127335;  // 2019-09-10T14:55:35Z
const std::string kDigest = "0123456789abcdef0123456789abcdef";

SeriesKey key() {
  return {"https://ps1.example.net/esmond/perfsonar/archive/", "checksum1", "throughput", "", 0};
}

PushedRun run(const std::string& id, const std::string& digest = kDigest) {
  PushedRun pushed;
  NewMessage message;
  message.gapless_id = "run-" + id;
  message.destination = "/pscheduler/run/throughput";
  message.headers = {{"content-type", "application/json"}};
  message.body = "{\"id\":\"" + id + "\"}";
  message.window_ts = kStart;
  pushed.appended.push_back(message);
  PushedSeries series;
  series.key = key();
  series.metadata = "{\"input-source\":\"ps1\"}";
  NewMessage osg;
  osg.gapless_id = "osg-" + id + "-" + digest;
  osg.destination = "/topic/perfsonar.raw.throughput";
  osg.body = "{\"datapoints\":{}}";
  series.messages.push_back(osg);
  series.datapoints.push_back({kStart, digest, 0});
  pushed.series.push_back(series);
  return pushed;
}

struct Fixture {
  gapless::test::TempDir dir{"push-journal"};
  std::unique_ptr<Journal> journal = Journal::open(dir.file("journal.db"), {"central"});
  int64_t messages() { return gapless::test::JournalSql(dir.file("journal.db")).integer("SELECT count(*) FROM message"); }
};

}  // namespace

TEST_CASE("a run pushed twice is journaled once, its series message too", "[journal][push]") {
  Fixture f;
  const auto first = f.journal->record_pushed({run("a44e")});
  REQUIRE(first.size() == 1);
  CHECK(first[0].appended.appended == 1);
  CHECK(first[0].series.appended == 1);
  const auto again = f.journal->record_pushed({run("a44e")});
  CHECK(again[0].appended.appended == 0);
  CHECK(again[0].appended.duplicates == 1);
  CHECK(again[0].series.appended == 0);
  CHECK(f.messages() == 2);
}

TEST_CASE("concurrent runs committed as one group each get their own result", "[journal][push]") {
  Fixture f;
  f.journal->record_pushed({run("b")});
  const auto results = f.journal->record_pushed({run("a", "11111111111111111111111111111111"), run("b"),
                                                 run("c", "22222222222222222222222222222222")});
  REQUIRE(results.size() == 3);
  CHECK(results[0].appended.appended == 1);
  CHECK(results[1].appended.duplicates == 1);
  CHECK(results[2].appended.appended == 1);
  CHECK(f.messages() == 6);
}

TEST_CASE("a pushed run is found by a resend window at its start; its series messages are not appended ones",
          "[journal][push]") {
  Fixture f;
  f.journal->record_pushed({run("a44e")});
  const std::vector<int64_t> found = f.journal->appended_messages({kStart, kStart + 1, {}});
  REQUIRE(found.size() == 1);
  CHECK(gapless::test::JournalSql(f.dir.file("journal.db"))
            .text("SELECT gapless_id FROM message WHERE id = " + std::to_string(found[0])) == "run-a44e");
  CHECK(f.journal->appended_messages({kStart + 1, kStart + 3600, {}}).empty());
}

TEST_CASE("a pushed point moves no cursor and covers nothing, but records the digest a backfill compares",
          "[journal][push]") {
  Fixture f;
  f.journal->record_pushed({run("a44e")});
  const std::optional<Series> series = f.journal->find_series(key());
  REQUIRE(series);
  CHECK_FALSE(series->cursor_ts);
  CHECK(f.journal->coverage(series->id, 0, kStart + 3600).empty());
  CHECK(f.journal->datapoint_digests(series->id, kStart, kStart) == std::map<int64_t, std::string>{{kStart, kDigest}});
}

TEST_CASE("a point a backfill journaled first is not journaled again by its push", "[journal][push]") {
  Fixture f;
  const Series series = f.journal->register_series(key(), "{\"from\":\"elmond\"}");
  Collected read;
  read.series_id = series.id;
  NewMessage backfilled;
  backfilled.gapless_id = "backfilled-slice";
  backfilled.destination = "/topic/perfsonar.raw.throughput";
  backfilled.body = "{}";
  read.messages.push_back(backfilled);
  read.datapoints.push_back({kStart, kDigest, 0});
  f.journal->record_collected(read);

  const auto pushed = f.journal->record_pushed({run("a44e")});
  CHECK(pushed[0].appended.appended == 1);  // the run itself, for an http sink
  CHECK(pushed[0].series.appended == 0);
  CHECK(pushed[0].series.duplicates == 1);
  CHECK(f.messages() == 2);
  CHECK(f.journal->find_series(key())->metadata == "{\"from\":\"elmond\"}");  // the archive's metadata stays

  // A corrected value is new.
  const auto corrected = f.journal->record_pushed({run("a44e", "fedcba9876543210fedcba9876543210")});
  CHECK(corrected[0].series.appended == 1);
}

TEST_CASE("a group with a message the journal refuses journals none of its runs", "[journal][push]") {
  Fixture f;
  PushedRun bad = run("b", "33333333333333333333333333333333");
  bad.series[0].messages[0].gapless_id.clear();
  CHECK_THROWS(f.journal->record_pushed({run("a"), bad}));
  CHECK(f.messages() == 0);
}

// record_pushed keeps the ids of the series it met for its transaction only
// (Journal::Cache::pushed_series): kept past a rollback, the series inserted
// by the refused group would be "found" by the next one and never registered.
TEST_CASE("a series first seen by a refused group is registered by the next group", "[journal][push]") {
  Fixture f;
  PushedRun bad = run("b", "33333333333333333333333333333333");
  bad.series[0].messages[0].gapless_id.clear();
  CHECK_THROWS(f.journal->record_pushed({bad}));
  CHECK_FALSE(f.journal->find_series(key()).has_value());

  const auto results = f.journal->record_pushed({run("c")});
  CHECK(results[0].series.appended == 1);
  REQUIRE(f.journal->find_series(key()).has_value());
  CHECK(f.journal->datapoint_digests(f.journal->find_series(key())->id, kStart, kStart).at(kStart) == kDigest);
}
