// Proves each poll adds to its archive's health counters, failures by kind, and only a success ends a run of failures.

#include <catch2/catch.hpp>
#include <string>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::ArchiveHealth;
using gapless::journal::Journal;
using namespace gapless::test;

TEST_CASE("record_poll adds each poll to its archive's counters, and failures accumulate by kind", "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  const std::string other = "http://other.example.org/esmond/perfsonar/archive/";
  journal->record_poll(archive_poll(1000, {}, 120));
  journal->record_poll(archive_poll(2000, {{"http-status", 2}, {"timeout", 1}}, 30, "first error"));
  journal->record_poll(archive_poll(3000, {{"http-status", 1}, {"data", 1}}, 5, "GET " + kArchiveUrl + ": HTTP 503"));
  journal->record_poll(archive_poll(3500, {{"connect", 1}}, 0, "other archive down", true, other));

  const ArchiveHealth health = health_of(*journal);
  CHECK(health.name == "psds");
  CHECK(health.first_poll_ms == 1000);
  CHECK(health.last_poll_ms == 3000);
  CHECK(health.polls_total == 3);
  CHECK(health.failed_polls_total == 2);
  CHECK(health.points_journaled_total == 155);
  REQUIRE(health.failures.size() == 3);
  CHECK(health.failures.at("http-status").count == 3);
  CHECK(health.failures.at("http-status").last_ms == 3000);
  CHECK(health.failures.at("timeout").count == 1);
  CHECK(health.failures.at("timeout").last_ms == 2000);
  CHECK(health.failures.at("data").count == 1);
  CHECK(health.last_error == "GET " + kArchiveUrl + ": HTTP 503");
  CHECK(health.last_error_ms == 3000);
  CHECK(health.last_success_ms == 1000);

  // Each archive keeps its own counters.
  const ArchiveHealth other_health = health_of(*journal, other);
  CHECK(other_health.polls_total == 1);
  CHECK(other_health.failures.size() == 1);
  CHECK(other_health.failures.at("connect").count == 1);
  CHECK_FALSE(other_health.last_success_ms.has_value());

  // Counters only grow: a poll that would take one back is refused, and changes nothing.
  CHECK_THROWS_WITH(journal->record_poll(archive_poll(4000, {{"timeout", -1}})), Contains(kArchiveUrl));
  CHECK_THROWS_WITH(journal->record_poll(archive_poll(4000, {}, -5)), Contains("negative"));
  CHECK(health_of(*journal).polls_total == 3);
  CHECK(health_of(*journal).failures.at("timeout").count == 1);

  // And they survive reopening.
  const std::string path = journal->path();
  journal.reset();
  journal = Journal::open(path, {"cern"});
  CHECK(health_of(*journal).failures.at("http-status").count == 3);
}

TEST_CASE("consecutive_failed_polls counts failed polls since the last success, which alone resets it",
          "[journal]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  journal->record_poll(archive_poll(1000, {{"timeout", 1}}, 0, "timed out"));
  journal->record_poll(archive_poll(2000, {{"http-status", 4}}, 0, "HTTP 500"));
  CHECK(health_of(*journal).consecutive_failed_polls == 2);
  CHECK_FALSE(health_of(*journal).last_success_ms.has_value());

  // Nothing failed but not everything was read (series still backing off, or
  // a shutdown): neither a success nor a failure.
  journal->record_poll(archive_poll(3000, {}, 10, "", /*complete=*/false));
  ArchiveHealth health = health_of(*journal);
  CHECK(health.consecutive_failed_polls == 2);
  CHECK_FALSE(health.last_success_ms.has_value());
  CHECK(health.polls_total == 3);
  CHECK(health.failed_polls_total == 2);
  CHECK(health.last_poll_ms == 3000);

  journal->record_poll(archive_poll(4000, {}, 7));
  health = health_of(*journal);
  CHECK(health.consecutive_failed_polls == 0);
  CHECK(health.last_success_ms == 4000);
  CHECK(health.failed_polls_total == 2);  // the history stays
  CHECK(health.failures.at("http-status").count == 4);
  CHECK(health.last_error == "HTTP 500");
  CHECK(health.last_error_ms == 2000);

  journal->record_poll(archive_poll(5000, {{"connect", 1}}, 0, "refused"));
  health = health_of(*journal);
  CHECK(health.consecutive_failed_polls == 1);
  CHECK(health.last_success_ms == 4000);
  CHECK(health.last_error == "refused");
}
