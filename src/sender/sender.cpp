// How the sender moves a message (one sink, one connection at a time)
// ===================================================================
//
// The sender does the I/O (journal, socket) and follows the decisions of its
// delivery rules (delivery_machine.hpp), held with no I/O so that each of them
// is unit-tested alone: for ActiveMQ the TransactionMachine
// (transaction_machine.hpp, tests/unit/test_receipt_rules.cpp), whose rules
// follow; for RabbitMQ the ConfirmMachine (confirm_machine.hpp,
// tests/unit/test_confirm_rules.cpp), whose rules are under "RabbitMQ" below.
// Which one: the sink's `broker` setting, or with "auto" the CONNECTED
// frame's `server` header; an unknown server gets ActiveMQ's rules, said once
// in the log (broker_kind.hpp).
//
// Claim. Up to `window` transactions are in flight. Each claims up to
// `transaction_size` pending messages from the journal (live first, then
// backfill, then resend), and no more bytes than `max_in_flight_bytes` leaves
// (one message always goes, whatever its size). Claimed ids live only in
// memory (`in_flight_`): the journal row stays `pending`, so a crash or a lost
// connection simply leaves the message to be sent again. Memory is therefore
// bounded by window x transaction_size messages and by max_in_flight_bytes,
// whatever the backlog on disk. Both counts shrink while the broker pushes
// back (see Flow control below).
//
// Sink limits. Each SEND frame is checked against the sink's limits before it
// is queued (stomp::sink_refusal: max_header_line, max_headers, and
// max_message_size for the whole frame). A message beyond one, or one that
// cannot be encoded at all (an empty header name journaled by an older
// version), is parked on its own for this sink with the reason, never sent;
// the transaction goes on without it. Nothing about one message can end the
// sender's thread.
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
// an ERROR: ActiveMQ would commit the rest and report success.
//
// Deliver. On the COMMIT's RECEIPT the SENDs of that transaction are settled;
// they are marked delivered, together with those of every other transaction
// settled meanwhile, in one journal transaction, once the window has been
// refilled and flushed: the broker works on the next transactions while we
// write the journal. Until marked they stay in `in_flight_`, so no claim can
// take them again; a crash before the mark sends them again (same
// gapless-id). Nothing else ever marks a row delivered.
//
// A broker that lies is not believed. A RECEIPT for a COMMIT we did not send,
// for a transaction not in flight, for a SEND index that does not exist or a
// second one for the same SEND is a protocol error: the connection is dropped
// and nothing of those transactions is marked delivered. The broker's ERROR
// text is cleaned (stomp/error_text.hpp) before it is logged or stored.
//
// Refusals (ERROR frames carrying a SEND's receipt-id; ActiveMQ keeps the
// connection open after them, so we do not reconnect):
//   - "not authorized to write to" / "to create": the destination is parked
//     for this sink (journal.park_destination): its pending and future rows
//     are skipped by claims while every other destination keeps flowing. It is
//     probed again with one message after park_retry_interval, doubling up to
//     park_retry_max; a delivered probe unparks the whole destination.
//   - producer flow control ("Usage Manager memory limit reached", "... Wait
//     Timeout"): never parked; the messages go back to pending and claiming
//     pauses with exponential backoff. Note: on a topic, ActiveMQ 5.17 answers
//     a receipted SEND under flow control with an ERROR only when
//     sendFailIfNoSpace is set; otherwise it withholds the RECEIPT until
//     memory frees, which receipt_timeout bounds.
//   - any other reason belongs to the message: the refusals are counted per
//     message id, and once it has been refused `message_attempts` times it is
//     parked on its own, with the broker's words; the others of its
//     transaction are sent again and flow.
//
// The message the broker will not name. When the broker closes the
// connection right after a transaction's SENDs (ActiveMQ does so over a
// header line above 10 KiB), or sends an ERROR without a usable receipt-id,
// or refuses a COMMIT, we cannot know which message caused it. The SENDs it
// did not answer are the suspects (one it confirmed was accepted), and each
// such failure is counted against them by message id: transaction numbers
// change after a reconnect, message ids do not. Once a suspect has failed
// twice, the sender narrows down: the in-flight limit becomes half of the
// first failing transaction (window one), and the next failure halves it
// again, down to one message, reconnecting at once (the reconnect backoff is
// for a broker that cannot be reached, and this one answered). Claims are in
// journal order, so each step keeps the message to blame in the half that is
// sent first, or commits the half without it and reaches it next: after about
// log2(transaction_size) failures it is alone, and when it has failed alone
// `message_attempts` times it is parked with the broker's words (the ERROR
// text, or "the broker closed the connection after this message's SEND").
// With the defaults that is about a dozen quick reconnects (2 + 7 + 3):
// seconds, not the minute allowed. Healthy traffic pays nothing for this: a failure record is
// made only when something failed, narrowing starts only after a repeated
// failure, and the limit widens back after clean commits (below). A loss
// long after the SENDs (heart-beat silence, an overdue receipt) blames no
// message.
//
// Other losses. A protocol error, EOF, heart-beat silence or a receipt overdue
// past receipt_timeout drop the connection: everything in flight goes back to
// pending (what was settled is still marked delivered) and we reconnect with
// backoff and jitter, trying the brokers in order, and return to the first one
// when it is back.
//
// Flow control. ActiveMQ counts the messages of an open transaction against
// its memory limit until COMMIT; with large messages a limit smaller than a
// window would refuse (or withhold receipts of) every transaction again and
// again, and retrying at the same size would never make progress. So a
// flow-control refusal (once per episode), a refused COMMIT or an overdue
// receipt halves the messages allowed in flight (the window first, then the
// transaction size, down to one message), and every kCommitsBeforeGrowing
// successful COMMITs in a row double it back towards the configured sizes
// (in_flight_limit.hpp). Logged as "sender: in-flight limit lowered|raised".
//
// RabbitMQ. Its STOMP adapter buffers a transaction's frames and replays them
// at COMMIT (so a SEND's RECEIPT would only come after the COMMIT we hold
// back for it), and its transactions are not atomic: the rules above cannot
// work there and would prove nothing. Instead:
//   - No transactions. Claims are the same (groups of transaction_size, a
//     window of groups, max_in_flight_bytes; the same limit that shrinks and
//     grows back), so memory is bounded the same way. Each SEND carries
//     `persistent:true` and its own receipt; all are pipelined.
//   - Deliver. A RECEIPT for a persistent SEND is RabbitMQ's publisher
//     confirm: the broker has taken responsibility for that message (routed
//     it, and written it where a durable queue holds it). As on ActiveMQ's
//     topics, a message that no queue is bound for is confirmed and dropped:
//     the broker took it, and who listens is the broker's configuration
//     (a durable queue bound to amq.topic keeps it). So that message,
//     and only it, is settled by its own RECEIPT, and marked delivered with
//     the others settled meanwhile in one journal transaction, as above.
//     Receipts need not come in order (confirms of one destination can
//     overtake another's: seen with a topic and a queue on one connection), so
//     nothing is ever inferred from order: a RECEIPT settles the one SEND it
//     names. A second RECEIPT for a SEND, or one for a SEND we never sent,
//     drops the connection and marks nothing more, as above.
//   - A lost connection. Every SEND not yet answered is released: pending
//     again, sent again on the next connection with the same gapless-id. It
//     may have been routed without its confirm reaching us; that is a
//     duplicate, never a loss. Nothing unconfirmed is ever marked, so the
//     promise holds whatever the broker did with it. The unanswered SENDs of
//     a connection lost just after them are suspects, counted and narrowed
//     down exactly as above ("The message the broker will not name").
//   - Refusals. RabbitMQ refuses a SEND with an ERROR that, as 3.10 sends
//     it, carries no receipt-id, and after a permission refusal ("access_
//     refused", "ACCESS_REFUSED - access to topic 'x' in exchange
//     'amq.topic' ...") closes the connection; each frame it read after the
//     refused one first gets an ERROR "Processing error" that names nothing,
//     and those are only noted. The refused SEND is the one the receipt-id
//     names; else the first unanswered SEND to the destination the words
//     name (RabbitMQ reads a connection's frames in order, so the first
//     unanswered SEND to that destination is the first it refused); else,
//     after an AMQP channel error (`message:access_refused`,
//     `precondition_failed`, ...: RabbitMQ closes the session over one
//     frame, and it was seen to send the RECEIPTs of every SEND before that
//     frame first, then the ERROR, then close), the oldest unanswered SEND;
//     else nobody is named and every unanswered SEND is a suspect, narrowed
//     down as above. The oldest unanswered SEND is not trusted after other
//     ERRORs: an invalid destination's ERROR came before the RECEIPTs of the
//     SENDs ahead of it. The refusal then follows the rules above: a
//     permission refusal (or "is not a valid destination") parks the
//     destination with the broker's words while the others flow, a
//     refusal of the message's own counts against it and parks it after
//     `message_attempts`. After any such ERROR the connection's state is
//     unknown: the other unanswered SENDs are released and the sender
//     reconnects, whether RabbitMQ closed the connection or not.
//   - A message beyond the broker's limits (`stomp.max_frame_size`, 4 MiB by
//     default on the versions that have one; `max_message_size`) is parked
//     before it is sent by the sink's own max_message_size (4 MiB by
//     default, counting the whole frame). A broker set lower refuses it with
//     "PRECONDITION_FAILED - message size N is larger than configured max
//     size M" and closes: a channel error, so it is that message's refusal,
//     parked after `message_attempts`.
//   - Connecting. RabbitMQ reads the `host` header as its virtual host and
//     refuses one it does not have; an empty `virtual_host` means "/" there
//     (open_connection). Heart-beats are offered in whole seconds, rounded
//     up, as RabbitMQ counts them. With a client certificate and no login
//     (`stomp.ssl_cert_login`), no login or passcode header is sent.
//
// A journal fault is a pause, not a crash (journal_link.hpp, shared with the
// http sender). Every journal call may fail with a transient fault
// (SQLITE_BUSY past the busy timeout, a full disk, an I/O error): it is one
// fault episode for this sink (logged when it begins and ends, shown by
// `gapless status`), retried with backoff, and the daemon
// stays up. Confirmed messages whose mark failed stay in memory and out of
// claims until the mark succeeds, and claiming pauses while such writes are
// owed; the connection stays up meanwhile. On a full disk the reserve file
// beside the journal (journal/disk_reserve.hpp) is given back at once, so the
// marks can be written while producers pause. A damaged journal, or any
// other fault, still ends run(): a person must look.
#include "sender/sender.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/backoff.hpp"
#include "core/clock.hpp"
#include "core/destination_filter.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/heartbeat.hpp"
#include "journal/journal.hpp"
#include "sender/broker_answers.hpp"
#include "sender/broker_kind.hpp"
#include "sender/confirm_machine.hpp"
#include "sender/journal_link.hpp"
#include "sender/transaction_machine.hpp"
#include "stomp/connection.hpp"
#include "stomp/error_text.hpp"
#include "stomp/message_rules.hpp"

