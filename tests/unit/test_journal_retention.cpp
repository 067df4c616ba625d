// Proves pruning deletes only what may go (delivered everywhere and kept long enough; digests the archive no longer serves and whose message is gone), keeps the counters and coverage true, seeks by key, and gives pages back.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "core/clock.hpp"
#include "journal/integrity_check.hpp"
#include "journal/journal.hpp"
#include "support/collected_read.hpp"
#include "support/journal_fixtures.hpp"
#include "support/simulated_clock.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using namespace gapless::test;

namespace {

constexpr int64_t kDay = 24 * 3600 * 1000LL;
constexpr int64_t kStart = 1'700'000'000'000;  // a simulated now, unix ms

int64_t messages_named(Journal& journal, const std::string& prefix) {
  return count_rows(journal, "SELECT count(*) FROM message WHERE gapless_id LIKE '" + prefix + "-%'");
}

void require_invariants_hold(Journal& journal) {
  const auto report = gapless::journal::check_integrity(journal);
  INFO(gapless::journal::format_integrity_report(report));
  REQUIRE(report.ok());
}

}  // namespace

TEST_CASE("pruning deletes only messages delivered to every sink before the cutoff; undelivered ones stay",
          "[journal][retention]") {
  TempDir dir;
  SimulatedClock clock(kStart);
  auto journal = Journal::open(dir.file("j.db"), {"cern", "fnal"});

  append_many(*journal, "old", 5);      // delivered to both sinks on day 0
  append_many(*journal, "half", 2);     // delivered to cern only
  append_many(*journal, "parked", 2);   // delivered to cern, parked at fnal
  append_many(*journal, "pending", 2);  // delivered nowhere
  std::vector<int64_t> old_ids, half_ids, parked_ids;
  for (int i = 0; i < 5; ++i) old_ids.push_back(id_of(*journal, "old-" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) half_ids.push_back(id_of(*journal, "half-" + std::to_string(i)));
  for (int i = 0; i < 2; ++i) parked_ids.push_back(id_of(*journal, "parked-" + std::to_string(i)));
  journal->mark_delivered("cern", old_ids);
  journal->mark_delivered("fnal", old_ids);
  journal->mark_delivered("cern", half_ids);
  journal->mark_delivered("cern", parked_ids);
  for (const int64_t id : parked_ids) journal->park_message("fnal", id, "too large");

  // A collected read, delivered on day 0 too: its coverage must survive it.
  const auto series = journal->register_series({"https://a/esmond/perfsonar/archive/", "k", "throughput", "", 0}, "{}");
  journal->record_collected(collected_read(series.id, "collected-0", "/topic/a", {100, 200}, 0, 300));
  const int64_t collected = id_of(*journal, "collected-0");
  journal->mark_delivered("cern", {collected});
  journal->mark_delivered("fnal", {collected});

  clock.set(kStart + 3 * kDay);
  append_many(*journal, "recent", 2);  // delivered to both on day 3
  const std::vector<int64_t> recent_ids = {id_of(*journal, "recent-0"), id_of(*journal, "recent-1")};
  journal->mark_delivered("cern", recent_ids);
  journal->mark_delivered("fnal", recent_ids);

  clock.set(kStart + 8 * kDay);
  const auto report = journal->prune_delivered(kStart + kDay);  // keep_delivered = 7 days

  CHECK(report.complete);
  CHECK(report.messages == 6);     // the five old ones and the collected one
  CHECK(report.deliveries == 12);  // two sinks each
  CHECK(messages_named(*journal, "old") == 0);
  CHECK(count_rows(*journal, "SELECT count(*) FROM message WHERE gapless_id = 'collected-0'") == 0);
  CHECK(messages_named(*journal, "half") == 2);
  CHECK(messages_named(*journal, "parked") == 2);
  CHECK(messages_named(*journal, "pending") == 2);
  CHECK(messages_named(*journal, "recent") == 2);
  CHECK(count_rows(*journal, "SELECT count(*) FROM delivery WHERE message_id IN (" + std::to_string(old_ids[0]) +
                                 ", " + std::to_string(collected) + ")") == 0);
  CHECK(count_rows(*journal, "SELECT count(*) FROM appended_message") == 8);  // 13 appended, 5 pruned
  CHECK(journal->coverage(series.id, 0, 1000).size() == 1);
  CHECK(status_of(*journal, "cern", "/topic/a").delivered == 6);  // the counters follow the rows
  CHECK(status_of(*journal, "fnal", "/topic/a").parked == 2);
  require_invariants_hold(*journal);

  // What stayed is still delivered as before.
  CHECK(gapless_ids(claim_all(*journal, "fnal")) ==
        std::vector<std::string>{"half-0", "half-1", "pending-0", "pending-1"});

  // A later pass past the recent ones' cutoff takes them too, nothing else.
  clock.set(kStart + 11 * kDay);
  CHECK(journal->prune_delivered(kStart + 4 * kDay).messages == 2);
  CHECK(messages_named(*journal, "recent") == 0);
  require_invariants_hold(*journal);
}

TEST_CASE("a message requeued by a resend is not pruned, nor one whose rows were all discarded early",
          "[journal][retention]") {
  TempDir dir;
  SimulatedClock clock(kStart);
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "m", 3);
  const std::vector<int64_t> ids = {id_of(*journal, "m-0"), id_of(*journal, "m-1"), id_of(*journal, "m-2")};
  journal->mark_delivered("cern", ids);
  const int64_t request = journal->begin_request("resend", "{}");
  journal->queue_resend("cern", {ids[0]}, request);

  clock.set(kStart + 8 * kDay);
  CHECK(journal->prune_delivered(kStart + kDay).messages == 2);
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 1);
  CHECK(gapless_ids(claim_all(*journal, "cern")) == std::vector<std::string>{"m-0"});
  require_invariants_hold(*journal);
}

