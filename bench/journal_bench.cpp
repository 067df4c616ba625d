// journal-bench: do the journal's hot paths stay fast when the journal is
// huge? Builds a journal of 10 thousand and one of 10 million messages (one
// sink, 20 destinations, 90% delivered, small bodies), then times append(500),
// claim(500), mark_delivered(500) and status() on each, and prints the median
// of each and the ratio between the two sizes. A ratio near 1 means the
// operation does not depend on the journal's size.
//
//   journal-bench [big-rows] [--dir DIR] [--keep]
//
// The big journal is generated inside SQLite (recursive CTE) in large
// transactions with synchronous=OFF: a benchmark's own shortcut, never the
// journal's. The timed operations run through the real Journal API with its
// real durability (append fsyncs, see journal/format.hpp), so they include the
// disk's fsync time.
#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"

namespace {

namespace fs = std::filesystem;
using gapless::journal::Journal;

constexpr int64_t kSmallRows = 10'000;
constexpr int64_t kDefaultBigRows = 10'000'000;
constexpr int kDestinations = 20;
constexpr int kRuns = 21;
constexpr size_t kBatch = 500;
constexpr int64_t kLoadChunk = 500'000;  // rows per bulk transaction
const char* const kSink = "bench";

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double time_ms(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return milliseconds_since(start);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Fills a freshly created journal with `rows` messages and their delivery rows
// for the one sink, straight in SQL. Message i goes to destination i % 20, is
// backfill when i % 10 == 0, and is delivered when among the first 90%.
void bulk_load(const std::string& path, int64_t rows) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  db.exec("PRAGMA synchronous = OFF");     // the benchmark's shortcut only
  db.exec("PRAGMA cache_size = -1048576");  // 1 GiB: index pages stay in memory while loading
  const int64_t sink = db.execAndGet(std::string("SELECT id FROM sink WHERE name = '") + kSink + "'").getInt64();
  const int64_t delivered_up_to = rows * 9 / 10;
  const int64_t now = gapless::unix_now_ms();

  {
    SQLite::Transaction transaction(db);
    SQLite::Statement destination(db, "INSERT INTO destination(id, name) VALUES (?1, ?2)");
    for (int d = 0; d < kDestinations; ++d) {
      char name[64];
      std::snprintf(name, sizeof name, "/topic/perfsonar.raw.bench-%02d", d);
      destination.reset();
      destination.bind(1, d + 1);
      destination.bind(2, name);
      destination.exec();
    }
    transaction.commit();
  }

  SQLite::Statement messages(db,
                             "WITH RECURSIVE seq(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?2) "
                             "INSERT INTO message(id, gapless_id, destination_id, headers, body, priority, journaled_ms) "
                             "SELECT i, printf('bench-%012d', i), 1 + i % 20, "
                             "'[[\"event-type\",\"packet-loss-rate\"]]', "
                             "CAST(printf('{\"ts\":%d,\"value\":0.%06d}', 1700000000 + i, i % 1000000) AS BLOB), "
                             "CASE WHEN i % 10 = 0 THEN 1 ELSE 0 END, ?3 - ?2 + i FROM seq");
  SQLite::Statement deliveries(db,
                               "INSERT INTO delivery(sink_id, message_id, destination_id, state, priority, "
                               "updated_ms, delivered_ms) "
                               "SELECT ?1, id, destination_id, id <= ?4, priority, journaled_ms, "
                               "CASE WHEN id <= ?4 THEN journaled_ms END FROM message WHERE id BETWEEN ?2 AND ?3");
  for (int64_t first = 1; first <= rows; first += kLoadChunk) {
    const int64_t last = std::min(rows, first + kLoadChunk - 1);
    SQLite::Transaction transaction(db);
    messages.reset();
    messages.bind(1, first);
    messages.bind(2, last);
    messages.bind(3, now);
    messages.exec();
    deliveries.reset();
    deliveries.bind(1, sink);
    deliveries.bind(2, first);
    deliveries.bind(3, last);
    deliveries.bind(4, delivered_up_to);
    deliveries.exec();
    transaction.commit();
  }
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

struct Row {
  int64_t rows;
  std::string operation;
  double median_ms;
};

std::string random_gapless_id(std::mt19937_64& random) {
  char text[40];
  std::snprintf(text, sizeof text, "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return text;
}

std::vector<Row> measure(const std::string& dir, int64_t rows) {
  const std::string path = dir + "/journal-" + std::to_string(rows) + ".db";
  std::vector<Row> results;

  const auto build_start = std::chrono::steady_clock::now();
  Journal::open(path, {kSink});
  bulk_load(path, rows);
  std::fprintf(stderr, "journal-bench: built %lld rows in %.1f s (%.0f MB)\n", static_cast<long long>(rows),
               milliseconds_since(build_start) / 1000, static_cast<double>(fs::file_size(path)) / 1e6);

  std::unique_ptr<Journal> journal;
  results.push_back({rows, "open (quick_check)", time_ms([&] { journal = Journal::open(path, {kSink}); })});

  std::mt19937_64 random(42);
  std::vector<double> append, claim, mark, status;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<gapless::journal::NewMessage> batch(kBatch);
    for (size_t i = 0; i < kBatch; ++i) {
      batch[i].gapless_id = random_gapless_id(random);
      batch[i].destination = "/topic/perfsonar.raw.bench-" + std::to_string(10 + i % 10);
      batch[i].headers = {{"event-type", "packet-loss-rate"}};
      batch[i].body = "{\"ts\":1700000000,\"value\":0.5}";
    }
    append.push_back(time_ms([&] { journal->append(batch); }));

    std::vector<gapless::journal::Message> claimed;
    claim.push_back(time_ms([&] { claimed = journal->claim(kSink, kBatch, {}); }));
    std::vector<int64_t> ids;
    for (const auto& m : claimed) ids.push_back(m.id);
    mark.push_back(time_ms([&] { journal->mark_delivered(kSink, ids); }));
    status.push_back(time_ms([&] { journal->status(); }));
  }
  results.push_back({rows, "append(500)", median(append)});
  results.push_back({rows, "claim(500)", median(claim)});
  results.push_back({rows, "mark_delivered(500)", median(mark)});
  results.push_back({rows, "status()", median(status)});
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // the journal's info lines would mix with the table
  int64_t big_rows = kDefaultBigRows;
  std::string parent = getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) parent = argv[++i];
    else if (arg == "--keep") keep = true;
    else if (!arg.empty() && arg.find_first_not_of("0123456789") == std::string::npos) big_rows = std::stoll(arg);
    else {
      std::fprintf(stderr, "usage: journal-bench [big-rows] [--dir DIR] [--keep]\n");
      return 2;
    }
  }

  std::string dir = parent + "/journal-bench-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    std::perror("journal-bench: mkdtemp");
    return 1;
  }
  int status = 0;
  try {
    std::vector<Row> results = measure(dir, kSmallRows);
    const size_t small_count = results.size();
    for (Row& row : measure(dir, big_rows)) results.push_back(std::move(row));

    std::printf("journal-bench: 1 sink, %d destinations, 90%% delivered, bodies ~35 B; median of %d runs\n",
                kDestinations, kRuns);
    std::printf("%-10s  %-20s  %10s  %12s\n", "rows", "operation", "median ms", "ratio big/10k");
    for (size_t i = 0; i < results.size(); ++i) {
      const Row& row = results[i];
      std::printf("%-10lld  %-20s  %10.3f", static_cast<long long>(row.rows), row.operation.c_str(), row.median_ms);
      if (i >= small_count) std::printf("  %12.2f", row.median_ms / results[i - small_count].median_ms);
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "journal-bench: %s\n", e.what());
    status = 1;
  }
  if (keep)
    std::fprintf(stderr, "journal-bench: kept %s\n", dir.c_str());
  else
    fs::remove_all(dir);
  return status;
}
