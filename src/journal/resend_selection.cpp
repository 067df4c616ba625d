// Resend's selection: which journaled messages of a window a resend queues
// again. Collected ones by their datapoints (invariant 12), appended ones by
// appended_message (invariant 15); the caller states any format's rules as
// generic conditions (AppendedSelection).

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "journal/journal.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

using Json = nlohmann::json;

}  // namespace

std::vector<int64_t> Journal::messages_of_series(const std::vector<int64_t>& series_ids, int64_t ts_from,
                                                 int64_t ts_to) {
  return with_journal_errors(path_, "messages_of_series", "", [&] {
    auto snapshot = begin_read(*db_);
    SQLite::Statement query(*db_, kSqlMessagesOfSeries);
    std::vector<int64_t> ids;
    for (const int64_t series_id : series_ids) {
      query.reset();
      query.bind(1, series_id);
      query.bind(2, ts_from);
      query.bind(3, ts_to);
      while (query.executeStep()) ids.push_back(query.getColumn(0).getInt64());
    }
    snapshot.commit();
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  });
}

std::vector<int64_t> Journal::appended_messages(const AppendedSelection& selection) {
  return with_journal_errors(path_, "appended_messages", "", [&] {
    SQLite::Statement query(*db_, kSqlAppendedInWindow);
    query.bind(1, selection.from);
    query.bind(2, selection.to);
    if (!selection.conditions.empty()) {
      Json conditions = Json::array();
      for (const MessageCondition& condition : selection.conditions) {
        Json headers = Json::array();
        for (const auto& [name, values] : condition.header_values)
          for (const std::string& value : values) headers.push_back(Json::array({name, value}));
        Json required = Json::object();
        required["destinations"] = condition.destinations;
        required["headers"] = std::move(headers);
        conditions.push_back(std::move(required));
      }
      query.bind(3, conditions.dump());
    }
    std::vector<int64_t> ids;
    while (query.executeStep()) ids.push_back(query.getColumn(0).getInt64());
    std::sort(ids.begin(), ids.end());  // window order, see kSqlAppendedInWindow
    return ids;
  });
}

}  // namespace gapless::journal
