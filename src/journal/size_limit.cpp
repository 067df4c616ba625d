#include "journal/size_limit.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/stop_wait.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
namespace {

int64_t steady_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

SizeLimit::SizeLimit(std::string journal_path, int64_t max_size, int64_t recheck_ms)
    : path_(std::move(journal_path)), max_size_(max_size), recheck_ms_(recheck_ms) {}

SizeLimit::~SizeLimit() = default;

std::optional<int64_t> SizeLimit::reached() {
  if (max_size_ <= 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  const int64_t now = steady_ms();
  if (checked_ms_ != 0 && now - checked_ms_ < recheck_ms_) return last_;
  checked_ms_ = now;
  try {
    if (!db_) {
      db_ = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READONLY);
      detail::wait_for_locks(*db_);
    }
    const int64_t bytes = detail::bytes_in_use(*db_);
    last_ = bytes >= max_size_ ? std::optional<int64_t>(bytes) : std::nullopt;
  } catch (const std::exception& e) {
    // A journal that cannot be measured is not held back for it: the write
    // that follows meets the same fault and reports it with its context.
    spdlog::debug("journal: size not measured path={} error=\"{}\"", path_, e.what());
    db_.reset();
    last_ = std::nullopt;
  }
  return last_;
}

std::string SizeLimit::pause_reason(int64_t bytes) const {
  return "paused: the journal " + path_ + " holds " + std::to_string(bytes) + " bytes, at its [journal] max_size (" +
         std::to_string(max_size_) +
         "); nothing is collected or ingested until pruning of delivered messages brings it below (it resumes "
         "by itself, nothing is skipped); delivery goes on. If it stays at the limit, a sink is holding "
         "undelivered messages (gapless status) or max_size is too small for keep_delivered";
}

void SizeLimit::record_pause(FaultEpisode& episode, int64_t bytes) const {
  episode.occurred(kSizeLimitKind, pause_reason(bytes));
}

bool SizeLimit::wait_below(FaultEpisode& episode, const std::atomic<bool>& stop) {
  while (const std::optional<int64_t> bytes = reached()) {
    record_pause(episode, *bytes);
    if (!sleep_unless_stopped(std::chrono::milliseconds(2 * kRecheckMs), stop)) return false;
  }
  return true;
}

}  // namespace gapless::journal
