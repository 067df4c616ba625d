// The journal: gapless's durable, single-file store of every message and of
// its delivery state per sink. The on-disk format, the state machine and every
// invariant are documented once, at the top of format.hpp; the SQL that
// enforces an invariant carries its tag (format.cpp, statements.hpp).
//
// Threading: a Journal object owns one SQLite connection and is used by one
// thread at a time. Every thread (each sender, the collector, the CLI) opens
// its own. Several processes may open the same file at once (WAL mode, busy
// timeout); only `gapless run` additionally holds the daemon lock (daemon_lock.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace SQLite {
class Database;
}

namespace gapless::journal {

// What went wrong with the journal, as a caller must react to it. Every error
// the journal throws for SQLite's sake is a JournalError of one of these.
enum class Fault {
  busy,     // another process held the lock past the busy timeout: wait, try again
  full,     // the disk (or a size limit) is full: pause producers, free space
  io,       // an I/O error: may pass (a network file system, a disk that recovers)
  damaged,  // the file is corrupt or not a journal: stop, a person must look
  other,    // anything else (a bug, a read-only file, a bad path): not retried
};

class JournalError : public Error {
 public:
  JournalError(Fault fault, const std::string& message) : Error(message), fault_(fault) {}
  Fault fault() const { return fault_; }
  // busy, full and io pass by themselves: retried with backoff, never fatal.
  bool transient() const { return fault_ == Fault::busy || fault_ == Fault::full || fault_ == Fault::io; }

 private:
  Fault fault_;
};

// "busy", "full", "io", "damaged", "other": for logs, status and metrics.
const char* fault_name(Fault fault);

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
  // append() only (invariant 15): the time the message describes, unix
  // seconds, by which a resend window finds it; absent: its journaled time.
  // The producer that knows the message's format computes it (ingest:
  // osg::message_time); the journal never reads it from the headers.
  std::optional<int64_t> window_ts;
};

