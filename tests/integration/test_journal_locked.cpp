// Proves a journal locked by another process past the busy timeout is a pause, not a crash: the daemon waits and delivers all.
//
// Issue 10: a sender or the collector waits the lock out, says so once (a
// fault episode, in the log and in status while it lasts), keeps what the
// broker confirmed until it can be marked, and delivers everything
// afterwards; a backfill started meanwhile waits too. The lock is held by
// sqlite3, as any other program could.
//   build/tests/integration/integration-tests '[sender-faults]'
//   build/tests/integration/integration-tests '[disk-faults]'
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/recorded_sink.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "ingest/ingest.hpp"
#include "journal/journal.hpp"
#include "support/consumer_points.hpp"
#include "support/eventually.hpp"
#include "support/polled_archive.hpp"
#include "support/status_faults.hpp"

using namespace std::chrono_literals;
using gapless::test::archive_options;
using gapless::test::archive_table;
using gapless::test::EsmondArchive;
using gapless::test::eventually;
using gapless::test::kHour;
using gapless::test::open_faults;
using gapless::test::Process;
using gapless::test::received_datapoints;
using gapless::test::served_datapoints;
using gapless::test::StompRecorder;
using gapless::test::TestBroker;
using gapless::test::Workspace;

namespace {

// Another process (sqlite3, as any program could) holding the journal's
// write lock for `seconds`. It waits (.timeout) for a write the daemon has
// under way, so the lock is surely taken.
Process lock_journal(const std::string& journal_path, int seconds) {
  return Process::spawn({.args = {"sh", "-c",
                                  "printf '.timeout 10000\\nBEGIN EXCLUSIVE;\\n.shell sleep " + std::to_string(seconds) +
                                      "\\nCOMMIT;\\n' | sqlite3 " + journal_path}});
}

}  // namespace

TEST_CASE("the journal locked by another process past the busy timeout while a sender drains: it pauses, then "
          "delivers everything",
          "[sender-faults]") {
  // Small transactions: the drain takes long enough for the lock to meet it.
  gapless::test::RecordedSink sink("transaction_size = 20\nwindow = 2\n");
  auto& [broker, workspace, recorder] = sink;
  std::vector<gapless::journal::NewMessage> messages;
  for (int i = 0; i < 4'000; ++i) {
    gapless::journal::NewMessage message;
    message.destination = "/topic/perfsonar.raw.throughput";
    message.body = "{\"index\":" + std::to_string(i) + "}";
    message.gapless_id = gapless::ingest::derive_gapless_id(message.destination, message.body);
    messages.push_back(std::move(message));
  }
  workspace.journal_messages(messages);

  Process daemon = workspace.start_daemon();
  REQUIRE(recorder.wait_for(100, 60s));
  // Another process holds the write lock for 14 s; the busy timeout is 10 s.
  Process locker = lock_journal(workspace.journal_path(), 14);
  const std::string episode = "component=\"sender sink=test\" kind=journal-busy";
  auto logged = [&](const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (workspace.daemon_log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  const bool began = logged("fault: begins " + episode);
  INFO(workspace.daemon_log());
  CHECK(began);
  CHECK(daemon.running());
  CHECK(locker.wait(30s).code == 0);
  CHECK(logged("fault: resolved " + episode));

  // The failed mark was kept and written once the lock was gone. (While the
  // sender waits in SQLite's busy handler it sends no heart-beats, so the
  // broker may drop the connection and a transaction whose COMMIT receipt
  // was unread is sent again: at-least-once, same gapless-id.)
  REQUIRE(recorder.wait_for_distinct("gapless-id", messages.size(), 120s));
  CHECK(daemon.running());
  // The last marks follow the last COMMIT receipts by moments.
  const std::array<int64_t, 3> all_delivered{0, 4'000, 0};
  for (int i = 0; i < 100 && workspace.counts("/topic/perfsonar.raw.throughput") != all_delivered; ++i)
    std::this_thread::sleep_for(100ms);
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == all_delivered);
  CHECK(daemon.terminate(30s).code == 0);
}

TEST_CASE("the journal locked by another process past the busy timeout: the daemon waits and goes on",
          "[disk-faults]") {
  TestBroker broker;
  const EsmondArchive::Options options = archive_options(2, 2 * kHour);
  EsmondArchive archive(options);
  archive.start();
  Workspace workspace(broker, "", archive_table(archive, "", "1d", "locked"));
  StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed(30s);
  Process daemon = workspace.start_daemon();
  REQUIRE(eventually(60s, [&] { return recorder.count() > 0; }));

  // Another process holds the write lock for 25 s (the busy timeout is 10 s:
  // a writer gives up at least once, and waits again).
  Process locker = lock_journal(workspace.journal_path(), 25);
  // A backfill started meanwhile waits for the lock too, instead of failing.
  const std::string replay_binary = gapless::test::gapless_replay_binary().string();
  Process backfill = Process::spawn({.args = {replay_binary, "backfill", "--config", workspace.config_path(),
                                              "--log-level", "info", "--from", std::to_string(*options.start),
                                              "--to", std::to_string(archive.now())}});
  const std::string busy = "component=\"collector archive=locked\" kind=journal-busy";
  const bool waited = eventually(30s, [&] {
    archive.advance(5 * 60);
    return workspace.daemon_log().find("fault: begins " + busy) != std::string::npos;
  });
  INFO(workspace.daemon_log());
  CHECK(waited);
  // Shown by status while it lasts (status only reads; the daemon publishes about once a second).
  CHECK(eventually(10s, [&] {
    return open_faults(workspace.status()).count({"collector archive=locked", "journal-busy"}) == 1;
  }));
  CHECK(locker.wait(30s).code == 0);
  const auto backfilled = backfill.wait(60s);
  INFO(backfill.stderr_text());
  CHECK(backfilled.code == 0);
  CHECK(backfill.stderr_text().find("fault: begins component=\"backfill\" kind=journal-busy") != std::string::npos);
  CHECK(backfill.stderr_text().find("fault: resolved component=\"backfill\"") != std::string::npos);

  CHECK(eventually(60s, [&] { return workspace.daemon_log().find("fault: resolved " + busy) != std::string::npos; }));
  const auto expected = served_datapoints(archive);
  CHECK(eventually(60s, [&] { return received_datapoints(recorder) == expected; }));
  CHECK(recorder.distinct("gapless-id") == workspace.delivered_ids().size());
  CHECK(daemon.running());
  CHECK(eventually(10s, [&] { return open_faults(workspace.status()).empty(); }));
  CHECK(daemon.terminate(30s).code == 0);
}
