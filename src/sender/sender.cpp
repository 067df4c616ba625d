// How the sender moves a message (one sink, one connection at a time)
// ===================================================================
//
// Claim. Up to `window` transactions are in flight. Each claims up to
// `transaction_size` pending messages from the journal (live first, then
// backfill, then resend). Claimed ids live only in memory (`in_flight_`): the
// journal row stays `pending`, so a crash or a lost connection simply leaves
// the message to be sent again. Memory is therefore bounded by
// window x transaction_size messages, whatever the backlog on disk. Both
// limits shrink while the broker pushes back (see Flow control below).
//
// Send. A transaction is written as BEGIN, then one SEND per message with
// `persistent:true`, `content-length` (added by the frame encoder), its
// `gapless-id` and its own `receipt`, all queued and flushed together, so the
// broker is woken once per transaction rather than once per frame. The COMMIT
// is held back until every SEND of the transaction is answered:
//   - all SENDs got their RECEIPT  -> COMMIT with a receipt;
//   - any SEND got an ERROR        -> ABORT; the refused ones are handled
//     below, the others go back to pending (in memory: they are released).
// Holding the COMMIT costs nothing in throughput (other transactions of the
// window keep the pipe full) and means we never COMMIT a transaction that saw
// an ERROR: ActiveMQ would commit the rest and report success
// (stomp-activemq.md 2.6, peers-lessons.md).
//
// Deliver. On the COMMIT's RECEIPT, the SENDs of that transaction whose own
// RECEIPT arrived are settled; they are marked delivered, together with those
// of every other transaction settled meanwhile, in one journal transaction,
// once the window has been refilled and flushed: the broker works on the next
// transactions while we write the journal. Until marked they stay in
// `in_flight_`, so no claim can take them again; a crash before the mark
// sends them again (same gapless-id). Nothing else ever marks a row delivered.
//
// Refusals (ERROR frames carrying a SEND's receipt-id; ActiveMQ keeps the
// connection open after them, so we do not reconnect):
//   - "not authorized to write to" / "to create": the destination is parked
//     for this sink (journal.park_destination): its pending and future rows
//     are skipped by claims while every other destination keeps flowing. It is
//     probed again with one message after park_retry_interval, doubling up to
//     park_retry_max; a delivered probe unparks the whole destination.
//   - anything else (producer flow control "Usage Manager memory limit ...
//     reached" or "... Wait Timeout", unknown errors): never parked; the
//     messages go back to pending and claiming pauses with exponential backoff.
//     Note: on a topic, ActiveMQ 5.17 answers a receipted SEND under flow
//     control with an ERROR only when sendFailIfNoSpace is set; otherwise it
//     withholds the RECEIPT until memory frees, which receipt_timeout bounds.
//   - A message larger than max_message_size is parked on its own, never sent.
// An ERROR for a COMMIT fails the whole transaction (back to pending). An
// ERROR without receipt-id, a protocol error, EOF, heart-beat silence or a
// receipt overdue past receipt_timeout drop the connection: everything in
// flight goes back to pending (what was settled is marked delivered first)
// and we reconnect with backoff and jitter, trying the brokers in order, and
// return to the first one when it is back.
//
// Flow control. ActiveMQ counts the messages of an open transaction against
// its memory limit until COMMIT; with large messages a limit smaller than a
// window would refuse (or withhold receipts of) every transaction again and
// again, and retrying at the same size would never make progress. So a
// flow-control refusal (once per episode), a refused COMMIT or an overdue
// receipt halves the messages allowed in flight (the window first, then the
// transaction size, down to one message), and every kCommitsBeforeGrowing
// successful COMMITs in a row double it back towards the configured sizes.
// Logged as "sender: in-flight limit lowered|raised".
#include "sender/sender.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/clock.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"
#include "stomp/connection.hpp"

