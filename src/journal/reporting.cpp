// Reporting: what the journal holds, read without changing it: status
// (from the counters, invariant 7), the parked destinations and messages, and
// the query plans of the hot paths (QUERY PLANS in format.hpp).

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>

#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journal/journal_cache.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

using Json = nlohmann::json;

struct HotPath {
  const char* name;
  const char* sql;
};

// Every query that touches message or delivery, for explain_hot_paths().
constexpr HotPath kHotPaths[] = {
    {"append/duplicate", kSqlInsertMessage},
    {"append/last_id", kSqlLastMessageId},
    {"append/deliveries", kSqlInsertDeliveries},
    {"claim/ids", kSqlClaimIds},
    {"claim/rows", kSqlClaimRows},
    {"mark_delivered", kSqlMarkDelivered},
    {"mark_delivered/counted", kSqlUndeliveredOf},
    {"park_message", kSqlParkMessage},
    {"park_destination", kSqlParkDestinationRows},
    {"requeue_probe/candidate", kSqlProbeCandidate},
    {"requeue_probe/release", kSqlReleaseOne},
    {"retry_parked/sink", kSqlReleaseSink},
    {"retry_parked/destination", kSqlReleaseSinkDestination},
    {"parked_messages", kSqlParkedMessages},
    {"status/counts", kSqlStatusCounts},
    {"status/oldest", kSqlOldestInState},
    {"status/journaled_ms", kSqlJournaledMs},
    {"append/appended", kSqlRecordAppended},
    {"resend/appended", kSqlAppendedInWindow},
};

std::vector<ParkedDestination> read_parked_destinations(SQLite::Database& db, std::optional<std::string_view> sink) {
  SQLite::Statement query(db, kSqlParkedDestinations);
  if (!means_every(sink)) query.bind(1, std::string(*sink));
  std::vector<ParkedDestination> parked;
  while (query.executeStep()) {
    ParkedDestination p;
    p.sink = query.getColumn(0).getString();
    p.destination = query.getColumn(1).getString();
    p.reason = query.getColumn(2).getString();
    p.parked_at_ms = query.getColumn(3).getInt64();
    p.next_retry_ms = query.getColumn(4).getInt64();
    p.attempts = query.getColumn(5).getInt64();
    parked.push_back(std::move(p));
  }
  return parked;
}

}  // namespace

std::vector<ParkedDestination> Journal::parked_destinations(std::optional<std::string_view> sink) {
  return with_journal_errors(path_, "parked_destinations", "", [&] { return read_parked_destinations(*db_, sink); });
}

std::vector<ParkedMessage> Journal::parked_messages(std::string_view sink, size_t max) {
  return with_journal_errors(path_, "parked_messages", "", [&] {
    const int64_t sink_key = sink_id(sink);
    SQLite::Statement query(*db_, kSqlParkedMessages);
    query.bind(1, sink_key);
    query.bind(2, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
    std::vector<ParkedMessage> parked;
    while (query.executeStep()) {
      ParkedMessage p;
      p.id = query.getColumn(0).getInt64();
      p.gapless_id = query.getColumn(1).getString();
      p.destination = query.getColumn(2).getString();
      p.reason = text_of(query.getColumn(3));
      p.attempts = query.getColumn(4).getInt64();
      p.updated_ms = query.getColumn(5).getInt64();
      parked.push_back(std::move(p));
    }
    return parked;
  });
}

std::vector<SinkStatus> Journal::status() {
  return with_journal_errors(path_, "status", "", [&] {
    struct Entry {
      DestinationStatus status;
      int64_t sink_id = 0;
      int64_t destination_id = 0;
    };
    std::map<std::string, std::map<std::string, Entry>> sinks;  // sorted by sink, then destination
    auto snapshot = begin_read(*db_);

    std::map<std::string, std::optional<std::vector<std::string>>> accept;  // invariant 3, as registered
    SQLite::Statement all_sinks(*db_, kSqlStatusSinks);  // every sink, even one without messages
    while (all_sinks.executeStep()) {
      const std::string name = all_sinks.getColumn(0).getString();
      sinks[name];
      if (!all_sinks.isColumnNull(1)) {
        const Json list = Json::parse(all_sinks.getColumn(1).getString(), nullptr, /*allow_exceptions=*/false);
        std::vector<std::string>& entries = accept[name].emplace();
        if (list.is_array())
          for (const Json& entry : list)
            if (entry.is_string()) entries.push_back(entry.get<std::string>());
      }
    }

    {
      ResetAfterUse counts(cache_->status_counts);  // invariant 7: counters, not rows
      while (counts->executeStep()) {
        Entry& entry = sinks[counts->getColumn(0).getString()][counts->getColumn(1).getString()];
        entry.sink_id = counts->getColumn(2).getInt64();
        entry.destination_id = counts->getColumn(3).getInt64();
        const int64_t count = counts->getColumn(5).getInt64();
        switch (counts->getColumn(4).getInt()) {
          case kPending: entry.status.pending = count; break;
          case kDelivered: entry.status.delivered = count; break;
          case kParked: entry.status.parked = count; break;
          default: break;  // excluded by the CHECK on delivery.state
        }
      }
    }
    for (ParkedDestination& parked : read_parked_destinations(*db_, std::nullopt))
      sinks[parked.sink][parked.destination].status.parked_destination = std::move(parked);

    std::vector<SinkStatus> result;
    for (auto& [sink_name, destinations] : sinks) {
      SinkStatus sink_status{sink_name, {}, accept[sink_name]};
      for (auto& [destination_name, entry] : destinations) {
        DestinationStatus& s = entry.status;
        if (s.pending + s.delivered + s.parked == 0 && !s.parked_destination) continue;  // e.g. all pruned
        s.destination = destination_name;
        if (s.pending + s.parked > 0) {
          const auto oldest = cache_->oldest_undelivered(entry.sink_id, entry.destination_id);
          s.oldest_pending_ms = oldest.pending_ms;
          s.oldest_undelivered_ms = oldest.undelivered_ms;
        }
        sink_status.destinations.push_back(std::move(s));
      }
      result.push_back(std::move(sink_status));
    }
    snapshot.commit();
    return result;
  });
}

std::vector<std::string> Journal::explain_hot_paths() {
  return with_journal_errors(path_, "explain_hot_paths", "", [&] {
    std::vector<std::string> lines;
    for (const HotPath& path : kHotPaths) {
      SQLite::Statement plan(*db_, std::string("EXPLAIN QUERY PLAN ") + path.sql);
      while (plan.executeStep()) lines.push_back(std::string(path.name) + ": " + plan.getColumn(3).getString());
    }
    return lines;
  });
}

}  // namespace gapless::journal
