// The journal: gapless's durable store of every message and of its delivery
// state per sink. This comment is the one description of the on-disk format,
// of the invariants and of the durability policy. The SQL that enforces an
// invariant carries its tag ("Invariant 4") so that the two can be read side by
// side; change one, change the other.
//
// FILE
//   One SQLite database (plus SQLite's "-wal" and "-shm" files while it is
//   open), in WAL mode so that readers (`gapless status`, metrics) never block
//   the writer and the writer never blocks them.
//   - PRAGMA application_id = 0x47504c53 ("GPLS") marks a gapless journal. A
//     file with another id, or a SQLite file with tables and no id, belongs to
//     another program and is refused untouched.
//   - PRAGMA user_version is the schema version. kMigrations[v] takes a journal
//     from version v to v + 1, in one transaction. A journal newer than this
//     binary is refused: an older gapless must not guess at a newer format.
//   - auto_vacuum = INCREMENTAL, chosen before the first table is created (it
//     can never be turned on later), so that pruning can give pages back to
//     the file system in small steps instead of a full VACUUM.
//   - PRAGMA quick_check runs when a process first opens an existing journal
//     (unless the caller opts out: read-only commands such as `status`).
//     A damaged file is refused with the check's first findings; it is never
//     repaired or reset here, because the undelivered messages in it are the
//     operator's to save.
//
// TABLES (schema version 5: kSchemaV1, where the columns are commented, then
// kMigrationV2, which changed only the delivery_count_update trigger, then
// kMigrationV3, which added the two archive tables, then kMigrationV4, which
// added appended_message and the view message_window_ts, then kMigrationV5,
// which dropped that view)
//   sink, destination   names interned to small integer ids; never deleted
//   request             operator acts (retry-parked, later backfill, resend); never deleted
//   message             one row per gapless-id: destination, headers, body, priority class
//   delivery            one row per (sink, message): pending, delivered or parked
//   delivery_count      rows of delivery per (sink, destination, state), kept by
//                       triggers and mark_delivered (invariant 7)
//   parked_destination  the (sink, destination) pairs the broker refuses
//   series, coverage, datapoint   the collector's cursors, what it read, and
//                       datapoint-level de-duplication (src/journal/series.cpp)
//   archive_poll, archive_failure the collector's polls of each archive and
//                       their failures by kind, as counters (invariant 14,
//                       src/journal/archives.cpp)
//   appended_message    the messages of append() (gapless ingest), by the time a
//                       resend window finds them (invariant 15)
//
// STATE MACHINE, per sink and message
//
//     append ─> pending ──claim──> in flight ──mark_delivered──> delivered
//                 │  ^      (memory only)  │
//                 │  │                     └─ the sender forgets it: pending again
//                 │  └── retry_parked, requeue_probe (one probe) ──┐
//                 └───── park_destination, park_message ───────> parked
//
//   A message parked while in flight may still receive its receipt:
//   mark_delivered moves any state to delivered.
//
// INVARIANTS
//   1 Identity and version: see FILE above (open() enforces both before
//     writing anything).
//   2 One message per gapless-id. message.gapless_id is UNIQUE and append()
//     inserts with ON CONFLICT DO NOTHING; a duplicate gets no delivery rows.
//   3 A batch is appended whole or not at all: its messages and their delivery
//     rows, one for every sink registered at that moment, in one transaction.
//     A sink registered later does not receive older messages. A sink removed
//     from the configuration stays registered: its rows wait, visible in
//     status, until an operator act retires it.
//   4 On disk a delivery row is pending, delivered or parked. Being in flight
//     lives in the sender's memory only, so after a crash at any instant every
//     message is either delivered or still to be sent. What was in flight is
//     sent again, with the same gapless-id: a duplicate, never a loss.
//   5 delivered is written only by mark_delivered, which the sender calls after
//     the broker's receipts for the SEND and for its transaction's COMMIT.
//     Only queue_resend (requests.cpp), an operator's recorded request, moves
//     a delivered row back to pending, with priority resend and the request's id.
//   6 Nothing undelivered is ever deleted, with one exception: an operator's
//     discard (discard_parked), which deletes parked delivery rows only, of
//     one sink, and records who, when, what and why in request in the same
//     transaction. This file has no other DELETE on message or delivery; the
//     message row stays (other sinks may still need it). (Pruning, a later
//     module, deletes delivered rows only.)
//   7 delivery_count.count equals the number of delivery rows with that (sink,
//     destination, state) at every commit: triggers update it inside the same
//     statement for inserts, deletes and every state change except into
//     delivered; that one has a single writer (invariant 5), mark_delivered,
//     which counts its batch per (destination, state left) and updates the
//     counters in the same transaction (since schema version 2: the per-row
//     trigger was most of the cost of marking). A trigger refuses any change
//     to a delivery row's keys. So status() never counts rows and the
//     counters can never drift.
//   8 delivery.destination_id equals its message's destination_id (copied at
//     append, never changed): parking and status work on delivery alone.
//   9 While (sink, destination) has a parked_destination row, new rows of it
//     are created parked, and park_destination parks its pending rows in the
//     transaction that creates the row; a parked destination's only pending
//     rows are the probes of requeue_probe. retry_parked deletes the row and
//     releases the parked rows in one transaction.
//  10 Claim order is delivery.priority (live 0, backfill 1, resend 2), then
//     message.id. message.id is AUTOINCREMENT: never reused, even once pruning
//     has deleted the newest rows, so it is the journal's sequence number.
//  11 A series' cursor_ts moves only forward, and only in the transaction
//     that journals the messages it covers (record_collected): a cursor never
//     passes data that is not journaled, so a crash can neither skip data nor
//     journal it twice.
//  12 A datapoint row (series, ts) holds the digest of the value that a
//     journaled message carries for that ts, and that message's id. A re-read
//     value with the same digest is not journaled again; a changed value (a
//     correction) is journaled in a new message and replaces the row, in one
//     transaction. Datapoint rows outlive pruned messages.
//  13 A coverage row [ts_from, ts_to) of a series says: the archive was read
//     over that range and all it held there then is journaled. It is written
//     in the transaction that journals those datapoints; rows of a series
//     never overlap nor touch (touching ones are merged when written). Gaps
//     and backfills read it; pruning never deletes it.
//  14 An archive's health changes once per poll, in one transaction
//     (record_poll): its archive_poll row and its archive_failure rows, by
//     that poll's counts. Keyed by archive URL, as series are. Counters
//     (polls_total, failed_polls_total, points_journaled_total, each
//     archive_failure.count) only grow and their rows are never deleted: a
//     metric system reads a counter that goes down as a restart. A poll
//     failed when it counted a failure of any kind; it succeeded when nothing
//     failed and it read everything due (listing and every series, none left
//     backing off, not stopped by shutdown); any other poll is neither.
//     consecutive_failed_polls counts failed polls since the last success
//     (CHECKs: it <= failed_polls_total <= polls_total); only a success resets
//     it, and sets last_success_ms. last_error is the latest failed poll's
//     last message. These rows are diagnostics: they never gate collection
//     (the collector logs a failure to write them and goes on).
//  15 A message is collected (record_collected: the collector and backfills)
//     or appended (append(): `gapless ingest`, any producer but the
//     collector). A resend finds the collected messages of a window through
//     their datapoints (invariant 12) and the appended ones through
//     appended_message: one row per appended message, written in its append
//     transaction, none for a collected one. So telling the two apart reads
//     neither the datapoint table (no index on message_id) nor the headers
//     (ingested OSG messages carry the collector's). A row's window_ts is the
//     message's time for a window [from, to): the window_ts its producer gave
//     (NewMessage::window_ts; the journal never interprets headers), else
//     journaled_ms / 1000 (in the window when journaled_ms is in
//     [from * 1000, to * 1000)). Rows written before version 5 hold what the
//     view message_window_ts computed, the first integer ts_start header, the
//     same time `gapless ingest` now gives (osg::message_time), so dropping the
//     view changed no row's meaning. The messages journaled before version 4
//     were sorted by the migration the only way left, by the datapoint table:
//     a message no datapoint row names counts as appended (so does a
//     collected one all of whose datapoints were corrected since; a resend
//     then sends it as it was delivered). A collector read that journals a
//     gapless-id that ingest journaled first makes datapoints name an
//     appended message (invariant 2): resend selects it once. Pruning deletes
//     a message's appended_message row with it.
//
// DURABILITY (synchronous is a per-connection setting in WAL mode; each write
// transaction sets the level it needs just before BEGIN)
//   - append() commits with synchronous=FULL: the WAL is fsynced at every
//     commit, so a batch counts as journaled when append() returns and
//     survives a power cut.
//   - mark_delivered() commits with synchronous=NORMAL: the WAL is fsynced only
//     at checkpoints. A power cut (not a crash of the process, which loses
//     nothing) can forget the latest delivered marks; those messages are then
//     sent again with the same gapless-id: duplicates, never loss. This halves
//     the fsyncs on the drain's hot path.
//   - Every other write (parking, retries, operator requests, migrations) uses
//     FULL: they are rare, and an operator's act must not be forgotten.
//
// CONCURRENCY
//   One Journal (one connection) per thread; any number of processes. Every
//   connection waits up to kBusyTimeoutMs for a lock, trying again every
//   millisecond (wait_for_locks). Write transactions begin
//   IMMEDIATE: a deferred transaction that reads and then writes cannot wait
//   for the lock (SQLITE_BUSY at once, the "deadlock upgrade"), and they stay
//   short (no network I/O inside). Multi-query reads run in one deferred
//   transaction to see one snapshot. Cached statements are reset after each
//   use, so no read transaction outlives a call (an open reader stops
//   checkpoints and lets the WAL grow).
//
// QUERY PLANS
//   Claims, marks, status and resend's selection of appended messages use
//   index seeks only, at any journal size; explain_hot_paths() exposes the
//   plans and unit tests assert them. SQLite has no statistics here (we never
//   ANALYZE); where its default guesses pick the primary key (a walk over all
//   of a sink's rows) over the right index, the query names its index with
//   INDEXED BY.

