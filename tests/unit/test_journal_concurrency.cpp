// Proves two connections on one journal, as two processes would, append and drain side by side and lose nothing.

#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Journal;
using namespace gapless::test;

TEST_CASE("two connections, as two processes would, append and drain side by side", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  auto producer = Journal::open(path, {"cern"});
  auto sender = Journal::open(path, {"cern"});
  constexpr int kBatches = 60;
  constexpr int kPerBatch = 10;

  std::exception_ptr failure;
  std::thread producing([&] {
    try {
      for (int b = 0; b < kBatches; ++b) append_many(*producer, "p" + std::to_string(b), kPerBatch);
    } catch (...) {
      failure = std::current_exception();
    }
  });
  int64_t delivered = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (delivered < kBatches * kPerBatch && std::chrono::steady_clock::now() < deadline) {
    const auto ids = journal_ids(sender->claim("cern", 25, {}));
    sender->mark_delivered("cern", ids);
    delivered += static_cast<int64_t>(ids.size());
  }
  producing.join();
  if (failure) std::rethrow_exception(failure);
  CHECK(delivered == kBatches * kPerBatch);
  CHECK(status_of(*sender, "cern", "/topic/a").delivered == kBatches * kPerBatch);
  CHECK(status_of(*producer, "cern", "/topic/a").pending == 0);
}
