// Proves status tells the truth: its counters equal a count of the rows after any operations, oldest times included.

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using gapless::journal::NewMessage;
using gapless::journal::Priority;
using namespace gapless::test;

TEST_CASE("status reports the journal time of the oldest undelivered message, and none once all is delivered",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  append_many(*journal, "a", 3);
  JournalSql(journal->path()).exec("UPDATE message SET journaled_ms = 1000 + id");  // distinct times, in journal order
  const auto ids = journal_ids(claim_all(*journal, "cern"));

  CHECK(status_of(*journal, "cern", "/topic/a").oldest_undelivered_ms == 1000 + ids[0]);
  journal->mark_delivered("cern", {ids[0]});
  journal->park_message("cern", ids[2], "too large");
  CHECK(status_of(*journal, "cern", "/topic/a").oldest_undelivered_ms == 1000 + ids[1]);
  journal->mark_delivered("cern", {ids[1]});
  CHECK(status_of(*journal, "cern", "/topic/a").oldest_undelivered_ms == 1000 + ids[2]);  // parked counts
  journal->mark_delivered("cern", {ids[2]});
  CHECK_FALSE(status_of(*journal, "cern", "/topic/a").oldest_undelivered_ms.has_value());
}

TEST_CASE("status counters equal a count of the rows after any sequence of operations (property)", "[journal]") {
  const std::vector<std::string> sinks = {"s0", "s1", "s2"};
  const std::vector<std::string> destinations = {"/topic/d0", "/topic/d1", "/topic/d2", "/topic/d3"};

  for (const unsigned seed : {1u, 2u, 3u, 4u}) {
    INFO("seed " << seed);
    TempDir dir;
    auto journal = Journal::open(dir.file("j.db"), {sinks.begin(), sinks.end()});
    std::mt19937 random(seed);
    const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random); };
    std::map<std::string, std::unordered_set<int64_t>> in_flight;
    std::set<std::pair<std::string, int64_t>> probes;
    // Every destination known from the start: operator acts naming one never journaled are refused.
    for (const std::string& destination : destinations) journal->append({message("first" + destination, destination)});

    for (int step = 0; step < 300; ++step) {
      const std::string& sink = sinks[pick(sinks.size())];
      const std::string& destination = destinations[pick(destinations.size())];
      auto& flying = in_flight[sink];
      switch (pick(9)) {
        case 0:
        case 1: {  // append, with duplicates from a small pool of ids
          std::vector<NewMessage> batch;
          for (size_t i = 0, n = 1 + pick(12); i < n; ++i)
            batch.push_back(message("g" + std::to_string(pick(400)), destinations[pick(destinations.size())],
                                    static_cast<Priority>(pick(3))));
          const auto result = journal->append(batch);
          CHECK(result.appended + result.duplicates == static_cast<int64_t>(batch.size()));
          break;
        }
        case 2: {  // claim: in order, nothing in flight, nothing of a parked destination but probes
          const auto claimed = journal->claim(sink, 1 + pick(15), flying);
          std::set<std::string> parked;
          for (const auto& p : journal->parked_destinations(sink)) parked.insert(p.destination);
          for (size_t i = 0; i < claimed.size(); ++i) {
            CHECK(flying.count(claimed[i].id) == 0);
            if (parked.count(claimed[i].destination) != 0) CHECK(probes.count({sink, claimed[i].id}) == 1);
            if (i > 0)
              CHECK(std::pair(claimed[i - 1].priority, claimed[i - 1].id) <
                    std::pair(claimed[i].priority, claimed[i].id));
            flying.insert(claimed[i].id);
          }
          break;
        }
        case 3: {  // receipts for some in flight; the sender forgets others (back to pending)
          std::vector<int64_t> settled;
          for (const int64_t id : flying)
            if (pick(3) != 0) settled.push_back(id);
          journal->mark_delivered(sink, settled);
          flying.clear();
          break;
        }
        case 4:  // one in flight refused on its own
          if (!flying.empty()) {
            const int64_t id = *flying.begin();
            journal->park_message(sink, id, "too large");
            flying.erase(id);
          }
          break;
        case 5:
          journal->park_destination(sink, destination, "not authorized", 1000 + step);
          break;
        case 6:
          if (auto probe = journal->requeue_probe(sink, destination, 2000 + step)) probes.insert({sink, *probe});
          break;
        case 7:
          switch (pick(3)) {
            case 0: journal->retry_parked(std::nullopt, std::nullopt, pick(2) == 0); break;
            case 1: journal->retry_parked(sink, std::nullopt, pick(2) == 0); break;
            default: journal->retry_parked(std::nullopt, destination, pick(2) == 0); break;
          }
          break;
        case 8:  // an operator discards parked messages (deletes rows: the delete trigger counts)
          journal->discard_parked(sink, pick(2) == 0 ? std::optional<std::string_view>(destination) : std::nullopt,
                                  std::nullopt, "property test");
          break;
      }
      if (step % 20 == 0) REQUIRE(counts_from_status(*journal) == counts_from_rows(*journal));
    }
    REQUIRE(counts_from_status(*journal) == counts_from_rows(*journal));
    CHECK(count_rows(*journal, "SELECT count(*) FROM delivery_count WHERE count < 0") == 0);
  }
}
