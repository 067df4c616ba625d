// The push endpoint's group commit: a group of pushed runs in one
// transaction. Each run's own message goes in as append() journals one
// (invariants 2, 3, 15), its series' messages as record_collected journals a
// read without coverage or cursor (invariants 11 to 13; series.cpp,
// pushed_series_fresh). The journal does not read the runs: which message
// is which, and its window time, is the push endpoint's (src/push).

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include "core/clock.hpp"
#include "journal/journal.hpp"
#include "journal/journal_cache.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;

std::vector<PushedResult> Journal::record_pushed(const std::vector<PushedRun>& runs) {
  return with_journal_errors(path_, "record_pushed", "nothing of these runs was journaled", [&] {
    std::vector<PushedResult> results(runs.size());
    if (runs.empty()) return results;
    auto transaction = begin_write(*db_, Durability::full);
    cache_->pushed_series.clear();
    const int64_t now = unix_now_ms();
    // Two appends for the whole group, whatever its size: each append's
    // statements (the delivery rows, invariant 15's rows) cost more than its
    // rows, so a group commit pays them once, not once per run and series.
    //
    // The runs' own messages: invariant 15's rows are those above
    // last_id_before, before any series message is appended.
    std::vector<NewMessage> own;
    std::vector<size_t> run_of;  // own[i] belongs to runs[run_of[i]]
    for (size_t i = 0; i < runs.size(); ++i)
      for (const NewMessage& message : runs[i].appended) {
        own.push_back(message);
        run_of.push_back(i);
      }
    const int64_t last_id_before = cache_->max_message_id();
    std::vector<size_t> fresh;
    append_in_transaction(own, now, &fresh);
    record_appended_in_transaction(own, fresh, last_id_before);
    for (const size_t index : fresh) ++results[run_of[index]].appended.appended;
    for (size_t i = 0; i < runs.size(); ++i)
      results[i].appended.duplicates = static_cast<int64_t>(runs[i].appended.size()) - results[i].appended.appended;

    // The series' messages not journaled already, then their datapoints.
    struct Points {
      int64_t series_id;
      std::vector<CollectedDatapoint> datapoints;  // message: an index into `collected`
    };
    std::vector<NewMessage> collected;
    std::vector<size_t> owner;  // collected[i] belongs to runs[owner[i]]
    std::vector<Points> points;
    for (size_t i = 0; i < runs.size(); ++i)
      for (const PushedSeries& series : runs[i].series) {
        const auto [series_id, is_fresh] = pushed_series_fresh(series, now);
        std::vector<size_t> index_of(series.messages.size(), 0);
        for (size_t m = 0; m < series.messages.size(); ++m) {
          if (!is_fresh[m]) {
            ++results[i].series.duplicates;
            continue;
          }
          index_of[m] = collected.size();
          collected.push_back(series.messages[m]);
          owner.push_back(i);
        }
        Points kept{series_id, {}};
        for (const CollectedDatapoint& point : series.datapoints)
          if (is_fresh[point.message]) kept.datapoints.push_back({point.ts, point.digest, index_of[point.message]});
        points.push_back(std::move(kept));
      }
    std::vector<size_t> appended_series;
    append_in_transaction(collected, now, &appended_series);
    std::vector<bool> was_new(collected.size(), false);
    for (const size_t index : appended_series) was_new[index] = true;
    for (size_t m = 0; m < collected.size(); ++m)
      ++(was_new[m] ? results[owner[m]].series.appended : results[owner[m]].series.duplicates);
    const std::vector<int64_t> ids = message_ids_in_transaction(collected, "record_pushed");
    for (const Points& series : points) upsert_datapoints_in_transaction(series.series_id, series.datapoints, ids);
    const int64_t appended = static_cast<int64_t>(fresh.size());
    const int64_t series_messages = static_cast<int64_t>(appended_series.size());
    transaction.commit();
    spdlog::debug("journal: pushed path={} runs={} appended={} series_messages={}", path_, runs.size(), appended,
                  series_messages);
    return results;
  });
}

}  // namespace gapless::journal