// A sink as Journal::open registers it (invariant 3): its name and the
// destination filters it takes (core/destination_filter.hpp). Without
// `accept`, a sink new to the journal takes every destination and a
// registered one keeps the list it has.
struct SinkRegistration {
  SinkRegistration(std::string sink_name) : name(std::move(sink_name)) {}  // NOLINT: a name alone registers
  SinkRegistration(const char* sink_name) : name(sink_name) {}              // NOLINT
  SinkRegistration(std::string sink_name, std::vector<std::string> filters)
      : name(std::move(sink_name)), accept(std::move(filters)) {}
  std::string name;
  std::optional<std::vector<std::string>> accept;
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

struct DiscardResult {
  int64_t discarded = 0;   // delivery rows removed
  int64_t request_id = 0;  // the recorded request; 0 when nothing matched (nothing recorded)
};

struct RetireResult {
  int64_t pending = 0;              // pending delivery rows removed
  int64_t parked = 0;               // parked delivery rows removed
  int64_t parked_destinations = 0;  // parked_destination rows removed
  int64_t request_id = 0;           // the recorded request
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
  std::optional<int64_t> oldest_pending_ms;      // of the oldest pending one (waiting for delivery, not parked)
  std::optional<ParkedDestination> parked_destination;
};

struct SinkStatus {
  std::string sink;
  std::vector<DestinationStatus> destinations;  // sorted by destination
  // The destination filters its new messages follow, as registered (invariant
  // 3); nothing: every destination (a sink registered before schema version 7).
  std::optional<std::vector<std::string>> accept;
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

// One series of a measurement archive: a metadata object's event type, either
// its base data (summary_type empty, window 0) or one of its summaries. The
// natural key of the collector's cursor, coverage and datapoints, and the one
// name for a series throughout gapless (the message builder takes it as is;
// esmond::SeriesPath leaves out archive_url because a data URL is relative to
// its client's archive). journal::describe (series_description.hpp) names one
// in errors and logs.
struct SeriesKey {
  std::string archive_url;   // the .../esmond/perfsonar/archive/ base URL (not the config name)
  std::string metadata_key;
  std::string event_type;
  std::string summary_type;  // "" for base data; else "aggregation", "average", "statistics"
  int64_t summary_window = 0;
};

struct Series {
  int64_t id = 0;
  SeriesKey key;
  std::string metadata;              // JSON, as the archive last sent it
  std::optional<int64_t> cursor_ts;  // next ts to read; nothing before the first read
};

// A datapoint the collector journals: its value's digest (osg::datapoint_digest,
// 32 hex digits) and the index, in Collected::messages, of the message that carries it.
struct CollectedDatapoint {
  int64_t ts = 0;
  std::string digest;
  size_t message = 0;
};

// What one read of a series produced, journaled in one transaction.
struct Collected {
  int64_t series_id = 0;
  std::vector<NewMessage> messages;
  std::vector<CollectedDatapoint> datapoints;  // new or changed ones only
  // The archive was read over [read_from, read_to) and everything it held
  // there is in the journal now (or was already): recorded as coverage.
  // Nothing is recorded when read_to <= read_from.
  int64_t read_from = 0;
  int64_t read_to = 0;
  int64_t points_read = 0;  // points the archive served in that range
  // The series' next ts to read. Only moves forward; nothing leaves it as is
  // (a backfill behind the cursor).
  std::optional<int64_t> cursor_ts;
};

struct CoveredRange {
  int64_t ts_from = 0;
  int64_t ts_to = 0;  // exclusive
  int64_t points = 0;
};

// An operator act, as recorded in the request table.
struct Request {
  int64_t id = 0;
  std::string kind;        // "retry-parked", "backfill", "resend"
  int64_t created_ms = 0;
  std::string created_by;  // user@host
  std::string arguments;   // JSON
  std::string state;       // "running", "done", "interrupted", "failed"
  int64_t messages = 0;    // messages journaled (backfill) or queued again (resend, retry-parked)
  std::string note;
};

// One condition of a resend's selection of appended messages. It holds for a
// message whose destination is one of `destinations`, or that has a header
// named N whose value is one of `header_values[N]`: any one alternative
// suffices. A condition without alternatives holds for no message.
struct MessageCondition {
  std::vector<std::string> destinations;
  std::map<std::string, std::vector<std::string>> header_values;
};

// Which appended messages (journal invariant 15: those of append(), e.g.
// `gapless ingest`) a resend selects; see Journal::appended_messages. A
// message is selected when its window time is in [from, to) and every one of
// `conditions` holds for it; no condition selects the whole window. The
// journal gives no header a meaning: the caller (replay's resend) states its
// format's rules as conditions.
struct AppendedSelection {
  int64_t from = 0;  // unix s, inclusive
  int64_t to = 0;    // exclusive
  std::vector<MessageCondition> conditions;
};

// One series' messages built from a pushed run (src/push), journaled as
// record_collected journals a read, with their datapoints (invariant 12),
// but with no coverage and no cursor move (invariants 11 and 13): a pushed
// run is one point a host sent, not a read of its archive, so a later poll or
// backfill of that archive still reads there, and finding the same digest at
// the same ts (datapoint_digests) journals nothing new. The other way round,
// a message whose every datapoint is journaled already for the series with
// the same digest (a backfill came first) is not journaled again.
struct PushedSeries {
  SeriesKey key;
  std::string metadata;  // JSON; registers the series when it is new (an existing one keeps its own)
  std::vector<NewMessage> messages;
  std::vector<CollectedDatapoint> datapoints;
};

// One run as the push endpoint journals it: the run itself as append()
// journals a message (invariant 15: its window_ts), and its series' messages.
struct PushedRun {
  std::vector<NewMessage> appended;
  std::vector<PushedSeries> series;
};

struct PushedResult {
  AppendResult appended;  // of PushedRun::appended
  AppendResult series;    // of its series' messages; those already journaled count as duplicates
};

// One poll of an archive by the collector, as record_poll() counts it. What
// the poll came to follows from two fields: it failed when `failures` is not
// empty; it succeeded when nothing failed and it was `complete`; otherwise
// (stopped by shutdown, or series skipped while they back off after an
// earlier failure) it counts as a poll but neither as a success nor as a failure.
struct ArchivePoll {
  std::string archive_url;  // the archive's identity, as in SeriesKey (not the config name)
  std::string name;         // the configuration's name, for display
  int64_t polled_ms = 0;    // when the poll ended
  bool complete = false;    // the listing and every series due were read
  int64_t points_journaled = 0;
  std::map<std::string, int64_t> failures;  // by kind, as collector::PollReport counts them
  std::string last_error;   // the poll's last failure, naming the URL; kept only when the poll failed
};

// The health of an archive: every poll recorded since its first. The *_total
// counters and the failure counts only grow (monotonic counters for metrics).
struct ArchiveHealth {
  struct Failures {
    int64_t count = 0;
    int64_t last_ms = 0;
  };
  std::string archive_url;
  std::string name;  // as at the latest poll
  int64_t first_poll_ms = 0;
  int64_t last_poll_ms = 0;
  std::optional<int64_t> last_success_ms;  // nothing before the first successful poll
  int64_t consecutive_failed_polls = 0;    // failed polls since the last success
  int64_t polls_total = 0;
  int64_t failed_polls_total = 0;
  int64_t points_journaled_total = 0;
  std::map<std::string, Failures> failures;  // by kind
  std::string last_error;                    // "" before the first failure
  std::optional<int64_t> last_error_ms;
};

// What one pruning call deleted (Journal's Retention group), how long its
// longest transaction held the write lock, and how long the checkpoints
// after its transactions took, which hold no lock.
struct PruneReport {
  int64_t messages = 0;    // message rows deleted, with their delivery and appended_message rows
  int64_t deliveries = 0;  // delivery rows deleted with them
  int64_t datapoints = 0;  // datapoint rows deleted
  int64_t pages = 0;       // free pages given back (release_free_pages)
  int64_t transactions = 0;
  int64_t longest_lock_wait_us = 0;   // BEGIN IMMEDIATE waiting for another writer's commit
  int64_t longest_write_lock_us = 0;  // from BEGIN IMMEDIATE's return to COMMIT's: the write lock held
  int64_t checkpoints = 0;            // PASSIVE WAL checkpoints run after a transaction
  int64_t longest_checkpoint_us = 0;
  bool complete = true;  // false: `stop` was raised first
};

// One connection on a journal. Its public methods come in groups, by the
// caller that uses them; each group opens with what all of its calls promise.
class Journal {
 public:
  // ---- Opening (every caller) --------------------------------------------