namespace gapless::sender {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class Refusal { unauthorized, other };

Refusal classify(const std::string& reason) {
  if (reason.find("not authorized to write to") != std::string::npos ||
      reason.find("not authorized to create") != std::string::npos)
    return Refusal::unauthorized;
  return Refusal::other;
}

// The broker's words for an ERROR: its `message` header, else the body's first line.
std::string error_reason(const stomp::Frame& error) {
  if (const std::string* message = error.header("message"); message && !message->empty()) return *message;
  std::string first_line = error.body.substr(0, error.body.find('\n'));
  return first_line.empty() ? "ERROR frame without a message" : first_line;
}

// Exponential backoff with jitter (half to full of the doubled delay), so that
// many collectors restarted together do not reconnect in lockstep.
class Backoff {
 public:
  Backoff(milliseconds minimum, milliseconds maximum) : minimum_(minimum), maximum_(maximum) {}
  milliseconds next() {
    milliseconds ceiling = minimum_;
    for (int i = 0; i < failures_ && ceiling < maximum_; ++i) ceiling *= 2;
    ceiling = std::min(ceiling, maximum_);
    ++failures_;
    std::uniform_int_distribution<int64_t> jitter(ceiling.count() / 2, std::max<int64_t>(ceiling.count(), 1));
    return milliseconds(jitter(random_));
  }
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  milliseconds minimum_, maximum_;
  int failures_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
};

// See "Flow control" above. The limit is a number of messages in flight,
// window x transaction_size as configured, halved and doubled as a whole.
class InFlightLimit {
 public:
  static constexpr int kCommitsBeforeGrowing = 8;

  InFlightLimit(int transaction_size, int window)
      : configured_size_(std::max(transaction_size, 1)),
        configured_window_(std::max(window, 1)),
        maximum_(int64_t{configured_size_} * configured_window_),
        limit_(maximum_) {}

  int transaction_size() const { return static_cast<int>(std::min<int64_t>(configured_size_, limit_)); }
  int window() const {
    return static_cast<int>(std::clamp<int64_t>(limit_ / transaction_size(), 1, configured_window_));
  }

  // False when already at one message.
  bool lower() {
    successes_ = 0;
    if (limit_ == 1) return false;
    limit_ /= 2;
    return true;
  }

  // True when this commit raised the limit.
  bool on_commit() {
    if (limit_ == maximum_ || ++successes_ < kCommitsBeforeGrowing) return false;
    successes_ = 0;
    limit_ = std::min(maximum_, limit_ * 2);
    return true;
  }

 private:
  int configured_size_, configured_window_;
  int64_t maximum_, limit_;
  int successes_ = 0;
};

enum class SendOutcome { awaiting, confirmed, refused };

struct InFlightSend {
  int64_t message_id;
  std::string destination;
  SendOutcome outcome = SendOutcome::awaiting;
};

struct Transaction {
  int64_t number = 0;
  std::vector<InFlightSend> sends;
  size_t awaiting = 0;  // SENDs not yet answered
  bool any_refused = false;
  bool commit_sent = false;
  bool committed = false;  // COMMIT receipted: the confirmed SENDs are delivered
  Clock::time_point last_progress;
};

// Receipt ids: "<transaction>:<send index>" for SENDs, "<transaction>:commit".
struct ReceiptId {
  int64_t transaction = 0;
  std::optional<size_t> send;  // nothing: the COMMIT
  static std::optional<ReceiptId> parse(const std::string& text) {
    size_t colon = text.find(':');
    if (colon == std::string::npos) return std::nullopt;
    try {
      ReceiptId id;
      id.transaction = std::stoll(text.substr(0, colon));
      std::string rest = text.substr(colon + 1);
      if (rest != "commit") id.send = std::stoul(rest);
      return id;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
};

class ConnectionLost : public Error {
 public:
  using Error::Error;
};

}  // namespace

class Sender::Loop {
 public:
  Loop(const SinkConfig& sink, const std::string& journal_path, const std::atomic<bool>& stop,
       SenderCounters& counters)
      : sink_(sink),
        stop_(stop),
        counters_(counters),
        reconnect_backoff_(sink.reconnect_min, sink.reconnect_max),
        refusal_backoff_(sink.reconnect_min, sink.reconnect_max),
        limit_(sink.transaction_size, sink.window) {
    for (const std::string& uri : sink.brokers) brokers_.push_back(stomp::BrokerUri::parse(uri));
    journal_ = journal::Journal::open(journal_path, {sink.name});
    options_.login = sink.login;
    options_.passcode = sink.passcode;
    options_.virtual_host = sink.virtual_host;
    options_.ca_file = sink.ca_file;
    options_.cert_file = sink.cert_file;
    options_.key_file = sink.key_file;
    options_.connect_timeout = sink.connect_timeout;
    options_.heartbeat = sink.heartbeat;
  }

