// The push endpoint's group commit: a group of pushed runs in one
// transaction. Each run's own message goes in as append() journals one
// (invariants 2, 3, 15), its series' messages as record_collected journals a
// read without coverage or cursor (invariants 11 to 13; series.cpp,
// record_pushed_series). The journal does not read the runs: which message
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
    const int64_t now = unix_now_ms();
    int64_t appended = 0, series_messages = 0;
    for (size_t i = 0; i < runs.size(); ++i) {
      const PushedRun& run = runs[i];
      // Invariant 15's rows are those above this id: taken again for each
      // run, after the series messages of the one before.
      const int64_t last_id_before = cache_->max_message_id();
      std::vector<size_t> fresh;
      results[i].appended = append_in_transaction(run.appended, now, &fresh);
      record_appended_in_transaction(run.appended, fresh, last_id_before);
      for (const PushedSeries& series : run.series) {
        const AppendResult one = record_pushed_series(series, now);
        results[i].series.appended += one.appended;
        results[i].series.duplicates += one.duplicates;
      }
      appended += results[i].appended.appended;
      series_messages += results[i].series.appended;
    }
    transaction.commit();
    spdlog::debug("journal: pushed path={} runs={} appended={} series_messages={}", path_, runs.size(), appended,
                  series_messages);
    return results;
  });
}

}  // namespace gapless::journal