  // Opens (creating if needed) the journal at `path`, migrates its schema
  // forward, and registers `sinks` (every configured sink gets a delivery row
  // for each message appended from now on whose destination it accepts; a
  // changed accept list replaces the registered one). Refuses, with a message naming the
  // file and both versions, a schema newer than this binary knows, and, when
  // `check_integrity`, a file that fails SQLite's quick integrity check. That
  // check reads every page (about 20 s at 10 million rows), so read-only
  // commands such as `gapless status` skip it; the daemon and the producers
  // run it.
  static std::unique_ptr<Journal> open(const std::string& path, const std::vector<SinkRegistration>& sinks,
                                       bool check_integrity = true);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& path() const { return path_; }

  // ---- Producers (`gapless ingest`; the collector uses record_collected) --

  // One SQLite transaction for the whole batch, committed with
  // synchronous=FULL: when this returns, the batch survives a power cut.
  // Messages whose gapless-id is already journaled are skipped (counted as
  // duplicates). For a sink that has the destination parked, the new delivery
  // row is created parked, with the destination's reason. A batch with a
  // message no registered sink accepts is refused whole (invariant 3): the
  // producer's door (destination_takers) refuses it first.
  AppendResult append(const std::vector<NewMessage>& messages);

  // The push endpoint's group commit (src/journal/pushed.cpp): every run of
  // `runs` in ONE transaction committed with synchronous=FULL, so concurrent
  // pushes share one fsync; when this returns each run survives a power cut,
  // when it throws none of them was journaled. One result per run, in order.
  std::vector<PushedResult> record_pushed(const std::vector<PushedRun>& runs);

