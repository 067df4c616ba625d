// Proves import-dirq's worker pool runs every element of a loop exactly once, loop after loop, and surfaces a task's failure only after the others ran (a dropped element would stay in the queue, a failure swallowed would hide a lost file).
#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "ingest/worker_pool.hpp"

using gapless::ingest::WorkerPool;

TEST_CASE("a worker pool runs each index of every loop once, over all its workers", "[worker-pool]") {
  WorkerPool pool(3);
  REQUIRE(pool.workers() == 4);
  for (size_t count : {0, 1, 2, 7, 1000, 3}) {  // loops of any size, one after another, on the same threads
    std::vector<std::atomic<int>> runs(count);
    std::vector<std::atomic<int>> by_worker(pool.workers());
    pool.for_each(count, [&](size_t index, size_t worker) {
      ++runs[index];
      ++by_worker[worker];
    });
    for (size_t i = 0; i < count; ++i) CHECK(runs[i] == 1);
    int total = 0;
    for (const auto& n : by_worker) total += n;
    CHECK(total == static_cast<int>(count));
  }
}

TEST_CASE("a worker pool rethrows a task's exception once every other index has run", "[worker-pool]") {
  WorkerPool pool(2);
  std::atomic<int> ran{0};
  CHECK_THROWS_WITH(pool.for_each(100,
                                  [&](size_t index, size_t) {
                                    ++ran;
                                    if (index == 10) throw std::runtime_error("element 10 failed");
                                  }),
                    "element 10 failed");
  CHECK(ran == 100);
  std::atomic<int> after{0};
  pool.for_each(5, [&](size_t, size_t) { ++after; });  // still usable
  CHECK(after == 5);
}
