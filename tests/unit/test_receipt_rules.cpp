// Proves nothing is marked delivered before its SEND and COMMIT receipts, and each broker answer parks only what it blames.
//
// The sender's receipt state machine alone (src/sender/transaction_machine.hpp):
// broker answers in, decisions out. Each case is named by the failure it
// catches.
//   build/tests/unit/unit-tests '[transaction-machine]'
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sender/transaction_machine.hpp"
#include "stomp/error_text.hpp"

using gapless::sender::Clock;
using gapless::sender::Decisions;
using gapless::sender::MachineSettings;
using gapless::sender::OutgoingSend;
using gapless::sender::TransactionMachine;
using gapless::stomp::Frame;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

MachineSettings settings(int transaction_size = 3, int window = 2, int attempts = 3) {
  MachineSettings s;
  s.sink = "test";
  s.transaction_size = transaction_size;
  s.window = window;
  s.message_attempts = attempts;
  s.receipt_timeout = 60s;
  return s;
}

OutgoingSend message(int64_t id, std::string destination = "/topic/t") {
  return {id, "g" + std::to_string(id), std::move(destination)};
}

const Clock::time_point t0 = Clock::time_point(std::chrono::hours(1000));

// BEGIN, one SEND per id, end of writing: the transaction's number.
int64_t write(TransactionMachine& machine, const std::vector<int64_t>& ids, Clock::time_point now = t0) {
  const int64_t number = machine.begin(now);
  for (const int64_t id : ids) machine.sent(number, message(id));
  machine.written(number, now);
  return number;
}

Frame receipt(const std::string& id) { return Frame{"RECEIPT", {{"receipt-id", id}}, {}}; }
Frame send_receipt(int64_t transaction, size_t index) {
  return receipt(TransactionMachine::send_receipt(transaction, index));
}
Frame commit_receipt(int64_t transaction) { return receipt(TransactionMachine::commit_receipt(transaction)); }
Frame error(std::optional<std::string> receipt_id, const std::string& message) {
  Frame frame{"ERROR", {}, "java.lang.Exception: " + message + "\n\tat org.apache.activemq..."};
  if (receipt_id) frame.add("receipt-id", *receipt_id);
  frame.add("message", message);
  return frame;
}

std::set<int64_t> as_set(const std::vector<int64_t>& ids) { return {ids.begin(), ids.end()}; }

// Answers every SEND of `number` with a RECEIPT: the decisions of the last one.
Decisions confirm_sends(TransactionMachine& machine, int64_t number, size_t sends) {
  Decisions all;
  for (size_t i = 0; i < sends; ++i) all.merge(machine.on_frame(send_receipt(number, i), t0));
  return all;
}

}  // namespace

TEST_CASE("an ERROR on SEND k of n: the transaction is aborted, never committed, nothing delivered",
          "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {11, 12, 13});
  Decisions all = machine.on_frame(send_receipt(number, 0), t0);
  all.merge(machine.on_frame(error(TransactionMachine::send_receipt(number, 1), "Some message problem"), t0));
  CHECK(all.abort.empty());  // the third SEND is still unanswered: nothing decided yet
  all.merge(machine.on_frame(send_receipt(number, 2), t0));
  CHECK(all.commit.empty());
  CHECK(all.abort == std::vector<int64_t>{number});
  CHECK(all.delivered.empty());
  CHECK(as_set(all.released) == std::set<int64_t>{11, 12, 13});
  CHECK(all.park_messages.empty());  // refused once: tried again, not parked yet
  CHECK(machine.idle());
}

TEST_CASE("an ERROR on the COMMIT: nothing of the transaction is delivered", "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {1, 2, 3});
  Decisions sends = confirm_sends(machine, number, 3);
  REQUIRE(sends.commit == std::vector<int64_t>{number});
  Decisions decisions = machine.on_frame(
      error(TransactionMachine::commit_receipt(number), "COMMIT FAILED: Transaction marked rollback only"), t0);
  CHECK(decisions.delivered.empty());
  CHECK(as_set(decisions.released) == std::set<int64_t>{1, 2, 3});
  CHECK(decisions.pause_claims);
  CHECK_FALSE(decisions.reconnect);  // ActiveMQ keeps the connection open after a refused COMMIT
  CHECK(machine.idle());
}

