// The delivery queue: append, claim, mark delivered, park, probe, retry and
// discard, the state machine of format.hpp (invariants 2 to 10).

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journal/journal_cache.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

using Json = nlohmann::json;

// Throws nlohmann::json::type_error on a header that is not valid UTF-8.
std::string encode_headers(const Headers& headers) {
  Json pairs = Json::array();
  for (const auto& [name, value] : headers) pairs.push_back(Json::array({name, value}));
  return pairs.dump();
}

Headers decode_headers(const std::string& text, const std::string& path, int64_t message_id) {
  const auto malformed = [&] {
    return Error(context(path, "claim") + "message " + std::to_string(message_id) +
                 " has malformed headers in the journal: " + text);
  };
  const Json pairs = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!pairs.is_array()) throw malformed();
  Headers headers;
  headers.reserve(pairs.size());
  for (const auto& pair : pairs) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) throw malformed();
    headers.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  }
  return headers;
}

}  // namespace

namespace {
constexpr std::string_view kNothingAppended =
    "nothing of this batch was written (appending it again is safe: gapless-ids already journaled are skipped)";
}  // namespace

AppendResult Journal::append(const std::vector<NewMessage>& messages) {
  return with_journal_errors(path_, "append", kNothingAppended, [&] {
    if (messages.empty()) return AppendResult{};
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t last_id_before = cache_->max_message_id();
    std::vector<size_t> appended;
    const AppendResult result = append_in_transaction(messages, unix_now_ms(), &appended);
    record_appended_in_transaction(messages, appended, last_id_before);
    transaction.commit();
    spdlog::debug("journal: appended path={} messages={} duplicates={}", path_, result.appended, result.duplicates);
    return result;
  });
}

void Journal::record_appended_in_transaction(const std::vector<NewMessage>& messages,
                                             const std::vector<size_t>& appended, int64_t last_id_before) {
  if (appended.empty()) return;  // invariant 15: in the batch's transaction
  Json window_times = Json::array();
  for (const size_t index : appended) {
    const std::optional<int64_t>& window_ts = messages[index].window_ts;
    window_times.push_back(window_ts ? Json(*window_ts) : Json(nullptr));
  }
  ResetAfterUse record(cache_->record_appended);
  record->bind(1, last_id_before);
  record->bind(2, window_times.dump());
  record->exec();
}

AppendResult Journal::append_in_transaction(const std::vector<NewMessage>& messages, int64_t now,
                                            std::vector<size_t>* appended) {
  const auto invalid = [&](size_t index, const std::string& why) {
    return Error(context(path_, "append") + "message " + std::to_string(index) + " of the batch " + why + "; " +
                 std::string(kNothingAppended));
  };

  // Everything that can be refused without the database, before writing.
  std::vector<std::string> headers(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const NewMessage& m = messages[i];
    if (m.gapless_id.empty()) throw invalid(i, "has no gapless-id");
    if (m.destination.empty()) throw invalid(i, "(gapless-id " + m.gapless_id + ") has no destination");
    const int priority = static_cast<int>(m.priority);
    if (priority < 0 || priority > 2)
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has an unknown priority " + std::to_string(priority));
    if (m.body.size() > static_cast<size_t>(INT_MAX))
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has a body larger than 2 GiB");
    try {
      headers[i] = encode_headers(m.headers);
    } catch (const Json::exception& e) {
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has a header that is not valid UTF-8: " + e.what());
    }
  }

  AppendResult result;
  if (messages.empty()) return result;

  // Invariant 3: the sinks that take each destination of the batch, matched
  // here against the registry read once per transaction, never per message.
  struct Destination {
    int64_t id = 0;
    std::vector<int64_t> sinks;
  };
  const std::vector<Cache::Taker> takers = cache_->takers();
  if (takers.empty())
    throw Error(context(path_, "append") + "no sink is registered (or every one is retired), so these messages "
                "would never be sent; " + std::string(kNothingAppended));
  std::unordered_map<std::string_view, Destination> destinations;  // this batch's
  bool all_take_all = true;
  for (const NewMessage& m : messages) {
    auto [destination, inserted] = destinations.try_emplace(m.destination);
    if (!inserted) continue;
    for (const Cache::Taker& taker : takers)
      if (!*taker.accept || accepts(**taker.accept, m.destination)) destination->second.sinks.push_back(taker.id);
    if (destination->second.sinks.empty()) {
      std::string registered;
      for (const Cache::Taker& taker : takers)
        registered += (registered.empty() ? "" : "; ") + ("sink " + taker.name + " accepts " +
                                                        (*taker.accept ? accept_text(**taker.accept) : "everything"));
      throw JournalError(Fault::other, context(path_, "append") + "no registered sink takes destination \"" +
                                           m.destination + "\" (" + registered +
                                           "): it would be journaled for nobody; " + std::string(kNothingAppended));
    }
    all_take_all = all_take_all && destination->second.sinks.size() == takers.size();
  }
  const int64_t last_id_before = cache_->max_message_id();

  for (size_t i = 0; i < messages.size(); ++i) {
    const NewMessage& m = messages[i];
    auto destination = destinations.find(m.destination);
    if (destination->second.id == 0) destination->second.id = cache_->intern_destination(m.destination);

    ResetAfterUse insert(cache_->insert_message);
    insert->bind(1, m.gapless_id);
    insert->bind(2, destination->second.id);
    insert->bind(3, headers[i]);
    insert->bind(4, m.body.data(), static_cast<int>(m.body.size()));
    insert->bind(5, static_cast<int>(m.priority));
    if (m.request_id) insert->bind(6, *m.request_id); else insert->bind(6);
    insert->bind(7, now);
    if (insert->exec() == 0) {  // invariant 2
      ++result.duplicates;
    } else {
      ++result.appended;
      if (appended != nullptr) appended->push_back(i);
    }
  }

  if (result.appended > 0) {  // invariants 3 and 9
    ResetAfterUse deliveries(cache_->insert_deliveries);
    deliveries->bind(1, last_id_before);
    deliveries->bind(2, now);
    if (all_take_all) {
      deliveries->bind(3);
    } else {
      Json pairs = Json::array();
      for (const auto& [name, destination] : destinations)
        for (const int64_t sink : destination.sinks) pairs.push_back(Json::array({sink, destination.id}));
      deliveries->bind(3, pairs.dump());
    }
    deliveries->exec();
  }
  return result;
}