#include "journal/journal.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "journal/file_access.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal {
using namespace detail;
namespace {

using Json = nlohmann::json;

constexpr int64_t kApplicationId = 0x47504c53;  // "GPLS"
constexpr int kQuickCheckFindingsShown = 5;

constexpr int kPending = static_cast<int>(State::pending);
constexpr int kDelivered = static_cast<int>(State::delivered);
constexpr int kParked = static_cast<int>(State::parked);

// ---------------------------------------------------------------------------
// Schema. SQLite keeps the text of each CREATE statement, comments included,
// so `sqlite3 journal.db .schema` shows this documentation too.

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE sink(
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,          -- as in the configuration
  created_ms INTEGER NOT NULL
);

CREATE TABLE destination(
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE                 -- e.g. /topic/perfsonar.raw.packet-loss-rate
);

CREATE TABLE request(                       -- operator acts, kept for the record
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL,                 -- 'retry-parked', 'backfill', 'resend', ...
  created_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,                 -- user@host
  arguments  TEXT NOT NULL DEFAULT '{}',    -- JSON
  state      TEXT NOT NULL,                 -- 'done', or a later module's states
  messages   INTEGER NOT NULL DEFAULT 0,    -- how many messages the act touched
  note       TEXT NOT NULL DEFAULT ''
);

-- Invariant 2 (UNIQUE gapless_id), invariant 10 (AUTOINCREMENT id).
CREATE TABLE message(
  id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- journal sequence, never reused
  gapless_id     TEXT NOT NULL UNIQUE,
  destination_id INTEGER NOT NULL REFERENCES destination(id),
  headers        TEXT NOT NULL,             -- JSON array of [name, value], in order
  body           BLOB NOT NULL,             -- bytes, sent as they are
  priority       INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),  -- class at creation
  request_id     INTEGER REFERENCES request(id),  -- the backfill that produced it
  journaled_ms   INTEGER NOT NULL
);

-- Invariants 4, 5, 8. message_id has no FOREIGN KEY on purpose: with foreign
-- keys on, every DELETE FROM message would look for children, and delivery has
-- no index that starts with message_id. Pruning deletes a message's delivery
-- rows (by primary key) in the transaction that deletes the message.
CREATE TABLE delivery(
  sink_id           INTEGER NOT NULL REFERENCES sink(id),
  message_id        INTEGER NOT NULL,       -- message.id
  destination_id    INTEGER NOT NULL REFERENCES destination(id),  -- = message.destination_id
  state             INTEGER NOT NULL CHECK (state IN (0, 1, 2)),  -- pending, delivered, parked
  priority          INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),  -- claim order
  attempts          INTEGER NOT NULL DEFAULT 0,  -- times the broker refused it on its own
  reason            TEXT,                   -- why parked, the broker's words; NULL otherwise
  parked_with_destination INTEGER NOT NULL DEFAULT 0,  -- 1: parked because its destination is
  updated_ms        INTEGER NOT NULL,
  delivered_ms      INTEGER,
  resend_request_id INTEGER REFERENCES request(id),
  PRIMARY KEY (sink_id, message_id)
) WITHOUT ROWID;

-- Claims: the next pending ids in claim order, from this index alone.
CREATE INDEX delivery_claim ON delivery(sink_id, state, priority, message_id);
-- Parking, probes and the oldest undelivered message of a destination.
CREATE INDEX delivery_by_destination ON delivery(sink_id, destination_id, state, message_id);
-- The few messages parked on their own, among millions parked with their destination.
CREATE INDEX delivery_parked_alone ON delivery(sink_id, message_id)
  WHERE state = 2 AND parked_with_destination = 0;

-- Invariant 7.
CREATE TABLE delivery_count(
  sink_id        INTEGER NOT NULL,
  destination_id INTEGER NOT NULL,
  state          INTEGER NOT NULL,
  count          INTEGER NOT NULL,
  PRIMARY KEY (sink_id, destination_id, state)
) WITHOUT ROWID;

CREATE TRIGGER delivery_count_insert AFTER INSERT ON delivery BEGIN
  INSERT INTO delivery_count(sink_id, destination_id, state, count)
    VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
    ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER delivery_count_update AFTER UPDATE OF state ON delivery
WHEN OLD.state <> NEW.state BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
  INSERT INTO delivery_count(sink_id, destination_id, state, count)
    VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
    ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
END;

CREATE TRIGGER delivery_count_delete AFTER DELETE ON delivery BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
END;

CREATE TRIGGER delivery_keys_never_change
BEFORE UPDATE OF sink_id, message_id, destination_id ON delivery BEGIN
  SELECT RAISE(ABORT, 'the keys of a delivery row never change (journal invariant 7)');
END;

-- Invariant 9.
CREATE TABLE parked_destination(
  sink_id        INTEGER NOT NULL REFERENCES sink(id),
  destination_id INTEGER NOT NULL REFERENCES destination(id),
  reason         TEXT NOT NULL,             -- the broker's words, latest refusal
  parked_ms      INTEGER NOT NULL,          -- first refusal
  next_retry_ms  INTEGER NOT NULL,
  attempts       INTEGER NOT NULL,          -- refusals so far, probes included
  PRIMARY KEY (sink_id, destination_id)
) WITHOUT ROWID;

-- Invariant 11. One row per series an archive offers.
CREATE TABLE series(
  id             INTEGER PRIMARY KEY,
  archive_url    TEXT NOT NULL,
  metadata_key   TEXT NOT NULL,
  event_type     TEXT NOT NULL,
  summary_type   TEXT NOT NULL DEFAULT '',  -- '' for base data
  summary_window INTEGER NOT NULL DEFAULT 0,  -- 0 for base data
  metadata       TEXT NOT NULL DEFAULT '{}',  -- JSON as the archive sent it
  cursor_ts      INTEGER,                   -- next ts to read; NULL before the first read
  updated_ms     INTEGER NOT NULL,
  UNIQUE (archive_url, metadata_key, event_type, summary_type, summary_window)
);

-- What was read from an archive, [ts_from, ts_to). Outlives message pruning,
-- so that `gaps` can tell "never read" from "read and pruned".
CREATE TABLE coverage(
  series_id INTEGER NOT NULL REFERENCES series(id),
  ts_from   INTEGER NOT NULL,
  ts_to     INTEGER NOT NULL CHECK (ts_to > ts_from),
  points    INTEGER NOT NULL,
  read_ms   INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts_from)
) WITHOUT ROWID;

-- Datapoint-level de-duplication and late data: the digest of each value as
-- sent. message_id has no FOREIGN KEY: these rows outlive pruned messages.
CREATE TABLE datapoint(
  series_id  INTEGER NOT NULL REFERENCES series(id),
  ts         INTEGER NOT NULL,
  digest     BLOB NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
)sql";

