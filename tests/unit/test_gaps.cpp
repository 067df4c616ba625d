// The gap report as an operator relies on it: a hole the journal never read
// is reported where it is, a hole the archive was read over is not, the
// cadence comes from the metadata before the data, data past the archive's
// retention is marked unrecoverable, data not yet due is not a gap, and the
// picture shows every series. The rule itself is in src/replay/gaps.hpp.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "../support/collected_read.hpp"
#include "../support/journal_fixtures.hpp"
#include "../support/journal_sql.hpp"
#include "../support/simulated_clock.hpp"
#include "../support/temp_dir.hpp"
#include "core/error.hpp"
#include "daemon/pruner.hpp"
#include "journal/journal.hpp"
#include "core/timestamp.hpp"
#include "replay/gaps.hpp"

using gapless::journal::Collected;
using gapless::journal::Journal;
using gapless::journal::Series;
using gapless::journal::SeriesKey;
using gapless::replay::find_gaps;
using gapless::format_timestamp;
using gapless::replay::Gap;
using gapless::replay::SeriesGaps;

namespace {

const std::string kArchive = "https://ps.example.org/esmond/perfsonar/archive/";
constexpr int64_t kT0 = 1699999200;  // 2023-11-14T22:00:00Z, on the hour
constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

struct Fixture {
  gapless::test::TempDir dir{"gaps"};
  std::unique_ptr<Journal> journal = Journal::open(dir.file("journal.db"), {"local"});
  int batches = 0;

  Series series(const std::string& key, const std::string& event_type, const std::string& metadata) {
    return journal->register_series(SeriesKey{kArchive, key, event_type, "", 0}, metadata);
  }

  // One read of the archive over [read_from, read_to) that served `points`.
  void record(const Series& series, const std::vector<int64_t>& points, int64_t read_from, int64_t read_to) {
    journal->record_collected(gapless::test::collected_read(series.id, "batch-" + std::to_string(++batches),
                                                            "/topic/perfsonar.raw." + series.key.event_type, points,
                                                            read_from, read_to));
  }

  SeriesGaps only(int64_t from, int64_t to, int64_t now, double multiple = 3.0) {
    const auto all = find_gaps(*journal, kArchive, from, to, now, {multiple});
    REQUIRE(all.size() == 1);
    return all.front();
  }
};

// Every `step` seconds over [from, to), except in [hole_from, hole_to).
std::vector<int64_t> every(int64_t step, int64_t from, int64_t to, int64_t hole_from = 0, int64_t hole_to = 0) {
  std::vector<int64_t> points;
  for (int64_t ts = from; ts < to; ts += step)
    if (ts < hole_from || ts >= hole_to) points.push_back(ts);
  return points;
}

std::string with_interval(const std::string& seconds) {
  return R"({"input-source": "host1.example.org", "input-destination": "host2.example.org", "time-interval": ")" +
         seconds + R"("})";
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("an uncovered two-hour hole in 1-minute data is exactly one gap", "[gaps]") {
  Fixture f;
  const Series s = f.series("aaaa1111", "packet-loss-rate", with_interval("60"));
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  // The collector read up to the hole, was down, and read again after it.
  f.record(s, every(60, kT0, hole_from), kT0, hole_from);
  f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);

  const SeriesGaps result = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
  CHECK(result.cadence == 60);
  CHECK(result.cadence_source == "time-interval");
  CHECK(result.datapoints == static_cast<int64_t>(every(60, kT0, kT0 + kDay, hole_from, hole_to).size()));
  REQUIRE(result.gaps.size() == 1);
  const Gap& gap = result.gaps.front();
  CHECK(gap.from >= hole_from - 60);
  CHECK(gap.from <= hole_from);
  CHECK(gap.to >= hole_to);
  CHECK(gap.to <= hole_to + 60);
  CHECK_FALSE(gap.unrecoverable);

  const std::string table = gapless::replay::gaps_table({result});
  CHECK(table.find("aaaa1111/packet-loss-rate") != std::string::npos);
  CHECK(table.find(format_timestamp(gap.from)) != std::string::npos);
  CHECK(table.find(format_timestamp(gap.to)) != std::string::npos);
  CHECK(table.find("UNRECOVERABLE") == std::string::npos);
  CHECK(table.find("no gaps") == std::string::npos);
}

