// A fixed set of threads that runs the iterations of one loop at a time, the
// calling thread among them: import-dirq's element files are taken (link,
// read, parse) and removed by several threads, and the threads are started
// once for the whole import, not once per batch.
//
// Why several: a queue element costs a link, an open, a read and two unlinks
// beside its parsing (about twice what `gapless ingest` spends on a line),
// and on a file system that trims within each unlink (ext4 mounted
// `discard`) the unlinks wait for the device; those waits and that work
// overlap across threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace gapless::ingest {

class WorkerPool {
 public:
  // `helpers` threads besides the caller's (0: the caller runs every iteration).
  explicit WorkerPool(size_t helpers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The threads that run a loop: the helpers and the caller.
  size_t workers() const { return helpers_.size() + 1; }

  // Calls task(index, worker) for every index in [0, count), spread over the
  // workers, and returns once every call has returned. `worker` (0 for the
  // caller, then 1..helpers) lets a task keep buffers of its own. The first
  // exception a call throws is rethrown here, after the other calls ran.
  // One loop at a time: for_each is not called from two threads at once.
  void for_each(size_t count, const std::function<void(size_t index, size_t worker)>& task);

 private:
  void help(size_t worker);
  void run_iterations(size_t worker);

  std::mutex mutex_;
  std::condition_variable started_;
  std::condition_variable finished_;
  const std::function<void(size_t, size_t)>* task_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};  // the next index to hand out, without the mutex (no futex per index)
  size_t generation_ = 0;    // one per loop, so that a helper joins each loop once
  size_t busy_ = 0;          // helpers inside the current loop
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::vector<std::thread> helpers_;
};

}  // namespace gapless::ingest