TEST_CASE("pruning walks in small transactions and reads by key, whatever the batch", "[journal][retention]") {
  TempDir dir;
  SimulatedClock clock(kStart);
  auto journal = Journal::open(dir.file("j.db"), {"cern", "fnal"});
  append_many(*journal, "m", 1000);
  const auto claimed = journal_ids(claim_all(*journal, "cern"));
  journal->mark_delivered("cern", claimed);
  // Every third message still pending at fnal: the walk must step over them.
  std::vector<int64_t> delivered;
  for (size_t i = 0; i < claimed.size(); ++i)
    if (i % 3 != 0) delivered.push_back(claimed[i]);
  journal->mark_delivered("fnal", delivered);

  clock.set(kStart + 8 * kDay);
  const auto report = journal->prune_delivered(kStart + kDay, nullptr, 50);
  CHECK(report.messages == static_cast<int64_t>(delivered.size()));
  CHECK(report.transactions >= static_cast<int64_t>(delivered.size() / 50));
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 334);
  require_invariants_hold(*journal);

  // Stopped before it starts: nothing more deleted, reported incomplete.
  std::atomic<bool> stop{true};
  CHECK_FALSE(journal->prune_delivered(kStart + 8 * kDay, &stop).complete);
}

TEST_CASE("pruning's statements seek keys; none scans message, delivery or datapoint", "[journal][retention]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern", "fnal"});
  append_many(*journal, "m", 300);
  const std::set<std::string> big_tables = {"message", "delivery", "datapoint", "appended_message"};
  std::set<std::string> paths;
  for (const auto& line : journal->explain_pruning()) {
    INFO(line);
    paths.insert(line.substr(0, line.find(':')));
    std::istringstream words(line.substr(line.find(':') + 1));
    std::string verb, table, as, alias;
    words >> verb >> table;
    // The walks' own range reads are "SEARCH ... USING PRIMARY KEY (x>?)";
    // a SCAN of a big table would read all of it per transaction.
    if (verb == "SCAN") CHECK(big_tables.count(table) == 0);
    CHECK_THAT(line, !Contains("USING PRIMARY KEY (sink_id=?)"));
  }
  CHECK(paths.size() == 8);
}

TEST_CASE("a digest goes once the archive no longer serves its point and its message is gone, not before",
          "[journal][retention]") {
  TempDir dir;
  SimulatedClock clock(kStart);
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  const auto series = journal->register_series({"https://a/esmond/perfsonar/archive/", "k", "throughput", "", 0}, "{}");
  // Three reads: delivered (message prunable), delivered, and still pending.
  journal->record_collected(collected_read(series.id, "r1", "/topic/a", {100, 110}, 100, 120));
  journal->record_collected(collected_read(series.id, "r2", "/topic/a", {200, 210}, 120, 220));
  journal->record_collected(collected_read(series.id, "r3", "/topic/a", {300, 310}, 220, 320));
  journal->mark_delivered("cern", {id_of(*journal, "r1"), id_of(*journal, "r2")});

  const auto served_from = [](int64_t ts) {
    return [ts](const gapless::journal::SeriesKey&) { return std::optional<int64_t>(ts); };
  };
  const auto digests = [&] {
    std::vector<int64_t> ts;
    for (const auto& [t, digest] : journal->datapoint_digests(series.id, 0, 1000)) ts.push_back(t);
    return ts;
  };

  // The archive serves everything still: no digest goes, although r1 and r2 are pruned.
  clock.set(kStart + 8 * kDay);
  CHECK(journal->prune_delivered(kStart + kDay).messages == 2);
  CHECK(journal->prune_datapoints(served_from(0)).datapoints == 0);
  CHECK(digests().size() == 6);

  // The archive serves from 205 on: r1's digests and r2's first go; r3's
  // stay while r3 is kept (pending), even once the archive serves none of it.
  CHECK(journal->prune_datapoints(served_from(205)).datapoints == 3);
  CHECK(digests() == std::vector<int64_t>{210, 300, 310});
  CHECK(journal->prune_datapoints(served_from(1000)).datapoints == 1);
  CHECK(digests() == std::vector<int64_t>{300, 310});

  // The caller's rule may keep a series whole.
  CHECK(journal->prune_datapoints([](const gapless::journal::SeriesKey&) { return std::nullopt; }).datapoints == 0);
  CHECK(journal->coverage(series.id, 0, 1000).size() == 1);  // coverage is never pruned (invariant 13)
  require_invariants_hold(*journal);
}

TEST_CASE("pruned pages go back to the file system, and bytes in use fall at once", "[journal][retention]") {
  TempDir dir;
  SimulatedClock clock(kStart);
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  std::vector<gapless::journal::NewMessage> batch;
  for (int i = 0; i < 2000; ++i) {
    batch.push_back(message("big-" + std::to_string(i)));
    batch.back().body = std::string(2000, 'x');
  }
  journal->append(batch);
  journal->mark_delivered("cern", journal_ids(claim_all(*journal, "cern")));
  journal->connection_for_tests().exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const auto file_size = [&] {
    struct stat info {};
    ::stat(journal->path().c_str(), &info);
    return static_cast<int64_t>(info.st_size);
  };
  const int64_t used_before = journal->bytes_in_use();
  const int64_t size_before = file_size();
  CHECK(used_before > 4'000'000);

  clock.set(kStart + 8 * kDay);
  journal->prune_delivered(kStart + kDay);
  CHECK(journal->bytes_in_use() < used_before / 4);
  CHECK(journal->release_free_pages().pages > 0);
  journal->connection_for_tests().exec("PRAGMA wal_checkpoint(TRUNCATE)");
  CHECK(file_size() < size_before / 4);
}