namespace gapless::sender {

namespace {

using std::chrono::milliseconds;

// A connection that delivered something, or stayed up this long, proved
// the broker works: losing it starts the reconnect backoff over.
constexpr milliseconds kProvenConnection = std::chrono::minutes(1);

// Exponential backoff with jitter (half to full of the doubled delay), so that
// many collectors restarted together do not reconnect in lockstep.
class JitteredBackoff {
 public:
  JitteredBackoff(milliseconds minimum, milliseconds maximum) : minimum_(minimum), maximum_(maximum) {}
  milliseconds next() {
    const milliseconds ceiling = doubling_delay(minimum_, maximum_, ++failures_);
    std::uniform_int_distribution<int64_t> jitter(ceiling.count() / 2, std::max<int64_t>(ceiling.count(), 1));
    return milliseconds(jitter(random_));
  }
  void reset() { failures_ = 0; }

 private:
  milliseconds minimum_, maximum_;
  int failures_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
};

// Claimed and not yet settled in the journal (delivered, parked or simply
// forgotten): claims skip these ids. With the bytes of their frames, for
// max_in_flight_bytes, and when each was sent, for the latency histogram.
class InFlight {
 public:
  void add(int64_t id, int64_t bytes, Clock::time_point sent = {}) {
    if (!entries_.emplace(id, Entry{bytes, sent}).second) return;
    ids_.insert(id);
    bytes_ += bytes;
  }
  void remove(int64_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    ids_.erase(id);
  }
  std::optional<Clock::time_point> sent_at(int64_t id) const {
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.sent == Clock::time_point{}) return std::nullopt;
    return it->second.sent;
  }
  bool contains(int64_t id) const { return ids_.count(id) != 0; }
  const std::unordered_set<int64_t>& ids() const { return ids_; }
  int64_t bytes() const { return bytes_; }
  size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }

