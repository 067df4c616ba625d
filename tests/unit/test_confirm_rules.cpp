// Proves that on RabbitMQ (no transactions, a receipt per SEND) nothing is marked delivered before its own RECEIPT, and each ERROR parks only what it blames.
//
// The RabbitMQ delivery rules alone (src/sender/confirm_machine.hpp): broker
// answers in, decisions out. The ERROR texts are RabbitMQ 3.10.8's own,
// seen against a real node. Each case is named by the failure it catches.
//   build/tests/unit/unit-tests '[confirm-machine]'
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "sender/broker_answers.hpp"
#include "sender/confirm_machine.hpp"

using gapless::sender::Clock;
using gapless::sender::ConfirmMachine;
using gapless::sender::Decisions;
using gapless::sender::MachineSettings;
using gapless::sender::OutgoingSend;
using gapless::sender::send_receipt_id;
using gapless::stomp::Frame;
using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

MachineSettings settings(int group_size = 4, int window = 2, int attempts = 3) {
  MachineSettings s;
  s.sink = "rabbit";
  s.transaction_size = group_size;
  s.window = window;
  s.message_attempts = attempts;
  s.receipt_timeout = 60s;
  return s;
}

const Clock::time_point t0 = Clock::time_point(std::chrono::hours(1000));

// One group: a SEND per (id, destination); its number.
int64_t write_to(ConfirmMachine& machine, const std::vector<std::pair<int64_t, std::string>>& sends,
                 Clock::time_point now = t0) {
  const int64_t number = machine.begin(now);
  for (const auto& [id, destination] : sends) machine.sent(number, {id, "g" + std::to_string(id), destination});
  machine.written(number, now);
  return number;
}
int64_t write(ConfirmMachine& machine, const std::vector<int64_t>& ids, Clock::time_point now = t0) {
  std::vector<std::pair<int64_t, std::string>> sends;
  for (const int64_t id : ids) sends.emplace_back(id, "/topic/perfsonar.raw.a");
  return write_to(machine, sends, now);
}

Frame receipt(int64_t group, size_t index) {
  return Frame{"RECEIPT", {{"receipt-id", send_receipt_id(group, index)}}, {}};
}

// An ERROR as RabbitMQ sends it: the kind in `message`, the words in the body.
Frame rabbit_error(const std::string& kind, const std::string& body, std::optional<std::string> receipt_id = {}) {
  Frame frame{"ERROR", {{"message", kind}, {"content-type", "text/plain"}}, body};
  if (receipt_id) frame.add("receipt-id", *receipt_id);
  return frame;
}

const std::string kAccessRefused =
    "ACCESS_REFUSED - access to topic 'perfsonar.summary.b' in exchange 'amq.topic' in vhost '/' refused for user "
    "'writer'";

