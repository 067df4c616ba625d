// The collector's side of the journal: series (with their cursors), coverage
// and datapoints. The tables and invariants 11 to 13 are described with the
// rest of the format at the top of format.hpp.

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/hex.hpp"
#include "journal/journal.hpp"
#include "journal/journal_cache.hpp"
#include "journal/series_description.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

constexpr const char* kSqlUpdateMetadata = "UPDATE series SET metadata = ?2, updated_ms = ?3 WHERE id = ?1";
constexpr const char* kSqlSeriesOfArchive =
    "SELECT id, metadata_key, event_type, summary_type, summary_window, metadata, cursor_ts FROM series "
    "WHERE archive_url = ?1 ORDER BY metadata_key, event_type, summary_type, summary_window";

// Invariant 13: the rows that overlap or touch [?2, ?3), merged into one.
constexpr const char* kSqlTouchingCoverage =
    "SELECT ts_from, ts_to, points FROM coverage WHERE series_id = ?1 AND ts_from <= ?3 AND ts_to >= ?2";
constexpr const char* kSqlDeleteCoverage = "DELETE FROM coverage WHERE series_id = ?1 AND ts_from = ?2";
constexpr const char* kSqlInsertCoverage =
    "INSERT INTO coverage(series_id, ts_from, ts_to, points, read_ms) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kSqlCoverage =
    "SELECT ts_from, ts_to, points FROM coverage WHERE series_id = ?1 AND ts_from < ?3 AND ts_to > ?2 "
    "ORDER BY ts_from";

// The one coverage row holding all of [?2, ?3), if any (rows never overlap).
constexpr const char* kSqlCovering =
    "SELECT 1 FROM coverage WHERE series_id = ?1 AND ts_from <= ?2 AND ts_to >= ?3";
constexpr const char* kSqlCursor = "SELECT cursor_ts FROM series WHERE id = ?1";

// Invariant 11: forward only.
constexpr const char* kSqlAdvanceCursor =
    "UPDATE series SET cursor_ts = max(coalesce(cursor_ts, ?2), ?2), updated_ms = ?3 WHERE id = ?1";

// Digests are 32 hex digits in memory (osg::datapoint_digest) and 16 bytes on
// disk: the datapoint table has a row per datapoint ever collected.
std::string digest_bytes(const std::string& hex, int64_t series_id, int64_t ts) {
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes(hex.size() / 2, '\0');
  bool valid = hex.size() == 32;
  for (size_t i = 0; valid && i < bytes.size(); ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    valid = high >= 0 && low >= 0;
    bytes[i] = static_cast<char>(high * 16 + low);
  }
  if (!valid)
    throw Error("series " + std::to_string(series_id) + " ts " + std::to_string(ts) + ": digest \"" + hex +
                "\" is not 32 hex digits");
  return bytes;
}

void bind_key(SQLite::Statement& statement, const SeriesKey& key) {
  statement.bind(1, key.archive_url);
  statement.bind(2, key.metadata_key);
  statement.bind(3, key.event_type);
  statement.bind(4, key.summary_type);
  statement.bind(5, key.summary_window);
}

// Invariant 13.
void add_coverage(SQLite::Database& db, int64_t series_id, int64_t from, int64_t to, int64_t points, int64_t now) {
  int64_t merged_from = from;
  int64_t merged_to = to;
  int64_t merged_points = points;
  std::vector<int64_t> replaced;
  {
    SQLite::Statement touching(db, kSqlTouchingCoverage);
    touching.bind(1, series_id);
    touching.bind(2, from);
    touching.bind(3, to);
    while (touching.executeStep()) {
      const int64_t row_from = touching.getColumn(0).getInt64();
      const int64_t row_to = touching.getColumn(1).getInt64();
      merged_from = std::min(merged_from, row_from);
      merged_to = std::max(merged_to, row_to);
      // Points of a re-read range are counted again; `points` is what was
      // read, an indication for operators, not a count of distinct datapoints.
      merged_points += touching.getColumn(2).getInt64();
      replaced.push_back(row_from);
    }
  }
  SQLite::Statement remove(db, kSqlDeleteCoverage);
  for (const int64_t row_from : replaced) {
    remove.reset();
    remove.bind(1, series_id);
    remove.bind(2, row_from);
    remove.exec();
  }
  SQLite::Statement insert(db, kSqlInsertCoverage);
  insert.bind(1, series_id);
  insert.bind(2, merged_from);
  insert.bind(3, merged_to);
  insert.bind(4, merged_points);
  insert.bind(5, now);
  insert.exec();
}

