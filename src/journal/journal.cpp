// The Journal object: one SQLite connection on a journal file (opened by
// format.cpp) and its cache. What it does is in delivery_queue.cpp,
// reporting.cpp, resend_selection.cpp, series.cpp, requests.cpp and
// archives.cpp.

#include "journal/journal.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include "core/error.hpp"
#include "journal/format.hpp"
#include "journal/journal_cache.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;

Journal::Journal(std::string path, std::unique_ptr<SQLite::Database> db)
    : path_(std::move(path)), db_(std::move(db)), cache_(std::make_unique<Cache>(*db_)) {}

Journal::~Journal() = default;

std::unique_ptr<Journal> Journal::open(const std::string& path, const std::vector<SinkRegistration>& sinks,
                                       bool check_integrity) {
  return with_journal_errors(path, "open", "", [&] {
    auto db = open_database(path, sinks, check_integrity);
    return std::unique_ptr<Journal>(new Journal(path, std::move(db)));
  });
}

int64_t Journal::sink_id(std::string_view sink) {
  if (auto id = cache_->find_sink(sink)) return *id;
  throw Error("journal " + path_ + ": no sink named \"" + std::string(sink) +
              "\" is registered (sinks are registered when the daemon opens the journal with its configuration)");
}

}  // namespace gapless::journal
