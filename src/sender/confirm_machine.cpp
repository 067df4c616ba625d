#include "sender/confirm_machine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/duration.hpp"
#include "sender/broker_answers.hpp"
#include "stomp/error_text.hpp"

namespace gapless::sender {

ConfirmMachine::ConfirmMachine(MachineSettings settings)
    : settings_(std::move(settings)), limit_(settings_.transaction_size, settings_.window), blame_(settings_) {
  settings_.message_attempts = std::max(settings_.message_attempts, 1);
}

ConfirmMachine::Group* ConfirmMachine::find(int64_t number) {
  for (Group& group : groups_)
    if (group.number == number) return &group;
  return nullptr;
}

// ---- writing ------------------------------------------------------------------

int64_t ConfirmMachine::begin(Clock::time_point now) {
  Group group;
  group.number = next_group_++;
  group.last_progress = now;
  groups_.push_back(std::move(group));
  return groups_.back().number;
}

std::string ConfirmMachine::next_send_receipt(int64_t group) const {
  for (const Group& candidate : groups_)
    if (candidate.number == group) return send_receipt_id(group, candidate.sends.size());
  return send_receipt_id(group, 0);
}

void ConfirmMachine::sent(int64_t group, OutgoingSend send) {
  if (Group* writing = find(group)) writing->sends.push_back({std::move(send)});
}

Decisions ConfirmMachine::unsendable(OutgoingSend message, std::string reason) {
  Decisions decisions;
  blame_.forget(message.message_id);
  decisions.released.push_back(message.message_id);
  decisions.park_messages.push_back({std::move(message), std::move(reason)});
  return decisions;
}

Decisions ConfirmMachine::written(int64_t group, Clock::time_point now) {
  Group* writing = find(group);
  if (!writing) return {};
  writing->written = true;
  writing->awaiting = writing->sends.size();
  writing->last_progress = now;
  if (writing->sends.empty())
    groups_.erase(std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.number == group; }));
  return {};
}

// ---- broker answers -------------------------------------------------------------

Decisions ConfirmMachine::on_frame(const stomp::Frame& frame, Clock::time_point now) {
  if (frame.command == "RECEIPT") return on_receipt(frame, now);
  if (frame.command == "ERROR") return on_error(frame, now);
  return {};
}

Decisions ConfirmMachine::protocol_error(const std::string& what) {
  // A broker that confirms what we never sent cannot be believed about
  // anything else on this connection: nothing more of it is marked delivered.
  Decisions decisions = release_all();
  decisions.reconnect = "protocol error: " + what;
  return decisions;
}

// A SEND leaves the group; the group leaves flight with its last SEND. A
// group all of whose SENDs were confirmed counts towards widening the limit.
void ConfirmMachine::answered(Group& group, Send& send, bool confirmed, Clock::time_point now) {
  send.answered = true;
  group.any_refused = group.any_refused || !confirmed;
  --group.awaiting;
  group.last_progress = now;
  if (group.awaiting == 0) {
    const int64_t number = group.number;
    const bool clean = !group.any_refused;
    groups_.erase(std::find_if(groups_.begin(), groups_.end(), [&](const Group& g) { return g.number == number; }));
    if (clean && limit_.on_commit())
      spdlog::info("sender: in-flight limit raised sink={} transaction_size={} window={}", settings_.sink,
                   limit_.transaction_size(), limit_.window());
  }
}

Decisions ConfirmMachine::on_receipt(const stomp::Frame& frame, Clock::time_point now) {
  const std::string* receipt = frame.header("receipt-id");
  if (!receipt) return protocol_error("RECEIPT without receipt-id");
  const std::string shown = stomp::clean_error_text(*receipt, 80);
  auto id = parse_receipt(*receipt);
  if (!id || !id->send) return protocol_error("RECEIPT for receipt-id \"" + shown + "\", which we never asked for");
  Group* group = find(id->group);
  if (!group || !group->written || *id->send >= group->sends.size())
    return protocol_error("RECEIPT for SEND " + shown + ", which is not in flight");
  Send& send = group->sends[*id->send];
  if (send.answered)
    return protocol_error("a second answer for SEND " + shown + " (message " + std::to_string(send.message.message_id) +
                          ")");
  // Its own publisher confirm: this message, and only it, is delivered.
  Decisions decisions;
  decisions.delivered.push_back(send.message.message_id);
  blame_.forget(send.message.message_id);
  answered(*group, send, true, now);
  return decisions;
}

// RabbitMQ's name for an AMQP channel error, in an ERROR's `message` header:
// it closed the session over one frame, after confirming every SEND it had
// read before that frame (seen: all RECEIPTs before the refused SEND, then
// the ERROR, then the close).
bool channel_error(const stomp::Frame& error) {
  const std::string* kind = error.header("message");
  if (!kind) return false;
  for (const char* name : {"access_refused", "precondition_failed", "not_found", "resource_locked", "not_allowed"})
    if (*kind == name) return true;
  return false;
}