// A read that brought nothing new: no message, no datapoint, a cursor that
// would not move and a range already covered. Most polls of a live series are
// such reads; skipping their write transaction (and its fsync) keeps the
// write lock free for a backfill beside the daemon and the daemon free of
// waits behind it. Decided from a read: the answer cannot be made wrong by a
// later writer, because coverage only grows (invariant 13), and a cursor only
// moves forward (invariant 11).
bool changes_nothing(SQLite::Database& db, const Collected& collected) {
  if (!collected.messages.empty() || !collected.datapoints.empty()) return false;
  if (collected.cursor_ts) {
    SQLite::Statement cursor(db, kSqlCursor);
    cursor.bind(1, collected.series_id);
    // An unknown series is not "nothing": the write names the missing id.
    if (!cursor.executeStep() || cursor.isColumnNull(0) || cursor.getColumn(0).getInt64() < *collected.cursor_ts)
      return false;
  }
  if (collected.read_to > collected.read_from) {
    SQLite::Statement covering(db, kSqlCovering);
    covering.bind(1, collected.series_id);
    covering.bind(2, collected.read_from);
    covering.bind(3, collected.read_to);
    if (!covering.executeStep()) return false;
  }
  return true;
}

}  // namespace

Series Journal::register_series(const SeriesKey& key, std::string_view metadata_json) {
  return with_journal_errors(path_, "register_series", kNothingChanged, [&] {
    if (key.archive_url.empty() || key.metadata_key.empty() || key.event_type.empty())
      throw Error(context(path_, "register_series") + describe(key) + ": archive URL, metadata key and event type "
                  "are required; " + std::string(kNothingChanged));
    // Most calls find the series unchanged: a read, no write lock.
    if (std::optional<Series> found = find_series(key); found && found->metadata == metadata_json) return *found;
    Series series;
    series.key = key;
    series.metadata = std::string(metadata_json);
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t now = unix_now_ms();
    // Found again under the write lock: another process may have registered it since.
    if (std::optional<Series> found = find_series(key)) {
      series.id = found->id;
      series.cursor_ts = found->cursor_ts;
      SQLite::Statement update(*db_, kSqlUpdateMetadata);
      update.bind(1, series.id);
      update.bind(2, series.metadata);
      update.bind(3, now);
      update.exec();
    } else {
      SQLite::Statement insert(*db_, kSqlInsertSeries);
      bind_key(insert, key);
      insert.bind(6, series.metadata);
      insert.bind(7, now);
      insert.exec();
      series.id = db_->getLastInsertRowid();
      spdlog::debug("journal: new series path={} id={} {}", path_, series.id, describe(key));
    }
    transaction.commit();
    return series;
  });
}

std::optional<Series> Journal::find_series(const SeriesKey& key) {
  return with_journal_errors(path_, "find_series", "", [&]() -> std::optional<Series> {
    ResetAfterUse find(cache_->find_series);
    bind_key(cache_->find_series, key);
    if (!find->executeStep()) return std::nullopt;
    Series series;
    series.id = find->getColumn(0).getInt64();
    series.key = key;
    series.metadata = find->getColumn(1).getString();
    if (!find->isColumnNull(2)) series.cursor_ts = find->getColumn(2).getInt64();
    return series;
  });
}

