// Retention: pruning delivered messages and datapoint digests no longer
// needed, and giving free pages back (format.hpp invariants 6, 12, 13, 15;
// why: docs/journal.md 1.3).
//
// The write lock is shared with the senders' marks and the producers'
// appends (docs/journal.md 3), so pruning takes it briefly: it reads a batch
// of candidates without the lock, then deletes them in one short write
// transaction that checks the rule again (a resend may have requeued one
// meanwhile). Each walk reads by primary key, never a whole table per
// transaction:
//   - appended messages by appended_message's key (window_ts, message_id),
//     so that their appended_message row goes with them (invariant 15): the
//     row cannot be found from the message, there is no index by message_id;
//   - then every other message by id, up to the first journaled after the
//     cutoff, skipping those the first walk kept (their ids, journaled before
//     the cutoff, held in memory for the pass): an operator's discard between
//     the walks could make one prunable, and the second walk cannot find its
//     appended_message row;
//   - datapoints per series by (series_id, ts), below the cutoff the caller
//     gives for that series.
// Every delivery row of a message is found by its key (sink_id, message_id),
// the sink table as the outer loop.

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journal/journal_cache.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

using Json = nlohmann::json;

// Invariant 6: message `id` may be pruned with cutoff ?9: it was journaled
// before the cutoff and none of its delivery rows is undelivered or
// delivered at or after the cutoff. (A delivered row always has
// delivered_ms; coalesce keeps a NULL from ever counting as old.)
std::string prunable(const std::string& id) {
  return "((SELECT journaled_ms FROM message WHERE message.id = " + id +
         ") < ?9 AND NOT EXISTS (SELECT 1 FROM sink CROSS JOIN delivery AS d "
         "WHERE d.sink_id = sink.id AND d.message_id = " +
         id + " AND (d.state <> 1 OR coalesce(d.delivered_ms, ?9) >= ?9)))";
}

// Walk 1: appended messages after (?1, ?2) in appended_message's key order.
const std::string kSqlAppendedWalk =
    "SELECT a.window_ts, a.message_id, " + prunable("a.message_id") +
    ", coalesce((SELECT journaled_ms FROM message WHERE message.id = a.message_id) < ?9, 0) "
    "FROM appended_message AS a WHERE (a.window_ts, a.message_id) > (?1, ?2) "
    "ORDER BY a.window_ts, a.message_id LIMIT ?3";
// Walk 2: messages after ?1 by id.
const std::string kSqlMessageWalk = "SELECT m.id, m.journaled_ms, " + prunable("m.id") +
                                    " FROM message AS m WHERE m.id > ?1 ORDER BY m.id LIMIT ?2";
// Under the write lock: which of the candidates (a JSON array) still may go.
const std::string kSqlStillPrunable = "SELECT c.value FROM json_each(?1) AS c WHERE " + prunable("c.value");
// Invariant 7: the delete trigger counts each row out of delivery_count.
constexpr const char* kSqlDeleteDeliveries =
    "DELETE FROM delivery WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2))";
constexpr const char* kSqlDeleteMessages = "DELETE FROM message WHERE id IN (SELECT value FROM json_each(?1))";
// Invariant 15: with its message.
constexpr const char* kSqlDeleteAppended = "DELETE FROM appended_message WHERE window_ts = ?1 AND message_id = ?2";

// Invariant 12: a series' digests below the archive's horizon ?3, with a
// flag for those whose message is gone.
constexpr const char* kSqlDatapointWalk =
    "SELECT p.ts, NOT EXISTS (SELECT 1 FROM message WHERE message.id = p.message_id) FROM datapoint AS p "
    "WHERE p.series_id = ?1 AND p.ts >= ?2 AND p.ts < ?3 ORDER BY p.ts LIMIT ?4";
constexpr const char* kSqlDeleteDatapoints =
    "DELETE FROM datapoint WHERE series_id = ?1 AND ts IN (SELECT value FROM json_each(?2)) "
    "AND NOT EXISTS (SELECT 1 FROM message WHERE message.id = datapoint.message_id)";
