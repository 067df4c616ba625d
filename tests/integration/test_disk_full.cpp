// Proves a full disk is a pause, not a crash: the daemon starts on it, delivers what is journaled, and collects again once there is room.
//
// Issue 10: a disk that is full when the daemon starts, and a disk that fills
// during collection and delivery (a journal locked by another process:
// test_journal_locked.cpp). Issue 13: a disk that fills while pScheduler
// pushes runs ([push]): never a 200 for a run not journaled. Real files, a
// real ActiveMQ, the `gapless` binary as a user runs it.
//
// The small disks are tmpfs mounts in a private mount namespace (`unshare
// -m`): every command that uses the journal runs inside it (nsenter), and
// the mount disappears with the namespace's last process, so a test that
// dies leaves no mount behind on the host.
//   build/tests/integration/integration-tests '[disk-faults]'
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

#include "esmond_archive/esmond_archive.hpp"
#include "push/run_forms.hpp"
#include "harness/archiver_client.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "support/consumer_points.hpp"
#include "support/eventually.hpp"
#include "support/polled_archive.hpp"
#include "support/pushed_runs.hpp"
#include "support/status_faults.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_runs;
using gapless::test::ArchiveAttempt;
using gapless::test::ArchiverOptions;
using gapless::test::archive_table;
using gapless::test::EsmondArchive;
using gapless::test::eventually;
using gapless::test::kHour;
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

// A tmpfs of `megabytes` at `mount_point`, seen only by the processes of a
// private mount namespace. Its holder ends when the test process does.
class PrivateDisk {
 public:
  PrivateDisk(const std::filesystem::path& mount_point, int megabytes)
      : mount_point_(mount_point), holder_(hold(mount_point, megabytes)) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!inside({"test", "-e", (mount_point / ".mounted").string()}).ok()) {
      if (!holder_.running() || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("cannot mount a tmpfs in a private mount namespace: " + holder_.stderr_text());
      std::this_thread::sleep_for(100ms);
    }
  }

  // `args` run inside the namespace.
  std::vector<std::string> command(std::vector<std::string> args) const {
    std::vector<std::string> full = {"nsenter", "-t", std::to_string(holder_.pid()), "-m", "--"};
    full.insert(full.end(), args.begin(), args.end());
    return full;
  }
  RunResult inside(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s) const {
    return gapless::test::run(command(std::move(args)), timeout);
  }

  // Writes a filler file until the disk is full (dd ends on ENOSPC).
  void fill(const std::string& name = "filler") const {
    inside({"dd", "if=/dev/zero", "of=" + (mount_point_ / name).string(), "bs=16k"});
    REQUIRE(free_bytes() < 64 * 1024);
  }
  int64_t free_bytes() const {
    const RunResult df = inside({"stat", "-f", "-c", "%a %S", mount_point_.string()});
    int64_t blocks = 0, size = 0;
    std::istringstream(df.out) >> blocks >> size;
    return blocks * size;
  }

 private:
  static Process hold(const std::filesystem::path& mount_point, int megabytes) {
    std::filesystem::create_directories(mount_point);
    return Process::spawn({.args = {"unshare", "-m", "--propagation", "private", "sh", "-c",
                                    "mount -t tmpfs -o size=" + std::to_string(megabytes) + "m,mode=0700 tmpfs " +
                                        mount_point.string() + " && touch " + mount_point.string() +
                                        "/.mounted && while kill -0 " + std::to_string(::getpid()) +
                                        " 2>/dev/null; do sleep 1; done"}});
  }

  std::filesystem::path mount_point_;
  Process holder_;
};

