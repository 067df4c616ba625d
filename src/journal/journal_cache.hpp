// Journal::Cache: what one connection keeps between calls, the prepared
// statements of the frequent operations and the ids of sinks. Internal to
// src/journal. Sinks are never deleted (invariant 3), so an id once read stays true.
// Destination ids are cached per append batch only: a destination inserted
// by a transaction that then rolls back must not outlive it here.

#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <map>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {

struct Journal::Cache {
  explicit Cache(SQLite::Database& database)
      : db(database),
        sink_id(db, detail::kSqlSinkId),
        all_sink_ids(db, detail::kSqlAllSinkIds),
        sink_registry(db, detail::kSqlSinkRegistry),
        destination_id(db, detail::kSqlDestinationId),
        insert_destination(db, detail::kSqlInsertDestination),
        insert_message(db, detail::kSqlInsertMessage),
        last_message_id(db, detail::kSqlLastMessageId),
        insert_deliveries(db, detail::kSqlInsertDeliveries),
        record_appended(db, detail::kSqlRecordAppended),
        claim_ids(db, detail::kSqlClaimIds),
        claim_rows(db, detail::kSqlClaimRows),
        mark_delivered(db, detail::kSqlMarkDelivered),
        undelivered_of(db, detail::kSqlUndeliveredOf),
        count_leave(db, detail::kSqlCountLeave),
        count_delivered(db, detail::kSqlCountDelivered),
        status_counts(db, detail::kSqlStatusCounts),
        oldest_in_state(db, detail::kSqlOldestInState),
        journaled_ms(db, detail::kSqlJournaledMs),
        find_series(db, detail::kSqlFindSeries),
        insert_series(db, detail::kSqlInsertSeries),
        digests(db, detail::kSqlDigests),
        message_id(db, detail::kSqlMessageId),
        upsert_datapoint(db, detail::kSqlUpsertDatapoint) {}

  std::optional<int64_t> find_sink(std::string_view name) {
    if (auto it = sink_ids.find(name); it != sink_ids.end()) return it->second;
    detail::ResetAfterUse query(sink_id);
    query->bind(1, std::string(name));
    if (!query->executeStep()) return std::nullopt;
    const int64_t id = query->getColumn(0).getInt64();
    sink_ids.emplace(std::string(name), id);
    return id;
  }

  std::vector<int64_t> registered_sinks() {
    detail::ResetAfterUse query(all_sink_ids);
    std::vector<int64_t> ids;
    while (query->executeStep()) ids.push_back(query->getColumn(0).getInt64());
    return ids;
  }

  // Invariant 3: the sinks a new message gets rows for (not retired), with
  // the filters they take, read once per append transaction (another process
  // may have registered a list since). The parsed lists are kept by their
  // text, so a transaction parses only a list it has not seen.
  struct Taker {
    int64_t id = 0;
    std::string name;
    const std::optional<std::vector<std::string>>* accept = nullptr;  // nothing: every destination
  };
  std::vector<Taker> takers() {
    detail::ResetAfterUse query(sink_registry);
    std::vector<Taker> found;
    while (query->executeStep()) {
      Taker taker{query->getColumn(0).getInt64(), query->getColumn(1).getString(), &kEveryDestination};
      if (!query->isColumnNull(2)) {
        const std::string text = query->getColumn(2).getString();
        auto it = accept_lists.find(text);
        if (it == accept_lists.end()) it = accept_lists.emplace(text, parse_accept(text, taker.name)).first;
        taker.accept = &it->second;
      }
      found.push_back(std::move(taker));
    }
    return found;
  }

  std::optional<int64_t> find_destination(std::string_view name) {
    detail::ResetAfterUse query(destination_id);
    query->bind(1, std::string(name));
    if (!query->executeStep()) return std::nullopt;
    return query->getColumn(0).getInt64();
  }