// kMigrations[v] takes the schema from version v to v + 1. Append only: a
// published step never changes, later issues add steps (columns, indexes).
// Version 2 (invariant 7): a row moving into delivered no longer runs the
// counting trigger, which cost more than the rest of marking it (two counter
// statements per row, on the drain's hot path); mark_delivered, the only
// writer of delivered (invariant 5), counts its whole batch per destination in
// the same transaction instead.
constexpr const char* kMigrationV2 = R"sql(
DROP TRIGGER delivery_count_update;
CREATE TRIGGER delivery_count_update AFTER UPDATE OF state ON delivery
WHEN OLD.state <> NEW.state AND NEW.state <> 1 BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
  INSERT INTO delivery_count(sink_id, destination_id, state, count)
    VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
    ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
END;
)sql";

// Version 3 (invariant 14): the collector's polls per archive, so that
// `gapless status` and metrics show which archive fails and how. Counters, not
// a log of polls: the tables stay one row per archive (and failure kind)
// however long the daemon runs, and a monotonic counter is what a metric
// system wants (it computes rates and survives missed scrapes).
constexpr const char* kMigrationV3 = R"sql(
-- Invariant 14. One row per archive URL ever polled.
CREATE TABLE archive_poll(
  archive_url              TEXT PRIMARY KEY,  -- the archive's identity, as series.archive_url
  name                     TEXT NOT NULL,     -- its configuration name at the latest poll, for display
  first_poll_ms            INTEGER NOT NULL,
  last_poll_ms             INTEGER NOT NULL,  -- when the latest poll ended
  last_success_ms          INTEGER,           -- NULL before the first successful poll
  consecutive_failed_polls INTEGER NOT NULL,  -- failed polls since the last success
  polls_total              INTEGER NOT NULL,
  failed_polls_total       INTEGER NOT NULL,
  points_journaled_total   INTEGER NOT NULL,  -- datapoints the polls journaled (new or corrected)
  last_error               TEXT,              -- the latest failed poll's last message; NULL before one
  last_error_ms            INTEGER,
  CHECK (0 <= consecutive_failed_polls AND consecutive_failed_polls <= failed_polls_total
         AND failed_polls_total <= polls_total AND points_journaled_total >= 0)
) WITHOUT ROWID;

-- Failures by kind: the collector's kinds ('connect', 'timeout',
-- 'http-status', 'redirect', 'not-json', 'malformed', 'invalid',
-- 'invalid-metadata', 'data', 'journal'), counted per failed request, series
-- or metadata object.
CREATE TABLE archive_failure(
  archive_url TEXT NOT NULL REFERENCES archive_poll(archive_url),
  kind        TEXT NOT NULL,
  count       INTEGER NOT NULL CHECK (count > 0),
  last_ms     INTEGER NOT NULL,               -- the latest poll that counted one
  PRIMARY KEY (archive_url, kind)
) WITHOUT ROWID;
)sql";

// Version 4 (invariant 15): `gapless-replay resend` also finds what `gapless
// ingest` journaled. Those messages have no datapoints, so the datapoint
// table cannot find them, and neither column of message tells them from the
// collector's (both are live, without a request) nor gives their time (the
// ts_start header is inside the headers' JSON). A table of their own, rather
// than a column of message: the collector's inserts stay as they are, and
// adding it rewrites no message row. Filling it reads the datapoint table
// once (seconds per ten million rows), at the first open by this version.
constexpr const char* kMigrationV4 = R"sql(
-- Invariant 15: the one statement of the rule by which a resend window
-- [from, to) finds an appended message. Its time is its first ts_start header
-- whose value is an integer (OSG: unix seconds of the first measurement it
-- carries; at most 18 digits, which fit in 64 bits), else the second it was
-- journaled in. min(key) makes SQLite take `value` from the row of the
-- smallest key, the header's position.
CREATE VIEW message_window_ts(message_id, window_ts) AS
SELECT id, coalesce((
    SELECT CAST(value AS INTEGER) FROM (
      SELECT value, min(key) FROM (
        SELECT pair.key AS key, json_extract(pair.value, '$[0]') AS name, json_extract(pair.value, '$[1]') AS value
        FROM json_each(message.headers) AS pair)
      WHERE name = 'ts_start' AND value GLOB '[0-9]*' AND value NOT GLOB '*[^0-9]*' AND length(value) <= 18)),
  journaled_ms / 1000)
FROM message;

-- Invariant 15. One row per message of append(), none for the collector's.
-- message_id has no FOREIGN KEY, as in delivery: pruning deletes the row with
-- its message.
CREATE TABLE appended_message(
  window_ts  INTEGER NOT NULL,              -- as message_window_ts computes it
  message_id INTEGER NOT NULL,              -- message.id
  PRIMARY KEY (window_ts, message_id)
) WITHOUT ROWID;

-- The messages journaled before this version: those no datapoint row names.
INSERT INTO appended_message(window_ts, message_id)
  SELECT window_ts, message_id FROM message_window_ts
  WHERE message_id NOT IN (SELECT message_id FROM datapoint);
)sql";

// Version 5 (invariant 15): storage no longer interprets messages. The view
// held OSG's ts_start rule; a producer now gives each appended message its
// window time (ingest: osg::message_time, the same rule), so nothing reads
// the view. Every appended_message row keeps its value and its meaning.
constexpr const char* kMigrationV5 = R"sql(
DROP VIEW message_window_ts;
)sql";

constexpr std::array kMigrations = {kSchemaV1, kMigrationV2, kMigrationV3, kMigrationV4, kMigrationV5};
constexpr int kSchemaVersion = static_cast<int>(kMigrations.size());

// ---------------------------------------------------------------------------
// Statements. Named once, used by the code and by explain_hot_paths().

constexpr const char* kSqlSinkId = "SELECT id FROM sink WHERE name = ?1";
constexpr const char* kSqlAllSinkIds = "SELECT id FROM sink ORDER BY id";
constexpr const char* kSqlRegisterSink =
    "INSERT INTO sink(name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING";
constexpr const char* kSqlDestinationId = "SELECT id FROM destination WHERE name = ?1";
constexpr const char* kSqlInsertDestination = "INSERT INTO destination(name) VALUES (?1)";

// append. Invariant 2: a duplicate gapless-id inserts nothing. (Not INSERT OR
// IGNORE: that would also swallow NOT NULL and CHECK violations.)
constexpr const char* kSqlInsertMessage =
    "INSERT INTO message(gapless_id, destination_id, headers, body, priority, request_id, journaled_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (gapless_id) DO NOTHING";
// The batch's messages are those above the largest id before it: ids only
// grow (invariant 10) and the batch holds the write lock.
constexpr const char* kSqlLastMessageId = "SELECT coalesce(max(id), 0) FROM message";
// Invariant 3: one row per registered sink for each message of the batch, in
// one statement; invariant 9: parked, with the destination's reason, for a
// sink that has the destination parked. (One statement, not one per row: a
// statement that fires triggers inside a transaction gets its own statement
// journal, and setting up hundreds of them cost more than the inserts.)
constexpr const char* kSqlInsertDeliveries =
    "INSERT INTO delivery(sink_id, message_id, destination_id, state, priority, reason, "
    "parked_with_destination, updated_ms) "
    "SELECT sink.id, message.id, message.destination_id, "
    "CASE WHEN parked_destination.reason IS NULL THEN 0 ELSE 2 END, message.priority, "
    "parked_destination.reason, parked_destination.reason IS NOT NULL, ?2 "
    "FROM message CROSS JOIN sink LEFT JOIN parked_destination "
    "ON parked_destination.sink_id = sink.id AND parked_destination.destination_id = message.destination_id "
    "WHERE message.id > ?1";
// Invariant 15: append() (never record_collected) records the batch's new
// messages, those above ?1 as for the deliveries, with their window time.
// ?2 is a JSON array of the window times their producers gave (null: none),
// in the order they were appended, which is id order: the n-th new message
// takes element n, by row_number().
constexpr const char* kSqlRecordAppended =
    "INSERT INTO appended_message(window_ts, message_id) "
    "SELECT coalesce(json_extract(?2, '$[' || (row_number() OVER (ORDER BY id) - 1) || ']'), "
    "journaled_ms / 1000), id FROM message WHERE id > ?1";

// claim, step 1: ids only, from the covering index delivery_claim.
constexpr const char* kSqlClaimIds =
    "SELECT message_id FROM delivery WHERE sink_id = ?1 AND state = 0 "
    "ORDER BY priority, message_id LIMIT ?2";