std::vector<Series> Journal::series_of_archive(std::string_view archive_url) {
  return with_journal_errors(path_, "series_of_archive", "", [&] {
    SQLite::Statement query(*db_, kSqlSeriesOfArchive);
    query.bind(1, std::string(archive_url));
    std::vector<Series> all;
    while (query.executeStep()) {
      Series series;
      series.id = query.getColumn(0).getInt64();
      series.key.archive_url = std::string(archive_url);
      series.key.metadata_key = query.getColumn(1).getString();
      series.key.event_type = query.getColumn(2).getString();
      series.key.summary_type = query.getColumn(3).getString();
      series.key.summary_window = query.getColumn(4).getInt64();
      series.metadata = query.getColumn(5).getString();
      if (!query.isColumnNull(6)) series.cursor_ts = query.getColumn(6).getInt64();
      all.push_back(std::move(series));
    }
    return all;
  });
}

std::map<int64_t, std::string> Journal::datapoint_digests(int64_t series_id, int64_t ts_from, int64_t ts_to) {
  return with_journal_errors(path_, "datapoint_digests", "", [&] {
    SQLite::Statement query(*db_, kSqlDigests);
    query.bind(1, series_id);
    query.bind(2, ts_from);
    query.bind(3, ts_to);
    std::map<int64_t, std::string> digests;
    while (query.executeStep())
      digests.emplace_hint(digests.end(), query.getColumn(0).getInt64(), hex_of(bytes_of(query.getColumn(1))));
    return digests;
  });
}

AppendResult Journal::record_collected(const Collected& collected) {
  const std::string operation = "record_collected (series " + std::to_string(collected.series_id) + ")";
  return with_journal_errors(path_, operation,
                 "nothing of this read was journaled and the series' cursor did not move: it will be read again",
                 [&] {
    for (const CollectedDatapoint& point : collected.datapoints)
      if (point.message >= collected.messages.size())
        throw Error(context(path_, operation) + "datapoint at ts " + std::to_string(point.ts) +
                    " names message " + std::to_string(point.message) + " of " +
                    std::to_string(collected.messages.size()) + "; nothing was journaled");

    if (changes_nothing(*db_, collected)) return AppendResult{};

    auto transaction = begin_write(*db_, Durability::full);
    const int64_t now = unix_now_ms();
    const AppendResult result =
        append_with_datapoints(collected.series_id, collected.messages, collected.datapoints, now, operation);
    if (collected.read_to > collected.read_from)
      add_coverage(*db_, collected.series_id, collected.read_from, collected.read_to, collected.points_read, now);
    if (collected.cursor_ts) {  // invariant 11: with the messages it covers
      SQLite::Statement advance(*db_, kSqlAdvanceCursor);
      advance.bind(1, collected.series_id);
      advance.bind(2, *collected.cursor_ts);
      advance.bind(3, now);
      if (advance.exec() == 0)
        throw Error(context(path_, operation) + "no series has id " + std::to_string(collected.series_id));
    }
    transaction.commit();
    spdlog::debug("journal: collected path={} series={} messages={} duplicates={} datapoints={} cursor={}", path_,
                  collected.series_id, result.appended, result.duplicates, collected.datapoints.size(),
                  collected.cursor_ts ? std::to_string(*collected.cursor_ts) : "unchanged");
    return result;
  });
}

AppendResult Journal::append_with_datapoints(int64_t series_id, const std::vector<NewMessage>& messages,
                                             const std::vector<CollectedDatapoint>& datapoints, int64_t now,
                                             const std::string& operation) {
  const AppendResult result = append_in_transaction(messages, now);
  upsert_datapoints_in_transaction(series_id, datapoints, message_ids_in_transaction(messages, operation));
  return result;
}

std::vector<int64_t> Journal::message_ids_in_transaction(const std::vector<NewMessage>& messages,
                                                         const std::string& operation) {
  std::vector<int64_t> message_ids(messages.size(), 0);
  SQLite::Statement& lookup = cache_->message_id;
  for (size_t i = 0; i < messages.size(); ++i) {
    ResetAfterUse reset(lookup);
    lookup.bind(1, messages[i].gapless_id);
    if (!lookup.executeStep())
      throw Error(context(path_, operation) + "message " + messages[i].gapless_id +
                  " is missing right after its append");
    message_ids[i] = lookup.getColumn(0).getInt64();
  }
  return message_ids;
}

