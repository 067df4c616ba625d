// The delivery rules for RabbitMQ, without I/O: no STOMP transactions,
// pipelined SENDs, each with `persistent:true` and its own receipt (RabbitMQ
// sends that RECEIPT after a publisher confirm), and a message delivered when
// its own RECEIPT arrives. Which SEND an ERROR refuses, what a lost
// connection means for the unanswered ones, and why this keeps the promise,
// are stated at the top of sender.cpp ("RabbitMQ").
//
// Claims come in groups, as for ActiveMQ (transaction_size messages, window
// groups in flight), so the bounds in count and bytes are the same; a group
// only numbers receipts and leaves flight when each of its SENDs is answered.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "sender/blame.hpp"
#include "sender/delivery_machine.hpp"
#include "sender/in_flight_limit.hpp"

namespace gapless::sender {

class ConfirmMachine : public DeliveryMachine {
 public:
  explicit ConfirmMachine(MachineSettings settings);

  bool transactional() const override { return false; }
  int transaction_size() const override { return limit_.transaction_size(); }
  int window() const override { return limit_.window(); }
  size_t transactions_in_flight() const override { return groups_.size(); }
  bool idle() const override { return groups_.empty(); }

  int64_t begin(Clock::time_point now) override;
  std::string next_send_receipt(int64_t group) const override;
  void sent(int64_t group, OutgoingSend send) override;
  Decisions unsendable(OutgoingSend message, std::string reason) override;
  Decisions written(int64_t group, Clock::time_point now) override;

  Decisions on_frame(const stomp::Frame& frame, Clock::time_point now) override;
  Decisions connection_lost(const std::string& why, Clock::time_point now) override;
  Decisions check_deadline(Clock::time_point now) override;

  int failures_of(int64_t message_id) const { return blame_.failures_of(message_id); }

 private:
  struct Send {
    OutgoingSend message;
    bool answered = false;
  };
  struct Group {
    int64_t number = 0;
    std::vector<Send> sends;
    size_t awaiting = 0;
    bool written = false;
    bool any_refused = false;
    Clock::time_point last_progress;
  };

  struct SendAt {
    Group* group;
    Send* send;
  };
  Group* find(int64_t number);
  std::optional<SendAt> find_send(const stomp::Frame& error, const std::string& words);
  Decisions on_receipt(const stomp::Frame& frame, Clock::time_point now);
  Decisions on_error(const stomp::Frame& frame, Clock::time_point now);
  Decisions refused(const OutgoingSend& message, const std::string& words);
  Decisions protocol_error(const std::string& what);
  void answered(Group& group, Send& send, bool confirmed, Clock::time_point now);
  Decisions release_all();
  void lower_limit(const char* cause);

  MachineSettings settings_;
  InFlightLimit limit_;
  Blame blame_;
  std::deque<Group> groups_;
  int64_t next_group_ = 1;
};

}  // namespace gapless::sender