// claim, step 2: the messages of step 1's ids (a JSON array), by primary
// keys, in one statement rather than one per message. CROSS JOIN keeps the
// ids as the outer loop, so each row is one seek per table.
constexpr const char* kSqlClaimRows =
    "SELECT delivery.message_id, message.gapless_id, destination.name, message.headers, message.body, "
    "delivery.priority, delivery.resend_request_id "
    "FROM json_each(?2) AS claimed CROSS JOIN delivery "
    "JOIN message ON message.id = delivery.message_id "
    "JOIN destination ON destination.id = delivery.destination_id "
    "WHERE delivery.sink_id = ?1 AND delivery.message_id = claimed.value AND delivery.state = 0";

// Invariant 5. The ids come as one JSON array, so that a batch is one
// statement (see kSqlInsertDeliveries for why).
constexpr const char* kSqlMarkDelivered =
    "UPDATE delivery SET state = 1, delivered_ms = ?3, updated_ms = ?3, reason = NULL, "
    "parked_with_destination = 0 "
    "WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND state <> 1";
// Invariant 7: the rows kSqlMarkDelivered will move, read before it moves
// them, so that mark_delivered counts them per (destination, state).
constexpr const char* kSqlUndeliveredOf =
    "SELECT destination_id, state FROM delivery "
    "WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND state <> 1";
constexpr const char* kSqlCountLeave =
    "UPDATE delivery_count SET count = count - ?4 WHERE sink_id = ?1 AND destination_id = ?2 AND state = ?3";
constexpr const char* kSqlCountDelivered =
    "INSERT INTO delivery_count(sink_id, destination_id, state, count) VALUES (?1, ?2, 1, ?3) "
    "ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + excluded.count";

constexpr const char* kSqlParkMessage =
    "UPDATE delivery SET state = 2, reason = ?3, parked_with_destination = 0, "
    "attempts = attempts + 1, updated_ms = ?4 WHERE sink_id = ?1 AND message_id = ?2 AND state = 0";

// Invariant 9: the row and the parking of pending rows, in one transaction.
constexpr const char* kSqlUpsertParkedDestination =
    "INSERT INTO parked_destination(sink_id, destination_id, reason, parked_ms, next_retry_ms, attempts) "
    "VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT (sink_id, destination_id) DO UPDATE SET "
    "reason = excluded.reason, next_retry_ms = excluded.next_retry_ms, attempts = attempts + 1";
constexpr const char* kSqlParkDestinationRows =
    "UPDATE delivery SET state = 2, reason = ?3, parked_with_destination = 1, updated_ms = ?4 "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 0";

// The oldest message parked with its destination (not one parked on its own,
// e.g. too large: it would fail the probe for its own reason).
constexpr const char* kSqlProbeCandidate =
    "SELECT message_id FROM delivery INDEXED BY delivery_by_destination "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 2 AND parked_with_destination = 1 "
    "ORDER BY message_id LIMIT 1";
constexpr const char* kSqlReleaseOne =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?3 "
    "WHERE sink_id = ?1 AND message_id = ?2 AND state = 2";
constexpr const char* kSqlSetNextRetry =
    "UPDATE parked_destination SET next_retry_ms = ?3 WHERE sink_id = ?1 AND destination_id = ?2";

// retry_parked, for one sink: every destination, or one.
constexpr const char* kSqlUnparkDestinations = "DELETE FROM parked_destination WHERE sink_id = ?1";
constexpr const char* kSqlUnparkDestination =
    "DELETE FROM parked_destination WHERE sink_id = ?1 AND destination_id = ?2";
constexpr const char* kSqlReleaseSink =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?2 "
    "WHERE sink_id = ?1 AND state = 2";
constexpr const char* kSqlReleaseSinkDestination =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?3 "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 2";
// Invariant 6's exception: parked rows only, of one sink (the delete
// trigger keeps delivery_count, invariant 7).
constexpr const char* kSqlDiscardParked =
    "DELETE FROM delivery WHERE sink_id = ?1 AND state = 2 AND (?2 IS NULL OR destination_id = ?2) "
    "AND (?3 IS NULL OR message_id = ?3)";
constexpr const char* kSqlRecordDiscard =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state, messages, note) "
    "VALUES ('discard', ?1, ?2, ?3, 'done', ?4, ?5)";
constexpr const char* kSqlRecordRequest =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state, messages) "
    "VALUES (?1, ?2, ?3, ?4, 'done', ?5)";

constexpr const char* kSqlParkedDestinations =
    "SELECT sink.name, destination.name, parked_destination.reason, parked_destination.parked_ms, "
    "parked_destination.next_retry_ms, parked_destination.attempts "
    "FROM parked_destination JOIN sink ON sink.id = parked_destination.sink_id "
    "JOIN destination ON destination.id = parked_destination.destination_id "
    "WHERE ?1 IS NULL OR sink.name = ?1 ORDER BY sink.name, destination.name";
constexpr const char* kSqlParkedMessages =
    "SELECT delivery.message_id, message.gapless_id, destination.name, delivery.reason, "
    "delivery.attempts, delivery.updated_ms "
    "FROM delivery INDEXED BY delivery_parked_alone "
    "JOIN message ON message.id = delivery.message_id "
    "JOIN destination ON destination.id = delivery.destination_id "
    "WHERE delivery.sink_id = ?1 AND delivery.state = 2 AND delivery.parked_with_destination = 0 "
    "ORDER BY delivery.message_id LIMIT ?2";

// status: the counters (a small table), then two index seeks per destination
// with a backlog, then the journal time of the older of the two messages.
constexpr const char* kSqlStatusCounts =
    "SELECT sink.name, destination.name, delivery_count.sink_id, delivery_count.destination_id, "
    "delivery_count.state, delivery_count.count "
    "FROM delivery_count JOIN sink ON sink.id = delivery_count.sink_id "
    "JOIN destination ON destination.id = delivery_count.destination_id";
constexpr const char* kSqlStatusSinks = "SELECT name FROM sink";
constexpr const char* kSqlOldestInState =
    "SELECT min(message_id) FROM delivery WHERE sink_id = ?1 AND destination_id = ?2 AND state = ?3";
constexpr const char* kSqlJournaledMs = "SELECT journaled_ms FROM message WHERE id = ?1";

// Resend's selection of appended messages (invariant 15), the one place of its
// rule: the window is a range of appended_message's primary key; the
// conditions then read each message of the window (its destination, its
// headers). ?3 is a JSON array of conditions (NULL: none), each
// {"destinations": [names], "headers": [[name, value], ...]}: a message is
// selected when no condition fails, and a condition holds when the
// message's destination is one of its names or one of the message's headers
// is one of its pairs. Header values are strings (decode_headers).
// The ids come in window order: the caller sorts them (an ORDER BY would sort
// in a temporary b-tree).
constexpr const char* kSqlAppendedInWindow = R"sql(
SELECT message.id
FROM appended_message
CROSS JOIN message ON message.id = appended_message.message_id
CROSS JOIN destination ON destination.id = message.destination_id
WHERE appended_message.window_ts >= ?1 AND appended_message.window_ts < ?2
  AND NOT EXISTS (
        SELECT 1 FROM json_each(?3) AS required
        WHERE NOT EXISTS (SELECT 1 FROM json_each(required.value, '$.destinations') AS wanted
                          WHERE wanted.value = destination.name)
          AND NOT EXISTS (SELECT 1 FROM json_each(message.headers) AS pair
                          CROSS JOIN json_each(required.value, '$.headers') AS wanted
                          WHERE json_extract(pair.value, '$[0]') = json_extract(wanted.value, '$[0]')
                            AND json_extract(pair.value, '$[1]') = json_extract(wanted.value, '$[1]')))
)sql";

struct HotPath {
  const char* name;
  const char* sql;
};

// Every query that touches message or delivery, for explain_hot_paths().
constexpr HotPath kHotPaths[] = {
    {"append/duplicate", kSqlInsertMessage},
    {"append/last_id", kSqlLastMessageId},
    {"append/deliveries", kSqlInsertDeliveries},
    {"claim/ids", kSqlClaimIds},
    {"claim/rows", kSqlClaimRows},
    {"mark_delivered", kSqlMarkDelivered},
    {"mark_delivered/counted", kSqlUndeliveredOf},
    {"park_message", kSqlParkMessage},
    {"park_destination", kSqlParkDestinationRows},
    {"requeue_probe/candidate", kSqlProbeCandidate},
    {"requeue_probe/release", kSqlReleaseOne},
    {"retry_parked/sink", kSqlReleaseSink},
    {"retry_parked/destination", kSqlReleaseSinkDestination},
    {"parked_messages", kSqlParkedMessages},
    {"status/counts", kSqlStatusCounts},
    {"status/oldest", kSqlOldestInState},
    {"status/journaled_ms", kSqlJournaledMs},
    {"append/appended", kSqlRecordAppended},
    {"resend/appended", kSqlAppendedInWindow},
};