TEST_CASE("receipts out of order: the COMMIT waits for the last SEND, transactions settle in any order",
          "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t first = write(machine, {1, 2, 3});
  const int64_t second = write(machine, {4, 5});
  CHECK(machine.on_frame(send_receipt(first, 2), t0).commit.empty());
  CHECK(machine.on_frame(send_receipt(second, 1), t0).commit.empty());
  CHECK(machine.on_frame(send_receipt(first, 0), t0).commit.empty());
  CHECK(machine.on_frame(send_receipt(second, 0), t0).commit == std::vector<int64_t>{second});
  CHECK(machine.on_frame(send_receipt(first, 1), t0).commit == std::vector<int64_t>{first});
  // The second transaction's COMMIT is confirmed first.
  CHECK(as_set(machine.on_frame(commit_receipt(second), t0).delivered) == std::set<int64_t>{4, 5});
  CHECK(as_set(machine.on_frame(commit_receipt(first), t0).delivered) == std::set<int64_t>{1, 2, 3});
  CHECK(machine.idle());
}

TEST_CASE("a receipt for an unknown SEND is a lie: the connection is dropped, nothing delivered",
          "[transaction-machine]") {
  const auto receipt_id = GENERATE(as<std::string>{}, "1:7", "99:0", "99:commit", "1:x", "garbage", "1:0:0", "");
  INFO("receipt-id " << receipt_id);
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {1, 2, 3});
  REQUIRE(number == 1);
  Decisions decisions = machine.on_frame(receipt(receipt_id), t0);
  REQUIRE(decisions.reconnect);
  CHECK_THAT(*decisions.reconnect, Contains("protocol error"));
  CHECK(decisions.delivered.empty());
  CHECK(decisions.commit.empty());
  CHECK(as_set(decisions.released) == std::set<int64_t>{1, 2, 3});
  CHECK(machine.failures_of(1) == 0);  // the broker lied, the messages did nothing wrong
}

TEST_CASE("a second RECEIPT for an answered SEND is a lie", "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {1, 2});
  machine.on_frame(send_receipt(number, 0), t0);
  Decisions decisions = machine.on_frame(send_receipt(number, 0), t0);
  REQUIRE(decisions.reconnect);
  CHECK(decisions.commit.empty());
  CHECK(decisions.delivered.empty());
}

TEST_CASE("a COMMIT receipt when no COMMIT was sent is a lie: nothing delivered", "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {1, 2, 3});
  machine.on_frame(send_receipt(number, 0), t0);
  machine.on_frame(send_receipt(number, 1), t0);
  Decisions decisions = machine.on_frame(commit_receipt(number), t0);  // the third SEND is unanswered
  REQUIRE(decisions.reconnect);
  CHECK_THAT(*decisions.reconnect, Contains("never sent"));
  CHECK(decisions.delivered.empty());
  CHECK(as_set(decisions.released) == std::set<int64_t>{1, 2, 3});
}

TEST_CASE("connection lost between the COMMIT receipt and the journal write: the committed stay delivered",
          "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t first = write(machine, {1, 2});
  const int64_t second = write(machine, {3, 4});
  confirm_sends(machine, first, 2);
  Decisions committed = machine.on_frame(commit_receipt(first), t0);
  REQUIRE(as_set(committed.delivered) == std::set<int64_t>{1, 2});
  // The sender has not written the marks yet when the connection goes.
  Decisions lost = machine.connection_lost("broker 127.0.0.1:61613: connection closed", t0 + 1ms);
  CHECK(lost.delivered.empty());
  CHECK(as_set(lost.released) == std::set<int64_t>{3, 4});  // never 1 or 2: those must be marked, not re-sent
  CHECK(machine.failures_of(1) == 0);
  CHECK(machine.failures_of(3) == 1);
  CHECK(machine.idle());
  (void)second;
}