  void run(bool until_drained) {
    spdlog::info("sender: start sink={} brokers={} window={} transaction_size={}", sink_.name, brokers_.size(),
                 sink_.window, sink_.transaction_size);
    while (!stop_) {
      if (!connection_ && !connect_with_backoff()) break;
      try {
        drain_once();
        if (until_drained && transactions_.empty() && settled_.empty() && nothing_claimable_) break;
      } catch (const ConnectionLost& e) {
        drop_connection(e.what());
      } catch (const stomp::ConnectionError& e) {
        drop_connection(e.what());
      }
    }
    shut_down();
  }

 private:
  // ---- connecting --------------------------------------------------------

  // Tries every broker in order until one answers; between rounds waits with
  // backoff. Returns false only when asked to stop.
  bool connect_with_backoff() {
    while (!stop_) {
      for (size_t i = 0; i < brokers_.size() && !stop_; ++i) {
        if (try_connect(i)) return true;
      }
      milliseconds delay = reconnect_backoff_.next();
      spdlog::warn("sender: no broker reachable sink={} retry_in_ms={}", sink_.name, delay.count());
      sleep_unless_stopped(delay);
    }
    return false;
  }

  bool try_connect(size_t index) {
    try {
      connection_ = stomp::Connection::open(brokers_[index], options_);
      broker_index_ = index;
      last_failback_attempt_ = Clock::now();
      reconnect_backoff_.reset();
      ++counters_.connections;
      counters_.connected = true;
      spdlog::info("sender: connected sink={} broker={} server={}", sink_.name, brokers_[index].str(),
                   connection_->server());
      return true;
    } catch (const Error& e) {
      spdlog::warn("sender: connect failed sink={} broker={} error=\"{}\"", sink_.name, brokers_[index].str(),
                   e.what());
      return false;
    }
  }

  // Everything in flight goes back to pending: nothing was marked delivered
  // for it, so forgetting it in memory is all it takes.
  void drop_connection(const std::string& why) {
    spdlog::warn("sender: connection lost sink={} broker={} in_flight={} error=\"{}\"", sink_.name,
                 connection_ ? connection_->uri().str() : "-", in_flight_.size() - settled_.size(), why);
    record_deliveries();
    release_all();
    connection_.reset();
    counters_.connected = false;
    sleep_unless_stopped(reconnect_backoff_.next());
  }

  void release_all() {
    transactions_.clear();
    in_flight_.clear();
    probes_.clear();
  }

  // After a failover, go back to the first broker once it answers again. Only
  // between transactions, so nothing in flight is abandoned.
  void maybe_fail_back() {
    if (broker_index_ == 0 || !transactions_.empty()) return;
    if (Clock::now() - last_failback_attempt_ < sink_.failback_interval) return;
    last_failback_attempt_ = Clock::now();
    try {
      auto preferred = stomp::Connection::open(brokers_[0], options_);
      spdlog::info("sender: failing back sink={} from={} to={}", sink_.name, brokers_[broker_index_].str(),
                   brokers_[0].str());
      connection_->disconnect(milliseconds(2000));
      connection_ = std::move(preferred);
      broker_index_ = 0;
      ++counters_.connections;
    } catch (const Error& e) {
      spdlog::info("sender: first broker still unreachable sink={} broker={} error=\"{}\"", sink_.name,
                   brokers_[0].str(), e.what());
    }
  }

  // ---- the drain loop ----------------------------------------------------

  void drain_once() {
    maybe_probe_parked_destinations();
    maybe_fail_back();
    fill_window();
    record_deliveries();
    check_receipt_deadline();
    milliseconds wait = transactions_.empty() ? milliseconds(200) : milliseconds(50);
    if (auto frame = connection_->poll(wait)) handle(*frame);
    // Drain whatever else is already buffered without waiting.
    while (auto frame = connection_->poll(milliseconds(0))) handle(*frame);
  }

  bool claiming_paused() const {
    return stop_ || Clock::now() < claims_paused_until_ ||
           (broker_index_ != 0 && Clock::now() - last_failback_attempt_ >= sink_.failback_interval);
  }

  void fill_window() {
    nothing_claimable_ = false;
    while (static_cast<int>(transactions_.size()) < limit_.window() && !claiming_paused()) {
      std::vector<journal::Message> batch =
          journal_->claim(sink_.name, static_cast<size_t>(limit_.transaction_size()), in_flight_);
      if (batch.empty()) {
        nothing_claimable_ = true;
        return;
      }
      send_transaction(batch);
    }
  }