  // ---- The delivery queue (a sender, for its one sink: src/sender) --------
  // Every call is one short transaction, or one read snapshot, with no
  // network I/O inside. Being in flight is the caller's memory, never the
  // journal's (invariant 4): a row claimed and never marked is claimed again.
  // mark_delivered commits with synchronous=NORMAL, the others with FULL.

  // Up to `max` pending messages for `sink` in claim order (priority, then
  // id), skipping the ids in `in_flight` (claimed earlier and not yet
  // settled). Stops adding messages once their bodies and headers hold
  // `max_bytes`; at least one message is returned whenever one is claimable,
  // whatever its size.
  std::vector<Message> claim(std::string_view sink, size_t max, const std::unordered_set<int64_t>& in_flight,
                             int64_t max_bytes = std::numeric_limits<int64_t>::max());

  // The sink confirmed these (STOMP: SEND and COMMIT receipts; http: a 2xx). One
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

  // The parked destinations of `sink` (every sink's when absent), by sink then
  // destination: the ones a sender probes.
  std::vector<ParkedDestination> parked_destinations(std::optional<std::string_view> sink = std::nullopt);

  // ---- The series store (the collector; backfill and gaps in replay) ------
  // The series, coverage, datapoint and archive health tables (invariants 11
  // to 14). A read's messages, datapoints, coverage and cursor are written in
  // one transaction, so none of them ever says more than the journal holds.

  // The series of `key`, created on first use; its metadata is replaced when
  // the archive now sends different metadata.
  Series register_series(const SeriesKey& key, std::string_view metadata_json);
  std::optional<Series> find_series(const SeriesKey& key);  // nothing when never registered
  std::vector<Series> series_of_archive(std::string_view archive_url);

  // The digests of the datapoints journaled for a series with ts_from <= ts
  // <= ts_to, by ts: what a re-read compares against.
  std::map<int64_t, std::string> datapoint_digests(int64_t series_id, int64_t ts_from, int64_t ts_to);

  // Messages, datapoints, coverage and cursor of one read, in one transaction
  // committed with synchronous=FULL (as append). Datapoints whose message was
  // already journaled (same gapless-id) point to that message.
  // Writes nothing when nothing would change (no message, no datapoint, the
  // cursor already there, the range already covered).
  AppendResult record_collected(const Collected& collected);

  // The coverage of a series overlapping [ts_from, ts_to), ascending, merged.
  std::vector<CoveredRange> coverage(int64_t series_id, int64_t ts_from, int64_t ts_to);

  // Adds one poll to the archive's counters in one short transaction
  // (src/journal/archives.cpp; the archive_poll and archive_failure tables).
  void record_poll(const ArchivePoll& poll);

  // ---- Requests and resend (`gapless-replay`) ------------------------------
  // Every backfill and resend is recorded in the request table; resend's
  // selection reads index seeks only, and queue_resend moves rows of a
  // recorded request only.

  // begin_request records a request as "running" and returns its id;
  // update_request sets its state, message count and note; requests() lists
  // the newest first (src/journal/requests.cpp).
  int64_t begin_request(std::string_view kind, std::string_view arguments_json);
  void update_request(int64_t id, std::string_view state, int64_t messages, std::string_view note = "");
  std::vector<Request> requests(size_t max = 100);

  // The journaled messages carrying datapoints of these series with
  // ts_from <= ts < ts_to, ascending ids (the datapoint table, invariant 12).
  std::vector<int64_t> messages_of_series(const std::vector<int64_t>& series_ids, int64_t ts_from, int64_t ts_to);

