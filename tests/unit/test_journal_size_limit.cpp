// Proves [journal] max_size holds producers back at the limit (ingest refused naming max_size, writing nothing; a pause episode of kind journal-size-limit) while delivery goes on, and lets them go once pruning brings the journal below.

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.hpp"
#include "core/fault_episode.hpp"
#include "journal/journal.hpp"
#include "journal/size_limit.hpp"
#include "support/gapless_command.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::journal::SizeLimit;
using namespace gapless::test;

namespace {

constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kDay = 24 * 3600 * 1000LL;

// About 3 MiB of messages, pending for sink "local".
void fill(Journal& journal) {
  std::vector<gapless::journal::NewMessage> batch;
  for (int i = 0; i < 1500; ++i) {
    batch.push_back(message("fill-" + std::to_string(i)));
    batch.back().body = std::string(2000, 'x');
  }
  journal.append(batch);
}

void wait_for_recheck() { std::this_thread::sleep_for(std::chrono::milliseconds(SizeLimit::kRecheckMs + 100)); }

bool episode_open(const std::string& component, std::string_view kind) {
  for (const auto& episode : gapless::open_fault_episodes())
    if (episode.component == component && episode.kind == kind) return true;
  return false;
}

}  // namespace

TEST_CASE("at max_size producers pause with a journal-size-limit episode; below it, after pruning, they go on",
          "[journal][size-limit]") {
  TempDir dir;
  gapless::set_simulated_now_ms(1'700'000'000'000);
  auto journal = Journal::open(dir.file("j.db"), {"local"});
  SizeLimit limit(journal->path(), 2 * kMiB);
  CHECK_FALSE(limit.reached());

  fill(*journal);
  wait_for_recheck();
  const std::optional<int64_t> bytes = limit.reached();
  REQUIRE(bytes);
  CHECK(*bytes >= 2 * kMiB);
  CHECK(*bytes == journal->bytes_in_use());
  CHECK_THAT(limit.pause_reason(*bytes), Contains("[journal] max_size (2097152)"));
  {
    gapless::FaultEpisode episode("collector archive=test");
    limit.record_pause(episode, *bytes);
    CHECK(episode_open("collector archive=test", gapless::journal::kSizeLimitKind));
  }

  // Delivery goes on at the limit: the sender's claim and mark still write.
  journal->mark_delivered("local", journal_ids(claim_all(*journal, "local")));
  CHECK(status_of(*journal, "local", "/topic/a").delivered == 1500);
  wait_for_recheck();
  CHECK(limit.reached());  // delivered is not pruned yet: still at the limit

  // Pruned once kept long enough: below the limit at once, before the vacuum.
  gapless::set_simulated_now_ms(1'700'000'000'000 + 8 * kDay);
  journal->prune_delivered(1'700'000'000'000 + kDay);
  wait_for_recheck();
  CHECK_FALSE(limit.reached());
  std::atomic<bool> stop{false};
  gapless::FaultEpisode episode("backfill");
  CHECK(limit.wait_below(episode, stop));
  CHECK_FALSE(episode.is_open());
  gapless::set_simulated_now_ms(std::nullopt);
}

TEST_CASE("a size limit measured per batch (recheck 0) sees the limit a batch crossed at once, not a second later",
          "[journal][size-limit]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"local"});
  SizeLimit per_batch(journal->path(), 2 * kMiB, 0);
  SizeLimit per_second(journal->path(), 2 * kMiB);
  CHECK_FALSE(per_batch.reached());
  CHECK_FALSE(per_second.reached());

  fill(*journal);

  CHECK(per_batch.reached());         // the next batch of ingest or import-dirq is refused
  CHECK_FALSE(per_second.reached());  // the collector's measure, a second old, would let it pass
}

TEST_CASE("gapless ingest at max_size exits 1 naming max_size and journals nothing", "[journal][size-limit]") {
  TempDir dir{"size-limit-ingest"};
  const std::string journal_path = dir.file("journal.db");
  const std::string config_path = dir.file("gapless.toml");
  const std::string input_path = dir.file("queue.jsonl");
  std::ofstream(config_path) << "[journal]\npath = " << nlohmann::json(journal_path).dump()
                             << "\nmax_size = 2097152\n[[sink]]\nname = \"local\"\nbrokers = "
                                "[\"stomp://127.0.0.1:1\"]\n";
  {
    auto journal = Journal::open(journal_path, {"local"});
    fill(*journal);
  }
  std::ofstream(input_path) << R"({"header":{"destination":"/topic/perfsonar.raw.x"},"body":"new"})" "\n";
  const CommandResult result = run_gapless({"ingest", "--config", config_path, input_path}, dir.file("stderr"));
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Contains("nothing was journaled"));
  CHECK_THAT(result.err, Contains("[journal] max_size (2097152)"));
  auto journal = Journal::open(journal_path, {"local"});
  CHECK(count_rows(*journal, "SELECT count(*) FROM message") == 1500);
}