// The workspace's configuration with the journal moved to `journal_path`,
// and more [journal] keys.
std::string journal_config(const Workspace& workspace, const std::string& journal_path,
                           const std::string& journal_keys) {
  std::ifstream in(workspace.config_path());
  std::string text(std::istreambuf_iterator<char>(in), {});
  const std::string old_line = "path = \"" + workspace.journal_path() + "\"\n";
  const size_t at = text.find(old_line);
  REQUIRE(at != std::string::npos);
  text.replace(at, old_line.size(), "path = \"" + journal_path + "\"\n" + journal_keys);
  const std::string path = (workspace.dir() / "disk-faults.toml").string();
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> gapless_command(const std::string& config, std::vector<std::string> args) {
  std::vector<std::string> full = {gapless::test::gapless_binary().string(), args.at(0), "--config", config};
  full.insert(full.end(), args.begin() + 1, args.end());
  return full;
}

// `count` directory-queue lines to /topic/perfsonar.raw.disk-faults, numbered from `first`.
std::string write_lines(const std::filesystem::path& path, int first, int count) {
  std::ofstream out(path);
  for (int i = first; i < first + count; ++i)
    out << json{{"header", {{"destination", "/topic/perfsonar.raw.disk-faults"}, {"index", i}}},
                {"body", "{\"index\":" + std::to_string(i) + ",\"pad\":\"" + std::string(400, 'x') + "\"}"}}
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

// The workspace's journal moved onto a PrivateDisk of `megabytes` with a 1 MiB
// disk reserve, and `gapless` run with that configuration inside the disk's
// namespace.
class JournalOnSmallDisk {
 public:
  JournalOnSmallDisk(const Workspace& workspace, int megabytes)
      : dir_(workspace.dir()),
        disk_(dir_ / "disk", megabytes),
        journal_((dir_ / "disk" / "journal.db").string()),
        config_(journal_config(workspace, journal_, "disk_reserve = 1048576\n")) {}

  const PrivateDisk& disk() const { return disk_; }

  // `gapless <args[0]> --config F <args[1..]>`.
  RunResult gapless(std::vector<std::string> args) const {
    return disk_.inside(gapless_command(config_, std::move(args)));
  }
  // `gapless run`, logs in the workspace's daemon.{out,err}.
  Process start_daemon() const {
    return Process::spawn({.args = disk_.command(gapless_command(config_, {"run"})),
                           .out = Output::to_file(dir_ / "daemon.out"),
                           .err = Output::to_file(dir_ / "daemon.err")});
  }
  std::string daemon_log() const { return read_file(dir_ / "daemon.err"); }
  // sqlite3's PRAGMA integrity_check on the journal: "ok\n" when it is sound.
  std::string integrity_check() const { return disk_.inside({"sqlite3", journal_, "PRAGMA integrity_check"}).out; }
  // The first column of `select`'s rows, read beside a running daemon.
  std::set<std::string> column(const std::string& select) const {
    const RunResult result = disk_.inside({"sqlite3", "-cmd", ".timeout 10000", journal_, select});
    INFO(result.err);
    REQUIRE(result.ok());
    std::set<std::string> values;
    std::istringstream lines(result.out);
    for (std::string line; std::getline(lines, line);) values.insert(line);
    return values;
  }

 private:
  std::filesystem::path dir_;
  PrivateDisk disk_;
  std::string journal_;
  std::string config_;
};

}  // namespace

TEST_CASE("a disk already full when the daemon starts: it starts and delivers everything journaled",
          "[disk-faults]") {
  TestBroker broker;
  Workspace workspace(broker);
  JournalOnSmallDisk journal_disk(workspace, 6);
  StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);

  const RunResult ingested = journal_disk.gapless({"ingest", write_lines(workspace.dir() / "first.jsonl", 0, 3500)});
  INFO(ingested.err);
  REQUIRE(ingested.ok());

  // The disk fills up (someone else's file); the next ingest is refused,
  // says why, and journals nothing of its batch.
  journal_disk.disk().fill();
  const std::string more = write_lines(workspace.dir() / "more.jsonl", 3500, 100);
  const RunResult refused = journal_disk.gapless({"ingest", more});
  INFO(refused.err);
  CHECK(refused.status.code == 1);
  CHECK(refused.err.find("the disk is full") != std::string::npos);
  const RunResult refused_again = journal_disk.gapless({"ingest", more});
  INFO(refused_again.err);
  CHECK(refused_again.status.code == 1);
  CHECK(refused_again.err.find("nearly full") != std::string::npos);
  const RunResult before = journal_disk.gapless({"status", "--json"});
  INFO(before.err);
  REQUIRE(before.ok());
  CHECK(total(json::parse(before.out), "pending") == 3500);

  Process daemon = journal_disk.start_daemon();
  const bool delivered = recorder.wait_for_distinct("gapless-id", 3500, 90s);
  INFO(journal_disk.daemon_log());
  CHECK(delivered);
  CHECK(recorder.distinct("gapless-id") == 3500);
  CHECK(daemon.running());
  CHECK(eventually(30s, [&] {
    const RunResult status = journal_disk.gapless({"status", "--json"});
    return status.ok() && total(json::parse(status.out), "delivered") == 3500;
  }));
  CHECK(daemon.terminate(30s).code == 0);
  CHECK(journal_disk.integrity_check() == "ok\n");
}

