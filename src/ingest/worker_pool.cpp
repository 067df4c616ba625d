#include "ingest/worker_pool.hpp"

namespace gapless::ingest {

WorkerPool::WorkerPool(size_t helpers) {
  helpers_.reserve(helpers);
  for (size_t worker = 1; worker <= helpers; ++worker) helpers_.emplace_back([this, worker] { help(worker); });
}

WorkerPool::~WorkerPool() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  started_.notify_all();
  for (std::thread& helper : helpers_) helper.join();
}

void WorkerPool::for_each(size_t count, const std::function<void(size_t index, size_t worker)>& task) {
  if (count == 0) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    failure_ = nullptr;
    ++generation_;
    busy_ = helpers_.size();
  }
  started_.notify_all();  // every helper checks in once per loop, even one with nothing left to take
  run_iterations(0);
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [this] { return busy_ == 0; });
  task_ = nullptr;
  if (failure_) std::rethrow_exception(failure_);
}

void WorkerPool::help(size_t worker) {
  size_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      started_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    run_iterations(worker);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (--busy_ == 0) finished_.notify_one();
  }
}

void WorkerPool::run_iterations(size_t worker) {
  // count_ and task_ were written under the mutex before the loop began.
  for (;;) {
    const size_t index = next_.fetch_add(1, std::memory_order_relaxed);
    if (index >= count_) return;
    try {
      (*task_)(index, worker);
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
  }
}

}  // namespace gapless::ingest