TEST_CASE("an encode failure parks that message at once and the rest of the transaction commits",
          "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = machine.begin(t0);
  machine.sent(number, message(1));
  Decisions parked = machine.unsendable(message(2), "cannot encode an empty header name in SEND frame");
  REQUIRE(parked.park_messages.size() == 1);
  CHECK(parked.park_messages[0].message.message_id == 2);
  CHECK_THAT(parked.park_messages[0].reason, Contains("empty header name"));
  CHECK(parked.released == std::vector<int64_t>{2});
  // The next SEND takes the index the unsendable one did not use.
  CHECK(machine.next_send_receipt(number) == TransactionMachine::send_receipt(number, 1));
  machine.sent(number, message(3));
  machine.written(number, t0);
  CHECK(confirm_sends(machine, number, 2).commit == std::vector<int64_t>{number});
  CHECK(as_set(machine.on_frame(commit_receipt(number), t0).delivered) == std::set<int64_t>{1, 3});
}

TEST_CASE("a transaction whose every message was unsendable is aborted, not left open", "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = machine.begin(t0);
  machine.unsendable(message(1), "a frame of 5000000 bytes exceeds max_message_size 4194304");
  Decisions decisions = machine.written(number, t0);
  CHECK(decisions.abort == std::vector<int64_t>{number});
  CHECK(machine.idle());
}

TEST_CASE("a message the broker refuses for its own sake is parked after message_attempts refusals, with its words",
          "[transaction-machine]") {
  TransactionMachine machine(settings(3, 1, 3));
  std::vector<Decisions> rounds;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const int64_t number = write(machine, {1, 2, 3});
    Decisions round = machine.on_frame(send_receipt(number, 0), t0);
    round.merge(machine.on_frame(
        error(TransactionMachine::send_receipt(number, 1), "Invalid\nmessage: bad \"property\" value"), t0));
    round.merge(machine.on_frame(send_receipt(number, 2), t0));
    CHECK(round.abort == std::vector<int64_t>{number});
    CHECK(round.delivered.empty());
    rounds.push_back(std::move(round));
  }
  CHECK(rounds[0].park_messages.empty());
  CHECK(rounds[1].park_messages.empty());
  REQUIRE(rounds[2].park_messages.size() == 1);
  CHECK(rounds[2].park_messages[0].message.message_id == 2);
  const std::string& reason = rounds[2].park_messages[0].reason;
  CHECK_THAT(reason, Contains("Invalid message: bad 'property' value"));  // the broker's words, cleaned
  CHECK(reason.find('\n') == std::string::npos);
  // The others are only released, and the next transaction commits them.
  const int64_t next = write(machine, {1, 3});
  REQUIRE(confirm_sends(machine, next, 2).commit == std::vector<int64_t>{next});
  CHECK(as_set(machine.on_frame(commit_receipt(next), t0).delivered) == std::set<int64_t>{1, 3});
}

TEST_CASE("an unauthorized destination is parked, never a message", "[transaction-machine]") {
  TransactionMachine machine(settings());
  const int64_t number = write(machine, {1});
  Decisions decisions = machine.on_frame(
      error(TransactionMachine::send_receipt(number, 0),
            "User collector is not authorized to write to: topic://perfsonar.denied"),
      t0);
  REQUIRE(decisions.park_destinations.size() == 1);
  CHECK(decisions.park_destinations[0].destination == "/topic/t");
  CHECK(decisions.park_messages.empty());
  CHECK(decisions.abort == std::vector<int64_t>{number});
}

TEST_CASE("flow control never parks: one pause and one lowering per episode", "[transaction-machine]") {
  TransactionMachine machine(settings(4, 4));
  std::vector<int64_t> numbers;
  for (int64_t i = 0; i < 4; ++i) numbers.push_back(write(machine, {i * 10 + 1}));
  int pauses = 0;
  for (const int64_t number : numbers) {
    Decisions decisions = machine.on_frame(
        error(TransactionMachine::send_receipt(number, 0), "Usage Manager Memory Limit reached. Stopping producer"),
        t0);
    CHECK(decisions.park_messages.empty());
    CHECK(decisions.park_destinations.empty());
    pauses += decisions.pause_claims ? 1 : 0;
  }
  CHECK(pauses == 1);
  CHECK(machine.window() == 2);  // halved once, not four times
  // A transaction begun after the pause is a new episode.
  const int64_t later = write(machine, {99});
  CHECK(machine.on_frame(error(TransactionMachine::send_receipt(later, 0), "Usage Manager Memory Limit reached"), t0)
            .pause_claims);
}