bool is_all(std::optional<std::string_view> name) { return !name || name->empty(); }

// Throws nlohmann::json::type_error on a header that is not valid UTF-8.
std::string encode_headers(const Headers& headers) {
  Json pairs = Json::array();
  for (const auto& [name, value] : headers) pairs.push_back(Json::array({name, value}));
  return pairs.dump();
}

Headers decode_headers(const std::string& text, const std::string& path, int64_t message_id) {
  const auto malformed = [&] {
    return Error(context(path, "claim") + "message " + std::to_string(message_id) +
                 " has malformed headers in the journal: " + text);
  };
  const Json pairs = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!pairs.is_array()) throw malformed();
  Headers headers;
  headers.reserve(pairs.size());
  for (const auto& pair : pairs) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) throw malformed();
    headers.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  }
  return headers;
}


// ---------------------------------------------------------------------------
// Opening: identity, version, integrity, migrations.

struct FileIdentity {
  int64_t application_id = 0;
  int64_t user_version = 0;
  int64_t schema_objects = 0;

  bool is_fresh() const { return application_id == 0 && user_version == 0 && schema_objects == 0; }
};

int64_t read_user_version(SQLite::Database& db) { return db.execAndGet("PRAGMA user_version").getInt64(); }

// One snapshot: another process may be creating the journal right now (the
// daemon and `gapless ingest` started together). Read outside a transaction,
// the three values could straddle its commit and a half-seen gapless journal
// would look like another program's database.
FileIdentity read_identity(SQLite::Database& db) {
  FileIdentity identity;
  SQLite::Transaction snapshot(db);  // deferred: takes only a read lock
  identity.application_id = db.execAndGet("PRAGMA application_id").getInt64();
  identity.user_version = read_user_version(db);
  identity.schema_objects = db.execAndGet("SELECT count(*) FROM sqlite_schema").getInt64();
  snapshot.commit();
  return identity;
}

std::string hex32(int64_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08llx", static_cast<unsigned long long>(value & 0xffffffff));
  return text;
}

// Invariant 1: never write into another program's database, nor into a newer
// gapless journal.
void refuse_foreign_or_newer(const std::string& path, const FileIdentity& identity) {
  if (identity.is_fresh()) return;
  if (identity.application_id != kApplicationId) {
    if (identity.application_id != 0)
      throw Error("journal " + path + " is not a gapless journal: its SQLite application_id is " +
                  hex32(identity.application_id) + ", gapless journals have " + hex32(kApplicationId) +
                  "; refusing to touch another program's database");
    throw Error("journal " + path + " is not a gapless journal: it is a SQLite database of another program (" +
                std::to_string(identity.schema_objects) +
                " schema objects, no gapless application_id); refusing to touch it");
  }
  if (identity.user_version > kSchemaVersion)
    throw Error("journal " + path + " has schema version " + std::to_string(identity.user_version) +
                ", newer than version " + std::to_string(kSchemaVersion) +
                " that this gapless knows; it was written by a newer gapless: run that version (or newer) "
                "with this journal");
}

// Findings of PRAGMA quick_check; {"ok"} for a sound file. A damaged page can
// also make the check itself fail: its error is a finding too.
std::vector<std::string> quick_check(SQLite::Database& db) {
  std::vector<std::string> findings;
  try {
    SQLite::Statement check(db, "PRAGMA quick_check(" + std::to_string(kQuickCheckFindingsShown) + ")");
    while (check.executeStep()) findings.push_back(check.getColumn(0).getString());
  } catch (const SQLite::Exception& e) {
    findings.push_back(e.what());
  }
  return findings;
}

// quick_check reads every page: seconds on a journal of millions of rows, and
// every thread of the daemon opens its own connection. So a process checks a
// file once, on its first open; the later opens share the verdict. (Damage
// that appears later surfaces as SQLITE_CORRUPT on the page concerned.)
void check_integrity_once_per_process(const std::string& path, SQLite::Database& db) {
  static std::mutex mutex;
  static std::set<std::string> checked;
  std::error_code ignored;
  std::string key = std::filesystem::weakly_canonical(path, ignored).string();
  if (key.empty()) key = path;

  std::lock_guard lock(mutex);
  if (checked.count(key) != 0) return;
  const std::vector<std::string> findings = quick_check(db);
  if (findings.size() == 1 && findings.front() == "ok") {
    checked.insert(key);
    return;
  }
  std::string text;
  for (const auto& finding : findings) text += (text.empty() ? "" : "; ") + finding;
  throw JournalError(Fault::damaged, "journal " + path + " is damaged: SQLite's quick_check reports: " + text +
              ". gapless never repairs or resets a journal; the file is left as it is. Keep a copy, then "
              "restore a backup, or salvage it (sqlite3 " + path + " .recover), or move it aside to start an "
              "empty journal (its undelivered messages would then not be sent)");
}

void use_wal(const std::string& path, SQLite::Database& db) {
  const std::string mode = db.execAndGet("PRAGMA journal_mode = WAL").getString();
  if (mode != "wal")
    throw Error("journal " + path + ": open: SQLite refused WAL mode (journal_mode is \"" + mode +
                "\"); the journal must be on a local file system");
}

// Invariant 1: forward only, one version per transaction. Another process may
// be migrating the same file: the version is read again under the write lock.
void migrate(const std::string& path, SQLite::Database& db) {
  for (;;) {
    auto transaction = begin_write(db, Durability::full);
    const int64_t version = read_user_version(db);
    if (version >= kSchemaVersion) return;  // rolls back an empty transaction
    if (version == 0) db.exec("PRAGMA application_id = " + std::to_string(kApplicationId));
    db.exec(kMigrations[static_cast<size_t>(version)]);
    db.exec("PRAGMA user_version = " + std::to_string(version + 1));
    transaction.commit();
    spdlog::info("journal: migrated path={} from_version={} to_version={}", path, version, version + 1);
  }
}

void register_sinks(SQLite::Database& db, const std::vector<std::string>& sinks, const std::string& path) {
  for (const auto& sink : sinks)
    if (sink.empty()) throw Error("journal " + path + ": open: a sink name is empty");
  if (sinks.empty()) return;
  auto transaction = begin_write(db, Durability::full);
  SQLite::Statement insert(db, kSqlRegisterSink);
  const int64_t now = unix_now_ms();
  for (const auto& sink : sinks) {
    insert.reset();
    insert.bind(1, sink);
    insert.bind(2, now);
    if (insert.exec() > 0) spdlog::info("journal: registered sink path={} sink={}", path, sink);
  }
  transaction.commit();
}

std::vector<ParkedDestination> read_parked_destinations(SQLite::Database& db, std::optional<std::string_view> sink) {
  SQLite::Statement query(db, kSqlParkedDestinations);
  if (!is_all(sink)) query.bind(1, std::string(*sink));
  std::vector<ParkedDestination> parked;
  while (query.executeStep()) {
    ParkedDestination p;
    p.sink = query.getColumn(0).getString();
    p.destination = query.getColumn(1).getString();
    p.reason = query.getColumn(2).getString();
    p.parked_at_ms = query.getColumn(3).getInt64();
    p.next_retry_ms = query.getColumn(4).getInt64();
    p.attempts = query.getColumn(5).getInt64();
    parked.push_back(std::move(p));
  }
  return parked;
}

}  // namespace

// ---------------------------------------------------------------------------
// The cache: prepared statements of the frequent operations and the ids of
// sinks. Sinks are never deleted (invariant 3), so an id once read stays true.
// Destination ids are cached per append batch only: a destination inserted
// by a transaction that then rolls back must not outlive it here.

struct Journal::Cache {
  explicit Cache(SQLite::Database& database)
      : db(database),
        sink_id(db, kSqlSinkId),
        all_sink_ids(db, kSqlAllSinkIds),
        destination_id(db, kSqlDestinationId),
        insert_destination(db, kSqlInsertDestination),
        insert_message(db, kSqlInsertMessage),
        last_message_id(db, kSqlLastMessageId),
        insert_deliveries(db, kSqlInsertDeliveries),
        record_appended(db, kSqlRecordAppended),
        claim_ids(db, kSqlClaimIds),
        claim_rows(db, kSqlClaimRows),
        mark_delivered(db, kSqlMarkDelivered),
        undelivered_of(db, kSqlUndeliveredOf),
        count_leave(db, kSqlCountLeave),
        count_delivered(db, kSqlCountDelivered),
        status_counts(db, kSqlStatusCounts),
        oldest_in_state(db, kSqlOldestInState),
        journaled_ms(db, kSqlJournaledMs) {}

