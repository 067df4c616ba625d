// The journal's SQL outside the schema (format.cpp): every statement of the
// delivery queue (delivery_queue.cpp), reporting (reporting.cpp), resend's
// selection (resend_selection.cpp) and the frequent ones of series.cpp, each
// named once and tagged by the invariant it enforces (format.hpp). Here
// rather than in those files because Journal::Cache (journal_cache.hpp)
// prepares the frequent ones once per connection and explain_hot_paths()
// shows the plans of the hot ones.
// Internal to src/journal.
#pragma once

namespace gapless::journal::detail {

inline constexpr const char* kSqlSinkId = "SELECT id FROM sink WHERE name = ?1";
// Every sink, retired ones too (pruning deletes their delivered rows with their messages).
inline constexpr const char* kSqlAllSinkIds = "SELECT id FROM sink ORDER BY id";
// Invariant 3: the sinks that get rows for new messages, with their accept lists.
inline constexpr const char* kSqlSinkRegistry =
    "SELECT id, name, accept FROM sink WHERE retired_request_id IS NULL ORDER BY id";
inline constexpr const char* kSqlDestinationId = "SELECT id FROM destination WHERE name = ?1";
inline constexpr const char* kSqlInsertDestination = "INSERT INTO destination(name) VALUES (?1)";

// append. Invariant 2: a duplicate gapless-id inserts nothing. (Not INSERT OR
// IGNORE: that would also swallow NOT NULL and CHECK violations.)
inline constexpr const char* kSqlInsertMessage =
    "INSERT INTO message(gapless_id, destination_id, headers, body, priority, request_id, journaled_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (gapless_id) DO NOTHING";
// The batch's messages are those above the largest id before it: ids only
// grow (invariant 10) and the batch holds the write lock.
inline constexpr const char* kSqlLastMessageId = "SELECT coalesce(max(id), 0) FROM message";
// Invariant 3: one row per registered sink (retired ones excepted) for each
// message of the batch whose destination it accepts: ?3 is NULL when every
// such sink accepts every destination of the batch, else a JSON array of the
// [sink id, destination id] pairs that get rows (append matched the filters
// in C++); in one statement; invariant 9: parked, with the destination's reason, for a
// sink that has the destination parked. (One statement, not one per row: a
// statement that fires triggers inside a transaction gets its own statement
// journal, and setting up hundreds of them cost more than the inserts.)
inline constexpr const char* kSqlInsertDeliveries =
    "INSERT INTO delivery(sink_id, message_id, destination_id, state, priority, reason, "
    "parked_with_destination, updated_ms) "
    "SELECT sink.id, message.id, message.destination_id, "
    "CASE WHEN parked_destination.reason IS NULL THEN 0 ELSE 2 END, message.priority, "
    "parked_destination.reason, parked_destination.reason IS NOT NULL, ?2 "
    "FROM message CROSS JOIN sink LEFT JOIN parked_destination "
    "ON parked_destination.sink_id = sink.id AND parked_destination.destination_id = message.destination_id "
    "WHERE message.id > ?1 AND sink.retired_request_id IS NULL "
    "AND (?3 IS NULL OR (sink.id, message.destination_id) IN "
    "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?3)))";
// Invariant 15: append() (never record_collected) records the batch's new
// messages, those above ?1 as for the deliveries, with their window time.
// ?2 is a JSON array of the window times their producers gave (null: none),
// in the order they were appended, which is id order: the n-th new message
// takes element n, by row_number().
inline constexpr const char* kSqlRecordAppended =
    "INSERT INTO appended_message(window_ts, message_id) "
    "SELECT coalesce(json_extract(?2, '$[' || (row_number() OVER (ORDER BY id) - 1) || ']'), "
    "journaled_ms / 1000), id FROM message WHERE id > ?1";

// claim, step 1: ids only, from the covering index delivery_claim.
inline constexpr const char* kSqlClaimIds =
    "SELECT message_id FROM delivery WHERE sink_id = ?1 AND state = 0 "
    "ORDER BY priority, message_id LIMIT ?2";
// claim, step 2: the messages of step 1's ids (a JSON array), by primary
// keys, in one statement rather than one per message. CROSS JOIN keeps the
// ids as the outer loop, so each row is one seek per table.
inline constexpr const char* kSqlClaimRows =
    "SELECT delivery.message_id, message.gapless_id, destination.name, message.headers, message.body, "
    "delivery.priority, delivery.resend_request_id "
    "FROM json_each(?2) AS claimed CROSS JOIN delivery "
    "JOIN message ON message.id = delivery.message_id "
    "JOIN destination ON destination.id = delivery.destination_id "
    "WHERE delivery.sink_id = ?1 AND delivery.message_id = claimed.value AND delivery.state = 0";

// Invariant 5. The ids come as one JSON array, so that a batch is one
// statement (see kSqlInsertDeliveries for why).
inline constexpr const char* kSqlMarkDelivered =
    "UPDATE delivery SET state = 1, delivered_ms = ?3, updated_ms = ?3, reason = NULL, "
    "parked_with_destination = 0 "
    "WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND state <> 1";
// Invariant 7: the rows kSqlMarkDelivered will move, read before it moves
// them, so that mark_delivered counts them per (destination, state).
inline constexpr const char* kSqlUndeliveredOf =
    "SELECT destination_id, state FROM delivery "
    "WHERE sink_id = ?1 AND message_id IN (SELECT value FROM json_each(?2)) AND state <> 1";
inline constexpr const char* kSqlCountLeave =
    "UPDATE delivery_count SET count = count - ?4 WHERE sink_id = ?1 AND destination_id = ?2 AND state = ?3";
inline constexpr const char* kSqlCountDelivered =
    "INSERT INTO delivery_count(sink_id, destination_id, state, count) VALUES (?1, ?2, 1, ?3) "
    "ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + excluded.count";

inline constexpr const char* kSqlParkMessage =
    "UPDATE delivery SET state = 2, reason = ?3, parked_with_destination = 0, "
    "attempts = attempts + 1, updated_ms = ?4 WHERE sink_id = ?1 AND message_id = ?2 AND state = 0";

// Invariant 9: the row and the parking of pending rows, in one transaction.
inline constexpr const char* kSqlUpsertParkedDestination =
    "INSERT INTO parked_destination(sink_id, destination_id, reason, parked_ms, next_retry_ms, attempts) "
    "VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT (sink_id, destination_id) DO UPDATE SET "
    "reason = excluded.reason, next_retry_ms = excluded.next_retry_ms, attempts = attempts + 1";
inline constexpr const char* kSqlParkDestinationRows =
    "UPDATE delivery SET state = 2, reason = ?3, parked_with_destination = 1, updated_ms = ?4 "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 0";

// The oldest message parked with its destination (not one parked on its own,
// e.g. too large: it would fail the probe for its own reason).
inline constexpr const char* kSqlProbeCandidate =
    "SELECT message_id FROM delivery INDEXED BY delivery_by_destination "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 2 AND parked_with_destination = 1 "
    "ORDER BY message_id LIMIT 1";
inline constexpr const char* kSqlReleaseOne =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?3 "
    "WHERE sink_id = ?1 AND message_id = ?2 AND state = 2";
inline constexpr const char* kSqlSetNextRetry =
    "UPDATE parked_destination SET next_retry_ms = ?3 WHERE sink_id = ?1 AND destination_id = ?2";

// retry_parked, for one sink: every destination, or one.
inline constexpr const char* kSqlUnparkDestinations = "DELETE FROM parked_destination WHERE sink_id = ?1";
inline constexpr const char* kSqlUnparkDestination =
    "DELETE FROM parked_destination WHERE sink_id = ?1 AND destination_id = ?2";
inline constexpr const char* kSqlReleaseSink =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?2 "
    "WHERE sink_id = ?1 AND state = 2";
inline constexpr const char* kSqlReleaseSinkDestination =
    "UPDATE delivery SET state = 0, reason = NULL, parked_with_destination = 0, updated_ms = ?3 "
    "WHERE sink_id = ?1 AND destination_id = ?2 AND state = 2";
// Invariant 6's exception: parked rows only, of one sink (the delete
// trigger keeps delivery_count, invariant 7).
inline constexpr const char* kSqlDiscardParked =
    "DELETE FROM delivery WHERE sink_id = ?1 AND state = 2 AND (?2 IS NULL OR destination_id = ?2) "
    "AND (?3 IS NULL OR message_id = ?3)";
// Invariant 6's second exception: retire_sink removes what a sink still owes
// (pending and parked rows, through the delete trigger: invariant 7) and its
// parked destinations, records the act, and marks the sink retired
// (invariant 3: no rows for new messages), in one transaction.
inline constexpr const char* kSqlSinkRetirement = "SELECT id, retired_request_id FROM sink WHERE name = ?1";
inline constexpr const char* kSqlSinkUndelivered =
    "SELECT coalesce(sum(count) FILTER (WHERE state = 0), 0), coalesce(sum(count) FILTER (WHERE state = 2), 0) "
    "FROM delivery_count WHERE sink_id = ?1";
inline constexpr const char* kSqlRetireDeliveries = "DELETE FROM delivery WHERE sink_id = ?1 AND state IN (0, 2)";
inline constexpr const char* kSqlRetireParkedDestinations = "DELETE FROM parked_destination WHERE sink_id = ?1";
inline constexpr const char* kSqlRecordRetire =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state, messages, note) "
    "VALUES ('retire-sink', ?1, ?2, ?3, 'done', ?4, ?5)";