TEST_CASE("the disk fills during collection and delivery: delivery goes on, collection pauses and resumes",
          "[disk-faults]") {
  TestBroker broker;
  EsmondArchive archive(archive_options(3, 4 * kHour));
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "", "1d", "full-disk"));
  JournalOnSmallDisk journal_disk(workspace, 16);
  StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  const auto status = [&] {
    const RunResult result = journal_disk.gapless({"status", "--json"});
    INFO(result.err);
    REQUIRE(result.ok());
    return json::parse(result.out);
  };

  Process daemon = journal_disk.start_daemon();
  const auto log = [&] { return journal_disk.daemon_log(); };
  // Collecting and delivering: the first poll's data on the bus.
  REQUIRE(eventually(60s, [&] { return recorder.count() > 10; }));
  // The broker goes away for a while: what is collected now waits, pending.
  broker.stop();
  archive.advance(30 * 60);
  REQUIRE(eventually(30s, [&] { return total(status(), "pending") > 0; }));

  // The disk fills while the archive keeps producing.
  journal_disk.disk().fill();
  const std::string paused = "component=\"collector archive=full-disk\" kind=disk-full";
  const bool collection_paused = eventually(60s, [&] {
    archive.advance(20 * 60);
    return log().find("fault: begins " + paused) != std::string::npos;
  });
  INFO(log());
  REQUIRE(collection_paused);
  // The broker is back while the disk is still full: what was journaled is
  // delivered (marked delivered on the full disk); collection stays paused
  // and says so in status.
  const int64_t pending_on_full_disk = total(status(), "pending");
  CHECK(pending_on_full_disk > 0);
  broker.start();
  CHECK(eventually(60s, [&] {
    const json now = status();
    return open_faults(now).count({"collector archive=full-disk", "disk-full"}) == 1 &&
           total(now, "pending") == 0;
  }));
  CHECK(daemon.running());
  const json during = status();
  INFO(during.dump(2));
  CHECK(during.at("daemon").at("running") == true);
  CHECK(total(during, "delivered") > 0);
  // Nothing is collected while paused: what the archive produces meanwhile
  // reaches the bus only after space is back.
  archive.advance(20 * 60);
  std::this_thread::sleep_for(5s);
  CHECK(received_datapoints(recorder) != served_datapoints(archive));
  CHECK(log().find("fault: resolved " + paused) == std::string::npos);

  // Space is back: collection resumes by itself and catches up.
  REQUIRE(journal_disk.disk().inside({"rm", (workspace.dir() / "disk" / "filler").string()}).ok());
  CHECK(eventually(60s, [&] { return log().find("fault: resolved " + paused) != std::string::npos; }));
  const auto expected = served_datapoints(archive);
  const bool complete = eventually(120s, [&] { return received_datapoints(recorder) == expected; });
  INFO("received " << received_datapoints(recorder).size() << " of " << expected.size() << " served datapoints");
  CHECK(complete);
  // The daemon publishes its faults about once a second.
  CHECK(eventually(10s, [&] { return open_faults(status()).empty(); }));
  CHECK(daemon.running());
  CHECK(daemon.terminate(30s).code == 0);
  CHECK(journal_disk.integrity_check() == "ok\n");
}