std::vector<Message> Journal::claim(std::string_view sink, size_t max, const std::unordered_set<int64_t>& in_flight,
                                    int64_t max_bytes) {
  return with_journal_errors(path_, "claim", "", [&] {
    std::vector<Message> claimed;
    if (max == 0) return claimed;
    const int64_t sink_key = sink_id(sink);
    auto snapshot = begin_read(*db_);

    // Step 1: ids, from the covering index. Those in flight are still pending
    // on disk, so read past them.
    std::vector<int64_t> ids;
    {
      ResetAfterUse query(cache_->claim_ids);
      query->bind(1, sink_key);
      query->bind(2, static_cast<int64_t>(max + in_flight.size()));
      while (ids.size() < max && query->executeStep()) {
        const int64_t id = query->getColumn(0).getInt64();
        if (in_flight.count(id) == 0) ids.push_back(id);
      }
    }

    // Step 2: the messages, by primary key, in step 1's order (the CROSS
    // JOIN keeps it), until they hold max_bytes of bodies and headers: the
    // message that reaches the budget is the last one, and the first one is
    // always taken, whatever its size.
    if (ids.empty()) return claimed;
    claimed.reserve(ids.size());
    {
      ResetAfterUse row(cache_->claim_rows);
      row->bind(1, sink_key);
      row->bind(2, Json(ids).dump());
      int64_t bytes = 0;
      while (bytes < max_bytes && row->executeStep()) {
        Message m;
        m.id = row->getColumn(0).getInt64();
        m.gapless_id = row->getColumn(1).getString();
        m.destination = row->getColumn(2).getString();
        m.headers = decode_headers(row->getColumn(3).getString(), path_, m.id);
        m.body = bytes_of(row->getColumn(4));
        m.priority = static_cast<Priority>(row->getColumn(5).getInt());
        if (!row->isColumnNull(6)) m.resend_request_id = row->getColumn(6).getInt64();
        bytes += static_cast<int64_t>(m.body.size());
        for (const auto& [name, value] : m.headers) bytes += static_cast<int64_t>(name.size() + value.size());
        claimed.push_back(std::move(m));
      }
    }
    snapshot.commit();
    // Claim order (invariant 10), whatever order the join produced.
    std::sort(claimed.begin(), claimed.end(),
              [](const Message& a, const Message& b) { return std::pair(a.priority, a.id) < std::pair(b.priority, b.id); });
    return claimed;
  });
}

