// Retiring a sink: the operator's act that ends what the journal owes a sink
// removed from the configuration for good (invariants 3 and 6, format.hpp).

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journal/sqlite_support.hpp"
#include "journal/statements.hpp"

namespace gapless::journal {
using namespace detail;

RetireResult Journal::retire_sink(std::string_view sink, std::string_view reason) {
  return with_journal_errors(path_, "retire_sink", kNothingChanged, [&] {
    if (reason.empty())
      throw Error(context(path_, "retire_sink") + "a reason is required; " + std::string(kNothingChanged));
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement find(*db_, kSqlSinkRetirement);
    find.bind(1, std::string(sink));
    if (!find.executeStep())
      throw Error(context(path_, "retire_sink") + "the journal knows no sink named \"" + std::string(sink) +
                  "\" (`gapless status` lists the sinks it knows); " + std::string(kNothingChanged));
    const int64_t sink_row = find.getColumn(0).getInt64();
    if (!find.isColumnNull(1))
      throw Error(context(path_, "retire_sink") + "sink \"" + std::string(sink) + "\" was retired already (request " +
                  std::to_string(find.getColumn(1).getInt64()) + "); " + std::string(kNothingChanged));

    RetireResult result;
    SQLite::Statement undelivered(*db_, kSqlSinkUndelivered);  // invariant 7: the counters are the rows
    undelivered.bind(1, sink_row);
    undelivered.executeStep();
    result.pending = undelivered.getColumn(0).getInt64();
    result.parked = undelivered.getColumn(1).getInt64();

    SQLite::Statement remove_rows(*db_, kSqlRetireDeliveries);
    remove_rows.bind(1, sink_row);
    const int64_t removed = remove_rows.exec();
    if (removed != result.pending + result.parked)  // invariant 7 broken: change nothing, say so
      throw Error(context(path_, "retire_sink") + "sink \"" + std::string(sink) + "\" has " + std::to_string(removed) +
                  " pending and parked rows but its counters say " + std::to_string(result.pending + result.parked) +
                  " (run gapless check); " + std::string(kNothingChanged));
    SQLite::Statement remove_parked(*db_, kSqlRetireParkedDestinations);
    remove_parked.bind(1, sink_row);
    result.parked_destinations = remove_parked.exec();

    nlohmann::json arguments = nlohmann::json::object();
    arguments["sink"] = std::string(sink);
    arguments["reason"] = std::string(reason);
    arguments["pending"] = result.pending;
    arguments["parked"] = result.parked;
    arguments["parked_destinations"] = result.parked_destinations;
    SQLite::Statement record(*db_, kSqlRecordRetire);
    record.bind(1, unix_now_ms());
    record.bind(2, operator_identity());
    record.bind(3, arguments.dump());
    record.bind(4, result.pending + result.parked);
    record.bind(5, std::string(reason));
    record.exec();
    result.request_id = db_->getLastInsertRowid();

    SQLite::Statement mark(*db_, kSqlMarkRetired);  // invariant 3: no rows for new messages
    mark.bind(1, sink_row);
    mark.bind(2, result.request_id);
    mark.exec();
    transaction.commit();
    spdlog::warn("journal: sink retired path={} sink={} pending={} parked={} parked_destinations={} request={} "
                 "reason=\"{}\"",
                 path_, sink, result.pending, result.parked, result.parked_destinations, result.request_id, reason);
    return result;
  });
}

}  // namespace gapless::journal