// The SEND an ERROR refuses: the one its receipt-id names; else the first
// unanswered SEND to the destination its words name; else, after a channel
// error, the oldest unanswered SEND; else none.
std::optional<ConfirmMachine::SendAt> ConfirmMachine::find_send(const stomp::Frame& error, const std::string& words) {
  if (const std::string* receipt = error.header("receipt-id"))
    if (auto id = parse_receipt(*receipt); id && id->send)
      if (Group* group = find(id->group); group && group->written && *id->send < group->sends.size() &&
                                          !group->sends[*id->send].answered)
        return SendAt{group, &group->sends[*id->send]};
  for (Group& group : groups_)
    for (Send& send : group.sends)
      if (!send.answered && words_name(words, send.message.destination)) return SendAt{&group, &send};
  if (channel_error(error))
    for (Group& group : groups_)
      for (Send& send : group.sends)
        if (!send.answered) return SendAt{&group, &send};
  return std::nullopt;
}

Decisions ConfirmMachine::on_error(const stomp::Frame& frame, Clock::time_point now) {
  // RabbitMQ's words are in the body ("ACCESS_REFUSED - access to topic 'x'
  // ..."); its `message` header only names the kind ("access_refused").
  const std::string words = stomp::error_text_with_body(frame);
  const Refusal refusal = classify(words);
  if (refusal == Refusal::follow_on) {
    spdlog::debug("sender: broker ERROR naming nothing, waiting for the one that does sink={} error=\"{}\"",
                  settings_.sink, words);
    return {};
  }
  Decisions decisions;
  if (const std::optional<SendAt> refused_send = find_send(frame, words)) {
    const OutgoingSend message = refused_send->send->message;
    answered(*refused_send->group, *refused_send->send, false, now);
    decisions.released.push_back(message.message_id);
    decisions.merge(refused(message, words));
  } else {
    // Nothing names the SEND: every unanswered one is a suspect (RabbitMQ
    // confirms lag behind the frames it refuses, so the oldest unanswered
    // need not be the one), narrowed down as when the broker closes.
    const std::string* receipt = frame.header("receipt-id");
    spdlog::warn("sender: broker ERROR naming no SEND sink={} receipt_id=\"{}\" groups={} error=\"{}\"",
                 settings_.sink, receipt ? stomp::clean_error_text(*receipt, 80) : "", groups_.size(), words);
    std::vector<const OutgoingSend*> suspects;
    for (const Group& group : groups_)
      for (const Send& send : group.sends)
        if (!send.answered) suspects.push_back(&send.message);
    const int64_t first_size = groups_.empty() ? 0 : static_cast<int64_t>(groups_.front().sends.size());
    decisions.merge(blame_.unattributed(suspects, first_size, limit_, words));
  }
  // After an ERROR the session's state is unknown (RabbitMQ closes it after
  // an access refusal): the others go back to pending and are sent again,
  // with the same gapless-id, on a new connection.
  decisions.merge(release_all());
  decisions.reconnect = "broker ERROR: " + words;
  return decisions;
}

Decisions ConfirmMachine::refused(const OutgoingSend& message, const std::string& words) {
  Decisions decisions;
  switch (classify(words)) {
    case Refusal::destination:
      decisions.park_destinations.push_back({message.destination, words});
      return decisions;
    case Refusal::flow_control:
      lower_limit("send refused (flow control)");
      decisions.pause_claims = true;
      return decisions;
    case Refusal::follow_on:
    case Refusal::message:
      break;
  }
  if (std::optional<ParkMessage> park = blame_.refused(message, words))
    decisions.park_messages.push_back(std::move(*park));
  else
    decisions.pause_claims = true;
  return decisions;
}

// ---- losses ---------------------------------------------------------------------

Decisions ConfirmMachine::connection_lost(const std::string& why, Clock::time_point now) {
  if (groups_.empty()) return {};
  // Unanswered SENDs of a group that progressed just before are the suspects:
  // RabbitMQ closes at once over a frame it refuses.
  std::vector<const OutgoingSend*> suspects;
  int64_t first_size = 0;
  for (const Group& group : groups_) {
    if (!group.written || now - group.last_progress > kAttributableWithin) continue;
    if (first_size == 0) first_size = static_cast<int64_t>(group.sends.size());
    for (const Send& send : group.sends)
      if (!send.answered) suspects.push_back(&send.message);
  }
  spdlog::debug("sender: connection lost with SENDs unanswered sink={} groups={} suspects={} error=\"{}\"",
                settings_.sink, groups_.size(), suspects.size(), stomp::clean_error_text(why));
  Decisions decisions = blame_.unattributed(suspects, first_size, limit_, kClosedAfterSend);
  decisions.merge(release_all());
  return decisions;
}

Decisions ConfirmMachine::check_deadline(Clock::time_point now) {
  for (const Group& group : groups_) {
    if (now - group.last_progress <= settings_.receipt_timeout) continue;
    const int64_t number = group.number;
    lower_limit("receipt timeout");
    Decisions decisions = release_all();
    decisions.reconnect = "no receipt for the SENDs of group " + std::to_string(number) + " within " +
                          format_duration(settings_.receipt_timeout);
    return decisions;
  }
  return {};
}

// ---- bookkeeping ------------------------------------------------------------------

Decisions ConfirmMachine::release_all() {
  Decisions decisions;
  for (const Group& group : groups_)
    for (const Send& send : group.sends)
      if (!send.answered) decisions.released.push_back(send.message.message_id);
  groups_.clear();
  return decisions;
}

void ConfirmMachine::lower_limit(const char* cause) {
  if (!limit_.lower()) return;
  spdlog::warn("sender: in-flight limit lowered sink={} transaction_size={} window={} cause=\"{}\"", settings_.sink,
               limit_.transaction_size(), limit_.window(), cause);
}

}  // namespace gapless::sender