  void send_transaction(std::vector<journal::Message>& batch) {
    Transaction transaction;
    transaction.number = next_transaction_++;
    transaction.last_progress = Clock::now();
    const std::string transaction_id = std::to_string(transaction.number);
    connection_->send(stomp::Frame{"BEGIN", {{"transaction", transaction_id}}, {}});
    for (journal::Message& message : batch) {
      if (static_cast<int64_t>(message.body.size()) > sink_.max_message_size) {
        park_oversized(message);
        continue;
      }
      stomp::Frame send{"SEND", {}, std::move(message.body)};
      send.add("destination", message.destination);
      send.add("transaction", transaction_id);
      send.add("receipt", transaction_id + ":" + std::to_string(transaction.sends.size()));
      send.add("persistent", "true");
      send.add("gapless-id", message.gapless_id);
      if (message.resend_request_id) send.add("gapless-resend", std::to_string(*message.resend_request_id));
      for (auto& [name, value] : message.headers) send.add(std::move(name), std::move(value));
      connection_->send(send);
      in_flight_.insert(message.id);
      transaction.sends.push_back({message.id, message.destination});
    }
    transaction.awaiting = transaction.sends.size();
    if (transaction.sends.empty()) {
      connection_->send(stomp::Frame{"ABORT", {{"transaction", transaction_id}}, {}});
      return;
    }
    // On the wire before the next claim: the broker starts on this
    // transaction while we read the next one from the journal.
    connection_->flush();
    spdlog::debug("sender: transaction sent sink={} transaction={} messages={}", sink_.name, transaction.number,
                  transaction.sends.size());
    transactions_.push_back(std::move(transaction));
  }

  void park_oversized(const journal::Message& message) {
    std::string reason = "message of " + std::to_string(message.body.size()) + " bytes exceeds max_message_size " +
                         std::to_string(sink_.max_message_size);
    journal_->park_message(sink_.name, message.id, reason);
    spdlog::error("sender: message parked sink={} message={} gapless_id={} destination={} reason=\"{}\"",
                  sink_.name, message.id, message.gapless_id, message.destination, reason);
  }

  // Transactions settle out of order (an ABORT can overtake earlier COMMITs),
  // so look the number up; the window is small.
  Transaction* find_transaction(int64_t number) {
    for (Transaction& transaction : transactions_)
      if (transaction.number == number) return &transaction;
    return nullptr;
  }

  void handle(const stomp::Frame& frame) {
    const std::string* receipt = frame.header("receipt-id");
    if (frame.command == "RECEIPT") {
      if (!receipt) throw ConnectionLost("RECEIPT without receipt-id");
      on_receipt(*receipt);
    } else if (frame.command == "ERROR") {
      if (!receipt) throw ConnectionLost("broker ERROR: " + error_reason(frame));
      on_error(*receipt, error_reason(frame));
    } else {
      spdlog::warn("sender: unexpected frame sink={} command={}", sink_.name, frame.command);
    }
  }

  void on_receipt(const std::string& receipt) {
    auto id = ReceiptId::parse(receipt);
    Transaction* transaction = id ? find_transaction(id->transaction) : nullptr;
    if (!transaction) {
      spdlog::warn("sender: receipt for nothing in flight sink={} receipt={}", sink_.name, receipt);
      return;
    }
    transaction->last_progress = Clock::now();
    if (!id->send) return on_commit_receipt(*transaction);
    if (*id->send >= transaction->sends.size()) throw ConnectionLost("receipt for an unknown SEND: " + receipt);
    InFlightSend& send = transaction->sends[*id->send];
    if (send.outcome != SendOutcome::awaiting) return;
    send.outcome = SendOutcome::confirmed;
    --transaction->awaiting;
    maybe_finish_sends(*transaction);
  }

  void on_error(const std::string& receipt, const std::string& reason) {
    auto id = ReceiptId::parse(receipt);
    Transaction* transaction = id ? find_transaction(id->transaction) : nullptr;
    if (!transaction) throw ConnectionLost("broker ERROR for receipt " + receipt + ": " + reason);
    if (!id->send) {
      // The COMMIT failed: nothing of the transaction is known delivered.
      spdlog::error("sender: commit refused sink={} transaction={} reason=\"{}\"", sink_.name,
                    transaction->number, reason);
      ++counters_.aborted;
      pause_claims();
      lower_limit("commit refused");
      return release(*transaction);
    }
    if (*id->send >= transaction->sends.size()) throw ConnectionLost("ERROR for an unknown SEND: " + receipt);
    InFlightSend& send = transaction->sends[*id->send];
    if (send.outcome != SendOutcome::awaiting) return;
    send.outcome = SendOutcome::refused;
    --transaction->awaiting;
    transaction->any_refused = true;
    ++counters_.refused;
    on_refused(send, reason);
    maybe_finish_sends(*transaction);
  }

