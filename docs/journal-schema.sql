-- The gapless journal's format, whole: the PRAGMAs that mark and shape the
-- file (application_id 1196444755 is 0x47504c53, "GPLS"), then a fresh
-- journal's schema exactly as `sqlite3 journal.db .schema` prints it (SQLite
-- keeps each CREATE statement's text, comments included).
-- The rules behind it (invariants, state machine, durability) are in the top
-- comment of src/journal/format.hpp; kMigrations in format.cpp build this schema.
--
-- For reading, not for running: Journal::open creates and migrates a journal,
-- and sqlite_sequence is SQLite's own table (for message's AUTOINCREMENT).
-- tests/unit/test_journal_schema.cpp fails when a fresh journal differs from
-- what follows this comment, and writes the fresh journal's format, with this
-- comment, to journal-schema.actual.sql in its working directory.

PRAGMA application_id = 1196444755;
PRAGMA user_version = 7;
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
CREATE TABLE sink(
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,          -- as in the configuration
  created_ms INTEGER NOT NULL
, retired_request_id INTEGER REFERENCES request(id), accept TEXT);
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
CREATE TABLE sqlite_sequence(name,seq);
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
CREATE INDEX delivery_claim ON delivery(sink_id, state, priority, message_id);
CREATE INDEX delivery_by_destination ON delivery(sink_id, destination_id, state, message_id);
CREATE INDEX delivery_parked_alone ON delivery(sink_id, message_id)
  WHERE state = 2 AND parked_with_destination = 0;
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
CREATE TRIGGER delivery_count_delete AFTER DELETE ON delivery BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
END;
CREATE TRIGGER delivery_keys_never_change
BEFORE UPDATE OF sink_id, message_id, destination_id ON delivery BEGIN
  SELECT RAISE(ABORT, 'the keys of a delivery row never change (journal invariant 7)');
END;
CREATE TABLE parked_destination(
  sink_id        INTEGER NOT NULL REFERENCES sink(id),
  destination_id INTEGER NOT NULL REFERENCES destination(id),
  reason         TEXT NOT NULL,             -- the broker's words, latest refusal
  parked_ms      INTEGER NOT NULL,          -- first refusal
  next_retry_ms  INTEGER NOT NULL,
  attempts       INTEGER NOT NULL,          -- refusals so far, probes included
  PRIMARY KEY (sink_id, destination_id)
) WITHOUT ROWID;
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
CREATE TABLE coverage(
  series_id INTEGER NOT NULL REFERENCES series(id),
  ts_from   INTEGER NOT NULL,
  ts_to     INTEGER NOT NULL CHECK (ts_to > ts_from),
  points    INTEGER NOT NULL,
  read_ms   INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts_from)
) WITHOUT ROWID;
CREATE TABLE datapoint(
  series_id  INTEGER NOT NULL REFERENCES series(id),
  ts         INTEGER NOT NULL,
  digest     BLOB NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
CREATE TRIGGER delivery_count_update AFTER UPDATE OF state ON delivery
WHEN OLD.state <> NEW.state AND NEW.state <> 1 BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
  INSERT INTO delivery_count(sink_id, destination_id, state, count)
    VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
    ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
END;
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
CREATE TABLE archive_failure(
  archive_url TEXT NOT NULL REFERENCES archive_poll(archive_url),
  kind        TEXT NOT NULL,
  count       INTEGER NOT NULL CHECK (count > 0),
  last_ms     INTEGER NOT NULL,               -- the latest poll that counted one
  PRIMARY KEY (archive_url, kind)
) WITHOUT ROWID;
CREATE TABLE appended_message(
  window_ts  INTEGER NOT NULL,              -- as message_window_ts computes it
  message_id INTEGER NOT NULL,              -- message.id
  PRIMARY KEY (window_ts, message_id)
) WITHOUT ROWID;
