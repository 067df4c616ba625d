// Operator requests (backfill, resend) and the resend itself. The request
// table and invariant 5's one exception are described at the top of
// format.hpp.

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

constexpr const char* kSqlBeginRequest =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state) VALUES (?1, ?2, ?3, ?4, 'running')";
constexpr const char* kSqlUpdateRequest = "UPDATE request SET state = ?2, messages = ?3, note = ?4 WHERE id = ?1";
constexpr const char* kSqlRequests =
    "SELECT id, kind, created_ms, created_by, arguments, state, messages, note FROM request ORDER BY id DESC "
    "LIMIT ?1";
constexpr const char* kSqlRequestExists = "SELECT 1 FROM request WHERE id = ?1";


// Invariant 5's exception: delivered rows only (pending ones will be sent
// anyway, parked ones wait for their destination).
constexpr const char* kSqlQueueResend =
    "UPDATE delivery SET state = 0, priority = 2, resend_request_id = ?3, updated_ms = ?4 "
    "WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND state = 1";

}  // namespace

int64_t Journal::begin_request(std::string_view kind, std::string_view arguments_json) {
  return with_journal_errors(path_, "begin_request", kNothingChanged, [&] {
    if (!nlohmann::json::accept(arguments_json))
      throw Error(context(path_, "begin_request") + "arguments are not JSON: " + std::string(arguments_json));
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement insert(*db_, kSqlBeginRequest);
    insert.bind(1, std::string(kind));
    insert.bind(2, unix_now_ms());
    insert.bind(3, operator_identity());
    insert.bind(4, std::string(arguments_json));
    insert.exec();
    const int64_t id = db_->getLastInsertRowid();
    transaction.commit();
    spdlog::info("journal: request path={} id={} kind={} arguments={}", path_, id, kind, arguments_json);
    return id;
  });
}

void Journal::update_request(int64_t id, std::string_view state, int64_t messages, std::string_view note) {
  with_journal_errors(path_, "update_request", kNothingChanged, [&] {
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement update(*db_, kSqlUpdateRequest);
    update.bind(1, id);
    update.bind(2, std::string(state));
    update.bind(3, messages);
    update.bind(4, std::string(note));
    if (update.exec() == 0) throw Error(context(path_, "update_request") + "no request has id " + std::to_string(id));
    transaction.commit();
  });
}

std::vector<Request> Journal::requests(size_t max) {
  return with_journal_errors(path_, "requests", "", [&] {
    SQLite::Statement query(*db_, kSqlRequests);
    query.bind(1, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
    std::vector<Request> all;
    while (query.executeStep()) {
      Request r;
      r.id = query.getColumn(0).getInt64();
      r.kind = query.getColumn(1).getString();
      r.created_ms = query.getColumn(2).getInt64();
      r.created_by = query.getColumn(3).getString();
      r.arguments = query.getColumn(4).getString();
      r.state = query.getColumn(5).getString();
      r.messages = query.getColumn(6).getInt64();
      r.note = query.getColumn(7).getString();
      all.push_back(std::move(r));
    }
    return all;
  });
}

int64_t Journal::queue_resend(std::string_view sink, const std::vector<int64_t>& message_ids, int64_t request_id) {
  return with_journal_errors(path_, "queue_resend", kNothingChanged, [&]() -> int64_t {
    if (message_ids.empty()) return 0;
    const int64_t sink_key = sink_id(sink);
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement exists(*db_, kSqlRequestExists);
    exists.bind(1, request_id);
    if (!exists.executeStep())
      throw Error(context(path_, "queue_resend") + "no request has id " + std::to_string(request_id) + "; " +
                  std::string(kNothingChanged));
    exists.reset();
    SQLite::Statement update(*db_, kSqlQueueResend);
    update.bind(1, sink_key);
    update.bind(2, nlohmann::json(message_ids).dump());
    update.bind(3, request_id);
    update.bind(4, unix_now_ms());
    const int64_t moved = update.exec();
    transaction.commit();
    spdlog::info("journal: resend queued path={} sink={} request={} messages={}", path_, sink, request_id, moved);
    return moved;
  });
}

}  // namespace gapless::journal