TEST_CASE("a run pushed while the disk is full is answered 503 with Retry-After, never 200, and pushes are taken again "
          "once there is room",
          "[disk-faults]") {
  TestBroker broker;
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  Workspace workspace(broker, "", gapless::test::push_tables(port, "retry_after = \"7s\"\n"));
  JournalOnSmallDisk journal_disk(workspace, 16);
  StompRecorder recorder(broker.stomp_uri(), {.destination = "/topic/perfsonar.raw.throughput"});
  recorder.start_and_wait_subscribed(30s);
  Process daemon = journal_disk.start_daemon();
  gapless::test::wait_listening(port, daemon, workspace);
  const auto status = [&] {
    const RunResult result = journal_disk.gapless({"status", "--json"});
    INFO(result.err);
    REQUIRE(result.ok());
    return json::parse(result.out);
  };

  // Runs `first`.. pushed by 4 archiver workers; what was answered 200 is
  // remembered (gapless-id, start) to be found in the journal and on the bus.
  ArchiverOptions archiver = gapless::test::archiver(port);
  archiver.workers = 4;
  std::set<std::string> answered_200;
  std::set<std::string> starts_answered_200;
  const auto push = [&](int first, int count) {
    const std::vector<std::string> bodies = gapless::test::run_bodies(first, count);
    const std::vector<ArchiveAttempt> attempts = archive_runs(bodies, archiver).attempts;
    for (size_t i = 0; i < bodies.size(); ++i)
      if (attempts[i].status == 200) {
        answered_200.insert(gapless::push::run_gapless_id(gapless::test::run_id_of(bodies[i]), bodies[i]));
        starts_answered_200.insert(std::to_string(gapless::test::kFirstPushedStart + 60 * (first + int(i))));
      }
    return attempts;
  };

  for (const ArchiveAttempt& attempt : push(0, 20)) {
    INFO(attempt.error << attempt.body);
    REQUIRE(attempt.status == 200);
  }

  // The disk fills (someone else's file): every push is refused for later,
  // the first by the failed commit, the next ones for the reserve that
  // cannot be taken back; the daemon stays up and says why in status.
  journal_disk.disk().fill();
  for (int round = 0; round < 3; ++round) {
    for (const ArchiveAttempt& attempt : push(20 + 10 * round, 10)) {
      INFO(attempt.error << attempt.body);
      CHECK(attempt.status == 503);
      CHECK(attempt.headers.find("Retry-After: 7\r\n") != std::string::npos);
      CHECK(attempt.body.find("full") != std::string::npos);
    }
    std::this_thread::sleep_for(1s);
  }
  CHECK(daemon.running());
  CHECK(eventually(10s, [&] { return open_faults(status()).count({"push", "disk-full"}) == 1; }));

  // Space is back: pushes are journaled and answered 200 again.
  REQUIRE(journal_disk.disk().inside({"rm", (workspace.dir() / "disk" / "filler").string()}).ok());
  for (const ArchiveAttempt& attempt : push(50, 20)) {
    INFO(attempt.error << attempt.body);
    CHECK(attempt.status == 200);
  }
  CHECK(eventually(10s, [&] { return open_faults(status()).count({"push", "disk-full"}) == 0; }));

  // Every run answered 200, and no other, is journaled and reached the
  // subscriber as its OSG throughput point.
  CHECK(journal_disk.column(gapless::test::kJournaledRunsSql) == answered_200);
  INFO(journal_disk.daemon_log());
  CHECK(recorder.wait_for_distinct("gapless-id", answered_200.size(), 60s));
  std::set<std::string> starts_received;
  for (const auto& message : recorder.snapshot()) {
    const json body = json::parse(message.body);
    for (const auto& [ts, value] : body.at("datapoints").items()) starts_received.insert(ts);
  }
  CHECK(starts_received == starts_answered_200);
  CHECK(daemon.running());
  CHECK(daemon.terminate(30s).code == 0);
  CHECK(journal_disk.integrity_check() == "ok\n");
}