  std::optional<int64_t> find_sink(std::string_view name) {
    if (auto it = sink_ids.find(name); it != sink_ids.end()) return it->second;
    Borrowed query(sink_id);
    query->bind(1, std::string(name));
    if (!query->executeStep()) return std::nullopt;
    const int64_t id = query->getColumn(0).getInt64();
    sink_ids.emplace(std::string(name), id);
    return id;
  }

  std::vector<int64_t> registered_sinks() {
    Borrowed query(all_sink_ids);
    std::vector<int64_t> ids;
    while (query->executeStep()) ids.push_back(query->getColumn(0).getInt64());
    return ids;
  }

  std::optional<int64_t> find_destination(std::string_view name) {
    Borrowed query(destination_id);
    query->bind(1, std::string(name));
    if (!query->executeStep()) return std::nullopt;
    return query->getColumn(0).getInt64();
  }

  // The largest message id; inside a write transaction, every message
  // appended after this call has a larger one (invariant 10).
  int64_t max_message_id() {
    Borrowed query(last_message_id);
    query->executeStep();
    return query->getColumn(0).getInt64();
  }

  // Inside a write transaction.
  int64_t intern_destination(std::string_view name) {
    if (auto id = find_destination(name)) return *id;
    Borrowed insert(insert_destination);
    insert->bind(1, std::string(name));
    insert->exec();
    return db.getLastInsertRowid();
  }

  // The journal time of the oldest pending or parked message of (sink,
  // destination): two seeks for the smallest id in each state, as one seek
  // for "state IN (0, 2)" would give up the min() shortcut and read the whole
  // backlog. Ids grow with journal time (invariant 10), so the smaller id is
  // the older message.
  std::optional<int64_t> oldest_undelivered_ms(int64_t sink, int64_t destination) {
    std::optional<int64_t> oldest_id;
    for (const int state : {kPending, kParked}) {
      Borrowed query(oldest_in_state);
      query->bind(1, sink);
      query->bind(2, destination);
      query->bind(3, state);
      if (query->executeStep() && !query->isColumnNull(0)) {
        const int64_t id = query->getColumn(0).getInt64();
        if (!oldest_id || id < *oldest_id) oldest_id = id;
      }
    }
    if (!oldest_id) return std::nullopt;
    Borrowed query(journaled_ms);
    query->bind(1, *oldest_id);
    if (!query->executeStep()) return std::nullopt;
    return query->getColumn(0).getInt64();
  }

  SQLite::Database& db;
  SQLite::Statement sink_id, all_sink_ids, destination_id, insert_destination;
  SQLite::Statement insert_message, last_message_id, insert_deliveries, record_appended;
  SQLite::Statement claim_ids, claim_rows, mark_delivered, undelivered_of, count_leave, count_delivered;
  SQLite::Statement status_counts, oldest_in_state, journaled_ms;
  std::map<std::string, int64_t, std::less<>> sink_ids;
};

Journal::Journal(std::string path, std::unique_ptr<SQLite::Database> db)
    : path_(std::move(path)), db_(std::move(db)), cache_(std::make_unique<Cache>(*db_)) {}

Journal::~Journal() = default;

std::unique_ptr<Journal> Journal::open(const std::string& path, const std::vector<std::string>& sinks,
                                       bool check_integrity) {
  return guarded(path, "open", "", [&] {
    create_private_file(path);  // 0600 whatever the umask; SQLite gives -wal and -shm its mode
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    wait_for_locks(*db);
    // Reads only, until the file is known to be ours, current and sound.
    const FileIdentity identity = read_identity(*db);
    refuse_foreign_or_newer(path, identity);
    if (identity.is_fresh())
      db->exec("PRAGMA auto_vacuum = INCREMENTAL");  // before the first table, or never
    else if (check_integrity)
      check_integrity_once_per_process(path, *db);
    use_wal(path, *db);
    db->exec("PRAGMA foreign_keys = ON");
    migrate(path, *db);
    register_sinks(*db, sinks, path);
    spdlog::debug("journal: opened path={} schema_version={} sinks={}", path, kSchemaVersion, sinks.size());
    return std::unique_ptr<Journal>(new Journal(path, std::move(db)));
  });
}

int64_t Journal::sink_id(std::string_view sink) {
  if (auto id = cache_->find_sink(sink)) return *id;
  throw Error("journal " + path_ + ": no sink named \"" + std::string(sink) +
              "\" is registered (sinks are registered when the daemon opens the journal with its configuration)");
}

namespace {
constexpr std::string_view kNothingAppended =
    "nothing of this batch was written (appending it again is safe: gapless-ids already journaled are skipped)";
}  // namespace

AppendResult Journal::append(const std::vector<NewMessage>& messages) {
  return guarded(path_, "append", kNothingAppended, [&] {
    if (messages.empty()) return AppendResult{};
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t last_id_before = cache_->max_message_id();
    std::vector<size_t> appended;
    const AppendResult result = append_in_transaction(messages, unix_now_ms(), &appended);
    if (result.appended > 0) {  // invariant 15: in the batch's transaction
      Json window_times = Json::array();
      for (const size_t index : appended) {
        const std::optional<int64_t>& window_ts = messages[index].window_ts;
        window_times.push_back(window_ts ? Json(*window_ts) : Json(nullptr));
      }
      Borrowed record(cache_->record_appended);
      record->bind(1, last_id_before);
      record->bind(2, window_times.dump());
      record->exec();
    }
    transaction.commit();
    spdlog::debug("journal: appended path={} messages={} duplicates={}", path_, result.appended, result.duplicates);
    return result;
  });
}

AppendResult Journal::append_in_transaction(const std::vector<NewMessage>& messages, int64_t now,
                                            std::vector<size_t>* appended) {
  const auto invalid = [&](size_t index, const std::string& why) {
    return Error(context(path_, "append") + "message " + std::to_string(index) + " of the batch " + why + "; " +
                 std::string(kNothingAppended));
  };

  // Everything that can be refused without the database, before writing.
  std::vector<std::string> headers(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const NewMessage& m = messages[i];
    if (m.gapless_id.empty()) throw invalid(i, "has no gapless-id");
    if (m.destination.empty()) throw invalid(i, "(gapless-id " + m.gapless_id + ") has no destination");
    const int priority = static_cast<int>(m.priority);
    if (priority < 0 || priority > 2)
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has an unknown priority " + std::to_string(priority));
    if (m.body.size() > static_cast<size_t>(INT_MAX))
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has a body larger than 2 GiB");
    try {
      headers[i] = encode_headers(m.headers);
    } catch (const Json::exception& e) {
      throw invalid(i, "(gapless-id " + m.gapless_id + ") has a header that is not valid UTF-8: " + e.what());
    }
  }

  AppendResult result;
  if (messages.empty()) return result;
  if (cache_->registered_sinks().empty())
    throw Error(context(path_, "append") + "no sink is registered, so these messages would never be sent; " +
                std::string(kNothingAppended));
  const int64_t last_id_before = cache_->max_message_id();

  std::unordered_map<std::string_view, int64_t> destination_ids;  // this batch's
  for (size_t i = 0; i < messages.size(); ++i) {
    const NewMessage& m = messages[i];
    auto [destination, inserted] = destination_ids.try_emplace(m.destination);
    if (inserted) destination->second = cache_->intern_destination(m.destination);

    Borrowed insert(cache_->insert_message);
    insert->bind(1, m.gapless_id);
    insert->bind(2, destination->second);
    insert->bind(3, headers[i]);
    insert->bind(4, m.body.data(), static_cast<int>(m.body.size()));
    insert->bind(5, static_cast<int>(m.priority));
    if (m.request_id) insert->bind(6, *m.request_id); else insert->bind(6);
    insert->bind(7, now);
    if (insert->exec() == 0) {  // invariant 2
      ++result.duplicates;
    } else {
      ++result.appended;
      if (appended != nullptr) appended->push_back(i);
    }
  }

  if (result.appended > 0) {  // invariants 3 and 9
    Borrowed deliveries(cache_->insert_deliveries);
    deliveries->bind(1, last_id_before);
    deliveries->bind(2, now);
    deliveries->exec();
  }
  return result;
}

