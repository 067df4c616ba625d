// The collector's side of the journal (src/journal/series.cpp) as a daemon
// beside a backfill notices it: a poll that brings nothing new takes no write
// transaction (no write lock, no fsync), and one that does bring something
// still journals all of it.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <string>

#include "../support/collected_read.hpp"
#include "../support/temp_dir.hpp"
#include "journal/journal.hpp"

using gapless::journal::Collected;
using gapless::journal::Journal;
using gapless::journal::Series;
using gapless::journal::SeriesKey;

namespace {

const std::string kArchive = "https://ps.example.org/esmond/perfsonar/archive/";

struct Fixture {
  gapless::test::TempDir dir{"journal-series"};
  std::unique_ptr<Journal> journal = Journal::open(dir.file("journal.db"), {"local"});
  // Another process's view: PRAGMA data_version changes when any other
  // connection commits a write.
  SQLite::Database observer{dir.file("journal.db"), SQLite::OPEN_READONLY};
  Series series = journal->register_series(SeriesKey{kArchive, "key1", "throughput", "", 0}, "{}");
  int messages = 0;

  int64_t data_version() { return observer.execAndGet("PRAGMA data_version").getInt64(); }

  // A read over [from, to) that served `points` (all new) and leaves the cursor at `cursor`.
  Collected read(int64_t from, int64_t to, const std::vector<int64_t>& points, std::optional<int64_t> cursor) {
    Collected collected = gapless::test::collected_read(series.id, "message-" + std::to_string(++messages),
                                                        "/topic/perfsonar.raw.throughput", points, from, to);
    collected.cursor_ts = cursor;
    return collected;
  }

  std::optional<int64_t> cursor() {
    for (const Series& known : journal->series_of_archive(kArchive))
      if (known.id == series.id) return known.cursor_ts;
    FAIL("series " << series.id << " is gone");
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("a poll that brings nothing new writes nothing to the journal", "[journal][series]") {
  Fixture f;
  f.journal->record_collected(f.read(1000, 1200, {1000, 1100}, 1101));
  const int64_t before = f.data_version();

  SECTION("an empty read at the cursor, with an open end") {
    f.journal->record_collected(f.read(1101, 1101, {}, 1101));
  }
  SECTION("a re-read of a covered range with a cursor behind the current one") {
    f.journal->record_collected(f.read(1000, 1150, {}, 1050));
  }
  SECTION("a backfill read of a covered range, which never moves the cursor") {
    f.journal->record_collected(f.read(1050, 1200, {}, std::nullopt));
  }
  CHECK(f.data_version() == before);
  CHECK(f.cursor() == 1101);
  CHECK(f.journal->coverage(f.series.id, 0, 10'000).size() == 1);
}

TEST_CASE("a poll with nothing new still records a moved cursor or newly read range", "[journal][series]") {
  Fixture f;
  f.journal->record_collected(f.read(1000, 1200, {1000, 1100}, 1101));
  const int64_t before = f.data_version();

  SECTION("the cursor moves") {
    f.journal->record_collected(f.read(1101, 1101, {}, 1300));
    CHECK(f.cursor() == 1300);
  }
  SECTION("the range read reaches past the coverage") {
    f.journal->record_collected(f.read(1150, 1400, {}, std::nullopt));
    const auto coverage = f.journal->coverage(f.series.id, 0, 10'000);
    REQUIRE(coverage.size() == 1);
    CHECK(coverage.front().ts_from == 1000);
    CHECK(coverage.front().ts_to == 1400);
  }
  SECTION("the range read is apart from the coverage") {
    f.journal->record_collected(f.read(5000, 6000, {}, std::nullopt));
    CHECK(f.journal->coverage(f.series.id, 0, 10'000).size() == 2);
  }
  CHECK(f.data_version() != before);
}

TEST_CASE("a read with nothing new of a series the journal does not know is still refused", "[journal][series]") {
  Fixture f;
  Collected unknown = f.read(0, 0, {}, 50);
  unknown.series_id = f.series.id + 1000;
  CHECK_THROWS_WITH(f.journal->record_collected(unknown), Catch::Matchers::Contains("no series has id"));
}