void Journal::upsert_datapoints_in_transaction(int64_t series_id, const std::vector<CollectedDatapoint>& datapoints,
                                               const std::vector<int64_t>& message_ids) {
  SQLite::Statement& upsert = cache_->upsert_datapoint;  // invariant 12
  for (const CollectedDatapoint& point : datapoints) {
    const std::string digest = digest_bytes(point.digest, series_id, point.ts);
    ResetAfterUse reset(upsert);
    upsert.bind(1, series_id);
    upsert.bind(2, point.ts);
    upsert.bind(3, digest.data(), static_cast<int>(digest.size()));
    upsert.bind(4, message_ids[point.message]);
    upsert.exec();
  }
}

std::pair<int64_t, std::vector<bool>> Journal::pushed_series_fresh(const PushedSeries& pushed, int64_t now) {
  const std::string operation = "record_pushed (" + describe(pushed.key) + ")";
  if (pushed.key.archive_url.empty() || pushed.key.metadata_key.empty() || pushed.key.event_type.empty())
    throw Error(context(path_, operation) + "archive URL, metadata key and event type are required");
  for (const CollectedDatapoint& point : pushed.datapoints)
    if (point.message >= pushed.messages.size())
      throw Error(context(path_, operation) + "datapoint at ts " + std::to_string(point.ts) + " names message " +
                  std::to_string(point.message) + " of " + std::to_string(pushed.messages.size()));

  // The series, registered when new; an existing one keeps the metadata its
  // archive (or an earlier push) gave it.
  const SeriesKey& key = pushed.key;
  int64_t& series_id = cache_->pushed_series[{key.archive_url, key.metadata_key, key.event_type, key.summary_type,
                                              key.summary_window}];
  if (series_id == 0) {
    ResetAfterUse find(cache_->find_series);
    bind_key(cache_->find_series, key);
    if (find->executeStep()) {
      series_id = find->getColumn(0).getInt64();
    } else {
      ResetAfterUse insert(cache_->insert_series);
      bind_key(cache_->insert_series, key);
      insert->bind(6, pushed.metadata);
      insert->bind(7, now);
      insert->exec();
      series_id = db_->getLastInsertRowid();
    }
  }

  // A message every datapoint of which is journaled already with the same
  // digest adds nothing (a backfill or an earlier push brought it).
  std::vector<bool> fresh(pushed.messages.size(), true);
  for (const CollectedDatapoint& point : pushed.datapoints) fresh[point.message] = false;
  SQLite::Statement& known = cache_->digests;
  for (const CollectedDatapoint& point : pushed.datapoints) {
    ResetAfterUse reset(known);
    known.bind(1, series_id);
    known.bind(2, point.ts);
    known.bind(3, point.ts);
    if (!known.executeStep() || hex_of(bytes_of(known.getColumn(1))) != point.digest) fresh[point.message] = true;
  }
  return {series_id, fresh};
}

std::vector<CoveredRange> Journal::coverage(int64_t series_id, int64_t ts_from, int64_t ts_to) {
  return with_journal_errors(path_, "coverage", "", [&] {
    SQLite::Statement query(*db_, kSqlCoverage);
    query.bind(1, series_id);
    query.bind(2, ts_from);
    query.bind(3, ts_to);
    std::vector<CoveredRange> ranges;
    while (query.executeStep())
      ranges.push_back({query.getColumn(0).getInt64(), query.getColumn(1).getInt64(), query.getColumn(2).getInt64()});
    return ranges;
  });
}

std::string describe(const SeriesKey& key) {
  std::string text =
      "archive " + key.archive_url + " metadata-key " + key.metadata_key + " event-type " + key.event_type;
  if (key.summary_type.empty()) return text + " (base data)";
  return text + " (summary " + key.summary_type + " " + std::to_string(key.summary_window) + ")";
}

}  // namespace gapless::journal
