// What the journal's unit tests share: building messages and collected
// reads, claiming, reading a journal's delivery counts both ways (status, and
// a count of the rows), a table's rows, archive polls, and the ids a resend
// window selects, so each test file states only its own cases.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "osg/message_time.hpp"
#include "support/journal_sql.hpp"

namespace gapless::test {

inline journal::NewMessage message(std::string gapless_id, std::string destination = "/topic/a",
                                   journal::Priority priority = journal::Priority::live) {
  journal::NewMessage m;
  m.gapless_id = std::move(gapless_id);
  m.destination = std::move(destination);
  m.headers = {{"event-type", "throughput"}};
  m.body = "{\"value\": 1}";
  m.priority = priority;
  return m;
}

// Appends `count` messages named "<prefix>-<i>" and returns their gapless-ids.
inline std::vector<std::string> append_many(journal::Journal& journal, const std::string& prefix, int count,
                                            const std::string& destination = "/topic/a",
                                            journal::Priority priority = journal::Priority::live) {
  std::vector<journal::NewMessage> batch;
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    ids.push_back(prefix + "-" + std::to_string(i));
    batch.push_back(message(ids.back(), destination, priority));
  }
  const auto result = journal.append(batch);
  REQUIRE(result.appended == count);
  return ids;
}

inline std::vector<std::string> gapless_ids(const std::vector<journal::Message>& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.gapless_id);
  return ids;
}

inline std::vector<int64_t> journal_ids(const std::vector<journal::Message>& messages) {
  std::vector<int64_t> ids;
  for (const auto& m : messages) ids.push_back(m.id);
  return ids;
}

inline std::vector<journal::Message> claim_all(journal::Journal& journal, const std::string& sink) {
  return journal.claim(sink, 1'000'000, {});
}

// The status line of one destination, or zeros when status does not list it.
inline journal::DestinationStatus status_of(journal::Journal& journal, const std::string& sink,
                                            const std::string& destination) {
  for (const auto& s : journal.status())
    if (s.sink == sink)
      for (const auto& d : s.destinations)
        if (d.destination == destination) return d;
  return {};
}

// One integer a query reads from the journal's file (a second connection).
inline int64_t count_rows(journal::Journal& journal, const std::string& sql) {
  return JournalSql(journal.path()).integer(sql);
}

// Delivery rows of one (sink, destination) by state (pending, delivered,
// parked), and the journal time of its oldest undelivered message.
struct Counts {
  std::array<int64_t, 3> by_state{};
  std::optional<int64_t> oldest_undelivered_ms;
  bool operator==(const Counts&) const = default;
};
using CountsBySinkDestination = std::map<std::pair<std::string, std::string>, Counts>;

// As status() reports them (from the counters), leaving out what has no rows.
inline CountsBySinkDestination counts_from_status(journal::Journal& journal) {
  CountsBySinkDestination counts;
  for (const auto& s : journal.status())
    for (const auto& d : s.destinations) {
      if (d.pending + d.delivered + d.parked == 0) continue;
      counts[{s.sink, d.destination}] = Counts{{d.pending, d.delivered, d.parked}, d.oldest_undelivered_ms};
    }
  return counts;
}

// As the delivery rows of the journal file hold them, counted.
inline CountsBySinkDestination counts_from_rows(const std::string& journal_path) {
  JournalSql sql(journal_path);
  CountsBySinkDestination counts;
  SQLite::Statement rows(sql.database(),
                         "SELECT sink.name, destination.name, delivery.state, count(*) FROM delivery "
                         "JOIN sink ON sink.id = delivery.sink_id "
                         "JOIN destination ON destination.id = delivery.destination_id GROUP BY 1, 2, 3");
  while (rows.executeStep())
    counts[{rows.getColumn(0).getString(), rows.getColumn(1).getString()}].by_state.at(rows.getColumn(2).getInt()) =
        rows.getColumn(3).getInt64();
  SQLite::Statement oldest(sql.database(),
                           "SELECT sink.name, destination.name, message.journaled_ms FROM "
                           "(SELECT sink_id, destination_id, min(message_id) AS oldest FROM delivery "
                           " WHERE state IN (0, 2) GROUP BY 1, 2) AS undelivered "
                           "JOIN sink ON sink.id = undelivered.sink_id "
                           "JOIN destination ON destination.id = undelivered.destination_id "
                           "JOIN message ON message.id = undelivered.oldest");
  while (oldest.executeStep())
    counts[{oldest.getColumn(0).getString(), oldest.getColumn(1).getString()}].oldest_undelivered_ms =
        oldest.getColumn(2).getInt64();
  return counts;
}