 private:
  struct Entry {
    int64_t bytes = 0;
    Clock::time_point sent;
  };
  std::unordered_set<int64_t> ids_;
  std::unordered_map<int64_t, Entry> entries_;
  int64_t bytes_ = 0;
};

// A decision to drop the connection (the machine's, or a frame we cannot
// read). `at_once`: narrowing down, no reconnect backoff.
class ConnectionLost : public Error {
 public:
  ConnectionLost(const std::string& what, bool at_once) : Error(what), at_once_(at_once) {}
  bool at_once() const { return at_once_; }

 private:
  bool at_once_;
};

// `transaction_id` empty: outside any transaction (RabbitMQ).
stomp::Frame send_frame(journal::Message& message, const std::string& transaction_id, const std::string& receipt) {
  stomp::Frame send{"SEND", {}, std::move(message.body)};
  send.add("destination", message.destination);
  if (!transaction_id.empty()) send.add("transaction", transaction_id);
  send.add("receipt", receipt);
  send.add("persistent", "true");
  send.add("gapless-id", message.gapless_id);
  if (message.resend_request_id) send.add("gapless-resend", std::to_string(*message.resend_request_id));
  for (auto& [name, value] : message.headers) send.add(std::move(name), std::move(value));
  return send;
}

std::unique_ptr<DeliveryMachine> make_machine(BrokerKind kind, const SinkConfig& sink) {
  MachineSettings settings{sink.name, sink.transaction_size, sink.window, sink.message_attempts, sink.receipt_timeout};
  if (kind == BrokerKind::rabbitmq) return std::make_unique<ConfirmMachine>(std::move(settings));
  return std::make_unique<TransactionMachine>(std::move(settings));
}

}  // namespace

