// The receipt state machine of one sender: what each broker answer, a lost
// connection or an overdue receipt means for the transactions in flight, and
// which message is to blame when the broker will not say.
//
// No socket and no journal: the sender tells it what it wrote and what
// happened, and follows the Decisions it gets back (send COMMIT or ABORT, mark
// delivered, release, park a message or a destination, pause claiming,
// reconnect). The rules are stated once, at the top of sender.cpp.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "sender/blame.hpp"
#include "sender/broker_answers.hpp"
#include "sender/delivery_machine.hpp"
#include "sender/in_flight_limit.hpp"
#include "stomp/frame.hpp"

namespace gapless::sender {

class TransactionMachine : public DeliveryMachine {
 public:
  explicit TransactionMachine(MachineSettings settings);

  // What to claim: transactions of transaction_size() messages while fewer
  // than window() are in flight.
  bool transactional() const override { return true; }
  int transaction_size() const override { return limit_.transaction_size(); }
  int window() const override { return limit_.window(); }
  size_t transactions_in_flight() const override { return transactions_.size(); }
  bool idle() const override { return transactions_.empty(); }

  // Receipt ids: "<transaction>:<send index>" for SENDs, "<transaction>:commit".
  static std::string send_receipt(int64_t transaction, size_t index) { return send_receipt_id(transaction, index); }
  static std::string commit_receipt(int64_t transaction) { return commit_receipt_id(transaction); }

  // Writing a transaction: begin() numbers it (the sender sends BEGIN);
  // next_send_receipt() is the receipt of the SEND the sender is about to
  // queue, sent() records it once queued; unsendable() is a message that was
  // never queued (over a sink limit, or it cannot be encoded): parked at
  // once. written() ends the writing: an empty transaction is aborted.
  int64_t begin(Clock::time_point now) override;
  std::string next_send_receipt(int64_t transaction) const override;
  void sent(int64_t transaction, OutgoingSend send) override;
  Decisions unsendable(OutgoingSend message, std::string reason) override;
  Decisions written(int64_t transaction, Clock::time_point now) override;

  // A frame from the broker (RECEIPT, ERROR; anything else is ignored).
  Decisions on_frame(const stomp::Frame& frame, Clock::time_point now) override;
  // The connection ended (EOF, reset, heart-beat silence, a protocol error
  // on our side): everything in flight is released.
  Decisions connection_lost(const std::string& why, Clock::time_point now) override;
  // A transaction without progress for receipt_timeout: reconnect.
  Decisions check_deadline(Clock::time_point now) override;

  // Messages with a failure on record (for tests and logs).
  int failures_of(int64_t message_id) const;

 private:
  enum class Outcome { awaiting, confirmed, refused };
  struct Send {
    OutgoingSend message;
    Outcome outcome = Outcome::awaiting;
  };
  struct Transaction {
    int64_t number = 0;
    std::vector<Send> sends;
    size_t awaiting = 0;  // SENDs not yet answered
    bool written = false;
    bool any_refused = false;
    bool commit_sent = false;
    int64_t pause_generation = 0;  // pauses_ when it was begun
    Clock::time_point last_progress;
  };

  Transaction* find(int64_t number);
  Decisions on_receipt(const stomp::Frame& frame, Clock::time_point now);
  Decisions on_error(const stomp::Frame& frame, Clock::time_point now);
  Decisions on_send_refused(Transaction& transaction, Send& send, const std::string& words);
  Decisions maybe_finish_sends(Transaction& transaction);
  Decisions protocol_error(const std::string& what);
  // The broker failed one or more transactions without saying which message
  // was to blame: count, narrow, park the message that fails alone.
  Decisions failed_unattributed(const std::vector<int64_t>& failing, const std::string& words);
  Decisions release(int64_t transaction);
  Decisions release_all();
  void lower_limit(const char* cause);
  Decisions pause(Transaction& transaction, const char* cause, bool lower);
  void forget_failures(int64_t message_id);

  MachineSettings settings_;
  InFlightLimit limit_;
  std::deque<Transaction> transactions_;
  Blame blame_;  // what each message has suffered; forgotten when it is delivered or parked
  int64_t next_transaction_ = 1;
  int64_t pauses_ = 0;  // pause decisions so far: a refusal episode pauses once
};

}  // namespace gapless::sender
