// Proves a message the broker will never accept stops nothing else: it is parked on its own and the messages behind it flow.
//
// Issue 10, "Isolate at the sender": the poison is parked with a reason a
// person can act on, and the messages behind it are delivered within a minute.
//   build/tests/integration/integration-tests '[poison]'
#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/recorded_sink.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"
#include "ingest/ingest.hpp"
#include "journal/journal.hpp"

using namespace std::chrono_literals;
using gapless::journal::NewMessage;
using gapless::test::messages_on;
using gapless::test::numbered_message;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;

namespace {

constexpr const char* kPoisonTopic = "/topic/perfsonar.raw.throughput";

NewMessage message_on(const std::string& destination, const std::string& text) {
  NewMessage message;
  message.destination = destination;
  message.body = "{\"test\":\"" + text + "\"}";
  message.gapless_id = gapless::ingest::derive_gapless_id(message.destination, message.body);
  message.headers = {{"event-type", destination.substr(destination.rfind('.') + 1)}};
  return message;
}

// 300 good messages: 100 on the poison's topic and 100 on each of two others.
std::vector<NewMessage> good_messages() {
  std::vector<NewMessage> messages;
  for (int i = 0; i < 100; ++i)
    for (const char* topic : {kPoisonTopic, "/topic/perfsonar.raw.packet-loss-rate", "/topic/perfsonar.summary.packet-loss-rate"})
      messages.push_back(message_on(topic, "good " + std::to_string(i)));
  return messages;
}

// A valid STOMP message whose one header line is 20 KiB: above ActiveMQ's
// fixed 10 KiB header limit.
NewMessage long_header_message() {
  NewMessage message = message_on(kPoisonTopic, "poison: a 20 KiB header");
  message.headers.emplace_back("long-header", std::string(20 * 1024, 'h'));
  return message;
}

// The reason `gapless status` shows for the one message parked on its own.
std::string parked_reason(Workspace& workspace, const std::string& gapless_id) {
  auto status = workspace.status();
  const auto& parked = status["sinks"][0]["parked_messages"];
  REQUIRE(parked.size() == 1);
  CHECK(parked[0]["gapless_id"] == gapless_id);
  return parked[0]["reason"].get<std::string>();
}

// Journals the poison first (the oldest message, so every claim meets it
// first), then the 300 good ones; runs the daemon until the recorder holds
// the 300. Returns how long that took.
std::chrono::steady_clock::duration deliver_behind(Workspace& workspace, gapless::test::StompRecorder& recorder,
                                                   const NewMessage& poison, const std::vector<NewMessage>& good) {
  std::vector<NewMessage> messages = {poison};
  messages.insert(messages.end(), good.begin(), good.end());
  workspace.journal_messages(messages);
  const auto start = std::chrono::steady_clock::now();
  Process daemon = workspace.start_daemon();
  const bool all_arrived = recorder.wait_for_distinct("gapless-id", good.size(), 60s);
  const auto took = std::chrono::steady_clock::now() - start;
  INFO("daemon log:\n" << workspace.daemon_log());
  CHECK(daemon.running());  // the daemon is alive after the poison
  REQUIRE(all_arrived);
  // The last marks and the parking follow the broker's receipts by moments.
  auto settled = [&] {
    for (const auto& [destination, counts] : workspace.counts())
      if (counts[0] != 0) return false;
    return workspace.counts(kPoisonTopic)[2] == 1;
  };
  for (int i = 0; i < 100 && !settled(); ++i) std::this_thread::sleep_for(100ms);
  daemon.terminate();
  return took;
}

}  // namespace

TEST_CASE("a message over the sink's max_header_line is parked before it is sent; the 300 behind it flow",
          "[poison]") {
  gapless::test::RecordedSink sink;
  auto& [broker, workspace, recorder] = sink;
  const NewMessage poison = long_header_message();
  const auto good = good_messages();

  const auto took = deliver_behind(workspace, recorder, poison, good);
  CHECK(took < 60s);
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(good));
  CHECK(workspace.counts(kPoisonTopic) == std::array<int64_t, 3>{0, 100, 1});
  CHECK(workspace.counts("/topic/perfsonar.raw.packet-loss-rate") == std::array<int64_t, 3>{0, 100, 0});
  const std::string reason = parked_reason(workspace, poison.gapless_id);
  CHECK_THAT(reason, Catch::Contains("exceeds max_header_line 10240"));
  // Never sent: the broker had no reason to drop the connection.
  CHECK_THAT(workspace.daemon_log(), !Catch::Contains("connection lost"));
}

