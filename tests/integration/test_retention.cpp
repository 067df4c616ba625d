// Proves retention runs in the daemon beside delivery to a real broker: delivered messages are pruned after keep_delivered and the journal stays sound, while messages not yet delivered (parked) outlive keep_delivered and are delivered, then pruned, once they can be; at [journal] max_size collection pauses and ingest is refused while delivery goes on, and collection resumes by itself once pruning brings the journal below.
//
//   build/tests/integration/integration-tests '[retention]'
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "support/consumer_points.hpp"
#include "support/eventually.hpp"
#include "support/journal_sql.hpp"
#include "support/polled_archive.hpp"
#include "support/status_faults.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_table;
using gapless::test::EsmondArchive;
using gapless::test::eventually;
using gapless::test::JournalSql;
using gapless::test::kHour;
using gapless::test::messages_on;
using gapless::test::open_faults;
using gapless::test::Output;
using gapless::test::Process;
using gapless::test::received_datapoints;
using gapless::test::RunResult;
using gapless::test::served_datapoints;
using gapless::test::StompRecorder;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

// The workspace's configuration with more [journal] keys, written beside it.
std::string with_journal_keys(const Workspace& workspace, const std::string& keys) {
  std::ifstream in(workspace.config_path());
  std::string text(std::istreambuf_iterator<char>(in), {});
  const std::string path_line = "path = \"" + workspace.journal_path() + "\"\n";
  const size_t at = text.find(path_line);
  REQUIRE(at != std::string::npos);
  text.insert(at + path_line.size(), keys);
  const std::string path = (workspace.dir() / "retention.toml").string();
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> gapless_command(const std::string& config, std::vector<std::string> args) {
  std::vector<std::string> full = {gapless::test::gapless_binary().string(), args.at(0), "--config", config};
  full.insert(full.end(), args.begin() + 1, args.end());
  return full;
}

// `count` directory-queue lines of about 1 KiB each, in OSG's shape without datapoints.
std::string write_lines(const std::filesystem::path& path, int first, int count) {
  std::ofstream out(path);
  for (int i = first; i < first + count; ++i)
    out << json{{"header", {{"destination", "/topic/perfsonar.raw.retention"}, {"index", i}}},
                {"body", json{{"meta", {{"org_metadata_key", "backlog-" + std::to_string(i)}}},
                              {"datapoints", json::object()},
                              {"pad", std::string(1000, 'x')}}
                             .dump()}}
               .dump()
        << "\n";
  return path.string();
}

int64_t total(const json& status, const char* state) {
  int64_t sum = 0;
  for (const json& sink : status.at("sinks"))
    for (const json& destination : sink.at("destinations")) sum += destination.at(state).get<int64_t>();
  return sum;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t count_passes(const std::string& log) {
  size_t n = 0;
  for (size_t at = log.find("pruner: pass "); at != std::string::npos; at = log.find("pruner: pass ", at + 1)) ++n;
  return n;
}

// The gapless-ids of the messages the journal holds on `destination`, read beside the daemon.
std::set<std::string> journaled_ids(const std::string& journal_path, const std::string& destination) {
  JournalSql sql(journal_path);
  SQLite::Statement query(sql.database(),
                          "SELECT m.gapless_id FROM message m JOIN destination d ON d.id = m.destination_id "
                          "WHERE d.name = ?");
  query.bind(1, destination);
  std::set<std::string> ids;
  while (query.executeStep()) ids.insert(query.getColumn(0).getString());
  return ids;
}

}  // namespace

TEST_CASE("messages not yet delivered outlive keep_delivered and reach the broker once it can take them; the "
          "delivered ones beside them are pruned",
          "[retention]") {
  // Messages over the sink's max_message_size are parked, so one backlog
  // waits while the other is delivered and pruned: pruning that went by age
  // alone would delete the waiting one, and the broker would never count it.
  TestBroker broker;
  Workspace workspace(broker, "max_message_size = 10000\n");
  const std::string journal_keys = "keep_delivered = \"1s\"\n";
  std::string config = with_journal_keys(workspace, journal_keys);
  StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  const auto waiting = messages_on({"perfsonar.raw.packet-trace"}, 20, 20'000);
  const auto flowing = messages_on({"perfsonar.raw.throughput"}, 100);
  workspace.journal_messages(waiting);
  workspace.journal_messages(flowing);
  const std::string waiting_topic = "/topic/perfsonar.raw.packet-trace";
  const std::string flowing_topic = "/topic/perfsonar.raw.throughput";
  const auto start_daemon = [&] {
    return Process::spawn({.args = gapless_command(config, {"run"}),
                           .env = {{"GAPLESS_PRUNE_INTERVAL_MS", "200"}},
                           .out = Output::to_file(workspace.dir() / "daemon.out"),
                           .err = Output::to_file(workspace.dir() / "daemon.err")});
  };
  const auto log = [&] { return read_file(workspace.dir() / "daemon.err"); };

  // The flowing backlog reaches the broker and leaves the journal a second later.
  {
    Process daemon = start_daemon();
    REQUIRE(recorder.wait_for_distinct("gapless-id", flowing.size(), 60s));
    CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(flowing));
    CHECK(eventually(30s, [&] { return journaled_ids(workspace.journal_path(), flowing_topic).empty(); }));
    // Passes go on well past keep_delivered; the waiting backlog stays whole.
    const size_t passes_before = count_passes(log());
    std::this_thread::sleep_for(2s);
    INFO(log());
    CHECK(count_passes(log()) >= passes_before + 3);
    CHECK(journaled_ids(workspace.journal_path(), waiting_topic) == gapless::test::gapless_ids_of(waiting));
    CHECK(workspace.counts(waiting_topic) == std::array<int64_t, 3>{0, 0, static_cast<int64_t>(waiting.size())});
    CHECK(daemon.terminate(30s).code == 0);
  }

  // The operator raises the limit and asks for the parked messages: every
  // one arrives, and is pruned in turn.
  workspace.write_config(broker.stomp_uri(), "max_message_size = 100000\n");
  config = with_journal_keys(workspace, journal_keys);
  const RunResult retry = gapless::test::run(gapless_command(config, {"retry-parked"}));
  INFO(retry.err);
  REQUIRE(retry.ok());
  Process daemon = start_daemon();
  REQUIRE(recorder.wait_for_distinct("gapless-id", flowing.size() + waiting.size(), 60s));
  const std::set<std::string> received = recorder.values("gapless-id");
  for (const auto& id : gapless::test::gapless_ids_of(waiting)) CHECK(received.count(id) == 1);
  CHECK(eventually(30s, [&] { return journaled_ids(workspace.journal_path(), waiting_topic).empty(); }));
  CHECK(daemon.terminate(30s).code == 0);
  const RunResult check = gapless::test::run(gapless_command(config, {"check"}));
  INFO(check.out << check.err);
  CHECK(check.status.code == 0);
}

TEST_CASE("at max_size collection pauses and ingest is refused; delivery and pruning go on; collection resumes",
          "[retention]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(3, 4 * kHour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "", "1d", "retention"));
  const std::string config =
      with_journal_keys(workspace, "keep_delivered = \"2s\"\nmax_size = 2097152\ndisk_reserve = 0\n");
  StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  const auto run = [&](std::vector<std::string> args) { return gapless::test::run(gapless_command(config, std::move(args))); };
  const auto status = [&] {
    const RunResult result = run({"status", "--json"});
    INFO(result.err);
    REQUIRE(result.ok());
    return json::parse(result.out);
  };

  // A backlog past the limit, journaled while no daemon runs (ingest may
  // stop at the limit between its batches, keeping what it journaled).
  const RunResult filled = run({"ingest", write_lines(workspace.dir() / "backlog.jsonl", 0, 3000)});
  INFO(filled.err);
  REQUIRE((filled.ok() || filled.err.find("at its [journal] max_size (2097152)") != std::string::npos));
  const int64_t backlog = total(status(), "pending");
  CHECK(backlog >= 2000);
  const RunResult refused = run({"ingest", write_lines(workspace.dir() / "more.jsonl", 3000, 10)});
  INFO(refused.err);
  CHECK(refused.status.code == 1);
  CHECK(refused.err.find("[journal] max_size (2097152)") != std::string::npos);
  CHECK(total(status(), "pending") == backlog);

  // The broker is away: the daemon starts at the limit, and collection pauses.
  broker.stop();
  Process daemon = Process::spawn({.args = gapless_command(config, {"run"}),
                                   .env = {{"GAPLESS_PRUNE_INTERVAL_MS", "500"}},
                                   .out = Output::to_file(workspace.dir() / "daemon.out"),
                                   .err = Output::to_file(workspace.dir() / "daemon.err")});
  const auto log = [&] { return read_file(workspace.dir() / "daemon.err"); };
  const std::string paused = "component=\"collector archive=retention\" kind=journal-size-limit";
  REQUIRE(eventually(30s, [&] { return log().find("fault: begins " + paused) != std::string::npos; }));
  CHECK(eventually(10s, [&] {
    return open_faults(status()).count({"collector archive=retention", "journal-size-limit"}) == 1;
  }));
  CHECK(received_datapoints(recorder).empty());

  // The broker is back: the backlog is delivered (the recorder may miss
  // what is sent before it subscribes again: counted in the journal),
  // pruned 2 s later, and collection resumes by itself and catches up with
  // the archive.
  broker.start();
  CHECK(log().find("pruner: pass messages=0 ") != std::string::npos);  // kept while undelivered
  CHECK(eventually(90s, [&] { return std::regex_search(log(), std::regex("pruner: pass messages=[1-9]")); }));
  CHECK(eventually(60s, [&] { return log().find("fault: resolved " + paused) != std::string::npos; }));
  const auto expected = served_datapoints(archive);
  const bool caught_up = eventually(120s, [&] { return received_datapoints(recorder) == expected; });
  INFO(log());
  CHECK(caught_up);
  // Everything delivered is pruned once kept 2 s; nothing is pending.
  CHECK(eventually(30s, [&] {
    const json now = status();
    return total(now, "pending") == 0 && total(now, "delivered") == 0;
  }));
  CHECK(daemon.running());
  CHECK(daemon.terminate(30s).code == 0);
  const RunResult check = run({"check"});
  INFO(check.out << check.err);
  CHECK(check.status.code == 0);
}
