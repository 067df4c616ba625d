// The journal's format: gapless's durable store of every message and of its
// delivery state per sink. This comment is the one description of the on-disk format,
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

#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <string>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::journal::detail {

// delivery.state as stored (invariant 4).
constexpr int kPending = static_cast<int>(State::pending);
constexpr int kDelivered = static_cast<int>(State::delivered);
constexpr int kParked = static_cast<int>(State::parked);

// Journal::open's work on the file, before it holds a connection: creates the
// file, refuses another program's database or a newer journal (invariant 1),
// checks integrity once per process when asked, sets WAL mode, migrates the
// schema forward and registers `sinks`. SQLite's exceptions pass to the caller.
std::unique_ptr<SQLite::Database> open_database(const std::string& path, const std::vector<std::string>& sinks,
                                                bool check_integrity);

}  // namespace gapless::journal::detail
