-- A gapless journal at schema version 6, as the code of commit a60d8f6 wrote it
-- (its journal code is that of the last commit at that version), for
-- tests/unit/test_journal_migration.cpp.
-- Produced by tests/journal_versions/make_fixtures.sh: that commit's src/journal and
-- src/core compiled alone with make_fixture.cpp, which writes every row through
-- that version's public Journal API, then `sqlite3 .dump` of the file behind the
-- PRAGMAs a dump leaves out. The journal times are those of the run; do not edit.
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
PRAGMA application_id = 1196444755;
PRAGMA user_version = 6;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE sink(
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,          -- as in the configuration
  created_ms INTEGER NOT NULL
, retired_request_id INTEGER REFERENCES request(id));
INSERT INTO sink VALUES(1,'cern',1796520826897,NULL);
INSERT INTO sink VALUES(2,'desy',1796520826897,NULL);
INSERT INTO sink VALUES(3,'old',1796520826979,4);
CREATE TABLE destination(
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE                 -- e.g. /topic/perfsonar.raw.packet-loss-rate
);
INSERT INTO destination VALUES(1,'/topic/perfsonar.raw.throughput');
INSERT INTO destination VALUES(2,'/topic/perfsonar.raw.packet-loss-rate');
INSERT INTO destination VALUES(3,'/topic/refused');
INSERT INTO destination VALUES(4,'/topic/perfsonar.summary.packet-loss-rate');
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
INSERT INTO request VALUES(1,'retry-parked',1796520826927,'root@vm','{"destination":"/topic/perfsonar.raw.packet-loss-rate","sink":"desy"}','done',2,'');
INSERT INTO request VALUES(2,'backfill',1796520826949,'root@vm','{"archive": "psds", "from": 1473696400, "to": 1473700000}','done',1,'');
INSERT INTO request VALUES(3,'resend',1796520826958,'root@vm','{"sink": "cern", "from": 1473700000, "to": 1473700060}','done',1,'');
INSERT INTO request VALUES(4,'retire-sink',1796520826994,'root@vm','{"parked":0,"parked_destinations":0,"pending":1,"reason":"decommissioned","sink":"old"}','done',1,'decommissioned');
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
INSERT INTO message VALUES(1,'t-0',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(2,'t-1',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700060"]]',X'7b2264617461706f696e7473223a207b2231343733373030303630223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(3,'t-2',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700120"]]',X'7b2264617461706f696e7473223a207b2231343733373030313230223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(4,'t-3',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700180"]]',X'7b2264617461706f696e7473223a207b2231343733373030313830223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(5,'t-4',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700240"]]',X'7b2264617461706f696e7473223a207b2231343733373030323430223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(6,'t-5',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700300"]]',X'7b2264617461706f696e7473223a207b2231343733373030333030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(7,'l-0',2,'[["event-type","packet-loss-rate"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(8,'l-1',2,'[["event-type","packet-loss-rate"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700030"]]',X'7b2264617461706f696e7473223a207b2231343733373030303330223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(9,'l-2',2,'[["event-type","packet-loss-rate"],["input-source","a.example.org"],["input-destination","b.example.org"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(10,'l-3',2,'[["event-type","packet-loss-rate"],["input-source","a.example.org"],["input-destination","b.example.org"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(11,'r-0',3,'[["event-type","refused"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(12,'r-1',3,'[["event-type","refused"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"]]',X'7b2264617461706f696e7473223a207b2231343733373030303030223a20317d7d',0,NULL,1796520826902);
INSERT INTO message VALUES(14,'r-2',3,'[["event-type","refused"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700120"]]',X'7b2264617461706f696e7473223a207b2231343733373030313230223a20317d7d',0,NULL,1796520826916);
INSERT INTO message VALUES(15,'c-raw-1473700000',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"],["metadata-key","aaaa1111"]]',X'7b2264617461706f696e7473223a207b7d7d',0,NULL,1796520826940);
INSERT INTO message VALUES(16,'c-raw-1473700120',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700120"],["metadata-key","aaaa1111"]]',X'7b2264617461706f696e7473223a207b7d7d',0,NULL,1796520826940);
INSERT INTO message VALUES(17,'c-sum-1473700000',4,'[["event-type","packet-loss-rate"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700000"],["metadata-key","aaaa1111"]]',X'7b2264617461706f696e7473223a207b7d7d',0,NULL,1796520826945);
INSERT INTO message VALUES(18,'c-bf-1473696400',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473696400"],["metadata-key","aaaa1111"]]',X'7b2264617461706f696e7473223a207b7d7d',1,2,1796520826950);
INSERT INTO message VALUES(19,'w-0',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700600"]]',X'7b2264617461706f696e7473223a207b2231343733373030363030223a20317d7d',0,NULL,1796520826974);
INSERT INTO message VALUES(20,'o-0',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700900"]]',X'7b2264617461706f696e7473223a207b2231343733373030393030223a20317d7d',0,NULL,1796520826984);
INSERT INTO message VALUES(21,'o-1',1,'[["event-type","throughput"],["input-source","a.example.org"],["input-destination","b.example.org"],["ts_start","1473700960"]]',X'7b2264617461706f696e7473223a207b2231343733373030393630223a20317d7d',0,NULL,1796520827001);
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
INSERT INTO delivery VALUES(1,1,1,0,2,0,NULL,0,1796520826961,1796520826914,3);
INSERT INTO delivery VALUES(1,2,1,1,0,0,NULL,0,1796520826914,1796520826914,NULL);
INSERT INTO delivery VALUES(1,3,1,1,0,0,NULL,0,1796520826914,1796520826914,NULL);
INSERT INTO delivery VALUES(1,4,1,1,0,0,NULL,0,1796520826914,1796520826914,NULL);
INSERT INTO delivery VALUES(1,5,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(1,6,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(1,7,2,1,0,0,NULL,0,1796520826914,1796520826914,NULL);
INSERT INTO delivery VALUES(1,8,2,1,0,0,NULL,0,1796520826914,1796520826914,NULL);
INSERT INTO delivery VALUES(1,9,2,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(1,10,2,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(1,11,3,2,0,0,'not authorized to write to /topic/refused',1,1796520826915,NULL,NULL);
INSERT INTO delivery VALUES(1,12,3,2,0,0,'not authorized to write to /topic/refused',1,1796520826915,NULL,NULL);
INSERT INTO delivery VALUES(1,14,3,2,0,0,'not authorized to write to /topic/refused',1,1796520826916,NULL,NULL);
INSERT INTO delivery VALUES(1,15,1,1,0,0,NULL,0,1796520826958,1796520826958,NULL);
INSERT INTO delivery VALUES(1,16,1,0,0,0,NULL,0,1796520826940,NULL,NULL);
INSERT INTO delivery VALUES(1,17,4,0,0,0,NULL,0,1796520826945,NULL,NULL);
INSERT INTO delivery VALUES(1,18,1,0,1,0,NULL,0,1796520826950,NULL,NULL);
INSERT INTO delivery VALUES(1,19,1,0,0,0,NULL,0,1796520826974,NULL,NULL);
INSERT INTO delivery VALUES(1,20,1,0,0,0,NULL,0,1796520826984,NULL,NULL);
INSERT INTO delivery VALUES(1,21,1,0,0,0,NULL,0,1796520827001,NULL,NULL);
INSERT INTO delivery VALUES(2,1,1,1,0,0,NULL,0,1796520826915,1796520826915,NULL);
INSERT INTO delivery VALUES(2,2,1,1,0,0,NULL,0,1796520826915,1796520826915,NULL);
INSERT INTO delivery VALUES(2,3,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,4,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,5,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,6,1,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,7,2,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,8,2,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,9,2,0,0,1,NULL,0,1796520826927,NULL,NULL);
INSERT INTO delivery VALUES(2,10,2,2,0,2,'the message exceeds max_message_size (4194304 bytes)',0,1796520826934,NULL,NULL);
INSERT INTO delivery VALUES(2,11,3,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,12,3,0,0,0,NULL,0,1796520826902,NULL,NULL);
INSERT INTO delivery VALUES(2,14,3,0,0,0,NULL,0,1796520826916,NULL,NULL);
INSERT INTO delivery VALUES(2,15,1,1,0,0,NULL,0,1796520826958,1796520826958,NULL);
INSERT INTO delivery VALUES(2,16,1,0,0,0,NULL,0,1796520826940,NULL,NULL);
INSERT INTO delivery VALUES(2,17,4,1,0,0,NULL,0,1796520826958,1796520826958,NULL);
INSERT INTO delivery VALUES(2,18,1,0,1,0,NULL,0,1796520826950,NULL,NULL);
INSERT INTO delivery VALUES(2,19,1,0,0,0,NULL,0,1796520826974,NULL,NULL);
INSERT INTO delivery VALUES(2,20,1,0,0,0,NULL,0,1796520826984,NULL,NULL);
INSERT INTO delivery VALUES(2,21,1,0,0,0,NULL,0,1796520827001,NULL,NULL);
CREATE TABLE delivery_count(
  sink_id        INTEGER NOT NULL,
  destination_id INTEGER NOT NULL,
  state          INTEGER NOT NULL,
  count          INTEGER NOT NULL,
  PRIMARY KEY (sink_id, destination_id, state)
) WITHOUT ROWID;
INSERT INTO delivery_count VALUES(1,1,0,8);
INSERT INTO delivery_count VALUES(1,1,1,4);
INSERT INTO delivery_count VALUES(1,2,0,2);
INSERT INTO delivery_count VALUES(1,2,1,2);
INSERT INTO delivery_count VALUES(1,3,0,0);
INSERT INTO delivery_count VALUES(1,3,2,3);
INSERT INTO delivery_count VALUES(1,4,0,1);
INSERT INTO delivery_count VALUES(2,1,0,9);
INSERT INTO delivery_count VALUES(2,1,1,3);
INSERT INTO delivery_count VALUES(2,2,0,3);
INSERT INTO delivery_count VALUES(2,2,2,1);
INSERT INTO delivery_count VALUES(2,3,0,3);
INSERT INTO delivery_count VALUES(2,4,0,0);
INSERT INTO delivery_count VALUES(2,4,1,1);
INSERT INTO delivery_count VALUES(3,1,0,0);
CREATE TABLE parked_destination(
  sink_id        INTEGER NOT NULL REFERENCES sink(id),
  destination_id INTEGER NOT NULL REFERENCES destination(id),
  reason         TEXT NOT NULL,             -- the broker's words, latest refusal
  parked_ms      INTEGER NOT NULL,          -- first refusal
  next_retry_ms  INTEGER NOT NULL,
  attempts       INTEGER NOT NULL,          -- refusals so far, probes included
  PRIMARY KEY (sink_id, destination_id)
) WITHOUT ROWID;
INSERT INTO parked_destination VALUES(1,3,'not authorized to write to /topic/refused',1796520826915,1473700000000,1);
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
INSERT INTO series VALUES(1,'https://psds.example.org/esmond/perfsonar/archive/','aaaa1111','throughput','',0,'{"metadata-key": "aaaa1111", "source": "a.example.org"}',1473700240,1796520826940);
INSERT INTO series VALUES(2,'https://psds.example.org/esmond/perfsonar/archive/','aaaa1111','packet-loss-rate','aggregation',3600,'{"metadata-key": "aaaa1111", "source": "a.example.org"}',1473707200,1796520826945);
CREATE TABLE coverage(
  series_id INTEGER NOT NULL REFERENCES series(id),
  ts_from   INTEGER NOT NULL,
  ts_to     INTEGER NOT NULL CHECK (ts_to > ts_from),
  points    INTEGER NOT NULL,
  read_ms   INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts_from)
) WITHOUT ROWID;
INSERT INTO coverage VALUES(1,1473696400,1473700240,6,1796520826950);
INSERT INTO coverage VALUES(2,1473700000,1473707200,2,1796520826945);
CREATE TABLE datapoint(
  series_id  INTEGER NOT NULL REFERENCES series(id),
  ts         INTEGER NOT NULL,
  digest     BLOB NOT NULL,
  message_id INTEGER NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;
INSERT INTO datapoint VALUES(1,1473696400,X'000000000000000000000a9d2e3b7470',18);
INSERT INTO datapoint VALUES(1,1473696460,X'000000000000000000000a9d2e42b474',18);
INSERT INTO datapoint VALUES(1,1473700000,X'000000000000000000000a9d2fee7560',15);
INSERT INTO datapoint VALUES(1,1473700060,X'000000000000000000000a9d2ff5b564',15);
INSERT INTO datapoint VALUES(1,1473700120,X'000000000000000000000a9d2ffcf568',16);
INSERT INTO datapoint VALUES(1,1473700180,X'000000000000000000000a9d3004356c',16);
INSERT INTO datapoint VALUES(2,1473700000,X'000000000000000000000a9d2fee7560',17);
INSERT INTO datapoint VALUES(2,1473703600,X'000000000000000000000a9d31a17650',17);
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
INSERT INTO archive_poll VALUES('https://psds.example.org/esmond/perfsonar/archive/','psds',1473700000000,1473700060000,1473700060000,0,2,1,6,'GET https://psds.example.org/esmond/perfsonar/archive/?time-range=3600: timed out after 30 s',1473700000000);
CREATE TABLE archive_failure(
  archive_url TEXT NOT NULL REFERENCES archive_poll(archive_url),
  kind        TEXT NOT NULL,
  count       INTEGER NOT NULL CHECK (count > 0),
  last_ms     INTEGER NOT NULL,               -- the latest poll that counted one
  PRIMARY KEY (archive_url, kind)
) WITHOUT ROWID;
INSERT INTO archive_failure VALUES('https://psds.example.org/esmond/perfsonar/archive/','http-status',1,1473700000000);
INSERT INTO archive_failure VALUES('https://psds.example.org/esmond/perfsonar/archive/','timeout',2,1473700000000);
CREATE TABLE appended_message(
  window_ts  INTEGER NOT NULL,              -- as message_window_ts computes it
  message_id INTEGER NOT NULL,              -- message.id
  PRIMARY KEY (window_ts, message_id)
) WITHOUT ROWID;
INSERT INTO appended_message VALUES(1473700300,19);
INSERT INTO appended_message VALUES(1796520826,1);
INSERT INTO appended_message VALUES(1796520826,2);
INSERT INTO appended_message VALUES(1796520826,3);
INSERT INTO appended_message VALUES(1796520826,4);
INSERT INTO appended_message VALUES(1796520826,5);
INSERT INTO appended_message VALUES(1796520826,6);
INSERT INTO appended_message VALUES(1796520826,7);
INSERT INTO appended_message VALUES(1796520826,8);
INSERT INTO appended_message VALUES(1796520826,9);
INSERT INTO appended_message VALUES(1796520826,10);
INSERT INTO appended_message VALUES(1796520826,11);
INSERT INTO appended_message VALUES(1796520826,12);
INSERT INTO appended_message VALUES(1796520826,14);
INSERT INTO appended_message VALUES(1796520826,20);
INSERT INTO appended_message VALUES(1796520827,21);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('message',21);
CREATE INDEX delivery_claim ON delivery(sink_id, state, priority, message_id);
CREATE INDEX delivery_by_destination ON delivery(sink_id, destination_id, state, message_id);
CREATE INDEX delivery_parked_alone ON delivery(sink_id, message_id)
  WHERE state = 2 AND parked_with_destination = 0;
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
CREATE TRIGGER delivery_count_update AFTER UPDATE OF state ON delivery
WHEN OLD.state <> NEW.state AND NEW.state <> 1 BEGIN
  UPDATE delivery_count SET count = count - 1
    WHERE sink_id = OLD.sink_id AND destination_id = OLD.destination_id AND state = OLD.state;
  INSERT INTO delivery_count(sink_id, destination_id, state, count)
    VALUES (NEW.sink_id, NEW.destination_id, NEW.state, 1)
    ON CONFLICT (sink_id, destination_id, state) DO UPDATE SET count = count + 1;
END;
COMMIT;
