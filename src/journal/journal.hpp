// The journal: gapless's durable, single-file store of every message and of
// its delivery state per sink. The on-disk format, the state machine and every
// invariant are documented once, at the top of journal.cpp, next to the SQL
// that enforces them.
//
// Threading: a Journal object owns one SQLite connection and is used by one
// thread at a time. Every thread (each sender, the collector, the CLI) opens
// its own. Several processes may open the same file at once (WAL mode, busy
// timeout); only `gapless run` additionally holds the daemon lock (daemon_lock.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace SQLite {
class Database;
}

namespace gapless::journal {

// Claims take messages in this order: live data first, then backfill, then
// consumer-requested resends.
enum class Priority : int { live = 0, backfill = 1, resend = 2 };

enum class State : int { pending = 0, delivered = 1, parked = 2 };

using Headers = std::vector<std::pair<std::string, std::string>>;

// A message as a producer hands it over. `headers` are the user headers to send
// as they are; they never contain destination, gapless-id or the headers the
// sender owns (content-length, receipt, transaction, persistent).
struct NewMessage {
  std::string gapless_id;  // required, the message's stable identity
  std::string destination;
  Headers headers;
  std::string body;  // bytes, sent as they are
  Priority priority = Priority::live;
  std::optional<int64_t> request_id;  // the operator request (backfill) that produced it
};

struct AppendResult {
  int64_t appended = 0;
  int64_t duplicates = 0;  // gapless-id already journaled: not appended again
};

// A message claimed by a sender, ready to become a SEND frame.
struct Message {
  int64_t id = 0;  // journal sequence number (message.id)
  std::string gapless_id;
  std::string destination;
  Headers headers;
  std::string body;
  Priority priority = Priority::live;
  std::optional<int64_t> resend_request_id;  // set when queued again by a resend request
};

struct ParkedDestination {
  std::string sink;
  std::string destination;
  std::string reason;  // the broker's words
  int64_t parked_at_ms = 0;
  int64_t next_retry_ms = 0;
  int64_t attempts = 0;
};

struct DestinationStatus {
  std::string destination;
  int64_t pending = 0;
  int64_t delivered = 0;
  int64_t parked = 0;
  std::optional<int64_t> oldest_undelivered_ms;  // journal time of the oldest pending or parked message
  std::optional<ParkedDestination> parked_destination;
};

struct SinkStatus {
  std::string sink;
  std::vector<DestinationStatus> destinations;  // sorted by destination
};

// A message parked on its own (e.g. too large), with the reason.
struct ParkedMessage {
  int64_t id = 0;
  std::string gapless_id;
  std::string destination;
  std::string reason;
  int64_t attempts = 0;
  int64_t updated_ms = 0;
};

class Journal {
 public:
  // Opens (creating if needed) the journal at `path`, migrates its schema
  // forward, and registers `sinks` (every configured sink gets a delivery row
  // for each message appended from now on). Refuses, with a message naming the
  // file and both versions, a schema newer than this binary knows, and, when
  // `check_integrity`, a file that fails SQLite's quick integrity check. That
  // check reads every page (about 20 s at 10 million rows), so read-only
  // commands such as `gapless status` skip it; the daemon and the producers
  // run it.
  static std::unique_ptr<Journal> open(const std::string& path, const std::vector<std::string>& sinks,
                                       bool check_integrity = true);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return path_; }

  // Producers. One SQLite transaction for the whole batch, committed with
  // synchronous=FULL: when this returns, the batch survives a power cut.
  // Messages whose gapless-id is already journaled are skipped (counted as
  // duplicates). For a sink that has the destination parked, the new delivery
  // row is created parked, with the destination's reason.
  AppendResult append(const std::vector<NewMessage>& messages);

  // Sender side. Up to `max` pending messages for `sink` in claim order
  // (priority, then id), skipping the ids in `in_flight` (claimed earlier and
  // not yet settled; being in flight is never written to disk).
  std::vector<Message> claim(std::string_view sink, size_t max, const std::unordered_set<int64_t>& in_flight);

  // The broker confirmed these (SEND receipt and COMMIT receipt). One
  // transaction. Rows already delivered stay as they are.
  void mark_delivered(std::string_view sink, const std::vector<int64_t>& ids);

  // Park one message on its own (e.g. larger than the sink's maximum).
  void park_message(std::string_view sink, int64_t id, std::string_view reason);

  // Park a destination for a sink (e.g. "not authorized to write to"): every
  // pending row of it becomes parked, later appends arrive parked, claims never
  // see it. Parking an already parked destination counts one more attempt and
  // moves its next retry to `next_retry_ms`.
  void park_destination(std::string_view sink, std::string_view destination, std::string_view reason,
                        int64_t next_retry_ms);

  // The slow retry of a parked destination: move its oldest parked message back
  // to pending (the destination stays parked) so the sender can probe the
  // broker with one message. Sets the next retry time. Returns the probe's id,
  // or nothing if the destination has no parked message.
  std::optional<int64_t> requeue_probe(std::string_view sink, std::string_view destination, int64_t next_retry_ms);

  // Operator act (`gapless retry-parked`) and successful probes: unpark, for
  // the sink (all sinks when empty) and destination (all when empty), both the
  // parked destinations and the messages parked on their own. Returns how many
  // messages went back to pending. Recorded in the request table when
  // `record_request` is true.
  int64_t retry_parked(std::optional<std::string_view> sink, std::optional<std::string_view> destination,
                       bool record_request);

  std::vector<ParkedDestination> parked_destinations(std::optional<std::string_view> sink = std::nullopt);
  std::vector<ParkedMessage> parked_messages(std::string_view sink, size_t max);

  // Reads the counters table and a few index seeks; never scans messages.
  std::vector<SinkStatus> status();

  // For tests and benchmarks: the query plan SQLite picks for the hot paths
  // (claim, mark_delivered, status), as EXPLAIN QUERY PLAN detail lines.
  std::vector<std::string> explain_hot_paths();

  SQLite::Database& database() { return *db_; }

 private:
  Journal(std::string path, std::unique_ptr<SQLite::Database> db);
  int64_t sink_id(std::string_view sink);

  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  struct Cache;
  std::unique_ptr<Cache> cache_;  // sink and destination ids, prepared statements
};

}  // namespace gapless::journal
