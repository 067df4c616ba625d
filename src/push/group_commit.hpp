// Group commit: concurrent pushes share one transaction. Each request thread
// hands its run over and waits; one committer thread, with its own journal
// connection, takes everything queued, commits it in one transaction
// (Journal::record_pushed, synchronous=FULL), then wakes each waiting
// request with the outcome of that transaction. So a host pushing on 25
// connections pays one fsync per group, not one per run, and no request is
// answered before the transaction holding its run committed.
//
// Before each group the committer checks what every producer checks
// (journal/size_limit.hpp, journal/disk_reserve.hpp): at [journal] max_size,
// or without the disk reserve, the whole group is refused "unavailable"
// (answered 503 with Retry-After), as is a group whose commit met a journal
// fault (busy, full, I/O). Faults are one episode ("push"), for status.
// The queue is bounded: a run that finds it full is refused at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/config.hpp"
#include "core/fault_episode.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/journal.hpp"
#include "journal/size_limit.hpp"

namespace gapless::push {

struct Outcome {
  enum class Kind {
    journaled,    // committed (or journaled before: result.appended.duplicates)
    unavailable,  // the journal takes nothing now (max_size, a fault, the queue full): try again later
    failed,       // an error that waiting does not cure (a damaged journal, a bug)
  };
  Kind kind = Kind::failed;
  journal::PushedResult result;
  std::string reason;  // unavailable, failed: why, naming the journal
};

class GroupCommit {
 public:
  // Starts the committer. `max_queued`: runs waiting for a commit at most.
  GroupCommit(const Config& config, size_t max_queued);
  ~GroupCommit();  // stop()
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues `run` and waits for the outcome of the transaction holding it.
  // Safe from any number of threads.
  Outcome journal(journal::PushedRun run);

  // Commits what is queued, then joins the committer; journal() answers
  // unavailable from then on.
  void stop();

  int64_t groups() const;  // transactions committed, for metrics

 private:
  struct Waiting {
    journal::PushedRun run;
    std::promise<Outcome> outcome;
  };
  void run();
  void commit(std::deque<std::unique_ptr<Waiting>>& group);

  Config config_;
  size_t max_queued_;
  journal::SizeLimit size_limit_;
  journal::DiskReserve reserve_;
  FaultEpisode episode_{"push"};
  std::unique_ptr<journal::Journal> journal_;  // the committer's connection

  mutable std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<std::unique_ptr<Waiting>> queue_;
  bool stopping_ = false;
  int64_t groups_ = 0;
  std::thread committer_;
};

}  // namespace gapless::push