TEST_CASE("a hole the archive was read over is no gap, nor does pruning make one", "[gaps]") {
  Fixture f;
  const Series s = f.series("aaaa2222", "packet-loss-rate", with_interval("60"));
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  f.record(s, every(60, kT0, hole_from), kT0, hole_from);
  // The archive had nothing there (the test was not running): read, recorded.
  f.record(s, {}, hole_from, hole_to);
  f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);

  CHECK(f.only(kT0, kT0 + kDay, kT0 + 2 * kDay).gaps.empty());

  // Pruning deletes delivered messages; datapoint and coverage rows stay.
  gapless::test::JournalSql sql(f.journal->path());
  sql.exec("DELETE FROM delivery");
  sql.exec("DELETE FROM message");
  const SeriesGaps pruned = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
  CHECK(pruned.gaps.empty());
  CHECK(pruned.datapoints > 0);
  CHECK(gapless::replay::gaps_table({pruned}).find("no gaps in 1 series") != std::string::npos);
}

TEST_CASE("part of a hole read over leaves only the unread part as a gap", "[gaps]") {
  Fixture f;
  const Series s = f.series("aaaa3333", "throughput", with_interval("60"));
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  f.record(s, every(60, kT0, hole_from), kT0, hole_from);
  f.record(s, {}, hole_from, hole_from + kHour);  // a first hour read, empty
  f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);

  const SeriesGaps result = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
  REQUIRE(result.gaps.size() == 1);
  CHECK(result.gaps[0].from == hole_from + kHour);
  CHECK(result.gaps[0].to == hole_to);
}

TEST_CASE("an unread sliver shorter than the tolerance is no gap", "[gaps]") {
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  // Read over all of the hole but its last `unread` seconds; tolerance 3 x 60 s.
  const auto unread_sliver = [&](int64_t unread) {
    Fixture f;
    const Series s = f.series("aaaa4444", "throughput", with_interval("60"));
    f.record(s, every(60, kT0, hole_from), kT0, hole_from);
    f.record(s, {}, hole_from, hole_to - unread);
    f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);
    return f.only(kT0, kT0 + kDay, kT0 + 2 * kDay).gaps;
  };
  CHECK(unread_sliver(100).empty());
  const std::vector<Gap> reported = unread_sliver(200);
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].from == hole_to - 200);
  CHECK(reported[0].to == hole_to);
}

TEST_CASE("cadence comes from time-interval, else from the median interval", "[gaps]") {
  // 5-minute data with an unread 40-minute hole.
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = hole_from + 40 * 60;
  const auto points = every(300, kT0, kT0 + kDay, hole_from, hole_to);

  SECTION("median") {
    Fixture f;
    const Series s = f.series("bbbb1111", "throughput", R"({"input-source": "h1"})");
    f.record(s, points, kT0, kT0 + 1);  // coverage of the first second only
    const SeriesGaps result = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
    CHECK(result.cadence == 300);
    CHECK(result.cadence_source == "median");
    REQUIRE(result.gaps.size() == 1);  // 40 min > 3 x 5 min
    CHECK(result.gaps[0].from == hole_from - 300 + 1);
    CHECK(result.gaps[0].to == hole_to);
  }
  SECTION("time-interval wins over the data") {
    Fixture f;
    const Series s = f.series("bbbb2222", "throughput", with_interval("1200"));
    f.record(s, points, kT0, kT0 + 1);
    const SeriesGaps result = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
    CHECK(result.cadence == 1200);
    CHECK(result.cadence_source == "time-interval");
    CHECK(result.gaps.empty());  // 40 min < 3 x 20 min
  }
  SECTION("a multiple of 10 tolerates the hole") {
    Fixture f;
    const Series s = f.series("bbbb3333", "throughput", "{}");
    f.record(s, points, kT0, kT0 + 1);
    CHECK(f.only(kT0, kT0 + kDay, kT0 + 2 * kDay, 10.0).gaps.empty());
  }
  SECTION("unknown: no time-interval and two datapoints") {
    Fixture f;
    const Series s = f.series("bbbb4444", "throughput", "{}");
    f.record(s, {kT0 + kHour, kT0 + 20 * kHour}, kT0, kT0 + 1);
    const SeriesGaps result = f.only(kT0, kT0 + kDay, kT0 + 2 * kDay);
    CHECK_FALSE(result.cadence.has_value());
    CHECK(result.cadence_source == "unknown");
    CHECK(result.datapoints == 2);
    CHECK(result.gaps.empty());
    const std::string table = gapless::replay::gaps_table({result});
    CHECK(table.find("cadence unknown") != std::string::npos);
    CHECK(table.find("bbbb4444/throughput (2 datapoint(s))") != std::string::npos);
  }
}