class Sender::Loop {
 public:
  Loop(const SinkConfig& sink, const std::string& journal_path, int64_t disk_reserve_bytes,
       const std::atomic<bool>& stop, SenderCounters& counters)
      : sink_(sink),
        stop_(stop),
        counters_(counters),
        reconnect_backoff_(sink.reconnect_min, sink.reconnect_max),
        refusal_backoff_(sink.reconnect_min, sink.reconnect_max),
        kind_(choose_broker(sink.broker, "").kind),
        machine_(make_machine(kind_, sink)),
        limits_{sink.max_message_size, sink.max_header_line, sink.max_headers},
        journal_("sender sink=" + sink.name, journal_path, disk_reserve_bytes),
        unreachable_("sender sink=" + sink.name) {
    for (const std::string& uri : sink.brokers) brokers_.push_back(stomp::BrokerUri::parse(uri));
    options_.login = sink.login;
    options_.passcode = sink.passcode;
    options_.virtual_host = sink.virtual_host.empty() ? default_virtual_host(sink.broker).value_or("")
                                                      : sink.virtual_host;
    options_.ca_file = sink.ca_file;
    options_.cert_file = sink.cert_file;
    options_.key_file = sink.key_file;
    options_.connect_timeout = sink.connect_timeout;
    options_.heartbeat = offered_heartbeat(kind_, sink.heartbeat);
  }

  void run(bool until_drained) {
    spdlog::info("sender: start sink={} broker={} brokers={} window={} transaction_size={} max_in_flight_bytes={}",
                 sink_.name, sink_.broker, brokers_.size(), sink_.window, sink_.transaction_size,
                 sink_.max_in_flight_bytes);
    if (!open_journal()) return;
    while (!stop_) {
      counters_.progress.beat();
      if (!connection_ && !connect_with_backoff()) break;
      try {
        drain_once();
        if (until_drained && machine_->idle() && owed_.empty() && nothing_claimable_) break;
      } catch (const ConnectionLost& e) {
        drop_connection(e.what(), e.at_once());
      } catch (const stomp::ConnectionError& e) {
        drop_connection(e.what(), false);
      }
    }
    shut_down();
  }

 private:
  // ---- the journal (journal_link.hpp: a journal fault is a pause) ---------

  template <typename Work>
  bool journal_call(Work&& work) {
    return journal_.call(std::forward<Work>(work));
  }

  bool journal_ready() const { return journal_.ready(); }
  journal::Journal& journal() { return journal_.journal(); }

  // With its accept list (journal invariant 3), as the daemon registered it.
  bool open_journal() { return journal_.open({sink_.name, accept_of(sink_)}, stop_, counters_.progress); }

  // Journal writes decided and not yet made. Until its write succeeds a
  // message stays in flight, so no claim can take it again.
  struct Owed {
    std::vector<int64_t> delivered;  // COMMIT receipted
    std::deque<std::string> unparked;  // destinations whose probe was delivered
    std::deque<ParkMessage> park_messages;
    std::deque<ParkDestination> park_destinations;
    bool parks() const { return !park_messages.empty() || !park_destinations.empty(); }
    bool empty() const { return delivered.empty() && unparked.empty() && !parks(); }
  } owed_;

  // Parks first: a destination must be parked before the next claim, or its
  // other messages would be sent and refused again. Marks wait for
  // `parks_only` false: the sender writes them after refilling the window,
  // while the broker works.
  void write_owed(bool parks_only) {
    while (!owed_.park_messages.empty()) {
      const ParkMessage& park = owed_.park_messages.front();
      const int64_t id = park.message.message_id;
      if (!journal_call([&] { journal().park_message(sink_.name, id, park.reason); })) return;
      spdlog::error("sender: message parked sink={} message={} gapless_id={} destination={} reason=\"{}\"", sink_.name,
                    id, park.message.gapless_id, park.message.destination, park.reason);
      in_flight_.remove(id);
      probes_.erase(id);
      owed_.park_messages.pop_front();
    }
    while (!owed_.park_destinations.empty()) {
      const ParkDestination& park = owed_.park_destinations.front();
      int64_t attempts = 0;
      milliseconds delay{};
      if (!journal_call([&] {
            attempts = parked_attempts(park.destination);
            delay = park_retry_delay(attempts);
            journal().park_destination(sink_.name, park.destination, park.reason, unix_now_ms() + delay.count());
          }))
        return;
      spdlog::error("sender: destination parked sink={} destination={} attempts={} next_retry_in={} reason=\"{}\"",
                    sink_.name, park.destination, attempts + 1, format_duration(delay), park.reason);
      owed_.park_destinations.pop_front();
    }
    if (parks_only) return;
    if (!owed_.delivered.empty()) {
      if (!journal_call([&] { journal().mark_delivered(sink_.name, owed_.delivered); })) return;
      for (const int64_t id : owed_.delivered) {
        in_flight_.remove(id);
        if (auto probe = probes_.find(id); probe != probes_.end()) {
          owed_.unparked.push_back(probe->second);
          probes_.erase(probe);
        }
      }
      counters_.delivered += static_cast<int64_t>(owed_.delivered.size());
      counters_.last_delivered_ms = unix_now_ms();
      spdlog::debug("sender: delivered sink={} messages={}", sink_.name, owed_.delivered.size());
      owed_.delivered.clear();
    }
    while (!owed_.unparked.empty()) {
      const std::string& destination = owed_.unparked.front();
      int64_t requeued = 0;
      if (!journal_call([&] { requeued = journal().retry_parked(sink_.name, destination, false); })) return;
      spdlog::info("sender: destination unparked sink={} destination={} messages_requeued={}", sink_.name,
                   destination, requeued);
      owed_.unparked.pop_front();
    }
  }

