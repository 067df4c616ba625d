#include "sender/transaction_machine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/duration.hpp"
#include "stomp/error_text.hpp"

namespace gapless::sender {

TransactionMachine::TransactionMachine(MachineSettings settings)
    : settings_(std::move(settings)), limit_(settings_.transaction_size, settings_.window), blame_(settings_) {
  settings_.message_attempts = std::max(settings_.message_attempts, 1);
}

TransactionMachine::Transaction* TransactionMachine::find(int64_t number) {
  // Transactions settle out of order (an ABORT can overtake earlier COMMITs);
  // the window is small.
  for (Transaction& transaction : transactions_)
    if (transaction.number == number) return &transaction;
  return nullptr;
}

int TransactionMachine::failures_of(int64_t message_id) const { return blame_.failures_of(message_id); }

// ---- writing ----------------------------------------------------------------

int64_t TransactionMachine::begin(Clock::time_point now) {
  Transaction transaction;
  transaction.number = next_transaction_++;
  transaction.last_progress = now;
  transaction.pause_generation = pauses_;
  transactions_.push_back(std::move(transaction));
  return transactions_.back().number;
}

std::string TransactionMachine::next_send_receipt(int64_t transaction) const {
  for (const Transaction& candidate : transactions_)
    if (candidate.number == transaction) return send_receipt(transaction, candidate.sends.size());
  return send_receipt(transaction, 0);
}

void TransactionMachine::sent(int64_t transaction, OutgoingSend send) {
  if (Transaction* writing = find(transaction)) writing->sends.push_back({std::move(send)});
}

Decisions TransactionMachine::unsendable(OutgoingSend message, std::string reason) {
  Decisions decisions;
  forget_failures(message.message_id);
  decisions.released.push_back(message.message_id);
  decisions.park_messages.push_back({std::move(message), std::move(reason)});
  return decisions;
}

Decisions TransactionMachine::written(int64_t transaction, Clock::time_point now) {
  Decisions decisions;
  Transaction* writing = find(transaction);
  if (!writing) return decisions;
  writing->written = true;
  writing->awaiting = writing->sends.size();
  writing->last_progress = now;
  if (writing->sends.empty()) {
    decisions.abort.push_back(transaction);
    decisions.merge(release(transaction));
  }
  return decisions;
}

// ---- broker answers -----------------------------------------------------------

Decisions TransactionMachine::on_frame(const stomp::Frame& frame, Clock::time_point now) {
  if (frame.command == "RECEIPT") return on_receipt(frame, now);
  if (frame.command == "ERROR") return on_error(frame, now);
  return {};
}

Decisions TransactionMachine::protocol_error(const std::string& what) {
  // A broker that confirms what we never sent cannot be believed about
  // anything else on this connection: nothing of it is marked delivered.
  Decisions decisions = release_all();
  decisions.reconnect = "protocol error: " + what;
  return decisions;
}

Decisions TransactionMachine::on_receipt(const stomp::Frame& frame, Clock::time_point now) {
  const std::string* receipt = frame.header("receipt-id");
  if (!receipt) return protocol_error("RECEIPT without receipt-id");
  const std::string shown = stomp::clean_error_text(*receipt, 80);
  auto id = parse_receipt(*receipt);
  if (!id) return protocol_error("RECEIPT for receipt-id \"" + shown + "\", which we never asked for");
  Transaction* transaction = find(id->group);
  if (!transaction || !transaction->written)
    return protocol_error("RECEIPT for transaction " + std::to_string(id->group) + ", which is not in flight");

  if (!id->send) {
    if (!transaction->commit_sent)
      return protocol_error("RECEIPT for the COMMIT of transaction " + std::to_string(id->group) +
                            ", which was never sent");
    Decisions decisions;
    for (const Send& send : transaction->sends) {
      decisions.delivered.push_back(send.message.message_id);
      forget_failures(send.message.message_id);
    }
    spdlog::debug("sender: committed sink={} transaction={} messages={}", settings_.sink, transaction->number,
                  transaction->sends.size());
    const int64_t number = transaction->number;
    transactions_.erase(std::find_if(transactions_.begin(), transactions_.end(),
                                     [&](const Transaction& t) { return t.number == number; }));
    if (limit_.on_commit())
      spdlog::info("sender: in-flight limit raised sink={} transaction_size={} window={}", settings_.sink,
                   limit_.transaction_size(), limit_.window());
    return decisions;
  }

  if (*id->send >= transaction->sends.size())
    return protocol_error("RECEIPT for SEND " + std::to_string(*id->send) + " of transaction " +
                          std::to_string(id->group) + ", which has " +
                          std::to_string(transaction->sends.size()) + " SENDs");
  Send& send = transaction->sends[*id->send];
  if (send.outcome != Outcome::awaiting)
    return protocol_error("a second answer for SEND " + shown + " (message " +
                          std::to_string(send.message.message_id) + ")");
  send.outcome = Outcome::confirmed;
  --transaction->awaiting;
  transaction->last_progress = now;
  return maybe_finish_sends(*transaction);
}

Decisions TransactionMachine::on_error(const stomp::Frame& frame, Clock::time_point now) {
  const std::string words = stomp::error_text(frame);
  const std::string* receipt = frame.header("receipt-id");
  std::optional<ParsedReceipt> id = receipt ? parse_receipt(*receipt) : std::nullopt;
  Transaction* transaction = id ? find(id->group) : nullptr;
  const bool usable =
      transaction && transaction->written &&
      (id->send ? *id->send < transaction->sends.size() &&
                      transaction->sends[*id->send].outcome == Outcome::awaiting
                : transaction->commit_sent);

  if (!usable) {
    // The broker failed something without saying which: everything in
    // flight is a suspect, and the connection's state is unknown.
    spdlog::warn("sender: broker ERROR without a usable receipt-id sink={} receipt_id=\"{}\" in_flight_transactions={} "
                 "error=\"{}\"",
                 settings_.sink, receipt ? stomp::clean_error_text(*receipt, 80) : "", transactions_.size(), words);
    std::vector<int64_t> failing;
    for (const Transaction& candidate : transactions_)
      if (candidate.written) failing.push_back(candidate.number);
    Decisions decisions = failed_unattributed(failing, words);
    decisions.merge(release_all());
    decisions.reconnect = "broker ERROR: " + words;
    return decisions;
  }

  transaction->last_progress = now;
  if (!id->send) {
    // The COMMIT failed: nothing of the transaction is known delivered, and
    // the broker did not say which message, if any, was the cause.
    spdlog::error("sender: commit refused sink={} transaction={} messages={} error=\"{}\"", settings_.sink,
                  transaction->number, transaction->sends.size(), words);
    const int64_t number = transaction->number;
    Decisions decisions = pause(*transaction, "commit refused", true);
    if (classify(words) != Refusal::flow_control) decisions.merge(failed_unattributed({number}, words));
    decisions.merge(release(number));
    return decisions;
  }

  Send& send = transaction->sends[*id->send];
  send.outcome = Outcome::refused;
  --transaction->awaiting;
  transaction->any_refused = true;
  Decisions decisions = on_send_refused(*transaction, send, words);
  decisions.merge(maybe_finish_sends(*transaction));
  return decisions;
}

Decisions TransactionMachine::on_send_refused(Transaction& transaction, Send& send, const std::string& words) {
  const OutgoingSend& message = send.message;
  switch (classify(words)) {
    case Refusal::destination: {
      Decisions decisions;
      decisions.park_destinations.push_back({message.destination, words});
      return decisions;
    }
    case Refusal::flow_control: {
      Decisions decisions = pause(transaction, "send refused (flow control)", true);
      if (decisions.pause_claims)
        spdlog::warn("sender: send refused, will retry sink={} destination={} message={} error=\"{}\"",
                     settings_.sink, message.destination, message.message_id, words);
      return decisions;
    }
    case Refusal::follow_on:
    case Refusal::message:
      break;
  }
  // A reason that belongs to the message: count it against the message; the
  // others of the transaction are released and sent again.
  if (std::optional<ParkMessage> park = blame_.refused(message, words)) {
    Decisions decisions;
    decisions.park_messages.push_back(std::move(*park));
    return decisions;
  }
  return pause(transaction, "message refused", false);
}

Decisions TransactionMachine::maybe_finish_sends(Transaction& transaction) {
  Decisions decisions;
  if (transaction.awaiting != 0 || transaction.commit_sent || !transaction.written) return decisions;
  if (transaction.any_refused) {
    // Never COMMIT a transaction that saw an ERROR: ActiveMQ would commit the
    // rest and report success.
    spdlog::info("sender: transaction aborted sink={} transaction={} messages={}", settings_.sink,
                 transaction.number, transaction.sends.size());
    decisions.abort.push_back(transaction.number);
    decisions.merge(release(transaction.number));
    return decisions;
  }
  decisions.commit.push_back(transaction.number);
  transaction.commit_sent = true;
  return decisions;
}

// ---- losses -------------------------------------------------------------------

Decisions TransactionMachine::connection_lost(const std::string& why, Clock::time_point now) {
  if (transactions_.empty()) return {};
  std::vector<int64_t> failing;
  for (const Transaction& transaction : transactions_)
    if (transaction.written && (transaction.awaiting > 0 || transaction.commit_sent) &&
        now - transaction.last_progress <= kAttributableWithin)
      failing.push_back(transaction.number);
  spdlog::debug("sender: connection lost with transactions in flight sink={} transactions={} attributable={} error=\"{}\"",
                settings_.sink, transactions_.size(), failing.size(), stomp::clean_error_text(why));
  Decisions decisions = failed_unattributed(failing, kClosedAfterSend);
  decisions.merge(release_all());
  return decisions;
}

Decisions TransactionMachine::check_deadline(Clock::time_point now) {
  for (const Transaction& transaction : transactions_) {
    if (now - transaction.last_progress <= settings_.receipt_timeout) continue;
    const int64_t number = transaction.number;
    lower_limit("receipt timeout");
    Decisions decisions = release_all();
    decisions.reconnect = "no receipt for transaction " + std::to_string(number) + " within " +
                          format_duration(settings_.receipt_timeout);
    return decisions;
  }
  return {};
}

// ---- finding the message to blame -----------------------------------------------

Decisions TransactionMachine::failed_unattributed(const std::vector<int64_t>& failing, const std::string& words) {
  Decisions decisions;
  // The suspects: SENDs the broker never answered (one it confirmed was
  // accepted); when all were answered and the COMMIT failed, all of them.
  std::vector<const OutgoingSend*> suspects;
  for (int pass = 0; pass < 2 && suspects.empty(); ++pass)
    for (const int64_t number : failing)
      if (const Transaction* transaction = find(number))
        for (const Send& send : transaction->sends)
          if (send.outcome == Outcome::awaiting || (pass == 1 && send.outcome == Outcome::confirmed))
            suspects.push_back(&send.message);
  if (suspects.empty()) return decisions;
  const Transaction* first = find(failing.front());
  const int64_t size = first ? static_cast<int64_t>(first->sends.size()) : limit_.messages();
  return blame_.unattributed(suspects, size, limit_, words);
}

// ---- bookkeeping ----------------------------------------------------------------

Decisions TransactionMachine::release(int64_t number) {
  Decisions decisions;
  auto it = std::find_if(transactions_.begin(), transactions_.end(),
                         [&](const Transaction& t) { return t.number == number; });
  if (it == transactions_.end()) return decisions;
  for (const Send& send : it->sends) decisions.released.push_back(send.message.message_id);
  transactions_.erase(it);
  return decisions;
}

Decisions TransactionMachine::release_all() {
  Decisions decisions;
  for (const Transaction& transaction : transactions_)
    for (const Send& send : transaction.sends) decisions.released.push_back(send.message.message_id);
  transactions_.clear();
  return decisions;
}

void TransactionMachine::lower_limit(const char* cause) {
  if (!limit_.lower()) return;
  spdlog::warn("sender: in-flight limit lowered sink={} transaction_size={} window={} cause=\"{}\"", settings_.sink,
               limit_.transaction_size(), limit_.window(), cause);
}

// One refusal episode (often every SEND of a window at once) pauses once and
// lowers the limit once: the refusals of transactions begun before the last
// pause belong to it.
Decisions TransactionMachine::pause(Transaction& transaction, const char* cause, bool lower) {
  Decisions decisions;
  if (transaction.pause_generation < pauses_) return decisions;
  ++pauses_;
  decisions.pause_claims = true;
  if (lower) lower_limit(cause);
  return decisions;
}

void TransactionMachine::forget_failures(int64_t message_id) { blame_.forget(message_id); }

}  // namespace gapless::sender