inline constexpr const char* kSqlMarkRetired = "UPDATE sink SET retired_request_id = ?2 WHERE id = ?1";
inline constexpr const char* kSqlRecordDiscard =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state, messages, note) "
    "VALUES ('discard', ?1, ?2, ?3, 'done', ?4, ?5)";
inline constexpr const char* kSqlRecordRequest =
    "INSERT INTO request(kind, created_ms, created_by, arguments, state, messages) "
    "VALUES (?1, ?2, ?3, ?4, 'done', ?5)";

inline constexpr const char* kSqlParkedDestinations =
    "SELECT sink.name, destination.name, parked_destination.reason, parked_destination.parked_ms, "
    "parked_destination.next_retry_ms, parked_destination.attempts "
    "FROM parked_destination JOIN sink ON sink.id = parked_destination.sink_id "
    "JOIN destination ON destination.id = parked_destination.destination_id "
    "WHERE ?1 IS NULL OR sink.name = ?1 ORDER BY sink.name, destination.name";
inline constexpr const char* kSqlParkedMessages =
    "SELECT delivery.message_id, message.gapless_id, destination.name, delivery.reason, "
    "delivery.attempts, delivery.updated_ms "
    "FROM delivery INDEXED BY delivery_parked_alone "
    "JOIN message ON message.id = delivery.message_id "
    "JOIN destination ON destination.id = delivery.destination_id "
    "WHERE delivery.sink_id = ?1 AND delivery.state = 2 AND delivery.parked_with_destination = 0 "
    "ORDER BY delivery.message_id LIMIT ?2";

