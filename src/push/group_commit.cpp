#include "push/group_commit.hpp"

#include <spdlog/spdlog.h>

#include "journal/configured_journal.hpp"
#include "journal/fault_retry.hpp"

namespace gapless::push {

GroupCommit::GroupCommit(const Config& config, size_t max_queued)
    : config_(config), max_queued_(max_queued), size_limit_(config.journal.path, config.journal.max_size),
      reserve_(config.journal.path, config.journal.disk_reserve) {
  committer_ = std::thread([this] { run(); });
}

GroupCommit::~GroupCommit() { stop(); }

void GroupCommit::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  if (committer_.joinable()) committer_.join();
}

int64_t GroupCommit::groups() const {
  std::lock_guard lock(mutex_);
  return groups_;
}

Outcome GroupCommit::journal(journal::PushedRun run) {
  auto waiting = std::make_unique<Waiting>();
  waiting->run = std::move(run);
  std::future<Outcome> outcome = waiting->outcome.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return {Outcome::Kind::unavailable, {}, "gapless is stopping"};
    if (queue_.size() >= max_queued_)
      return {Outcome::Kind::unavailable, {}, "the commit queue is full (" + std::to_string(max_queued_) + " runs)"};
    queue_.push_back(std::move(waiting));
  }
  queued_.notify_one();
  return outcome.get();
}

void GroupCommit::run() {
  for (;;) {
    std::deque<std::unique_ptr<Waiting>> group;
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      group.swap(queue_);
    }
    commit(group);
  }
}

void GroupCommit::commit(std::deque<std::unique_ptr<Waiting>>& group) {
  const auto answer_all = [&](Outcome::Kind kind, const std::string& reason) {
    for (auto& waiting : group) waiting->outcome.set_value({kind, {}, reason});
  };
  if (const std::optional<int64_t> bytes = size_limit_.reached()) {
    size_limit_.record_pause(episode_, *bytes);
    answer_all(Outcome::Kind::unavailable, size_limit_.pause_reason(*bytes));
    return;
  }
  if (!reserve_.take()) {
    journal::record_reserve_pause(reserve_, episode_);
    answer_all(Outcome::Kind::unavailable, "the disk holding " + config_.journal.path +
                                               " is full (the disk reserve cannot be taken back)");
    return;
  }
  std::vector<journal::PushedRun> runs;
  runs.reserve(group.size());
  for (auto& waiting : group) runs.push_back(std::move(waiting->run));
  try {
    if (!journal_)
      journal_ = journal::Journal::open(config_.journal.path, journal::sink_registrations(config_.sinks), false);
    std::vector<journal::PushedResult> results = journal_->record_pushed(runs);
    episode_.resolved();
    {
      std::lock_guard lock(mutex_);
      ++groups_;
    }
    for (size_t i = 0; i < group.size(); ++i)
      group[i]->outcome.set_value({Outcome::Kind::journaled, results[i], ""});
  } catch (const journal::JournalError& e) {
    const journal::Fault fault = journal::fault_on_disk(e, config_.journal.path);
    if (fault == journal::Fault::full) reserve_.release();  // delivery's marks need the room
    episode_.occurred(journal::fault_kind(fault), e.what());
    const bool passes = e.transient() || fault == journal::Fault::full;
    if (!passes) journal_.reset();
    answer_all(passes ? Outcome::Kind::unavailable : Outcome::Kind::failed, e.what());
  } catch (const std::exception& e) {
    spdlog::error("push: commit failed runs={} error=\"{}\"", group.size(), e.what());
    answer_all(Outcome::Kind::failed, e.what());
  }
}

}  // namespace gapless::push
