// What the journal's unit tests share: building messages, reading a
// journal's delivery counts both ways (status, and a count of the rows) and
// a table's rows, so each test file states only its own case.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "support/journal_sql.hpp"

namespace gapless::test {

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

}  // namespace gapless::test