  // ---- connecting --------------------------------------------------------

  // Tries every broker in order until one answers; between rounds waits with
  // backoff (and writes what the journal is owed). False only when asked to stop.
  bool connect_with_backoff() {
    while (!stop_) {
      round_errors_.clear();
      for (size_t i = 0; i < brokers_.size() && !stop_; ++i) {
        if (try_connect(i)) return true;
      }
      if (!stop_) unreachable_.occurred(kBrokerUnreachableKind, "no broker answers: " + round_errors_);
      write_owed(false);
      milliseconds delay = reconnect_backoff_.next();
      // The episode logged the first failure and counts the rest.
      spdlog::debug("sender: no broker reachable sink={} retry_in_ms={}", sink_.name, delay.count());
      gapless::sleep_beating(delay, stop_, counters_.progress);
    }
    return false;
  }

  bool try_connect(size_t index) {
    try {
      connection_ = open_connection(brokers_[index]);
      adopt_broker();
      broker_index_ = index;
      last_failback_attempt_ = Clock::now();
      // The backoff is reset only once this connection proves itself
      // (drop_connection): a broker that accepts and at once drops every
      // connection must not be reconnected to, and logged, every reconnect_min.
      connected_at_ = Clock::now();
      delivered_at_connect_ = counters_.delivered;
      unreachable_.resolved();
      if (counters_.connections++ > 0) ++counters_.reconnects;
      counters_.connected = true;
      spdlog::info("sender: connected sink={} broker={} server={}", sink_.name, brokers_[index].str(),
                   connection_->server());
      return true;
    } catch (const Error& e) {
      counters_.count(BrokerError::connect_failed);
      // Each broker's failure is logged once per outage of the sink; while it
      // lasts, the episode counts the rounds.
      spdlog::log(unreachable_.is_open() ? spdlog::level::debug : spdlog::level::warn,
                  "sender: connect failed sink={} broker={} error=\"{}\"", sink_.name, brokers_[index].str(),
                  e.what());
      round_errors_ += (round_errors_.empty() ? "" : "; ") + brokers_[index].str() + ": " + e.what();
      return false;
    }
  }

  // CONNECT, and what a refused virtual host means. The CONNECT leaves before
  // the broker says who it is, so with `broker = "auto"` and no
  // `virtual_host` it carries the broker's host name, as it always has
  // (ActiveMQ only logs it). RabbitMQ refuses that as an unknown virtual host,
  // in words that name it: then, once, the same broker is asked for "/", its
  // default, and "/" is kept for this sink. Any other refused virtual host is
  // the configuration's: the error says which setting to change.
  std::unique_ptr<stomp::Connection> open_connection(const stomp::BrokerUri& uri) {
    try {
      return stomp::Connection::open(uri, options_);
    } catch (const stomp::ConnectionError& e) {
      const std::optional<std::string> vhost = refused_virtual_host(e.what());
      if (!vhost) throw;
      if (sink_.virtual_host.empty() && options_.virtual_host.empty()) {
        spdlog::info("sender: virtual host refused, trying \"/\" sink={} broker={} refused=\"{}\" (set virtual_host "
                     "to choose)",
                     sink_.name, uri.str(), stomp::clean_error_text(*vhost, 80));
        options_.virtual_host = "/";
        return open_connection(uri);
      }
      throw stomp::ConnectionError(std::string(e.what()) + "; the broker has no virtual host '" +
                                   stomp::clean_error_text(*vhost, 80) + "' open to this login: set sink " +
                                   sink_.name + "'s virtual_host to one it has (RabbitMQ: rabbitmqctl list_vhosts, "
                                   "list_user_permissions)");
    }
  }

