// A journal fault in a sender is a pause, not a crash (issue 10): the sender
// waits the fault out, says so once (a fault episode), keeps what the broker
// confirmed until it can be marked, and delivers everything afterwards.
//   build/tests/integration/integration-tests '[sender-faults]'
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "ingest/ingest.hpp"
#include "journal/journal.hpp"

using namespace std::chrono_literals;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;

TEST_CASE("the journal locked by another process past the busy timeout while a sender drains: it pauses, then "
          "delivers everything",
          "[sender-faults]") {
  TestBroker broker;
  // Small transactions: the drain takes long enough for the lock to meet it.
  Workspace workspace(broker, "transaction_size = 20\nwindow = 2\n");
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();
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
  Process locker = Process::spawn(
      {.args = {"sh", "-c",
                "printf 'BEGIN EXCLUSIVE;\\n.shell sleep 14\\nCOMMIT;\\n' | sqlite3 " + workspace.journal_path()}});
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