  void on_refused(const InFlightSend& send, const std::string& reason) {
    probes_.erase(send.message_id);
    if (classify(reason) == Refusal::unauthorized) {
      int64_t attempts = parked_attempts(send.destination);
      int64_t next_retry = unix_now_ms() + park_retry_delay(attempts).count();
      journal_->park_destination(sink_.name, send.destination, reason, next_retry);
      spdlog::error("sender: destination parked sink={} destination={} attempts={} next_retry_in={} reason=\"{}\"",
                    sink_.name, send.destination, attempts + 1,
                    format_duration(park_retry_delay(attempts)), reason);
      return;
    }
    // One refusal episode (often every SEND of a window at once) logs once
    // and counts as one backoff step, not one per SEND.
    if (Clock::now() < claims_paused_until_) return;
    pause_claims();
    spdlog::warn("sender: send refused, will retry sink={} destination={} message={} retry_in_ms={} reason=\"{}\"",
                 sink_.name, send.destination, send.message_id,
                 std::chrono::duration_cast<milliseconds>(claims_paused_until_ - Clock::now()).count(), reason);
    lower_limit("send refused");
  }

  void lower_limit(const char* cause) {
    if (!limit_.lower()) return;
    spdlog::warn("sender: in-flight limit lowered sink={} transaction_size={} window={} cause=\"{}\"", sink_.name,
                 limit_.transaction_size(), limit_.window(), cause);
  }

  void pause_claims() {
    milliseconds delay = refusal_backoff_.next();
    claims_paused_until_ = Clock::now() + delay;
  }

  // Every SEND answered: COMMIT if all were accepted, else ABORT.
  void maybe_finish_sends(Transaction& transaction) {
    if (transaction.awaiting != 0 || transaction.commit_sent) return;
    const std::string transaction_id = std::to_string(transaction.number);
    if (transaction.any_refused) {
      connection_->send(stomp::Frame{"ABORT", {{"transaction", transaction_id}}, {}});
      ++counters_.aborted;
      spdlog::info("sender: transaction aborted sink={} transaction={} messages={}", sink_.name,
                   transaction.number, transaction.sends.size());
      return release(transaction);
    }
    connection_->send(stomp::Frame{"COMMIT", {{"transaction", transaction_id}, {"receipt", transaction_id + ":commit"}}, {}});
    transaction.commit_sent = true;
  }

  void on_commit_receipt(Transaction& transaction) {
    transaction.committed = true;
    for (const InFlightSend& send : transaction.sends) {
      if (send.outcome != SendOutcome::confirmed) continue;
      settled_.delivered.push_back(send.message_id);
      if (probes_.erase(send.message_id)) settled_.unparked.push_back(send.destination);
    }
    refusal_backoff_.reset();
    if (limit_.on_commit())
      spdlog::info("sender: in-flight limit raised sink={} transaction_size={} window={}", sink_.name,
                   limit_.transaction_size(), limit_.window());
    spdlog::debug("sender: committed sink={} transaction={} messages={}", sink_.name, transaction.number,
                  transaction.sends.size());
    release(transaction);
  }

  // What the broker confirmed since the last call, in one journal transaction.
  void record_deliveries() {
    if (settled_.empty()) return;
    journal_->mark_delivered(sink_.name, settled_.delivered);
    for (const int64_t id : settled_.delivered) in_flight_.erase(id);
    counters_.delivered += static_cast<int64_t>(settled_.delivered.size());
    spdlog::debug("sender: delivered sink={} messages={}", sink_.name, settled_.delivered.size());
    for (const std::string& destination : settled_.unparked) {
      int64_t requeued = journal_->retry_parked(sink_.name, destination, false);
      spdlog::info("sender: destination unparked sink={} destination={} messages_requeued={}", sink_.name,
                   destination, requeued);
    }
    settled_.delivered.clear();
    settled_.unparked.clear();
  }

  // Forget a finished transaction; whatever of it was not delivered is pending
  // again in the journal already (it never stopped being so). Its delivered
  // SENDs stay in flight until record_deliveries() wrote them.
  void release(Transaction& transaction) {
    for (const InFlightSend& send : transaction.sends)
      if (!transaction.committed || send.outcome != SendOutcome::confirmed) in_flight_.erase(send.message_id);
    const int64_t number = transaction.number;
    auto it = std::find_if(transactions_.begin(), transactions_.end(),
                           [&](const Transaction& t) { return t.number == number; });
    if (it != transactions_.end()) transactions_.erase(it);
  }