void Journal::mark_delivered(std::string_view sink, const std::vector<int64_t>& ids) {
  with_journal_errors(
      path_, "mark_delivered",
      "no delivery was recorded: these messages stay pending and will be sent again with the same gapless-id",
      [&] {
        if (ids.empty()) return;
        const int64_t sink_key = sink_id(sink);
        const std::string id_array = Json(ids).dump();
        auto transaction = begin_write(*db_, Durability::normal);  // see DURABILITY
        // Invariant 7: the counters of what moves, per (destination, state left).
        std::map<std::pair<int64_t, int>, int64_t> leaving;
        int64_t counted = 0;
        {
          ResetAfterUse query(cache_->undelivered_of);
          query->bind(1, sink_key);
          query->bind(2, id_array);
          while (query->executeStep()) {
            ++leaving[{query->getColumn(0).getInt64(), query->getColumn(1).getInt()}];
            ++counted;
          }
        }
        int64_t marked = 0;
        {
          ResetAfterUse update(cache_->mark_delivered);
          update->bind(1, sink_key);
          update->bind(2, id_array);
          update->bind(3, unix_now_ms());
          marked = update->exec();
        }
        if (marked != counted)  // cannot happen under the write lock; never commit drifted counters
          throw Error(context(path_, "mark_delivered") + "counted " + std::to_string(counted) +
                      " rows to mark but marked " + std::to_string(marked) +
                      "; no delivery was recorded: these messages stay pending and will be sent again "
                      "with the same gapless-id");
        for (const auto& [key, rows] : leaving) {
          ResetAfterUse leave(cache_->count_leave);
          leave->bind(1, sink_key);
          leave->bind(2, key.first);
          leave->bind(3, key.second);
          leave->bind(4, rows);
          leave->exec();
          ResetAfterUse arrive(cache_->count_delivered);
          arrive->bind(1, sink_key);
          arrive->bind(2, key.first);
          arrive->bind(3, rows);
          arrive->exec();
        }
        transaction.commit();
        spdlog::debug("journal: delivered path={} sink={} messages={} unchanged={}", path_, sink,
                      marked, static_cast<int64_t>(ids.size()) - marked);
      });
}

void Journal::park_message(std::string_view sink, int64_t id, std::string_view reason) {
  with_journal_errors(path_, "park_message", kNothingChanged, [&] {
    const int64_t sink_key = sink_id(sink);
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement update(*db_, kSqlParkMessage);
    update.bind(1, sink_key);
    update.bind(2, id);
    update.bind(3, std::string(reason));
    update.bind(4, unix_now_ms());
    const int parked = update.exec();
    transaction.commit();
    if (parked == 0)
      spdlog::warn("journal: park_message found no pending row path={} sink={} message={}", path_, sink, id);
    else
      spdlog::warn("journal: parked message path={} sink={} message={} reason=\"{}\"", path_, sink, id, reason);
  });
}

void Journal::park_destination(std::string_view sink, std::string_view destination, std::string_view reason,
                               int64_t next_retry_ms) {
  with_journal_errors(path_, "park_destination", kNothingChanged, [&] {
    const int64_t sink_key = sink_id(sink);
    const int64_t now = unix_now_ms();
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t destination_id = cache_->intern_destination(destination);

    SQLite::Statement upsert(*db_, kSqlUpsertParkedDestination);
    upsert.bind(1, sink_key);
    upsert.bind(2, destination_id);
    upsert.bind(3, std::string(reason));
    upsert.bind(4, now);
    upsert.bind(5, next_retry_ms);
    upsert.exec();

    SQLite::Statement park(*db_, kSqlParkDestinationRows);  // invariant 9
    park.bind(1, sink_key);
    park.bind(2, destination_id);
    park.bind(3, std::string(reason));
    park.bind(4, now);
    const int parked = park.exec();
    transaction.commit();
    spdlog::warn("journal: parked destination path={} sink={} destination={} messages={} next_retry_ms={} "
                 "reason=\"{}\"",
                 path_, sink, destination, parked, next_retry_ms, reason);
  });
}

std::optional<int64_t> Journal::requeue_probe(std::string_view sink, std::string_view destination,
                                              int64_t next_retry_ms) {
  return with_journal_errors(path_, "requeue_probe", kNothingChanged, [&]() -> std::optional<int64_t> {
    const int64_t sink_key = sink_id(sink);
    auto transaction = begin_write(*db_, Durability::full);
    const std::optional<int64_t> destination_id = cache_->find_destination(destination);
    if (!destination_id) return std::nullopt;

    SQLite::Statement candidate(*db_, kSqlProbeCandidate);
    candidate.bind(1, sink_key);
    candidate.bind(2, *destination_id);
    std::optional<int64_t> probe;
    if (candidate.executeStep()) probe = candidate.getColumn(0).getInt64();
    candidate.reset();

    if (probe) {
      SQLite::Statement release(*db_, kSqlReleaseOne);
      release.bind(1, sink_key);
      release.bind(2, *probe);
      release.bind(3, unix_now_ms());
      release.exec();
    }
    SQLite::Statement next_retry(*db_, kSqlSetNextRetry);
    next_retry.bind(1, sink_key);
    next_retry.bind(2, *destination_id);
    next_retry.bind(3, next_retry_ms);
    next_retry.exec();
    transaction.commit();
    spdlog::info("journal: probe path={} sink={} destination={} message={} next_retry_ms={}", path_, sink,
                 destination, probe ? std::to_string(*probe) : "none", next_retry_ms);
    return probe;
  });
}