// status: the counters (a small table), then two index seeks per destination
// with a backlog, then the journal time of the older of the two messages.
inline constexpr const char* kSqlStatusCounts =
    "SELECT sink.name, destination.name, delivery_count.sink_id, delivery_count.destination_id, "
    "delivery_count.state, delivery_count.count "
    "FROM delivery_count JOIN sink ON sink.id = delivery_count.sink_id "
    "JOIN destination ON destination.id = delivery_count.destination_id "
    "WHERE sink.retired_request_id IS NULL";
inline constexpr const char* kSqlStatusSinks = "SELECT name, accept FROM sink WHERE retired_request_id IS NULL";
inline constexpr const char* kSqlOldestInState =
    "SELECT min(message_id) FROM delivery WHERE sink_id = ?1 AND destination_id = ?2 AND state = ?3";
inline constexpr const char* kSqlJournaledMs = "SELECT journaled_ms FROM message WHERE id = ?1";

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
inline constexpr const char* kSqlAppendedInWindow = R"sql(
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

// The datapoint primary key (series_id, ts) serves each series' range.
inline constexpr const char* kSqlMessagesOfSeries =
    "SELECT DISTINCT message_id FROM datapoint WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3";

// The collector's and the push endpoint's (series.cpp): prepared once per
// connection, as record_pushed runs them for every series of every run.
inline constexpr const char* kSqlFindSeries =
    "SELECT id, metadata, cursor_ts FROM series WHERE archive_url = ?1 AND metadata_key = ?2 AND event_type = ?3 "
    "AND summary_type = ?4 AND summary_window = ?5";
inline constexpr const char* kSqlInsertSeries =
    "INSERT INTO series(archive_url, metadata_key, event_type, summary_type, summary_window, metadata, updated_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
inline constexpr const char* kSqlDigests =
    "SELECT ts, digest FROM datapoint WHERE series_id = ?1 AND ts BETWEEN ?2 AND ?3 ORDER BY ts";
inline constexpr const char* kSqlMessageId = "SELECT id FROM message WHERE gapless_id = ?1";
// Invariant 12: a correction replaces the row of its ts.
inline constexpr const char* kSqlUpsertDatapoint =
    "INSERT INTO datapoint(series_id, ts, digest, message_id) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (series_id, ts) DO UPDATE SET digest = excluded.digest, message_id = excluded.message_id";

}  // namespace gapless::journal::detail
