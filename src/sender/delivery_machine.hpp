// What the sender's delivery rules have in common, whichever broker: what the
// sender tells them (a SEND queued, a frame from the broker, a lost
// connection) and the Decisions it gets back. Two sets of rules follow it:
// TransactionMachine (ActiveMQ: STOMP transactions, the COMMIT's receipt
// delivers) and ConfirmMachine (RabbitMQ: no transactions, each SEND's own
// receipt, a publisher confirm, delivers). The rules are stated once, at the
// top of sender.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stomp/frame.hpp"

namespace gapless::sender {

using Clock = std::chrono::steady_clock;

struct MachineSettings {
  std::string sink;  // for logs
  int transaction_size = 500;  // SENDs claimed together (a transaction on ActiveMQ)
  int window = 4;              // such groups in flight
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
  std::vector<int64_t> delivered;      // confirmed: mark delivered
  std::vector<int64_t> released;       // no longer in flight, not delivered: pending again, or parked below
  std::vector<ParkMessage> park_messages;
  std::vector<ParkDestination> park_destinations;
  bool pause_claims = false;           // back off before claiming again (the broker refused something)
  std::optional<std::string> reconnect;  // drop the connection, for this reason
  bool reconnect_at_once = false;        // narrowing down: no reconnect backoff

  void merge(Decisions&& other);
};

// The sender's side of either set of rules. A group is what one claim
// brought: begin() numbers it, next_send_receipt() names the receipt of the
// SEND about to be queued, sent() records it once queued, unsendable() is a
// message never queued (over a sink limit, or it cannot be encoded), parked
// at once; written() ends the group.
class DeliveryMachine {
 public:
  virtual ~DeliveryMachine() = default;

  // True: SENDs go in STOMP transactions (BEGIN before, `transaction` header).
  virtual bool transactional() const = 0;

  // What to claim: groups of transaction_size() messages while fewer than
  // window() are in flight.
  virtual int transaction_size() const = 0;
  virtual int window() const = 0;
  virtual size_t transactions_in_flight() const = 0;
  virtual bool idle() const = 0;

  virtual int64_t begin(Clock::time_point now) = 0;
  virtual std::string next_send_receipt(int64_t group) const = 0;
  virtual void sent(int64_t group, OutgoingSend send) = 0;
  virtual Decisions unsendable(OutgoingSend message, std::string reason) = 0;
  virtual Decisions written(int64_t group, Clock::time_point now) = 0;

  // A frame from the broker (RECEIPT, ERROR; anything else is ignored).
  virtual Decisions on_frame(const stomp::Frame& frame, Clock::time_point now) = 0;
  // The connection ended: everything in flight is released.
  virtual Decisions connection_lost(const std::string& why, Clock::time_point now) = 0;
  // A group without progress for receipt_timeout: reconnect.
  virtual Decisions check_deadline(Clock::time_point now) = 0;
};

}  // namespace gapless::sender