std::vector<Message> Journal::claim(std::string_view sink, size_t max, const std::unordered_set<int64_t>& in_flight,
                                    int64_t max_bytes) {
  return guarded(path_, "claim", "", [&] {
    std::vector<Message> claimed;
    if (max == 0) return claimed;
    const int64_t sink_key = sink_id(sink);
    auto snapshot = begin_read(*db_);

    // Step 1: ids, from the covering index. Those in flight are still pending
    // on disk, so read past them.
    std::vector<int64_t> ids;
    {
      Borrowed query(cache_->claim_ids);
      query->bind(1, sink_key);
      query->bind(2, static_cast<int64_t>(max + in_flight.size()));
      while (ids.size() < max && query->executeStep()) {
        const int64_t id = query->getColumn(0).getInt64();
        if (in_flight.count(id) == 0) ids.push_back(id);
      }
    }

    // Step 2: the messages, by primary key, in step 1's order (the CROSS
    // JOIN keeps it), until they hold max_bytes of bodies and headers: the
    // message that reaches the budget is the last one, and the first one is
    // always taken, whatever its size.
    if (ids.empty()) return claimed;
    claimed.reserve(ids.size());
    {
      Borrowed row(cache_->claim_rows);
      row->bind(1, sink_key);
      row->bind(2, Json(ids).dump());
      int64_t bytes = 0;
      while (bytes < max_bytes && row->executeStep()) {
        Message m;
        m.id = row->getColumn(0).getInt64();
        m.gapless_id = row->getColumn(1).getString();
        m.destination = row->getColumn(2).getString();
        m.headers = decode_headers(row->getColumn(3).getString(), path_, m.id);
        m.body = bytes_of(row->getColumn(4));
        m.priority = static_cast<Priority>(row->getColumn(5).getInt());
        if (!row->isColumnNull(6)) m.resend_request_id = row->getColumn(6).getInt64();
        bytes += static_cast<int64_t>(m.body.size());
        for (const auto& [name, value] : m.headers) bytes += static_cast<int64_t>(name.size() + value.size());
        claimed.push_back(std::move(m));
      }
    }
    snapshot.commit();
    // Claim order (invariant 10), whatever order the join produced.
    std::sort(claimed.begin(), claimed.end(),
              [](const Message& a, const Message& b) { return std::pair(a.priority, a.id) < std::pair(b.priority, b.id); });
    return claimed;
  });
}

void Journal::mark_delivered(std::string_view sink, const std::vector<int64_t>& ids) {
  guarded(path_, "mark_delivered",
          "no delivery was recorded: these messages stay pending and will be sent again with the same gapless-id",
          [&] {
            if (ids.empty()) return;
            const int64_t sink_key = sink_id(sink);
            const std::string id_array = Json(ids).dump();
            auto transaction = begin_write(*db_, Durability::normal);  // see DURABILITY
            // Invariant 7: the counters of what moves, per (destination, state left).
            std::map<std::pair<int64_t, int>, int64_t> leaving;
            int64_t counted = 0;
            {
              Borrowed query(cache_->undelivered_of);
              query->bind(1, sink_key);
              query->bind(2, id_array);
              while (query->executeStep()) {
                ++leaving[{query->getColumn(0).getInt64(), query->getColumn(1).getInt()}];
                ++counted;
              }
            }
            int64_t marked = 0;
            {
              Borrowed update(cache_->mark_delivered);
              update->bind(1, sink_key);
              update->bind(2, id_array);
              update->bind(3, unix_now_ms());
              marked = update->exec();
            }
            if (marked != counted)  // cannot happen under the write lock; never commit drifted counters
              throw Error(context(path_, "mark_delivered") + "counted " + std::to_string(counted) +
                          " rows to mark but marked " + std::to_string(marked) +
                          "; no delivery was recorded: these messages stay pending and will be sent again "
                          "with the same gapless-id");
            for (const auto& [key, rows] : leaving) {
              Borrowed leave(cache_->count_leave);
              leave->bind(1, sink_key);
              leave->bind(2, key.first);
              leave->bind(3, key.second);
              leave->bind(4, rows);
              leave->exec();
              Borrowed arrive(cache_->count_delivered);
              arrive->bind(1, sink_key);
              arrive->bind(2, key.first);
              arrive->bind(3, rows);
              arrive->exec();
            }
            transaction.commit();
            spdlog::debug("journal: delivered path={} sink={} messages={} unchanged={}", path_, sink,
                          marked, static_cast<int64_t>(ids.size()) - marked);
          });
}

void Journal::park_message(std::string_view sink, int64_t id, std::string_view reason) {
  guarded(path_, "park_message", kNothingChanged, [&] {
    const int64_t sink_key = sink_id(sink);
    auto transaction = begin_write(*db_, Durability::full);
    SQLite::Statement update(*db_, kSqlParkMessage);
    update.bind(1, sink_key);
    update.bind(2, id);
    update.bind(3, std::string(reason));
    update.bind(4, unix_now_ms());
    const int parked = update.exec();
    transaction.commit();
    if (parked == 0)
      spdlog::warn("journal: park_message found no pending row path={} sink={} message={}", path_, sink, id);
    else
      spdlog::warn("journal: parked message path={} sink={} message={} reason=\"{}\"", path_, sink, id, reason);
  });
}

void Journal::park_destination(std::string_view sink, std::string_view destination, std::string_view reason,
                               int64_t next_retry_ms) {
  guarded(path_, "park_destination", kNothingChanged, [&] {
    const int64_t sink_key = sink_id(sink);
    const int64_t now = unix_now_ms();
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t destination_id = cache_->intern_destination(destination);

    SQLite::Statement upsert(*db_, kSqlUpsertParkedDestination);
    upsert.bind(1, sink_key);
    upsert.bind(2, destination_id);
    upsert.bind(3, std::string(reason));
    upsert.bind(4, now);
    upsert.bind(5, next_retry_ms);
    upsert.exec();

    SQLite::Statement park(*db_, kSqlParkDestinationRows);  // invariant 9
    park.bind(1, sink_key);
    park.bind(2, destination_id);
    park.bind(3, std::string(reason));
    park.bind(4, now);
    const int parked = park.exec();
    transaction.commit();
    spdlog::warn("journal: parked destination path={} sink={} destination={} messages={} next_retry_ms={} "
                 "reason=\"{}\"",
                 path_, sink, destination, parked, next_retry_ms, reason);
  });
}

std::optional<int64_t> Journal::requeue_probe(std::string_view sink, std::string_view destination,
                                              int64_t next_retry_ms) {
  return guarded(path_, "requeue_probe", kNothingChanged, [&]() -> std::optional<int64_t> {
    const int64_t sink_key = sink_id(sink);
    auto transaction = begin_write(*db_, Durability::full);
    const std::optional<int64_t> destination_id = cache_->find_destination(destination);
    if (!destination_id) return std::nullopt;

    SQLite::Statement candidate(*db_, kSqlProbeCandidate);
    candidate.bind(1, sink_key);
    candidate.bind(2, *destination_id);
    std::optional<int64_t> probe;
    if (candidate.executeStep()) probe = candidate.getColumn(0).getInt64();
    candidate.reset();

    if (probe) {
      SQLite::Statement release(*db_, kSqlReleaseOne);
      release.bind(1, sink_key);
      release.bind(2, *probe);
      release.bind(3, unix_now_ms());
      release.exec();
    }
    SQLite::Statement next_retry(*db_, kSqlSetNextRetry);
    next_retry.bind(1, sink_key);
    next_retry.bind(2, *destination_id);
    next_retry.bind(3, next_retry_ms);
    next_retry.exec();
    transaction.commit();
    spdlog::info("journal: probe path={} sink={} destination={} message={} next_retry_ms={}", path_, sink,
                 destination, probe ? std::to_string(*probe) : "none", next_retry_ms);
    return probe;
  });
}

