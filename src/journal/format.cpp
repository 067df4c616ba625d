#include "journal/format.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "journal/file_access.hpp"
#include "journal/sqlite_support.hpp"

namespace gapless::journal::detail {
namespace {

constexpr int64_t kApplicationId = 0x47504c53;  // "GPLS"
constexpr int kQuickCheckFindingsShown = 5;

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
// published step never changes. What each step changed and why:
// docs/journal.md 6.
// Version 2 (invariant 7): a row moving into delivered no longer runs the
// counting trigger; mark_delivered counts its batch instead.
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

// Version 3 (invariant 14): the collector's polls per archive, as counters.
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

// Version 4 (invariant 15): appended_message, filled from the messages no
// datapoint names, and the view message_window_ts that version 5 drops.
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

// Version 5 (invariant 15): the view goes, with OSG's ts_start rule; the
// producer gives the window time now (the same rule), so every row keeps its meaning.
constexpr const char* kMigrationV5 = R"sql(
DROP VIEW message_window_ts;
)sql";

// Version 6 (invariants 3 and 6): a sink an operator retired (gapless
// retire-sink) receives no rows for new messages until it is registered again.
constexpr const char* kMigrationV6 = R"sql(
ALTER TABLE sink ADD COLUMN retired_request_id INTEGER REFERENCES request(id);
)sql";

// Version 7 (invariant 3): each sink's accept list; NULL, for the sinks
// registered before it, takes every destination until they are registered again.
constexpr const char* kMigrationV7 = R"sql(
ALTER TABLE sink ADD COLUMN accept TEXT;  -- JSON array of destination filters (core/destination_filter.hpp); NULL: all
)sql";

constexpr std::array kMigrations = {kSchemaV1, kMigrationV2, kMigrationV3, kMigrationV4, kMigrationV5,
                                    kMigrationV6, kMigrationV7};
constexpr int kSchemaVersion = static_cast<int>(kMigrations.size());

// Invariant 3: a sink registered with a list takes what the list accepts
// from then on; registered without one, a new sink takes everything and a
// known one keeps its list.
constexpr const char* kSqlRegisterSink =
    "INSERT INTO sink(name, created_ms, accept) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING";
constexpr const char* kSqlRegisterAccept =
    "UPDATE sink SET accept = ?2 WHERE name = ?1 AND accept IS NOT ?2";
// Invariant 3: a retired sink in the configuration again receives new messages.
constexpr const char* kSqlRegisterRetiredSink =
    "UPDATE sink SET retired_request_id = NULL WHERE name = ?1 AND retired_request_id IS NOT NULL";

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

// sink.accept as stored: a JSON array of the filters, checked here (the
// journal matches destinations with core/destination_filter, nothing else).
std::optional<std::string> stored_accept(const SinkRegistration& sink, const std::string& path) {
  if (!sink.accept) return std::nullopt;
  const auto refused = [&](const std::string& why) {
    return Error("journal " + path + ": open: sink " + sink.name + ": accept " + why);
  };
  if (sink.accept->empty()) throw refused("is empty: the sink would take no message");
  for (const std::string& entry : *sink.accept)
    if (const std::optional<std::string> error = accept_entry_error(entry)) throw refused(*error);
  return nlohmann::json(*sink.accept).dump();
}

void register_sinks(SQLite::Database& db, const std::vector<SinkRegistration>& sinks, const std::string& path) {
  std::vector<std::optional<std::string>> accept;
  for (const auto& sink : sinks) {
    if (sink.name.empty()) throw Error("journal " + path + ": open: a sink name is empty");
    accept.push_back(stored_accept(sink, path));
  }
  if (sinks.empty()) return;
  auto transaction = begin_write(db, Durability::full);
  SQLite::Statement insert(db, kSqlRegisterSink);
  SQLite::Statement update_accept(db, kSqlRegisterAccept);
  SQLite::Statement register_again(db, kSqlRegisterRetiredSink);
  const int64_t now = unix_now_ms();
  for (size_t i = 0; i < sinks.size(); ++i) {
    const std::string& sink = sinks[i].name;
    insert.reset();
    insert.bind(1, sink);
    insert.bind(2, now);
    if (accept[i]) insert.bind(3, *accept[i]); else insert.bind(3);
    if (insert.exec() > 0) {
      spdlog::info("journal: registered sink path={} sink={} accept={}", path, sink, accept[i].value_or("all"));
    } else if (accept[i]) {  // invariant 3: new messages follow the new list, journaled rows stay
      update_accept.reset();
      update_accept.bind(1, sink);
      update_accept.bind(2, *accept[i]);
      if (update_accept.exec() > 0)
        spdlog::info("journal: sink accept list changed path={} sink={} accept={} (messages journaled from now on "
                     "follow it; those journaled before keep their rows)",
                     path, sink, *accept[i]);
    }
    register_again.reset();
    register_again.bind(1, sink);
    if (register_again.exec() > 0)
      spdlog::warn("journal: retired sink registered again path={} sink={} (it receives the messages journaled from "
                   "now on; a resend gives it older ones)",
                   path, sink);
  }
  transaction.commit();
}

}  // namespace

std::unique_ptr<SQLite::Database> open_database(const std::string& path, const std::vector<SinkRegistration>& sinks,
                                                bool check_integrity) {
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
  return db;
}

}  // namespace gapless::journal::detail