  // Which broker answered, so which delivery rules (broker_kind.hpp). Only
  // between connections, when nothing is in flight.
  void adopt_broker() {
    const BrokerChoice choice = choose_broker(sink_.broker, connection_->server());
    if (choice.assumed && !assumed_logged_) {
      assumed_logged_ = true;
      spdlog::warn("sender: unknown broker, using ActiveMQ's delivery pattern sink={} server=\"{}\" (set broker = "
                   "\"activemq\" or \"rabbitmq\" to choose)",
                   sink_.name, stomp::clean_error_text(connection_->server(), 80));
    }
    if (choice.kind != kind_ && machine_->idle()) {
      kind_ = choice.kind;
      machine_ = make_machine(kind_, sink_);
      options_.heartbeat = offered_heartbeat(kind_, sink_.heartbeat);
      spdlog::info("sender: delivery pattern sink={} broker={} pattern={}", sink_.name, broker_name(kind_),
                   machine_->transactional() ? "transactions" : "receipt-per-send");
    }
  }

  // Everything in flight goes back to pending: nothing was marked delivered
  // for it, so forgetting it in memory is all it takes. What was confirmed
  // is still written.
  void drop_connection(const std::string& why, bool at_once) {
    Decisions decisions = machine_->connection_lost(why, Clock::now());
    at_once = at_once || decisions.reconnect_at_once;
    spdlog::warn("sender: connection lost sink={} broker={} in_flight={} reconnect={} error=\"{}\"", sink_.name,
                 connection_ ? connection_->uri().str() : "-", in_flight_.size() - owed_.delivered.size(),
                 at_once ? "at-once" : "backoff", stomp::clean_error_text(why));
    connection_.reset();
    counters_.connected = false;
    counters_.count(BrokerError::connection_lost);
    if (counters_.delivered > delivered_at_connect_ || Clock::now() - connected_at_ >= kProvenConnection)
      reconnect_backoff_.reset();
    follow(std::move(decisions));
    write_owed(false);
    if (!at_once) gapless::sleep_beating(reconnect_backoff_.next(), stop_, counters_.progress);
  }

  // After a failover, go back to the first broker once it answers again. Only
  // between transactions, so nothing in flight is abandoned.
  void maybe_fail_back() {
    if (broker_index_ == 0 || !machine_->idle()) return;
    if (Clock::now() - last_failback_attempt_ < sink_.failback_interval) return;
    last_failback_attempt_ = Clock::now();
    try {
      auto preferred = open_connection(brokers_[0]);
      spdlog::info("sender: failing back sink={} from={} to={}", sink_.name, brokers_[broker_index_].str(),
                   brokers_[0].str());
      connection_->disconnect(milliseconds(2000));
      connection_ = std::move(preferred);
      adopt_broker();
      broker_index_ = 0;
      ++counters_.connections;
      ++counters_.reconnects;
    } catch (const Error& e) {
      spdlog::info("sender: first broker still unreachable sink={} broker={} error=\"{}\"", sink_.name,
                   brokers_[0].str(), e.what());
    }
  }

  // ---- the drain loop ----------------------------------------------------

  void drain_once() {
    write_owed(true);
    maybe_probe_parked_destinations();
    maybe_fail_back();
    fill_window();
    write_owed(false);
    follow(machine_->check_deadline(Clock::now()));
    milliseconds wait = machine_->idle() ? milliseconds(200) : milliseconds(50);
    if (auto frame = connection_->poll(wait)) handle(*frame);
    // Drain whatever else is already buffered without waiting.
    while (auto frame = connection_->poll(milliseconds(0))) handle(*frame);
  }

  bool claiming_paused() const {
    return stop_ || Clock::now() < claims_paused_until_ || !journal_ready() ||
           (journal_.faulty() && !owed_.empty()) ||  // a journal write failed: no new work until it is made
           (broker_index_ != 0 && Clock::now() - last_failback_attempt_ >= sink_.failback_interval);
  }

  void fill_window() {
    nothing_claimable_ = false;
    while (static_cast<int>(machine_->transactions_in_flight()) < machine_->window() && !claiming_paused()) {
      // Bytes as well as messages: what is claimed and unconfirmed stays
      // below max_in_flight_bytes (one message always goes, whatever its size).
      const int64_t budget = sink_.max_in_flight_bytes - in_flight_.bytes();
      if (budget <= 0 && !in_flight_.empty()) return;
      std::vector<journal::Message> batch;
      if (!journal_call([&] {
            batch = journal().claim(sink_.name, static_cast<size_t>(machine_->transaction_size()), in_flight_.ids(),
                                    std::max<int64_t>(budget, 1));
          }))
        return;
      if (batch.empty()) {
        nothing_claimable_ = true;
        return;
      }
      send_transaction(batch);
    }
  }