std::set<int64_t> as_set(const std::vector<int64_t>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

TEST_CASE("RabbitMQ: receipts out of order deliver exactly their own SENDs, with no transaction to COMMIT",
          "[confirm-machine]") {
  ConfirmMachine machine(settings());
  CHECK_FALSE(machine.transactional());
  const int64_t group = write(machine, {1, 2, 3});
  Decisions third = machine.on_frame(receipt(group, 2), t0);
  CHECK(third.delivered == std::vector<int64_t>{3});
  CHECK(third.commit.empty());
  CHECK(third.abort.empty());
  CHECK_FALSE(machine.idle());
  CHECK(machine.on_frame(receipt(group, 0), t0).delivered == std::vector<int64_t>{1});
  CHECK(machine.on_frame(receipt(group, 1), t0).delivered == std::vector<int64_t>{2});
  CHECK(machine.idle());
}

TEST_CASE("RabbitMQ: a second RECEIPT for one SEND is not believed: reconnect, nothing more delivered",
          "[confirm-machine]") {
  ConfirmMachine machine(settings());
  const int64_t group = write(machine, {1, 2, 3});
  REQUIRE(machine.on_frame(receipt(group, 0), t0).delivered == std::vector<int64_t>{1});
  Decisions again = machine.on_frame(receipt(group, 0), t0);
  CHECK(again.delivered.empty());
  REQUIRE(again.reconnect);
  CHECK_THAT(*again.reconnect, Contains("second answer"));
  CHECK(as_set(again.released) == std::set<int64_t>{2, 3});
  CHECK(machine.idle());
}

TEST_CASE("RabbitMQ: a RECEIPT for a COMMIT or a SEND never sent is not believed", "[confirm-machine]") {
  for (const std::string id : {"1:commit", "1:7", "9:0", "nonsense"}) {
    ConfirmMachine machine(settings());
    write(machine, {1, 2, 3});
    Decisions lie = machine.on_frame(Frame{"RECEIPT", {{"receipt-id", id}}, {}}, t0);
    CHECK(lie.delivered.empty());
    CHECK(lie.reconnect);
    CHECK(as_set(lie.released) == std::set<int64_t>{1, 2, 3});
  }
}

TEST_CASE("RabbitMQ: ACCESS_REFUSED without receipt-id parks the destination its words name, not the oldest "
          "unanswered SEND's",
          "[confirm-machine]") {
  ConfirmMachine machine(settings());
  const int64_t group = write_to(machine, {{1, "/topic/perfsonar.raw.a"},
                                           {2, "/topic/perfsonar.raw.a"},
                                           {3, "/topic/perfsonar.summary.b"},
                                           {4, "/topic/perfsonar.raw.a"}});
  // As RabbitMQ answers: "Processing error" for the frames after the refused
  // one, then the confirms of those before it, then the refusal.
  CHECK(machine.on_frame(rabbit_error("Processing error", "Processing error"), t0).released.empty());
  CHECK(machine.on_frame(receipt(group, 0), t0).delivered == std::vector<int64_t>{1});
  Decisions refusal = machine.on_frame(rabbit_error("access_refused", kAccessRefused), t0);
  REQUIRE(refusal.park_destinations.size() == 1);
  CHECK(refusal.park_destinations[0].destination == "/topic/perfsonar.summary.b");
  CHECK_THAT(refusal.park_destinations[0].reason, Contains("ACCESS_REFUSED"));
  CHECK(refusal.park_messages.empty());
  CHECK(refusal.delivered.empty());
  CHECK(as_set(refusal.released) == std::set<int64_t>{2, 3, 4});
  CHECK(refusal.reconnect);
  CHECK(machine.idle());
}

TEST_CASE("RabbitMQ: 'Processing error' alone blames and releases nothing, keeps the connection",
          "[confirm-machine]") {
  ConfirmMachine machine(settings());
  write(machine, {1, 2});
  Decisions follow_on = machine.on_frame(rabbit_error("Processing error", "Processing error"), t0);
  CHECK(follow_on.released.empty());
  CHECK(follow_on.park_destinations.empty());
  CHECK_FALSE(follow_on.reconnect);
  CHECK(machine.failures_of(1) == 0);
}

TEST_CASE("RabbitMQ: an ERROR with a receipt-id counts against that message only; parked after message_attempts",
          "[confirm-machine]") {
  ConfirmMachine machine(settings(4, 2, 3));
  Decisions last;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const int64_t group = write(machine, {1, 2, 3});
    last = machine.on_frame(rabbit_error("Bad frame", "frame too large", send_receipt_id(group, 1)), t0);
    CHECK(last.reconnect);
    CHECK(as_set(last.released) == std::set<int64_t>{1, 2, 3});
    CHECK(machine.failures_of(1) == 0);
    CHECK(machine.failures_of(3) == 0);
    if (attempt < 3) {
      CHECK(machine.failures_of(2) == attempt);
      CHECK(last.park_messages.empty());
    }
  }
  REQUIRE(last.park_messages.size() == 1);
  CHECK(last.park_messages[0].message.message_id == 2);
  CHECK_THAT(last.park_messages[0].reason, Contains("frame too large"));
}

TEST_CASE("RabbitMQ: an ERROR naming no SEND blames every unanswered one, then narrows down to the one",
          "[confirm-machine]") {
  ConfirmMachine machine(settings(4, 2, 2));
  const int64_t group = write(machine, {1, 2, 3, 4});
  REQUIRE(machine.on_frame(receipt(group, 0), t0).delivered == std::vector<int64_t>{1});
  Decisions first = machine.on_frame(rabbit_error("Bad frame", "something broke"), t0);
  CHECK(first.reconnect);
  CHECK(first.park_messages.empty());
  CHECK(machine.failures_of(1) == 0);  // confirmed: not a suspect
  CHECK(machine.failures_of(2) == 1);
  CHECK(machine.failures_of(4) == 1);
  write(machine, {2, 3, 4});
  Decisions second = machine.on_frame(rabbit_error("Bad frame", "something broke"), t0);
  CHECK(second.reconnect_at_once);
  CHECK(machine.transaction_size() * machine.window() < 4 * 2);
  // Narrowed to one message in flight: the broker fails over message 3 alone.
  for (int i = 0; i < 4 && machine.transaction_size() > 1; ++i) {
    write(machine, std::vector<int64_t>{3});
    machine.on_frame(rabbit_error("Bad frame", "something broke"), t0);
  }
  CHECK(machine.transaction_size() == 1);
  CHECK(machine.window() == 1);
  Decisions alone;
  for (int i = 0; i < 2 && alone.park_messages.empty(); ++i) {
    write(machine, std::vector<int64_t>{3});
    alone = machine.on_frame(rabbit_error("Bad frame", "something broke"), t0);
  }
  REQUIRE(alone.park_messages.size() == 1);
  CHECK(alone.park_messages[0].message.message_id == 3);
}