inline CountsBySinkDestination counts_from_rows(journal::Journal& journal) { return counts_from_rows(journal.path()); }

// Every row of a table, each as its columns' text, sorted: what a migration must keep.
inline std::vector<std::string> rows_of(SQLite::Database& db, const std::string& table) {
  SQLite::Statement query(db, "SELECT * FROM " + table);
  std::vector<std::string> rows;
  while (query.executeStep()) {
    std::string row;
    for (int i = 0; i < query.getColumnCount(); ++i)
      row += (i == 0 ? "" : "|") + (query.isColumnNull(i) ? std::string("NULL") : query.getColumn(i).getString());
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

const std::string kArchiveUrl = "https://psds.example.org/esmond/perfsonar/archive/";

inline journal::ArchivePoll archive_poll(int64_t polled_ms, std::map<std::string, int64_t> failures = {},
                                         int64_t points = 0, std::string error = "", bool complete = true,
                                         const std::string& url = kArchiveUrl) {
  journal::ArchivePoll poll;
  poll.archive_url = url;
  poll.name = "psds";
  poll.polled_ms = polled_ms;
  poll.complete = complete;
  poll.points_journaled = points;
  poll.failures = std::move(failures);
  poll.last_error = std::move(error);
  return poll;
}

inline journal::ArchiveHealth health_of(const journal::Journal& journal, const std::string& url = kArchiveUrl) {
  for (const journal::ArchiveHealth& health : journal.archive_health())
    if (health.archive_url == url) return health;
  FAIL("no health recorded for " << url);
  return {};
}

// With its window time as `gapless ingest` gives it (osg::message_time).
inline journal::NewMessage with_headers(std::string gapless_id, journal::Headers headers,
                                        std::string destination = "/topic/perfsonar.raw.throughput") {
  journal::NewMessage m = message(std::move(gapless_id), std::move(destination));
  m.headers = std::move(headers);
  m.window_ts = osg::message_time(m.headers);
  return m;
}

inline int64_t id_of(journal::Journal& journal, const std::string& gapless_id) {
  JournalSql sql(journal.path());
  SQLite::Statement query(sql.database(), "SELECT id FROM message WHERE gapless_id = ?1");
  query.bind(1, gapless_id);
  if (!query.executeStep()) FAIL("no message " << gapless_id);
  return query.getColumn(0).getInt64();
}

// Journal ids, ascending, as appended_messages() returns them.
inline std::vector<int64_t> ids_of(journal::Journal& journal, const std::vector<std::string>& gapless_ids) {
  std::vector<int64_t> ids;
  for (const std::string& gapless_id : gapless_ids) ids.push_back(id_of(journal, gapless_id));
  std::sort(ids.begin(), ids.end());
  return ids;
}

inline journal::AppendedSelection window(int64_t from, int64_t to) {
  journal::AppendedSelection selection;
  selection.from = from;
  selection.to = to;
  return selection;
}

inline int64_t journaled_second(journal::Journal& journal, const std::string& gapless_id) {
  const int64_t id = id_of(journal, gapless_id);
  return count_rows(journal, "SELECT journaled_ms FROM message WHERE id = " + std::to_string(id)) / 1000;
}

// One read of a series: messages[i] carries the datapoint at ts[i]. (The
// one-message form is in support/collected_read.hpp.)
inline journal::Collected collected_read(int64_t series_id, std::vector<journal::NewMessage> messages,
                                         const std::vector<int64_t>& ts) {
  journal::Collected collected;
  collected.series_id = series_id;
  collected.messages = std::move(messages);
  for (size_t i = 0; i < ts.size(); ++i)
    collected.datapoints.push_back({ts[i], std::string(31, 'a') + static_cast<char>('0' + i), i});
  collected.read_from = *std::min_element(ts.begin(), ts.end());
  collected.read_to = *std::max_element(ts.begin(), ts.end()) + 1;
  collected.points_read = static_cast<int64_t>(ts.size());
  return collected;
}

}  // namespace gapless::test