int64_t Journal::retry_parked(std::optional<std::string_view> sink, std::optional<std::string_view> destination,
                              bool record_request) {
  return with_journal_errors(path_, "retry_parked", kNothingChanged, [&] {
    auto transaction = begin_write(*db_, Durability::full);
    const std::vector<int64_t> sinks =
        means_every(sink) ? cache_->registered_sinks() : std::vector<int64_t>{sink_id(*sink)};
    std::optional<int64_t> destination_id;
    if (!means_every(destination)) {
      destination_id = cache_->find_destination(*destination);
      if (!destination_id)
        throw Error(context(path_, "retry_parked") + "no message was ever journaled for destination \"" +
                    std::string(*destination) + "\"; " + std::string(kNothingChanged));
    }

    const int64_t now = unix_now_ms();
    int64_t released = 0;
    for (const int64_t s : sinks) {  // invariant 9: the rows and their parked_destination together
      SQLite::Statement unpark(*db_, destination_id ? kSqlUnparkDestination : kSqlUnparkDestinations);
      SQLite::Statement release(*db_, destination_id ? kSqlReleaseSinkDestination : kSqlReleaseSink);
      unpark.bind(1, s);
      release.bind(1, s);
      if (destination_id) {
        unpark.bind(2, *destination_id);
        release.bind(2, *destination_id);
        release.bind(3, now);
      } else {
        release.bind(2, now);
      }
      unpark.exec();
      released += release.exec();
    }

    if (record_request) {
      Json arguments = Json::object();
      arguments["sink"] = means_every(sink) ? Json(nullptr) : Json(std::string(*sink));
      arguments["destination"] = means_every(destination) ? Json(nullptr) : Json(std::string(*destination));
      SQLite::Statement record(*db_, kSqlRecordRequest);
      record.bind(1, "retry-parked");
      record.bind(2, now);
      record.bind(3, operator_identity());
      record.bind(4, arguments.dump());
      record.bind(5, released);
      record.exec();
    }
    transaction.commit();
    spdlog::info("journal: retry parked path={} sink={} destination={} messages={} recorded={}", path_,
                 means_every(sink) ? "*" : std::string(*sink),
                 means_every(destination) ? "*" : std::string(*destination), released, record_request);
    return released;
  });
}

DiscardResult Journal::discard_parked(std::string_view sink, std::optional<std::string_view> destination,
                                     std::optional<int64_t> message_id, std::string_view reason) {
  return with_journal_errors(path_, "discard_parked", kNothingChanged, [&] {
    if (reason.empty())
      throw Error(context(path_, "discard_parked") + "a reason is required; " + std::string(kNothingChanged));
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t sink_row = sink_id(sink);
    std::optional<int64_t> destination_id;
    if (!means_every(destination)) {
      destination_id = cache_->find_destination(*destination);
      if (!destination_id)
        throw Error(context(path_, "discard_parked") + "no message was ever journaled for destination \"" +
                    std::string(*destination) + "\"; " + std::string(kNothingChanged));
    }
    SQLite::Statement discard(*db_, kSqlDiscardParked);
    discard.bind(1, sink_row);
    if (destination_id) discard.bind(2, *destination_id);
    if (message_id) discard.bind(3, *message_id);
    DiscardResult result;
    result.discarded = discard.exec();
    if (result.discarded == 0) return result;  // nothing matched: nothing to record

    Json arguments = Json::object();
    arguments["sink"] = std::string(sink);
    arguments["destination"] = means_every(destination) ? Json(nullptr) : Json(std::string(*destination));
    arguments["message_id"] = message_id ? Json(*message_id) : Json(nullptr);
    arguments["reason"] = std::string(reason);
    SQLite::Statement record(*db_, kSqlRecordDiscard);
    record.bind(1, unix_now_ms());
    record.bind(2, operator_identity());
    record.bind(3, arguments.dump());
    record.bind(4, result.discarded);
    record.bind(5, std::string(reason));
    record.exec();
    result.request_id = db_->getLastInsertRowid();
    transaction.commit();
    spdlog::warn("journal: parked messages discarded path={} sink={} destination={} message={} messages={} "
                 "request={} reason=\"{}\"",
                 path_, sink, means_every(destination) ? "*" : std::string(*destination),
                 message_id ? std::to_string(*message_id) : "*", result.discarded, result.request_id, reason);
    return result;
  });
}

}  // namespace gapless::journal
