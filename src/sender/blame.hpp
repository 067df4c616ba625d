// Which message to blame, for both sets of delivery rules
// (delivery_machine.hpp): the failures each message has suffered, by message
// id (group numbers change after a reconnect, message ids do not), and the
// narrowing that finds the message a broker fails over without naming it
// (the rules at the top of sender.cpp, "The message the broker will not
// name").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sender/delivery_machine.hpp"
#include "sender/in_flight_limit.hpp"

namespace gapless::sender {

// A lost connection counts against the messages in flight only when it
// follows their SENDs closely: a broker that refuses a frame closes at once,
// while a broker restarted or a network gone after a long silence says
// nothing about them.
constexpr auto kAttributableWithin = std::chrono::seconds(10);

constexpr const char* kClosedAfterSend = "the broker closed the connection after this message's SEND";

class Blame {
 public:
  explicit Blame(const MachineSettings& settings);

  // An ERROR for this message's own SEND, for a reason of its own: the park
  // once it has been refused message_attempts times, else nothing (logged).
  std::optional<ParkMessage> refused(const OutgoingSend& message, const std::string& words);

  // The broker failed while these SENDs were unanswered (the suspects), and
  // did not say which was the cause: each is counted; once one has failed
  // twice, `limit` narrows to half of `first_size` (the first failing
  // group's SENDs), to one message when one suspect is left, and a
  // reconnect at once is asked; a message that failed alone
  // message_attempts times is parked with the broker's words.
  Decisions unattributed(const std::vector<const OutgoingSend*>& suspects, int64_t first_size, InFlightLimit& limit,
                         const std::string& words);

  // Delivered or parked: its record goes.
  void forget(int64_t message_id) { failures_.erase(message_id); }
  int failures_of(int64_t message_id) const;

 private:
  struct Failures {
    int refused = 0;       // ERRORs for its own SEND
    int unattributed = 0;  // failures of a group it was a suspect of
    int alone = 0;         // ... when it was the only suspect
  };
  std::string sink_;
  int attempts_;
  std::unordered_map<int64_t, Failures> failures_;
};

}  // namespace gapless::sender
