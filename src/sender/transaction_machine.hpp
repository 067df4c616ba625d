// The receipt state machine of one sender: what each broker answer, a lost
// connection or an overdue receipt means for the transactions in flight, and
// which message is to blame when the broker will not say.
//
// No socket and no journal: the sender tells it what it wrote and what
// happened, and follows the Decisions it gets back (send COMMIT or ABORT, mark
// delivered, release, park a message or a destination, pause claiming,
// reconnect). The rules are stated once, at the top of sender.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sender/in_flight_limit.hpp"
#include "stomp/frame.hpp"

namespace gapless::sender {

using Clock = std::chrono::steady_clock;

struct MachineSettings {
  std::string sink;  // for logs
  int transaction_size = 500;
  int window = 4;
  // A message is parked after being refused this many times (an ERROR for
  // its own SEND), or after failing this many times alone (narrowed down).
  int message_attempts = 3;
  std::chrono::milliseconds receipt_timeout{std::chrono::minutes(5)};
};

// A message the sender queued as a SEND (or could not).
struct OutgoingSend {
  int64_t message_id = 0;
  std::string gapless_id;
  std::string destination;
};

struct ParkMessage {
  OutgoingSend message;
  std::string reason;
};

struct ParkDestination {
  std::string destination;
  std::string reason;
};

// What the sender must do, in this order: send the COMMITs and ABORTs, then
// record the rest. Every message id that leaves flight is in exactly one of
// `delivered` and `released`.
struct Decisions {
  std::vector<int64_t> commit;         // transactions to COMMIT, with commit_receipt()
  std::vector<int64_t> abort;          // transactions to ABORT
  std::vector<int64_t> delivered;      // confirmed (SEND and COMMIT receipts): mark delivered
  std::vector<int64_t> released;       // no longer in flight, not delivered: pending again, or parked below
  std::vector<ParkMessage> park_messages;
  std::vector<ParkDestination> park_destinations;
  bool pause_claims = false;           // back off before claiming again (the broker refused something)
  std::optional<std::string> reconnect;  // drop the connection, for this reason
  bool reconnect_at_once = false;        // narrowing down: no reconnect backoff

  void merge(Decisions&& other);
};

// What an ERROR frame's words are about, by the same rule the machine
// follows: "not-authorized", "flow-control", else "refused" (for counting
// broker errors by kind).
const char* error_kind(const stomp::Frame& error);

class TransactionMachine {
 public:
  explicit TransactionMachine(MachineSettings settings);

  // What to claim: transactions of transaction_size() messages while fewer
  // than window() are in flight.
  int transaction_size() const { return limit_.transaction_size(); }
  int window() const { return limit_.window(); }
  size_t transactions_in_flight() const { return transactions_.size(); }
  bool idle() const { return transactions_.empty(); }

  // Receipt ids: "<transaction>:<send index>" for SENDs, "<transaction>:commit".
  static std::string send_receipt(int64_t transaction, size_t index);
  static std::string commit_receipt(int64_t transaction);

  // Writing a transaction: begin() numbers it (the sender sends BEGIN);
  // next_send_receipt() is the receipt of the SEND the sender is about to
  // queue, sent() records it once queued; unsendable() is a message that was
  // never queued (over a sink limit, or it cannot be encoded): parked at
  // once. written() ends the writing: an empty transaction is aborted.
  int64_t begin(Clock::time_point now);
  std::string next_send_receipt(int64_t transaction) const;
  void sent(int64_t transaction, OutgoingSend send);
  Decisions unsendable(OutgoingSend message, std::string reason);
  Decisions written(int64_t transaction, Clock::time_point now);

  // A frame from the broker (RECEIPT, ERROR; anything else is ignored).
  Decisions on_frame(const stomp::Frame& frame, Clock::time_point now);
  // The connection ended (EOF, reset, heart-beat silence, a protocol error
  // on our side): everything in flight is released.
  Decisions connection_lost(const std::string& why, Clock::time_point now);
  // A transaction without progress for receipt_timeout: reconnect.
  Decisions check_deadline(Clock::time_point now);

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
  // What one message has suffered; forgotten when it is delivered or parked.
  struct Failures {
    int refused = 0;       // ERRORs for its own SEND
    int unattributed = 0;  // failures of a transaction it was a suspect of
    int alone = 0;         // ... when it was the only suspect
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
  std::unordered_map<int64_t, Failures> failures_;
  int64_t next_transaction_ = 1;
  int64_t pauses_ = 0;  // pause decisions so far: a refusal episode pauses once
};

}  // namespace gapless::sender