constexpr const char* kSqlAllSeries =
    "SELECT id, archive_url, metadata_key, event_type, summary_type, summary_window FROM series ORDER BY id";

// Pages given back per incremental_vacuum transaction: 1 MiB of 4 KiB pages.
constexpr int kVacuumStep = 256;

bool stopping(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

int64_t microseconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

// SQLite's default: a connection checkpoints once its commit leaves this many pages in the WAL.
constexpr int kCheckpointPages = 1000;

// Pruning's write transactions, each timed, with the WAL checkpoint taken
// out of their COMMIT. SQLite runs a connection's auto-checkpoint inside the
// COMMIT that leaves 1000 pages in the WAL, after the write lock is released
// (the checkpoint copies pages to the database file and fsyncs it: hundreds
// of milliseconds on a busy disk). Timed from BEGIN to COMMIT's return, that
// wait looked like the lock held. Here the connection's checkpoint is run
// after the transaction, PASSIVE as SQLite's own, and timed apart: the time
// the write lock is held is measured alone (why: docs/journal.md 1.3).
class PruneWriter {
 public:
  PruneWriter(SQLite::Database& db, PruneReport& report) : db_(db), report_(report) {
    // A WAL hook replaces the connection's auto-checkpoint: it only notes the WAL's size.
    sqlite3_wal_hook(db_.getHandle(), &note_wal_pages, this);
  }
  ~PruneWriter() { sqlite3_wal_autocheckpoint(db_.getHandle(), kCheckpointPages); }
  PruneWriter(const PruneWriter&) = delete;
  PruneWriter& operator=(const PruneWriter&) = delete;

  // One write transaction running `work`, then the checkpoint if it is due.
  template <typename Work>
  void write(Work&& work) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point asked = Clock::now();
    auto transaction = begin_write(db_, Durability::normal);
    const Clock::time_point locked = Clock::now();
    work();
    transaction.commit();
    const Clock::time_point released = Clock::now();
    ++report_.transactions;
    report_.longest_lock_wait_us = std::max(report_.longest_lock_wait_us, microseconds_between(asked, locked));
    report_.longest_write_lock_us = std::max(report_.longest_write_lock_us, microseconds_between(locked, released));
    if (wal_pages_ < kCheckpointPages) return;
    wal_pages_ = 0;
    // Busy (another connection checkpointing) is no failure: the next commit
    // tries again. Nor is any other: the WAL keeps what was committed.
    const int rc = sqlite3_wal_checkpoint_v2(db_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      spdlog::warn("journal: checkpoint after pruning failed path={} error=\"{}\"", db_.getFilename(),
                   sqlite3_errstr(rc));
    ++report_.checkpoints;
    report_.longest_checkpoint_us =
        std::max(report_.longest_checkpoint_us, microseconds_between(released, Clock::now()));
  }

 private:
  static int note_wal_pages(void* self, sqlite3* /*db*/, const char* /*schema*/, int pages) {
    static_cast<PruneWriter*>(self)->wal_pages_ = pages;
    return SQLITE_OK;
  }

  SQLite::Database& db_;
  PruneReport& report_;
  int wal_pages_ = 0;
};

// Under the write lock: deletes those of `candidates` that still may go, with
// their delivery rows; returns the ones deleted.
std::vector<int64_t> delete_messages(SQLite::Database& db, const std::vector<int64_t>& sinks,
                                     const std::vector<int64_t>& candidates, int64_t cutoff_ms,
                                     PruneReport& report) {
  SQLite::Statement still(db, kSqlStillPrunable);
  still.bind(1, Json(candidates).dump());
  still.bind(9, cutoff_ms);
  std::vector<int64_t> confirmed;
  while (still.executeStep()) confirmed.push_back(still.getColumn(0).getInt64());
  if (confirmed.empty()) return confirmed;
  const std::string ids = Json(confirmed).dump();
  SQLite::Statement deliveries(db, kSqlDeleteDeliveries);
  for (const int64_t sink : sinks) {
    deliveries.bind(1, sink);
    deliveries.bind(2, ids);
    report.deliveries += deliveries.exec();
    deliveries.reset();
  }
  SQLite::Statement messages(db, kSqlDeleteMessages);
  messages.bind(1, ids);
  report.messages += messages.exec();
  return confirmed;
}

}  // namespace