TEST_CASE("gaps older than the series' retention are unrecoverable", "[gaps]") {
  const auto retention_days = [](const std::string& event_type, const std::string& summary_type = "",
                                 int64_t window = 0) {
    return gapless::replay::retention_seconds(SeriesKey{kArchive, "k", event_type, summary_type, window}) / kDay;
  };
  CHECK(retention_days("packet-loss-rate") == 180);
  CHECK(retention_days("histogram-owdelay") == 180);
  CHECK(retention_days("throughput") == 365);
  CHECK(retention_days("packet-trace") == 365);
  CHECK(retention_days("packet-loss-rate", "aggregation", 3600) == 365);
  CHECK(retention_days("packet-loss-rate", "aggregation", 86400) == 1825);
  CHECK(retention_days("throughput", "average", 86400) == 1825);

  Fixture f;
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  for (const std::string event_type : {"packet-loss-rate", "throughput"}) {
    const Series s = f.series("cccc" + event_type, event_type, with_interval("60"));
    f.record(s, every(60, kT0, hole_from), kT0, hole_from);
    f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);
  }

  SECTION("200 days old: gone for packet-loss-rate, still there for throughput") {
    const auto all = find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, kT0 + 200 * kDay);
    REQUIRE(all.size() == 2);
    for (const SeriesGaps& series : all) {
      REQUIRE(series.gaps.size() == 1);
      CHECK(series.gaps[0].unrecoverable == (series.series.key.event_type == "packet-loss-rate"));
    }
    const std::string table = gapless::replay::gaps_table(all);
    CHECK(count(table, "UNRECOVERABLE") == 1);
    CHECK(table.find("180-day retention") != std::string::npos);
    CHECK(gapless::replay::gaps_svg(all, kT0, kT0 + kDay).find("url(#unrecoverable)\"><title>") !=
          std::string::npos);
  }
  SECTION("a gap across the retention boundary is split there") {
    const int64_t boundary = hole_from + kHour;
    const auto all = find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, boundary + 180 * kDay);
    const SeriesGaps& loss = all[0].series.key.event_type == "packet-loss-rate" ? all[0] : all[1];
    REQUIRE(loss.gaps.size() == 2);
    CHECK(loss.gaps[0].unrecoverable);
    CHECK(loss.gaps[0].to == boundary);
    CHECK_FALSE(loss.gaps[1].unrecoverable);
    CHECK(loss.gaps[1].from == boundary);
    CHECK(loss.gaps[1].to == hole_to);
  }
}

TEST_CASE("a gap is marked unrecoverable exactly where the pruner stops keeping the series' digests, not a "
          "rule of its own",
          "[gaps][retention]") {
  // At 200 days, with the messages delivered and pruned, OWAMP base data
  // (180 days) has lost its digests and its gap is past the archive's
  // retention; throughput (365 days) keeps both. A gap rule of its own (a
  // flat 365 days, say) would call the first gap recoverable, which no
  // backfill can fetch, or the second unrecoverable.
  Fixture f;
  gapless::test::SimulatedClock clock(kT0 * 1000);
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  for (const std::string event_type : {"packet-loss-rate", "throughput"}) {
    const Series s = f.series("gggg" + event_type, event_type, with_interval("60"));
    f.record(s, every(60, kT0, hole_from), kT0, hole_from);
    f.record(s, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);
  }
  f.journal->mark_delivered("local", gapless::test::journal_ids(gapless::test::claim_all(*f.journal, "local")));

  const int64_t now = kT0 + 200 * kDay;
  clock.set(now * 1000);
  const auto pass = gapless::daemon::prune_once(*f.journal, std::chrono::hours(7 * 24), now * 1000);
  CHECK(pass.messages.messages == 4);

  const auto all = find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, now);
  REQUIRE(all.size() == 2);
  for (const SeriesGaps& series : all) {
    INFO(series.series.key.event_type);
    const bool past_retention = series.series.key.event_type == "packet-loss-rate";
    const auto digests = f.journal->datapoint_digests(series.series.id, kT0, kT0 + kDay);
    CHECK(digests.empty() == past_retention);
    // Coverage stays: pruning makes no new gap, and the hole is still one.
    REQUIRE(series.gaps.size() == 1);
    CHECK(series.gaps[0].from == hole_from);
    CHECK(series.gaps[0].unrecoverable == past_retention);
  }
}

