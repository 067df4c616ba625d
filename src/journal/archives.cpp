// The collector's polls of each archive, as counters for `gapless status` and
// metrics: the archive_poll and archive_failure tables and invariant 14,
// described with the rest of the format at the top of format.hpp.

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "journal/journal.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

// Invariant 14: one poll added to the archive's row. ?3 is when the poll
// ended, ?4 1 for a success, ?5 1 for a failed poll, ?7 the error (NULL
// unless the poll failed).
constexpr const char* kSqlRecordPoll =
    "INSERT INTO archive_poll(archive_url, name, first_poll_ms, last_poll_ms, last_success_ms, "
    "consecutive_failed_polls, polls_total, failed_polls_total, points_journaled_total, last_error, last_error_ms) "
    "VALUES (?1, ?2, ?3, ?3, CASE WHEN ?4 THEN ?3 END, ?5, 1, ?5, ?6, ?7, CASE WHEN ?5 THEN ?3 END) "
    "ON CONFLICT (archive_url) DO UPDATE SET name = excluded.name, last_poll_ms = excluded.last_poll_ms, "
    "last_success_ms = coalesce(excluded.last_success_ms, last_success_ms), "
    "consecutive_failed_polls = CASE WHEN ?4 THEN 0 ELSE consecutive_failed_polls + ?5 END, "
    "polls_total = polls_total + 1, failed_polls_total = failed_polls_total + ?5, "
    "points_journaled_total = points_journaled_total + ?6, "
    "last_error = CASE WHEN ?5 THEN excluded.last_error ELSE last_error END, "
    "last_error_ms = CASE WHEN ?5 THEN excluded.last_error_ms ELSE last_error_ms END";
constexpr const char* kSqlRecordFailure =
    "INSERT INTO archive_failure(archive_url, kind, count, last_ms) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (archive_url, kind) DO UPDATE SET count = count + excluded.count, last_ms = excluded.last_ms";

constexpr const char* kSqlArchivePolls =
    "SELECT archive_url, name, first_poll_ms, last_poll_ms, last_success_ms, consecutive_failed_polls, "
    "polls_total, failed_polls_total, points_journaled_total, last_error, last_error_ms FROM archive_poll "
    "ORDER BY name, archive_url";
constexpr const char* kSqlArchiveFailures = "SELECT archive_url, kind, count, last_ms FROM archive_failure";

}  // namespace

void Journal::record_poll(const ArchivePoll& poll) {
  const std::string operation = "record_poll (archive " + poll.name + " " + poll.archive_url + ")";
  with_journal_errors(path_, operation, kNothingChanged, [&] {
    // Invariant 14: counters only grow.
    if (poll.archive_url.empty())
      throw Error(context(path_, operation) + "the archive URL is required; " + std::string(kNothingChanged));
    if (poll.points_journaled < 0)
      throw Error(context(path_, operation) + "points_journaled is negative (" +
                  std::to_string(poll.points_journaled) + "); " + std::string(kNothingChanged));
    bool failed = false;
    for (const auto& [kind, count] : poll.failures) {
      if (kind.empty() || count < 0)
        throw Error(context(path_, operation) + "failure kind \"" + kind + "\" with count " + std::to_string(count) +
                    ": kinds are named and counts are not negative; " + std::string(kNothingChanged));
      failed = failed || count > 0;
    }
    const bool succeeded = !failed && poll.complete;

    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement record(*db_, kSqlRecordPoll);
    record.bind(1, poll.archive_url);
    record.bind(2, poll.name);
    record.bind(3, poll.polled_ms);
    record.bind(4, succeeded ? 1 : 0);
    record.bind(5, failed ? 1 : 0);
    record.bind(6, poll.points_journaled);
    if (failed) record.bind(7, poll.last_error); else record.bind(7);
    record.exec();

    SQLite::Statement failure(*db_, kSqlRecordFailure);
    for (const auto& [kind, count] : poll.failures) {
      if (count == 0) continue;  // a row means at least one failure (CHECK count > 0)
      failure.reset();
      failure.bind(1, poll.archive_url);
      failure.bind(2, kind);
      failure.bind(3, count);
      failure.bind(4, poll.polled_ms);
      failure.exec();
    }
    transaction.commit();
    spdlog::debug("journal: recorded poll path={} archive={} url={} outcome={} points_journaled={}", path_, poll.name,
                  poll.archive_url, succeeded ? "success" : failed ? "failed" : "incomplete", poll.points_journaled);
  });
}

std::vector<ArchiveHealth> Journal::archive_health() const {
  return with_journal_errors(path_, "archive_health", "", [&] {
    std::vector<ArchiveHealth> archives;
    auto snapshot = begin_read(*db_);
    SQLite::Statement polls(*db_, kSqlArchivePolls);
    while (polls.executeStep()) {
      ArchiveHealth health;
      health.archive_url = polls.getColumn(0).getString();
      health.name = polls.getColumn(1).getString();
      health.first_poll_ms = polls.getColumn(2).getInt64();
      health.last_poll_ms = polls.getColumn(3).getInt64();
      if (!polls.isColumnNull(4)) health.last_success_ms = polls.getColumn(4).getInt64();
      health.consecutive_failed_polls = polls.getColumn(5).getInt64();
      health.polls_total = polls.getColumn(6).getInt64();
      health.failed_polls_total = polls.getColumn(7).getInt64();
      health.points_journaled_total = polls.getColumn(8).getInt64();
      health.last_error = text_of(polls.getColumn(9));
      if (!polls.isColumnNull(10)) health.last_error_ms = polls.getColumn(10).getInt64();
      archives.push_back(std::move(health));
    }
    SQLite::Statement failures(*db_, kSqlArchiveFailures);
    while (failures.executeStep()) {
      const std::string url = failures.getColumn(0).getString();
      for (ArchiveHealth& health : archives)  // a handful of archives: no index needed
        if (health.archive_url == url)
          health.failures[failures.getColumn(1).getString()] = {failures.getColumn(2).getInt64(),
                                                                failures.getColumn(3).getInt64()};
    }
    snapshot.commit();
    return archives;
  });
}

}  // namespace gapless::journal