TEST_CASE("RabbitMQ: a lost connection releases the unanswered SENDs and keeps the confirmed ones delivered",
          "[confirm-machine]") {
  ConfirmMachine machine(settings());
  const int64_t group = write(machine, {1, 2, 3});
  const int64_t other = write(machine, {4, 5});
  CHECK(machine.on_frame(receipt(group, 1), t0).delivered == std::vector<int64_t>{2});
  CHECK(machine.on_frame(receipt(other, 0), t0).delivered == std::vector<int64_t>{4});
  Decisions lost = machine.connection_lost("EOF", t0 + 1s);
  CHECK(lost.delivered.empty());
  CHECK(as_set(lost.released) == std::set<int64_t>{1, 3, 5});
  CHECK(machine.idle());
  // A late receipt from the dead connection's numbering is not believed.
  CHECK(machine.on_frame(receipt(group, 0), t0 + 2s).reconnect);
}

TEST_CASE("RabbitMQ: SENDs in flight are bounded by window groups of transaction_size, lowered by an overdue "
          "receipt",
          "[confirm-machine]") {
  ConfirmMachine machine(settings(4, 2));
  CHECK(machine.transaction_size() == 4);
  CHECK(machine.window() == 2);
  write(machine, {1, 2, 3, 4});
  const int64_t second = write(machine, {5, 6, 7, 8}, t0 + 10s);
  CHECK(machine.transactions_in_flight() == 2);
  CHECK(machine.on_frame(receipt(second, 0), t0 + 20s).delivered == std::vector<int64_t>{5});
  CHECK_FALSE(machine.check_deadline(t0 + 59s).reconnect);
  Decisions overdue = machine.check_deadline(t0 + 61s);
  REQUIRE(overdue.reconnect);
  CHECK_THAT(*overdue.reconnect, Contains("no receipt"));
  CHECK(as_set(overdue.released) == std::set<int64_t>{1, 2, 3, 4, 6, 7, 8});
  CHECK(machine.transaction_size() * machine.window() == 4);
}

TEST_CASE("RabbitMQ: a message over a sink limit is parked alone before it is sent", "[confirm-machine]") {
  ConfirmMachine machine(settings());
  Decisions unsendable = machine.unsendable({9, "g9", "/topic/t"}, "frame of 5 MiB over max_message_size");
  REQUIRE(unsendable.park_messages.size() == 1);
  CHECK(unsendable.park_messages[0].message.message_id == 9);
  CHECK(unsendable.released == std::vector<int64_t>{9});
  const int64_t empty = machine.begin(t0);
  CHECK(machine.written(empty, t0).abort.empty());
  CHECK(machine.idle());
}

TEST_CASE("RabbitMQ: PRECONDITION_FAILED without receipt-id (a message over its max_message_size) is the oldest "
          "unanswered SEND's, parked after message_attempts; the others are sent again",
          "[confirm-machine]") {
  ConfirmMachine machine(settings(4, 2, 2));
  const std::string words = "PRECONDITION_FAILED - message size 5242880 is larger than configured max size 4194304";
  Decisions last;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const int64_t group = write(machine, {1, 2, 3, 4});
    // As RabbitMQ answers: the RECEIPTs of the SENDs before it, then the ERROR.
    REQUIRE(machine.on_frame(receipt(group, 0), t0).delivered == std::vector<int64_t>{1});
    last = machine.on_frame(rabbit_error("precondition_failed", words), t0);
    CHECK(last.reconnect);
    CHECK(as_set(last.released) == std::set<int64_t>{2, 3, 4});
    CHECK(machine.failures_of(3) == 0);
    CHECK(machine.failures_of(4) == 0);
  }
  REQUIRE(last.park_messages.size() == 1);
  CHECK(last.park_messages[0].message.message_id == 2);
  CHECK_THAT(last.park_messages[0].reason, Contains("larger than configured max size"));
}
