// The journal's format: gapless's durable store of every message and of its
// delivery state per sink. This comment is the one statement of the on-disk
// format, the state machine, the invariants and the durability and
// concurrency policies; the SQL that enforces an invariant carries its tag
// ("Invariant 4"), so change one, change the other. Why each rule is what it
// is, and what each schema version changed: docs/journal.md. The schema
// itself: docs/journal-schema.sql.
//
// FILE (docs/journal.md 1)
//   One SQLite database (plus "-wal" and "-shm" while open), in WAL mode.
//   - PRAGMA application_id = 0x47504c53 ("GPLS"): a file with another id, or
//     a SQLite file with tables and no id, is refused untouched.
//   - PRAGMA user_version is the schema version; kMigrations[v] takes a
//     journal from v to v + 1 in one transaction; a newer journal is refused.
//   - auto_vacuum = INCREMENTAL, set before the first table is created.
//   - PRAGMA quick_check runs when a process first opens an existing journal
//     (unless the caller opts out); a damaged file is refused with its
//     findings, never repaired or reset.
//
// TABLES (schema version 7; docs/journal.md 6 for each version's change)
//   sink, destination   names interned to small integer ids; never deleted;
//                       sink.retired_request_id: retired by that request (invariant 3);
//                       sink.accept: the destinations it takes (invariant 3)
//   request             operator acts (retry-parked, backfill, resend, discard, retire-sink); never deleted
//   message             one row per gapless-id: destination, headers, body, priority class
//   delivery            one row per (sink, message): pending, delivered or parked
//   delivery_count      rows of delivery per (sink, destination, state) (invariant 7)
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
// INVARIANTS (why: docs/journal.md 5)
//   1 Identity and version: see FILE; open() enforces both before writing anything.
//   2 One message per gapless-id: message.gapless_id is UNIQUE and append()
//     inserts with ON CONFLICT DO NOTHING; a duplicate gets no delivery rows.
//   3 A batch is appended whole or not at all, with one delivery row for every
//     sink registered at that moment, not retired, whose accept list takes
//     the message's destination (sink.accept: a JSON array of the filters of
//     core/destination_filter.hpp, matched in C++, never interpreted by SQL;
//     NULL, a sink registered before version 7 and not since: every
//     destination). A batch with a message no such sink takes is refused
//     whole: nothing is journaled for nobody. Registering a sink with a list
//     replaces its list for new messages only; rows already journaled stay.
//     A sink registered later does not receive older messages, and a sink
//     removed from the configuration stays registered (its rows wait for it)
//     until an operator retires it (retire_sink, recorded in request);
//     registering a retired sink again clears retired_request_id: new
//     messages only.
//   4 On disk a delivery row is pending, delivered or parked; being in flight
//     lives in the sender's memory only, so after a crash what was in flight
//     is sent again with the same gapless-id.
//   5 delivered is written only by mark_delivered, after the sink confirmed
//     it: for a STOMP sink the broker's receipts for the SEND and its
//     transaction's COMMIT, for an http sink a 2xx answer to its request;
//     only queue_resend, an operator's recorded request, moves a delivered
//     row back to pending.
//   6 Nothing undelivered is ever deleted, except by two operator acts, each
//     recorded in request in the same transaction: discard_parked (parked rows
//     of one sink) and retire_sink (the pending and parked rows and parked
//     destinations of a sink removed from the configuration); the message
//     row stays. Pruning (prune_delivered, retention.cpp) deletes a message
//     only when none of its delivery rows is pending or parked and the
//     latest was delivered before the cutoff (now - [journal] keep_delivered;
//     with no rows left, journaled before it), together with its delivery
//     rows (counted out by the delete trigger, invariant 7) and its
//     appended_message row, in short transactions that check the rule again
//     under the write lock. Nothing is pruned to make room (max_size).
//   7 delivery_count.count equals the number of delivery rows with that (sink,
//     destination, state) at every commit: triggers count every change but
//     moves into delivered, which mark_delivered counts in its transaction;
//     a trigger refuses any change to a delivery row's keys.
//   8 delivery.destination_id equals its message's destination_id (copied at
//     append, never changed).
//   9 While (sink, destination) has a parked_destination row, its new rows are
//     created parked and its only pending rows are requeue_probe's probes;
//     park_destination and retry_parked change the row and the rows together.
//  10 Claim order is delivery.priority (live 0, backfill 1, resend 2), then
//     message.id, which is AUTOINCREMENT: never reused, the journal's sequence.
//  11 A series' cursor_ts moves only forward, and only in the transaction that
//     journals the messages it covers (record_collected).
//  12 A datapoint row (series, ts) holds the digest of the value a journaled
//     message carries for that ts, and that message's id; a changed value is
//     journaled in a new message that replaces the row, in one transaction.
//     The row outlives its message (pruning) while the archive can still
//     serve that ts, and goes (prune_datapoints) once both are past: the
//     archive's retention for the series, which the caller gives (esmond's:
//     replay::retention_seconds, the one rule by which `gaps` also marks a
//     gap unrecoverable), and the message's pruning. Whichever is longer
//     keeps it, so a re-read never journals again what was delivered.
//  13 A coverage row [ts_from, ts_to) of a series says all the archive held
//     there is journaled; it is written with those datapoints, rows of a series
//     never overlap nor touch, and pruning never deletes them (gaps and
//     backfill read them after the messages and digests are gone).
//  14 An archive's health changes once per poll (record_poll), in one
//     transaction; its counters only grow and its rows are never deleted. A
//     poll failed when it counted a failure; it succeeded when nothing failed
//     and it read everything due; consecutive_failed_polls counts failed polls
//     since the last success (CHECKs: it <= failed_polls_total <= polls_total).
//     Failing to write these rows never stops collection.
//  15 A message is collected (record_collected) or appended (append()); a
//     pushed run (record_pushed) is both: the run's own message appended,
//     its series' messages collected (datapoints, never coverage or a
//     cursor), in one transaction. An
//     appended message has one appended_message row, written in its append
//     transaction, whose window_ts is the NewMessage::window_ts its producer
//     gave, else journaled_ms / 1000; the journal never interprets headers. A
//     resend finds collected messages by their datapoints (invariant 12) and
//     appended ones by appended_message; a gapless-id journaled by both is
//     selected once. Pruning deletes a message's appended_message row with
//     it, in one transaction: it finds appended messages by this table's key
//     (there is no index by message_id), then the others by id.
//
// DURABILITY (docs/journal.md 2). Each write transaction sets synchronous just
// before BEGIN: append() and every other write commit with FULL (a batch
// survives a power cut once append() returns); mark_delivered() with NORMAL
// (a power cut may forget the latest marks: those messages are sent again).
//
// CONCURRENCY (docs/journal.md 3). One Journal (one connection) per thread,
// any number of processes. Every connection waits up to kBusyTimeoutMs for a
// lock, retrying every millisecond (wait_for_locks); write transactions
// begin IMMEDIATE and hold no network I/O; multi-query reads run in one
// deferred transaction; cached statements are reset after each use.
//
// QUERY PLANS (docs/journal.md 4). Claims, marks, status and resend's selection
// of appended messages use index seeks only, at any journal size;
// explain_hot_paths() exposes the plans and unit tests assert them; where
// SQLite's guesses would pick the wrong index, the query names its own with
// INDEXED BY.

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
// schema forward and registers `sinks` (invariant 3). SQLite's exceptions pass
// to the caller.
std::unique_ptr<SQLite::Database> open_database(const std::string& path, const std::vector<SinkRegistration>& sinks,
                                                bool check_integrity);

}  // namespace gapless::journal::detail