int64_t Journal::retry_parked(std::optional<std::string_view> sink, std::optional<std::string_view> destination,
                              bool record_request) {
  return guarded(path_, "retry_parked", kNothingChanged, [&] {
    auto transaction = begin_write(*db_, Durability::full);
    const std::vector<int64_t> sinks =
        is_all(sink) ? cache_->registered_sinks() : std::vector<int64_t>{sink_id(*sink)};
    std::optional<int64_t> destination_id;
    if (!is_all(destination)) {
      destination_id = cache_->find_destination(*destination);
      if (!destination_id)
        throw Error(context(path_, "retry_parked") + "no message was ever journaled for destination \"" +
                    std::string(*destination) + "\"; " + std::string(kNothingChanged));
    }

    const int64_t now = unix_now_ms();
    int64_t released = 0;
    for (const int64_t s : sinks) {  // invariant 9: the rows and their parked_destination together
      SQLite::Statement unpark(*db_, destination_id ? kSqlUnparkDestination : kSqlUnparkDestinations);
      SQLite::Statement release(*db_, destination_id ? kSqlReleaseSinkDestination : kSqlReleaseSink);
      unpark.bind(1, s);
      release.bind(1, s);
      if (destination_id) {
        unpark.bind(2, *destination_id);
        release.bind(2, *destination_id);
        release.bind(3, now);
      } else {
        release.bind(2, now);
      }
      unpark.exec();
      released += release.exec();
    }

    if (record_request) {
      Json arguments = Json::object();
      arguments["sink"] = is_all(sink) ? Json(nullptr) : Json(std::string(*sink));
      arguments["destination"] = is_all(destination) ? Json(nullptr) : Json(std::string(*destination));
      SQLite::Statement record(*db_, kSqlRecordRequest);
      record.bind(1, "retry-parked");
      record.bind(2, now);
      record.bind(3, operator_identity());
      record.bind(4, arguments.dump());
      record.bind(5, released);
      record.exec();
    }
    transaction.commit();
    spdlog::info("journal: retry parked path={} sink={} destination={} messages={} recorded={}", path_,
                 is_all(sink) ? "*" : std::string(*sink), is_all(destination) ? "*" : std::string(*destination),
                 released, record_request);
    return released;
  });
}

DiscardResult Journal::discard_parked(std::string_view sink, std::optional<std::string_view> destination,
                                     std::optional<int64_t> message_id, std::string_view reason) {
  return guarded(path_, "discard_parked", kNothingChanged, [&] {
    if (reason.empty())
      throw Error(context(path_, "discard_parked") + "a reason is required; " + std::string(kNothingChanged));
    auto transaction = begin_write(*db_, Durability::full);
    const int64_t sink_row = sink_id(sink);
    std::optional<int64_t> destination_id;
    if (!is_all(destination)) {
      destination_id = cache_->find_destination(*destination);
      if (!destination_id)
        throw Error(context(path_, "discard_parked") + "no message was ever journaled for destination \"" +
                    std::string(*destination) + "\"; " + std::string(kNothingChanged));
    }
    SQLite::Statement discard(*db_, kSqlDiscardParked);
    discard.bind(1, sink_row);
    if (destination_id) discard.bind(2, *destination_id);
    if (message_id) discard.bind(3, *message_id);
    DiscardResult result;
    result.discarded = discard.exec();
    if (result.discarded == 0) return result;  // nothing matched: nothing to record

    Json arguments = Json::object();
    arguments["sink"] = std::string(sink);
    arguments["destination"] = is_all(destination) ? Json(nullptr) : Json(std::string(*destination));
    arguments["message_id"] = message_id ? Json(*message_id) : Json(nullptr);
    arguments["reason"] = std::string(reason);
    SQLite::Statement record(*db_, kSqlRecordDiscard);
    record.bind(1, unix_now_ms());
    record.bind(2, operator_identity());
    record.bind(3, arguments.dump());
    record.bind(4, result.discarded);
    record.bind(5, std::string(reason));
    record.exec();
    result.request_id = db_->getLastInsertRowid();
    transaction.commit();
    spdlog::warn("journal: parked messages discarded path={} sink={} destination={} message={} messages={} "
                 "request={} reason=\"{}\"",
                 path_, sink, is_all(destination) ? "*" : std::string(*destination),
                 message_id ? std::to_string(*message_id) : "*", result.discarded, result.request_id, reason);
    return result;
  });
}

std::vector<ParkedDestination> Journal::parked_destinations(std::optional<std::string_view> sink) {
  return guarded(path_, "parked_destinations", "", [&] { return read_parked_destinations(*db_, sink); });
}

std::vector<ParkedMessage> Journal::parked_messages(std::string_view sink, size_t max) {
  return guarded(path_, "parked_messages", "", [&] {
    const int64_t sink_key = sink_id(sink);
    SQLite::Statement query(*db_, kSqlParkedMessages);
    query.bind(1, sink_key);
    query.bind(2, static_cast<int64_t>(std::min<size_t>(max, INT64_MAX)));
    std::vector<ParkedMessage> parked;
    while (query.executeStep()) {
      ParkedMessage p;
      p.id = query.getColumn(0).getInt64();
      p.gapless_id = query.getColumn(1).getString();
      p.destination = query.getColumn(2).getString();
      p.reason = text_of(query.getColumn(3));
      p.attempts = query.getColumn(4).getInt64();
      p.updated_ms = query.getColumn(5).getInt64();
      parked.push_back(std::move(p));
    }
    return parked;
  });
}

std::vector<int64_t> Journal::appended_messages(const AppendedSelection& selection) {
  return guarded(path_, "appended_messages", "", [&] {
    SQLite::Statement query(*db_, kSqlAppendedInWindow);
    query.bind(1, selection.from);
    query.bind(2, selection.to);
    if (!selection.conditions.empty()) {
      Json conditions = Json::array();
      for (const MessageCondition& condition : selection.conditions) {
        Json headers = Json::array();
        for (const auto& [name, values] : condition.header_values)
          for (const std::string& value : values) headers.push_back(Json::array({name, value}));
        Json required = Json::object();
        required["destinations"] = condition.destinations;
        required["headers"] = std::move(headers);
        conditions.push_back(std::move(required));
      }
      query.bind(3, conditions.dump());
    }
    std::vector<int64_t> ids;
    while (query.executeStep()) ids.push_back(query.getColumn(0).getInt64());
    std::sort(ids.begin(), ids.end());  // window order, see kSqlAppendedInWindow
    return ids;
  });
}

std::vector<SinkStatus> Journal::status() {
  return guarded(path_, "status", "", [&] {
    struct Entry {
      DestinationStatus status;
      int64_t sink_id = 0;
      int64_t destination_id = 0;
    };
    std::map<std::string, std::map<std::string, Entry>> sinks;  // sorted by sink, then destination
    auto snapshot = begin_read(*db_);

    SQLite::Statement all_sinks(*db_, kSqlStatusSinks);  // every sink, even one without messages
    while (all_sinks.executeStep()) sinks[all_sinks.getColumn(0).getString()];

    {
      Borrowed counts(cache_->status_counts);  // invariant 7: counters, not rows
      while (counts->executeStep()) {
        Entry& entry = sinks[counts->getColumn(0).getString()][counts->getColumn(1).getString()];
        entry.sink_id = counts->getColumn(2).getInt64();
        entry.destination_id = counts->getColumn(3).getInt64();
        const int64_t count = counts->getColumn(5).getInt64();
        switch (counts->getColumn(4).getInt()) {
          case kPending: entry.status.pending = count; break;
          case kDelivered: entry.status.delivered = count; break;
          case kParked: entry.status.parked = count; break;
          default: break;  // excluded by the CHECK on delivery.state
        }
      }
    }
    for (ParkedDestination& parked : read_parked_destinations(*db_, std::nullopt))
      sinks[parked.sink][parked.destination].status.parked_destination = std::move(parked);

    std::vector<SinkStatus> result;
    for (auto& [sink_name, destinations] : sinks) {
      SinkStatus sink_status{sink_name, {}};
      for (auto& [destination_name, entry] : destinations) {
        DestinationStatus& s = entry.status;
        if (s.pending + s.delivered + s.parked == 0 && !s.parked_destination) continue;  // e.g. all pruned
        s.destination = destination_name;
        if (s.pending + s.parked > 0) s.oldest_undelivered_ms = cache_->oldest_undelivered_ms(entry.sink_id, entry.destination_id);
        sink_status.destinations.push_back(std::move(s));
      }
      result.push_back(std::move(sink_status));
    }
    snapshot.commit();
    return result;
  });
}

std::vector<std::string> Journal::explain_hot_paths() {
  return guarded(path_, "explain_hot_paths", "", [&] {
    std::vector<std::string> lines;
    for (const HotPath& path : kHotPaths) {
      SQLite::Statement plan(*db_, std::string("EXPLAIN QUERY PLAN ") + path.sql);
      while (plan.executeStep()) lines.push_back(std::string(path.name) + ": " + plan.getColumn(3).getString());
    }
    return lines;
  });
}

}  // namespace gapless::journal