  // BEGIN, one SEND per message, all queued and flushed together. A message
  // over this sink's limits, or one that cannot be encoded, never reaches
  // the wire: it is parked on its own and the transaction goes on without it
  // (Connection::send queues nothing when encoding throws, and the receipt
  // index it would have had goes to the next SEND).
  void send_transaction(std::vector<journal::Message>& batch) {
    const auto now = Clock::now();
    const int64_t number = machine_->begin(now);
    const std::string transaction_id = machine_->transactional() ? std::to_string(number) : std::string();
    if (!transaction_id.empty()) connection_->send(stomp::Frame{"BEGIN", {{"transaction", transaction_id}}, {}});
    size_t sent = 0;
    for (journal::Message& message : batch) {
      OutgoingSend outgoing{message.id, message.gapless_id, message.destination};
      stomp::Frame frame = send_frame(message, transaction_id, machine_->next_send_receipt(number));
      std::optional<std::string> refusal = stomp::sink_refusal(frame, limits_);
      if (!refusal) {
        try {
          connection_->send(frame);
        } catch (const stomp::ProtocolError& e) {
          refusal = std::string("the message cannot be encoded as a STOMP frame: ") + e.what();
        }
      }
      if (refusal) {
        follow(machine_->unsendable(std::move(outgoing), std::move(*refusal)));
        continue;
      }
      in_flight_.add(message.id, static_cast<int64_t>(stomp::encoded_size(frame)), now);
      machine_->sent(number, std::move(outgoing));
      ++sent;
    }
    follow(machine_->written(number, now));  // ABORT when nothing of it could be sent
    // On the wire before the next claim: the broker starts on this
    // transaction while we read the next one from the journal.
    connection_->flush();
    spdlog::debug("sender: transaction sent sink={} transaction={} messages={}", sink_.name, number, sent);
  }

  void handle(const stomp::Frame& frame) {
    if (frame.command != "RECEIPT" && frame.command != "ERROR") {
      spdlog::warn("sender: unexpected frame sink={} command={}", sink_.name,
                   stomp::clean_error_text(frame.command, 64));
      return;
    }
    // RabbitMQ's "Processing error" only echoes an earlier refusal: not counted.
    if (frame.command == "ERROR" && classify(stomp::error_text(frame)) != Refusal::follow_on) {
      if (frame.header("receipt-id")) ++counters_.refused;
      const std::string_view kind = error_kind(frame);
      counters_.count(kind == "not-authorized" ? BrokerError::not_authorized
                      : kind == "flow-control" ? BrokerError::flow_control
                                               : BrokerError::refused);
    }
    follow(machine_->on_frame(frame, Clock::now()));
  }

  // Carries out the machine's decisions: frames first, then the journal's
  // share (owed, written by write_owed), then a reconnect when asked.
  void follow(Decisions decisions) {
    if (connection_) {
      for (const int64_t number : decisions.commit) {
        const std::string id = std::to_string(number);
        connection_->send(
            stomp::Frame{"COMMIT", {{"transaction", id}, {"receipt", TransactionMachine::commit_receipt(number)}}, {}});
      }
      for (const int64_t number : decisions.abort) {
        connection_->send(stomp::Frame{"ABORT", {{"transaction", std::to_string(number)}}, {}});
        ++counters_.aborted;
      }
    }
    if (!decisions.delivered.empty()) {
      const auto now = Clock::now();
      for (const int64_t id : decisions.delivered)
        if (const auto sent = in_flight_.sent_at(id))
          counters_.latency.observe(std::chrono::duration_cast<milliseconds>(now - *sent));
      owed_.delivered.insert(owed_.delivered.end(), decisions.delivered.begin(), decisions.delivered.end());
      refusal_backoff_.reset();
    }
    std::unordered_set<int64_t> parking;
    for (const ParkMessage& park : decisions.park_messages) parking.insert(park.message.message_id);
    for (const int64_t id : decisions.released) {
      if (parking.count(id)) continue;
      in_flight_.remove(id);
      probes_.erase(id);
    }
    for (ParkMessage& park : decisions.park_messages) {
      // Out of claims until the park is written; its frame is no longer held.
      in_flight_.remove(park.message.message_id);
      in_flight_.add(park.message.message_id, 0);
      owed_.park_messages.push_back(std::move(park));
    }
    for (ParkDestination& park : decisions.park_destinations) owed_.park_destinations.push_back(std::move(park));
    if (decisions.pause_claims) pause_claims();
    if (decisions.reconnect) throw ConnectionLost(*decisions.reconnect, decisions.reconnect_at_once);
  }

  void pause_claims() {
    milliseconds delay = refusal_backoff_.next();
    claims_paused_until_ = Clock::now() + delay;
    spdlog::info("sender: claims paused sink={} for_ms={}", sink_.name, delay.count());
  }

  // ---- parked destinations -------------------------------------------------

  milliseconds park_retry_delay(int64_t attempts) const {
    milliseconds delay = sink_.park_retry_interval;
    for (int64_t i = 0; i < attempts && delay < sink_.park_retry_max; ++i) delay *= 2;
    return std::min(delay, sink_.park_retry_max);
  }