TEST_CASE("data not yet due is no gap; overdue data is", "[gaps]") {
  Fixture f;
  const Series s = f.series("dddd1111", "packet-loss-rate", with_interval("60"));
  const int64_t last = kT0 + 6 * kHour - 60;  // the last datapoint
  f.record(s, every(60, kT0, last + 1), kT0, last + 1);

  SECTION("four minutes after the last datapoint, nothing is missing yet") {
    const int64_t now = last + 4 * 60;
    CHECK(f.only(kT0, now, now).gaps.empty());
  }
  SECTION("half an hour on, the overdue part is a gap, the last 3 cadences are not") {
    const int64_t now = last + 30 * 60;
    const SeriesGaps result = f.only(kT0, now, now);
    REQUIRE(result.gaps.size() == 1);
    CHECK(result.gaps[0].from == last + 1);
    CHECK(result.gaps[0].to == now - 3 * 60);
  }
  SECTION("a window that ended long ago is reported up to its end") {
    const int64_t to = last + 30 * 60;
    const SeriesGaps result = f.only(kT0, to, to + 10 * kDay);
    REQUIRE(result.gaps.size() == 1);
    CHECK(result.gaps[0].to == to);
  }
}

TEST_CASE("only base series are reported, and a bad window is refused", "[gaps]") {
  Fixture f;
  f.series("eeee1111", "packet-loss-rate", with_interval("60"));
  f.journal->register_series(SeriesKey{kArchive, "eeee1111", "packet-loss-rate", "aggregation", 3600}, "{}");
  f.journal->register_series(SeriesKey{"https://other.example.org/esmond/perfsonar/archive/", "ffff", "throughput",
                                       "", 0},
                             "{}");
  const auto all = find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, kT0 + 2 * kDay);
  REQUIRE(all.size() == 1);
  CHECK(all[0].series.key.summary_type.empty());
  // Never read at all, with a known cadence: the whole window is missing.
  REQUIRE(all[0].gaps.size() == 1);
  CHECK(all[0].gaps[0].from == kT0);
  CHECK(all[0].gaps[0].to == kT0 + kDay);

  CHECK_THROWS_AS(find_gaps(*f.journal, kArchive, kT0, kT0, kT0), gapless::Error);
  CHECK_THROWS_AS(find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, kT0, {0.0}), gapless::Error);
}

TEST_CASE("the SVG timeline has one row per series and the gap's window", "[gaps]") {
  Fixture f;
  const int64_t hole_from = kT0 + 6 * kHour, hole_to = kT0 + 8 * kHour;
  const Series with_gap = f.series("ffff1111", "packet-loss-rate", with_interval("60"));
  f.record(with_gap, every(60, kT0, hole_from), kT0, hole_from);
  f.record(with_gap, every(60, hole_to, kT0 + kDay), hole_to, kT0 + kDay);
  const Series complete = f.series("ffff2222", "throughput", "{\"time-interval\": \"3600\"}");
  f.record(complete, every(kHour, kT0, kT0 + kDay), kT0, kT0 + kDay);
  const Series unknown = f.series("ffff3333", "packet-trace", "not json");
  f.record(unknown, {kT0 + 5}, kT0, kT0 + 10);

  const auto all = find_gaps(*f.journal, kArchive, kT0, kT0 + kDay, kT0 + 2 * kDay);
  REQUIRE(all.size() == 3);
  const std::string svg = gapless::replay::gaps_svg(all, kT0, kT0 + kDay);
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") == svg.size() - 7);
  CHECK(count(svg, "<g class=\"series\">") == 3);
  CHECK(count(svg, "<g ") == count(svg, "</g>"));
  CHECK(count(svg, "<title>") == count(svg, "</title>"));
  REQUIRE(all[0].gaps.size() == 1);
  CHECK(svg.find("<title>gap " + format_timestamp(all[0].gaps[0].from) + " to " + format_timestamp(all[0].gaps[0].to)) !=
        std::string::npos);
  CHECK(count(svg, "<title>gap ") == 1);
  CHECK(svg.find("ffff1111 packet-loss-rate host1.example.org -&gt; host2.example.org") != std::string::npos);
  CHECK(svg.find("ffff3333 packet-trace (cadence unknown)") != std::string::npos);
  CHECK(svg.find(">2023-11-15 ") != std::string::npos);  // a date label on the axis
}