TEST_CASE("a receipt overdue past receipt_timeout drops the connection without blaming the messages",
          "[transaction-machine]") {
  TransactionMachine machine(settings());
  write(machine, {1, 2});
  CHECK_FALSE(machine.check_deadline(t0 + 59s).reconnect);
  Decisions decisions = machine.check_deadline(t0 + 61s);
  REQUIRE(decisions.reconnect);
  CHECK(as_set(decisions.released) == std::set<int64_t>{1, 2});
  CHECK(machine.failures_of(1) == 0);
}

TEST_CASE("healthy traffic pays nothing: one lost connection narrows nothing", "[transaction-machine]") {
  TransactionMachine machine(settings(500, 4));
  write(machine, {1, 2, 3});
  Decisions lost = machine.connection_lost("connection reset", t0);
  CHECK_FALSE(lost.reconnect_at_once);  // a broker restart: the usual reconnect backoff
  CHECK(machine.transaction_size() == 500);
  CHECK(machine.window() == 4);
  // A loss long after the SENDs (a broker gone silent) blames nobody.
  write(machine, {1, 2, 3}, t0);
  machine.connection_lost("heart-beat silence", t0 + 30s);
  CHECK(machine.failures_of(1) == 1);
}

namespace {

// A broker that drops the connection over one message (ActiveMQ over a header
// line above 10 KiB), and a sender that claims in journal order, as sender.cpp
// does. Returns what became of every message.
struct Outcome {
  std::set<int64_t> delivered;
  std::map<int64_t, std::string> parked;
  int connections = 1;
  int immediate_reconnects = 0;
  int64_t size_when_parked = 0;
  int final_transaction_size = 0;
};

Outcome drain_with_poison(int64_t messages, int64_t poison, bool broker_says_why, MachineSettings s) {
  TransactionMachine machine(std::move(s));
  std::set<int64_t> pending;
  for (int64_t id = 1; id <= messages; ++id) pending.insert(id);
  std::set<int64_t> in_flight;
  Outcome outcome;
  Clock::time_point now = t0;
  int64_t last_failing_batch = 0;
  auto follow = [&](const Decisions& decisions) {
    for (const int64_t id : decisions.delivered) {
      outcome.delivered.insert(id);
      pending.erase(id);
      in_flight.erase(id);
    }
    for (const int64_t id : decisions.released) in_flight.erase(id);
    for (const auto& park : decisions.park_messages) {
      outcome.parked[park.message.message_id] = park.reason;
      outcome.size_when_parked = last_failing_batch;
      pending.erase(park.message.message_id);
    }
  };
  for (int round = 0; round < 2000 && !pending.empty(); ++round) {
    now += 10ms;
    std::vector<std::pair<int64_t, std::vector<int64_t>>> written;
    while (machine.transactions_in_flight() < static_cast<size_t>(machine.window())) {
      std::vector<int64_t> batch;
      for (const int64_t id : pending)
        if (!in_flight.count(id) && batch.size() < static_cast<size_t>(machine.transaction_size()))
          batch.push_back(id);
      if (batch.empty()) break;
      const int64_t number = machine.begin(now);
      for (const int64_t id : batch) {
        machine.sent(number, message(id));
        in_flight.insert(id);
      }
      follow(machine.written(number, now));
      written.emplace_back(number, batch);
    }
    // The broker works through the transactions in order, and closes over
    // the poison's transaction without answering any of its SENDs (the
    // worst case: every message of it is a suspect).
    for (const auto& [number, batch] : written) {
      const auto bad = std::find(batch.begin(), batch.end(), poison);
      Decisions decisions;
      if (bad != batch.end()) {
        last_failing_batch = static_cast<int64_t>(batch.size());
        if (broker_says_why)
          decisions.merge(machine.on_frame(error(std::nullopt, "The maximum header length was exceeded"), now));
        decisions.merge(machine.connection_lost("broker: connection closed by the peer", now));
        if (decisions.reconnect_at_once) ++outcome.immediate_reconnects;
        ++outcome.connections;
        follow(decisions);
        break;
      }
      for (size_t i = 0; i < batch.size(); ++i) decisions.merge(machine.on_frame(send_receipt(number, i), now));
      REQUIRE(decisions.commit == std::vector<int64_t>{number});
      decisions.merge(machine.on_frame(commit_receipt(number), now));
      follow(decisions);
    }
  }
  outcome.final_transaction_size = machine.transaction_size();
  return outcome;
}

}  // namespace