PruneReport Journal::prune_delivered(int64_t delivered_before_ms, const std::atomic<bool>* stop, size_t batch) {
  return with_journal_errors(path_, "prune delivered messages", "what was pruned before stays pruned", [&] {
    PruneReport report;
    PruneWriter writer(*db_, report);
    const std::vector<int64_t> sinks = cache_->registered_sinks();

    // Walk 1: appended messages, with their appended_message rows.
    SQLite::Statement appended_walk(*db_, kSqlAppendedWalk);
    std::vector<int64_t> kept;  // appended, journaled before the cutoff, not pruned: walk 2 skips them
    int64_t after_ts = std::numeric_limits<int64_t>::min(), after_id = 0;
    for (bool more = true; more;) {
      if (stopping(stop)) return report.complete = false, report;
      std::vector<std::pair<int64_t, int64_t>> candidates;  // (window_ts, message_id)
      size_t read = 0;
      {
        auto snapshot = begin_read(*db_);
        appended_walk.bind(1, after_ts);
        appended_walk.bind(2, after_id);
        appended_walk.bind(3, static_cast<int64_t>(batch));
        appended_walk.bind(9, delivered_before_ms);
        while (appended_walk.executeStep()) {
          ++read;
          after_ts = appended_walk.getColumn(0).getInt64();
          after_id = appended_walk.getColumn(1).getInt64();
          if (appended_walk.getColumn(2).getInt() != 0)
            candidates.emplace_back(after_ts, after_id);
          else if (appended_walk.getColumn(3).getInt() != 0)
            kept.push_back(after_id);
        }
        appended_walk.reset();
      }
      more = read == batch;
      if (candidates.empty()) continue;
      std::vector<int64_t> ids;
      for (const auto& candidate : candidates) ids.push_back(candidate.second);
      writer.write([&] {
        const std::vector<int64_t> deleted = delete_messages(*db_, sinks, ids, delivered_before_ms, report);
        SQLite::Statement appended_rows(*db_, kSqlDeleteAppended);
        for (const auto& [window_ts, message_id] : candidates) {
          if (std::find(deleted.begin(), deleted.end(), message_id) == deleted.end()) {
            kept.push_back(message_id);  // requeued since it was read
            continue;
          }
          appended_rows.bind(1, window_ts);
          appended_rows.bind(2, message_id);
          appended_rows.exec();
          appended_rows.reset();
        }
      });
    }

    // Walk 2: every other message, by id, up to the first journaled at or
    // after the cutoff (ids grow with journal time, invariant 10).
    std::sort(kept.begin(), kept.end());
    SQLite::Statement message_walk(*db_, kSqlMessageWalk);
    int64_t after = 0;
    for (bool more = true; more;) {
      if (stopping(stop)) return report.complete = false, report;
      std::vector<int64_t> candidates;
      size_t read = 0;
      {
        auto snapshot = begin_read(*db_);
        message_walk.bind(1, after);
        message_walk.bind(2, static_cast<int64_t>(batch));
        message_walk.bind(9, delivered_before_ms);
        while (message_walk.executeStep()) {
          if (message_walk.getColumn(1).getInt64() >= delivered_before_ms) {
            more = false;
            break;
          }
          ++read;
          after = message_walk.getColumn(0).getInt64();
          if (message_walk.getColumn(2).getInt() != 0 && !std::binary_search(kept.begin(), kept.end(), after))
            candidates.push_back(after);
        }
        message_walk.reset();
      }
      more = more && read == batch;
      if (candidates.empty()) continue;
      writer.write([&] { delete_messages(*db_, sinks, candidates, delivered_before_ms, report); });
    }
    return report;
  });
}