  void check_receipt_deadline() {
    for (const Transaction& transaction : transactions_)
      if (Clock::now() - transaction.last_progress > sink_.receipt_timeout) {
        lower_limit("receipt timeout");
        throw ConnectionLost("no receipt for transaction " + std::to_string(transaction.number) + " within " +
                             format_duration(sink_.receipt_timeout));
      }
  }

  // ---- parked destinations -------------------------------------------------

  milliseconds park_retry_delay(int64_t attempts) const {
    milliseconds delay = sink_.park_retry_interval;
    for (int64_t i = 0; i < attempts && delay < sink_.park_retry_max; ++i) delay *= 2;
    return std::min(delay, sink_.park_retry_max);
  }

  int64_t parked_attempts(const std::string& destination) {
    for (const auto& parked : journal_->parked_destinations(sink_.name))
      if (parked.destination == destination) return parked.attempts;
    return 0;
  }

  // The slow retry: when a parked destination is due, send one of its
  // messages as a probe. Checked once a second; a handful of rows at most.
  void maybe_probe_parked_destinations() {
    if (Clock::now() - last_probe_check_ < std::chrono::seconds(1)) return;
    last_probe_check_ = Clock::now();
    const int64_t now = unix_now_ms();
    for (const auto& parked : journal_->parked_destinations(sink_.name)) {
      if (parked.next_retry_ms > now) continue;
      int64_t next_retry = now + park_retry_delay(parked.attempts).count();
      if (auto probe = journal_->requeue_probe(sink_.name, parked.destination, next_retry)) {
        probes_.insert(*probe);
        spdlog::info("sender: probing parked destination sink={} destination={} message={} attempts={}",
                     sink_.name, parked.destination, *probe, parked.attempts);
      }
    }
  }

  // ---- stopping ------------------------------------------------------------

  void shut_down() {
    if (connection_) {
      const auto deadline = Clock::now() + sink_.shutdown_timeout;
      try {
        while (!transactions_.empty() && Clock::now() < deadline)
          if (auto frame = connection_->poll(milliseconds(50))) handle(*frame);
      } catch (const Error& e) {
        spdlog::warn("sender: error while stopping sink={} error=\"{}\"", sink_.name, e.what());
      }
      if (!transactions_.empty())
        spdlog::warn("sender: stopping with unconfirmed transactions sink={} transactions={} (their messages stay pending)",
                     sink_.name, transactions_.size());
      connection_->disconnect(milliseconds(2000));
      connection_.reset();
    }
    record_deliveries();
    release_all();
    counters_.connected = false;
    spdlog::info("sender: stopped sink={} delivered={}", sink_.name, counters_.delivered.load());
  }

  void sleep_unless_stopped(milliseconds delay) {
    const auto until = Clock::now() + delay;
    while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::min(milliseconds(50), delay));
  }

  const SinkConfig& sink_;
  const std::atomic<bool>& stop_;
  SenderCounters& counters_;
  std::vector<stomp::BrokerUri> brokers_;
  stomp::ConnectOptions options_;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<stomp::Connection> connection_;
  size_t broker_index_ = 0;
  Backoff reconnect_backoff_;
  Backoff refusal_backoff_;
  InFlightLimit limit_;
  Clock::time_point claims_paused_until_{};
  Clock::time_point last_failback_attempt_{};
  Clock::time_point last_probe_check_{};
  std::deque<Transaction> transactions_;
  std::unordered_set<int64_t> in_flight_;
  std::unordered_set<int64_t> probes_;  // message ids sent to probe a parked destination
  struct Settled {  // COMMIT receipted, not yet marked delivered in the journal
    std::vector<int64_t> delivered;
    std::vector<std::string> unparked;  // destinations whose probe was delivered
    bool empty() const { return delivered.empty(); }
    size_t size() const { return delivered.size(); }
  } settled_;
  int64_t next_transaction_ = 1;
  bool nothing_claimable_ = false;
};

Sender::Sender(SinkConfig sink, std::string journal_path, const std::atomic<bool>& stop)
    : sink_(std::move(sink)), journal_path_(std::move(journal_path)), stop_(stop) {}

Sender::~Sender() = default;

void Sender::run(bool until_drained) {
  Loop loop(sink_, journal_path_, stop_, counters_);
  loop.run(until_drained);
}

}  // namespace gapless::sender