  // The journaled messages of append() (not the collector's) that
  // `selection` selects, ascending ids. A message's window time is the
  // window_ts its producer gave, else the second it was journaled in
  // (invariant 15). Index seeks on the window, whatever the journal's size.
  std::vector<int64_t> appended_messages(const AppendedSelection& selection);

  // A consumer's resend: the rows of these messages that `sink` has
  // delivered go back to pending, claimed after live and backfill data
  // (priority resend), and are sent with a `gapless-resend: <request_id>`
  // header and their own gapless-id. The one exception to invariant 5, and
  // an operator's act: the request must exist. Returns how many rows moved.
  int64_t queue_resend(std::string_view sink, const std::vector<int64_t>& message_ids, int64_t request_id);

  // ---- Operator acts (`gapless retry-parked`, `gapless discard`) ----------
  // Each is one transaction committed with synchronous=FULL; what an
  // operator did is recorded in the request table with who, when and what.

  // Unpark, for the sink (all sinks when empty) and destination (all when
  // empty), both the parked destinations and the messages parked on their
  // own. Returns how many messages went back to pending. Recorded in the
  // request table when `record_request` is true; a sender whose probe
  // succeeded calls it too, unrecorded.
  int64_t retry_parked(std::optional<std::string_view> sink, std::optional<std::string_view> destination,
                       bool record_request);

  // The one exception to invariant 6: removes `sink`'s parked delivery rows
  // (only parked ones), of `destination` and/or `message_id` when given, and
  // records who, when, what and `reason` (required) in the request table, in
  // one transaction. A parked destination stays parked. Nothing matched:
  // nothing changes.
  DiscardResult discard_parked(std::string_view sink, std::optional<std::string_view> destination,
                               std::optional<int64_t> message_id, std::string_view reason);

  // ---- Retention (the daemon's pruner, src/daemon/pruner.hpp) -------------
  // Deletes what is no longer needed (invariants 6, 12, 15) in write
  // transactions of at most `batch` messages or datapoints each, committed
  // with synchronous=NORMAL (a prune lost in a power cut is done again); what
  // to delete is read first, without the write lock, and checked again
  // under it. Every read and delete is an index or primary-key seek. The WAL
  // checkpoint runs after a transaction, not inside its COMMIT. Stops
  // between transactions when `stop` is raised (complete = false).

  // Deletes each message whose delivery rows are all delivered, the latest
  // before `delivered_before_ms`, with its delivery rows and its
  // appended_message row; a message without delivery rows left (every
  // sink's discarded by an operator), once journaled before
  // `delivered_before_ms`. Coverage and datapoint rows stay.
  PruneReport prune_delivered(int64_t delivered_before_ms, const std::atomic<bool>* stop = nullptr,
                              size_t batch = kPruneBatch);

  // Deletes the datapoint rows (invariant 12) of each series with ts <
  // `served_from(series)` whose message is gone: a digest is kept while the
  // archive can still serve its point or while its message is kept,
  // whichever is longer. `served_from` is the caller's rule (the archive's
  // retention: the journal does not interpret series); nothing: keep all.
  PruneReport prune_datapoints(const std::function<std::optional<int64_t>(const SeriesKey&)>& served_from,
                               const std::atomic<bool>* stop = nullptr, size_t batch = kPruneBatch);

  // Gives free pages back to the file system (PRAGMA incremental_vacuum), a
  // few hundred pages per transaction; `pages` counts them.
  PruneReport release_free_pages(const std::atomic<bool>* stop = nullptr);

  // The bytes the journal's pages hold: (page_count - freelist_count) x
  // page_size. Free pages and the -wal file are not counted: pruning lowers
  // it at once, before the pages go back, so [journal] max_size measures
  // what is kept, not what SQLite has not yet given back.
  int64_t bytes_in_use();

  static constexpr size_t kPruneBatch = 256;