PruneReport Journal::prune_datapoints(const std::function<std::optional<int64_t>(const SeriesKey&)>& served_from,
                                      const std::atomic<bool>* stop, size_t batch) {
  return with_journal_errors(path_, "prune datapoint digests", "what was pruned before stays pruned", [&] {
    std::vector<std::pair<int64_t, int64_t>> horizons;  // (series id, served from ts)
    {
      SQLite::Statement all(*db_, kSqlAllSeries);
      while (all.executeStep()) {
        SeriesKey key{all.getColumn(1).getString(), all.getColumn(2).getString(), all.getColumn(3).getString(),
                      all.getColumn(4).getString(), all.getColumn(5).getInt64()};
        if (const std::optional<int64_t> from = served_from(key)) horizons.emplace_back(all.getColumn(0).getInt64(), *from);
      }
    }
    PruneReport report;
    PruneWriter writer(*db_, report);
    SQLite::Statement walk(*db_, kSqlDatapointWalk);
    for (const auto& [series_id, horizon] : horizons) {
      int64_t from = std::numeric_limits<int64_t>::min();
      for (bool more = true; more;) {
        if (stopping(stop)) return report.complete = false, report;
        std::vector<int64_t> candidates;
        size_t read = 0;
        {
          auto snapshot = begin_read(*db_);
          walk.bind(1, series_id);
          walk.bind(2, from);
          walk.bind(3, horizon);
          walk.bind(4, static_cast<int64_t>(batch));
          while (walk.executeStep()) {
            ++read;
            const int64_t ts = walk.getColumn(0).getInt64();
            from = ts + 1;
            if (walk.getColumn(1).getInt() != 0) candidates.push_back(ts);
          }
          walk.reset();
        }
        more = read == batch;
        if (candidates.empty()) continue;
        writer.write([&] {
          SQLite::Statement remove(*db_, kSqlDeleteDatapoints);
          remove.bind(1, series_id);
          remove.bind(2, Json(candidates).dump());
          report.datapoints += remove.exec();
        });
      }
    }
    return report;
  });
}

PruneReport Journal::release_free_pages(const std::atomic<bool>* stop) {
  return with_journal_errors(path_, "give free pages back", "", [&] {
    PruneReport report;
    PruneWriter writer(*db_, report);
    for (;;) {
      if (stopping(stop)) return report.complete = false, report;
      const int64_t free_pages = db_->execAndGet("PRAGMA freelist_count").getInt64();
      if (free_pages == 0) return report;
      writer.write([&] {
        SQLite::Statement vacuum(*db_, "PRAGMA incremental_vacuum(" + std::to_string(kVacuumStep) + ")");
        while (vacuum.executeStep()) {
        }
      });
      report.pages += std::min<int64_t>(free_pages, kVacuumStep);
    }
  });
}

std::vector<std::string> Journal::explain_pruning() {
  const std::pair<const char*, std::string> statements[] = {
      {"prune/appended_walk", kSqlAppendedWalk},   {"prune/message_walk", kSqlMessageWalk},
      {"prune/still_prunable", kSqlStillPrunable}, {"prune/deliveries", kSqlDeleteDeliveries},
      {"prune/messages", kSqlDeleteMessages},      {"prune/appended", kSqlDeleteAppended},
      {"prune/datapoint_walk", kSqlDatapointWalk}, {"prune/datapoints", kSqlDeleteDatapoints}};
  return with_journal_errors(path_, "explain pruning", "", [&] {
    std::vector<std::string> lines;
    for (const auto& [name, sql] : statements) {
      SQLite::Statement plan(*db_, "EXPLAIN QUERY PLAN " + sql);
      while (plan.executeStep()) lines.push_back(std::string(name) + ": " + plan.getColumn(3).getString());
    }
    return lines;
  });
}

int64_t Journal::bytes_in_use() {
  return with_journal_errors(path_, "measure its size", "", [&] { return detail::bytes_in_use(*db_); });
}

}  // namespace gapless::journal