  // The largest message id; inside a write transaction, every message
  // appended after this call has a larger one (invariant 10).
  int64_t max_message_id() {
    detail::ResetAfterUse query(last_message_id);
    query->executeStep();
    return query->getColumn(0).getInt64();
  }

  // Inside a write transaction.
  int64_t intern_destination(std::string_view name) {
    if (auto id = find_destination(name)) return *id;
    detail::ResetAfterUse insert(insert_destination);
    insert->bind(1, std::string(name));
    insert->exec();
    return db.getLastInsertRowid();
  }

  // The journal times of the oldest pending message of (sink, destination)
  // and of the oldest pending or parked one: a seek for the smallest id in
  // each state, as one seek for "state IN (0, 2)" would give up the min()
  // shortcut and read the whole backlog. Ids grow with journal time
  // (invariant 10), so the smaller id is the older message.
  struct OldestUndelivered {
    std::optional<int64_t> pending_ms;
    std::optional<int64_t> undelivered_ms;
  };
  OldestUndelivered oldest_undelivered(int64_t sink, int64_t destination) {
    const auto oldest_id = [&](int state) -> std::optional<int64_t> {
      detail::ResetAfterUse query(oldest_in_state);
      query->bind(1, sink);
      query->bind(2, destination);
      query->bind(3, state);
      if (!query->executeStep() || query->isColumnNull(0)) return std::nullopt;
      return query->getColumn(0).getInt64();
    };
    const auto journaled = [&](std::optional<int64_t> id) -> std::optional<int64_t> {
      if (!id) return std::nullopt;
      detail::ResetAfterUse query(journaled_ms);
      query->bind(1, *id);
      if (!query->executeStep()) return std::nullopt;
      return query->getColumn(0).getInt64();
    };
    const std::optional<int64_t> pending = oldest_id(detail::kPending);
    const std::optional<int64_t> parked = oldest_id(detail::kParked);
    OldestUndelivered oldest;
    oldest.pending_ms = journaled(pending);
    if (parked && (!pending || *parked < *pending))
      oldest.undelivered_ms = journaled(parked);
    else
      oldest.undelivered_ms = oldest.pending_ms;
    return oldest;
  }

  SQLite::Database& db;
  SQLite::Statement sink_id, all_sink_ids, sink_registry, destination_id, insert_destination;
  SQLite::Statement insert_message, last_message_id, insert_deliveries, record_appended;
  SQLite::Statement claim_ids, claim_rows, mark_delivered, undelivered_of, count_leave, count_delivered;
  SQLite::Statement status_counts, oldest_in_state, journaled_ms;
  SQLite::Statement find_series, insert_series, digests, message_id, upsert_datapoint;  // series.cpp
  std::map<std::string, int64_t, std::less<>> sink_ids;
  // The series ids record_pushed found or inserted in its transaction, by
  // key: the runs of a group share their series (one per test and event
  // type). Cleared as each record_pushed begins: a series inserted by a
  // transaction that rolled back must not outlive it here.
  std::map<std::tuple<std::string, std::string, std::string, std::string, int64_t>, int64_t> pushed_series;
  std::map<std::string, std::optional<std::vector<std::string>>> accept_lists;  // by sink.accept's text
  static inline const std::optional<std::vector<std::string>> kEveryDestination;

 private:
  // sink.accept's JSON text; a list another program wrote badly takes
  // nothing, with an error, rather than everything.
  static std::optional<std::vector<std::string>> parse_accept(const std::string& text, const std::string& sink) {
    const nlohmann::json list = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::vector<std::string> accept;
    if (list.is_array())
      for (const nlohmann::json& entry : list)
        if (entry.is_string()) accept.push_back(entry.get<std::string>());
    if (!list.is_array() || accept.size() != list.size())
      spdlog::error("journal: sink {} has a malformed accept list {} (a JSON array of strings expected); it takes "
                    "no new message until it is registered again", sink, text);
    return accept;
  }
};

}  // namespace gapless::journal