  // The second exception to invariant 6, for a sink removed from the
  // configuration for good (`gapless retire-sink`): in one transaction,
  // removes `sink`'s pending and parked delivery rows (delivered ones stay,
  // pruned with their messages) and its parked destinations, records who,
  // when, the counts and `reason` (required) in the request table, and
  // marks the sink retired: new messages get no row for it (invariant 3)
  // and status() no longer lists it. Opening the journal with the sink
  // registers it again, for new messages only. Refuses a sink the journal
  // does not know or has retired already, changing nothing.
  RetireResult retire_sink(std::string_view sink, std::string_view reason);

  // ---- Reporting (`gapless status`, the health file, metrics) ------------
  // Reads only, never a scan of messages or deliveries, so it answers at once
  // beside a running daemon at any journal size.

  // Reads the counters table and a few index seeks; never scans messages.
  // Every registered sink but the retired ones, configured or not.
  std::vector<SinkStatus> status();

  // The messages of `sink` parked on their own (not with their destination),
  // oldest first, at most `max`.
  std::vector<ParkedMessage> parked_messages(std::string_view sink, size_t max);

  // Every archive ever polled, by name then URL (src/journal/archives.cpp).
  std::vector<ArchiveHealth> archive_health() const;

  // ---- For tests -----------------------------------------------------------

  // The query plan SQLite picks for every statement that touches message or
  // delivery (append, claim, mark, park, retry, status, resend's selection:
  // kHotPaths in reporting.cpp), as EXPLAIN QUERY PLAN detail lines, so that
  // a test can assert that none scans a big table.
  std::vector<std::string> explain_hot_paths();

  // The same for every statement of pruning (retention.cpp): none may scan
  // message, delivery or datapoint.
  std::vector<std::string> explain_pruning();

  // The Journal's own connection, for the few tests that need a
  // per-connection setting (max_page_count, foreign_keys) or a commit hook.
  // Every other test reads and arranges rows through a second connection
  // (tests/support/journal_sql.hpp). Never for production code.
  SQLite::Database& connection_for_tests() { return *db_; }

 private:
  Journal(std::string path, std::unique_ptr<SQLite::Database> db);
  int64_t sink_id(std::string_view sink);
  // append()'s work inside the caller's write transaction. `appended`, when
  // given, receives the indexes of the messages newly journaled, in id order.
  AppendResult append_in_transaction(const std::vector<NewMessage>& messages, int64_t now,
                                     std::vector<size_t>* appended = nullptr);

  // Invariant 15's row for the messages of `messages` at `appended` (indexes,
  // in id order), newly journaled above `last_id_before`; inside the transaction.
  void record_appended_in_transaction(const std::vector<NewMessage>& messages, const std::vector<size_t>& appended,
                                      int64_t last_id_before);
  // `messages` appended and `datapoints` recorded for `series_id` (invariant
  // 12), inside the caller's write transaction (series.cpp).
  AppendResult append_with_datapoints(int64_t series_id, const std::vector<NewMessage>& messages,
                                      const std::vector<CollectedDatapoint>& datapoints, int64_t now,
                                      const std::string& operation);
  // The journal id of each message, journaled now or before (invariant 2).
  std::vector<int64_t> message_ids_in_transaction(const std::vector<NewMessage>& messages,
                                                  const std::string& operation);
  // Invariant 12's rows; `message_ids` by CollectedDatapoint::message.
  void upsert_datapoints_in_transaction(int64_t series_id, const std::vector<CollectedDatapoint>& datapoints,
                                        const std::vector<int64_t>& message_ids);
  // One PushedSeries inside record_pushed's transaction (series.cpp): its
  // series' id, registered when new, and which of its messages are new
  // (false: every datapoint it carries is journaled with that digest).
  std::pair<int64_t, std::vector<bool>> pushed_series_fresh(const PushedSeries& pushed, int64_t now);

  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  struct Cache;
  std::unique_ptr<Cache> cache_;  // sink and destination ids, prepared statements
};

}  // namespace gapless::journal