TEST_CASE("the same message failing again and again is narrowed down to, parked alone, the others delivered",
          "[transaction-machine]") {
  const int64_t poison = GENERATE(1, 137, 300);
  const bool broker_says_why = GENERATE(false, true);
  INFO("poison message " << poison << (broker_says_why ? ", ERROR before closing" : ", closes silently"));
  Outcome outcome = drain_with_poison(300, poison, broker_says_why, settings(50, 4, 3));

  REQUIRE(outcome.parked.size() == 1);
  CHECK(outcome.parked.begin()->first == poison);
  CHECK(outcome.delivered.size() == 299);
  CHECK(outcome.delivered.count(poison) == 0);
  CHECK(outcome.size_when_parked == 1);  // it was alone in its transaction when it was judged
  CHECK_THAT(outcome.parked.begin()->second,
             Contains(broker_says_why ? "The maximum header length was exceeded"
                                      : "the broker closed the connection after this message's SEND"));
  CHECK_THAT(outcome.parked.begin()->second, Contains("3 times"));
  // Narrowing: 2 failures before it starts, about log2(50) halvings, 3 alone.
  CHECK(outcome.connections <= 2 + 7 + 3 + 1);
  CHECK(outcome.immediate_reconnects >= outcome.connections - 3);
  // And it widens back after clean commits (when messages remain behind it).
  if (poison < 250) CHECK(outcome.final_transaction_size > 1);
}

TEST_CASE("a message failing only once is not parked, and nothing narrows", "[transaction-machine]") {
  TransactionMachine machine(settings(50, 4, 3));
  write(machine, {1});
  machine.connection_lost("connection reset", t0);
  const int64_t number = write(machine, {1});
  confirm_sends(machine, number, 1);
  CHECK(machine.on_frame(commit_receipt(number), t0).delivered == std::vector<int64_t>{1});
  CHECK(machine.failures_of(1) == 0);
  CHECK(machine.transaction_size() == 50);
}

TEST_CASE("the broker's ERROR text is cleaned before it is logged or stored", "[transaction-machine][error-text]") {
  using gapless::stomp::clean_error_text;
  CHECK(clean_error_text("line one\nline two\r\n\tat x") == "line one line two at x");
  CHECK(clean_error_text(std::string("nul\0byte\x7f", 9)) == "nul byte");
  CHECK(clean_error_text("say \"no\"") == "say 'no'");
  const std::string cut = clean_error_text(std::string(2000, 'e'));
  CHECK(cut.size() <= gapless::stomp::kMaxErrorText);
  CHECK_THAT(cut, Catch::Matchers::EndsWith("..."));
  // A cut never splits a UTF-8 sequence.
  std::string accented(300, 'a');
  for (int i = 0; i < 200; ++i) accented += "\xc3\xa9";  // é, two bytes
  const std::string accents = clean_error_text(accented, 400);
  REQUIRE(accents.size() <= 400);
  CHECK((static_cast<unsigned char>(accents[accents.size() - 4]) & 0xC0) != 0xC0);
  Frame stack_trace{"ERROR", {}, "java.io.IOException: boom\n\tat org.apache..."};
  CHECK(gapless::stomp::error_text(stack_trace) == "java.io.IOException: boom");
}