TEST_CASE("the broker drops the connection over a message: narrowed down, parked alone with the broker's words, "
          "the 300 others flow",
          "[poison]") {
  // Our limit above ActiveMQ's fixed 10 KiB: the broker is the one to refuse.
  gapless::test::RecordedSink sink("max_header_line = 65536\n");
  auto& [broker, workspace, recorder] = sink;
  const NewMessage poison = long_header_message();
  const auto good = good_messages();

  const auto took = deliver_behind(workspace, recorder, poison, good);
  INFO("daemon log:\n" << workspace.daemon_log());
  CHECK(took < 60s);
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(good));
  CHECK(workspace.counts(kPoisonTopic) == std::array<int64_t, 3>{0, 100, 1});
  CHECK(workspace.counts("/topic/perfsonar.summary.packet-loss-rate") == std::array<int64_t, 3>{0, 100, 0});
  const std::string reason = parked_reason(workspace, poison.gapless_id);
  // ActiveMQ's words (an ERROR before it closes), with how often it failed alone.
  CHECK_THAT(reason, Catch::Contains("header") && Catch::Contains("failed alone 3 times"));
  CHECK(reason.find('\n') == std::string::npos);
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("narrowing down"));
}

TEST_CASE("a message over the sink's max_message_size is parked; with the limit raised, retry-parked delivers it",
          "[poison]") {
  gapless::test::RecordedSink sink("max_message_size = 100000\n");
  auto& [broker, workspace, recorder] = sink;
  NewMessage large = message_on(kPoisonTopic, std::string(200'000, 'x'));
  std::vector<NewMessage> messages = {large};
  for (int i = 0; i < 20; ++i) messages.push_back(message_on(kPoisonTopic, "good " + std::to_string(i)));
  workspace.journal_messages(messages);

  workspace.run_until_drained(120s);
  REQUIRE(recorder.wait_for_distinct("gapless-id", 20, 30s));
  CHECK(recorder.values("gapless-id").count(large.gapless_id) == 0);
  CHECK(workspace.counts(kPoisonTopic) == std::array<int64_t, 3>{0, 20, 1});
  CHECK_THAT(parked_reason(workspace, large.gapless_id), Catch::Contains("exceeds max_message_size 100000"));

  // The operator raises the limit, restarts, and asks for the parked message.
  workspace.write_config(broker.stomp_uri(), "max_message_size = 1000000\n");
  auto retry = workspace.command({"retry-parked"});
  INFO(retry.err);
  REQUIRE(retry.ok());
  workspace.run_until_drained(120s);
  REQUIRE(recorder.wait_for_distinct("gapless-id", 21, 30s));
  CHECK(recorder.values("gapless-id") == gapless::test::gapless_ids_of(messages));
  CHECK(workspace.counts(kPoisonTopic) == std::array<int64_t, 3>{0, 21, 0});
}

TEST_CASE("a journaled message that cannot be encoded (an empty header name) is parked; the others are delivered",
          "[poison]") {
  gapless::test::RecordedSink sink;
  auto& [broker, workspace, recorder] = sink;
  // As an older gapless could have journaled it: append() does not validate.
  NewMessage unencodable = message_on(kPoisonTopic, "poison: empty header name");
  unencodable.headers.emplace_back("", "v");
  std::vector<NewMessage> messages = {unencodable};
  for (int i = 0; i < 50; ++i) messages.push_back(message_on(kPoisonTopic, "good " + std::to_string(i)));
  {
    auto journal = gapless::journal::Journal::open(workspace.journal_path(), {"test"});
    REQUIRE(journal->append(messages).appended == 51);
  }

  workspace.run_until_drained(120s);  // exits 0: the message did not end the sender
  REQUIRE(recorder.wait_for_distinct("gapless-id", 50, 30s));
  CHECK(recorder.values("gapless-id").count(unencodable.gapless_id) == 0);
  CHECK(workspace.counts(kPoisonTopic) == std::array<int64_t, 3>{0, 50, 1});
  CHECK_THAT(parked_reason(workspace, unencodable.gapless_id), Catch::Contains("empty header name"));
}

TEST_CASE("a message larger than max_message_size is parked on its own; the rest flows", "[delivery]") {
  gapless::test::RecordedSink sink("max_message_size = 2000\n");
  auto& [broker, workspace, recorder] = sink;
  auto messages = messages_on({"perfsonar.raw.throughput"}, 20, 500);
  auto oversized = numbered_message("perfsonar.raw.throughput", 999, 5000);
  messages.push_back(oversized);
  workspace.journal_messages(messages);
  workspace.run_until_drained();
  REQUIRE(recorder.wait_for_distinct("gapless-id", 20, 30s));
  CHECK(recorder.values("gapless-id").count(oversized.gapless_id) == 0);
  CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{0, 20, 1});
  auto status = workspace.status();
  REQUIRE(status["sinks"][0]["parked_messages"].size() == 1);
  CHECK(status["sinks"][0]["parked_messages"][0]["gapless_id"] == oversized.gapless_id);
  CHECK_THAT(status["sinks"][0]["parked_messages"][0]["reason"].get<std::string>(),
             Catch::Contains("exceeds max_message_size 2000"));
}