  int64_t parked_attempts(const std::string& destination) {
    for (const auto& parked : journal().parked_destinations(sink_.name))
      if (parked.destination == destination) return parked.attempts;
    return 0;
  }

  // The slow retry: when a parked destination is due, send one of its
  // messages as a probe. Checked once a second; a handful of rows at most.
  void maybe_probe_parked_destinations() {
    if (Clock::now() - last_probe_check_ < std::chrono::seconds(1) || !journal_ready()) return;
    last_probe_check_ = Clock::now();
    const int64_t now = unix_now_ms();
    std::vector<journal::ParkedDestination> parked;
    if (!journal_call([&] { parked = journal().parked_destinations(sink_.name); })) return;
    for (const auto& destination : parked) {
      if (destination.next_retry_ms > now) continue;
      int64_t next_retry = now + park_retry_delay(destination.attempts).count();
      std::optional<int64_t> probe;
      if (!journal_call([&] { probe = journal().requeue_probe(sink_.name, destination.destination, next_retry); }))
        return;
      if (!probe) continue;
      probes_[*probe] = destination.destination;
      spdlog::info("sender: probing parked destination sink={} destination={} message={} attempts={}", sink_.name,
                   destination.destination, *probe, destination.attempts);
    }
  }

  // ---- stopping ------------------------------------------------------------

  void shut_down() {
    if (connection_) {
      const auto deadline = Clock::now() + sink_.shutdown_timeout;
      try {
        while (!machine_->idle() && Clock::now() < deadline)
          if (auto frame = connection_->poll(milliseconds(50))) handle(*frame);
      } catch (const Error& e) {
        spdlog::warn("sender: error while stopping sink={} error=\"{}\"", sink_.name, e.what());
      }
      if (!machine_->idle())
        spdlog::warn("sender: stopping with unconfirmed transactions sink={} transactions={} (their messages stay pending)",
                     sink_.name, machine_->transactions_in_flight());
      connection_->disconnect(milliseconds(2000));
      connection_.reset();
    }
    follow_without_connection(machine_->connection_lost("stopping", Clock::now()));
    if (journal_.is_open()) {
      journal_.retry_now();  // one last attempt, whatever the backoff
      write_owed(false);
    }
    if (!owed_.empty())
      spdlog::warn("sender: stopping with journal writes not made sink={} deliveries={} parks={} (those messages stay "
                   "pending and are sent again with the same gapless-id)",
                   sink_.name, owed_.delivered.size(), owed_.park_messages.size() + owed_.park_destinations.size());
    counters_.connected = false;
    spdlog::info("sender: stopped sink={} delivered={}", sink_.name, counters_.delivered.load());
  }

  void follow_without_connection(Decisions decisions) {
    decisions.reconnect.reset();
    try {
      follow(std::move(decisions));
    } catch (const Error& e) {
      spdlog::warn("sender: error while stopping sink={} error=\"{}\"", sink_.name, e.what());
    }
  }

  const SinkConfig& sink_;
  const std::atomic<bool>& stop_;
  SenderCounters& counters_;
  std::vector<stomp::BrokerUri> brokers_;
  stomp::ConnectOptions options_;
  std::unique_ptr<stomp::Connection> connection_;
  size_t broker_index_ = 0;
  JitteredBackoff reconnect_backoff_;
  JitteredBackoff refusal_backoff_;
  BrokerKind kind_;  // whose delivery rules machine_ holds
  std::unique_ptr<DeliveryMachine> machine_;
  bool assumed_logged_ = false;  // "auto" met a server it does not know: said once
  stomp::SinkLimits limits_;
  JournalLink journal_;  // before unreachable_: in the order the constructor names them
  FaultEpisode unreachable_;  // no broker answers: the sink is down (kBrokerUnreachableKind)
  std::string round_errors_;  // each broker's connect failure in the current round
  Clock::time_point claims_paused_until_{};
  Clock::time_point last_failback_attempt_{};
  Clock::time_point connected_at_{};  // of the current (or latest) connection
  int64_t delivered_at_connect_ = 0;  // counters_.delivered then
  Clock::time_point last_probe_check_{};
  InFlight in_flight_;
  std::unordered_map<int64_t, std::string> probes_;  // message id -> the parked destination it probes
  bool nothing_claimable_ = false;
};

Sender::Sender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes, const std::atomic<bool>& stop)
    : sink_(std::move(sink)),
      journal_path_(std::move(journal_path)),
      disk_reserve_bytes_(disk_reserve_bytes),
      stop_(stop) {}

Sender::~Sender() = default;

void Sender::run(bool until_drained) {
  Loop loop(sink_, journal_path_, disk_reserve_bytes_, stop_, counters_);
  loop.run(until_drained);
}

}  // namespace gapless::sender
