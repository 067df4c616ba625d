#include "journal/sqlite_support.hpp"

#include <pwd.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace gapless::journal::detail {

std::string context(const std::string& path, std::string_view operation) {
  return "journal " + path + ": " + std::string(operation) + ": ";
}

std::string describe(const SQLite::Exception& e) {
  const int code = e.getErrorCode();
  switch (code & 0xff) {
    case SQLITE_FULL:
      return "the disk is full, or the journal reached its size limit (SQLITE_FULL)";
    case SQLITE_IOERR:
      return "I/O error reading or writing the file (SQLITE_IOERR, extended code " +
             std::to_string(e.getExtendedErrorCode()) + ")";
    case SQLITE_BUSY:
      return "another process kept the journal locked for more than " + std::to_string(kBusyTimeoutMs / 1000) +
             " s (SQLITE_BUSY)";
    case SQLITE_CORRUPT:
      return "the file is damaged (SQLITE_CORRUPT: " + std::string(e.what()) + ")";
    case SQLITE_NOTADB:
      return "the file is damaged or is not a SQLite database (SQLITE_NOTADB)";
    case SQLITE_READONLY:
      return "the file or its directory is read-only for this user (SQLITE_READONLY)";
    case SQLITE_CANTOPEN:
      return "cannot open or create the file: does its directory exist, and may this user write there? "
             "(SQLITE_CANTOPEN)";
    case SQLITE_PERM:
      return "permission denied (SQLITE_PERM)";
    default:
      return std::string(e.what()) + (code > 0 ? " (" + std::string(sqlite3_errstr(code)) + ")" : "");
  }
}

Fault fault_of(const SQLite::Exception& e) {
  switch (e.getErrorCode() & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Fault::busy;
    case SQLITE_FULL:
      return Fault::full;
    case SQLITE_IOERR:
      return Fault::io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Fault::damaged;
    default:
      return Fault::other;
  }
}

namespace {

// sqlite3_busy_handler's callback: `attempts` is 0 on a lock's first refusal.
// A connection is used by one thread at a time, so the thread's own clock
// of the current wait is the connection's.
int retry_every_millisecond(void*, int attempts) {
  thread_local std::chrono::steady_clock::time_point first_refusal;
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) first_refusal = now;
  if (now - first_refusal >= std::chrono::milliseconds(kBusyTimeoutMs)) return 0;  // SQLITE_BUSY
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return 1;
}

}  // namespace

void wait_for_locks(SQLite::Database& db) { sqlite3_busy_handler(db.getHandle(), retry_every_millisecond, nullptr); }

int64_t bytes_in_use(SQLite::Database& db) {
  SQLite::Transaction snapshot = begin_read(db);
  const int64_t pages = db.execAndGet("PRAGMA page_count").getInt64();
  const int64_t free_pages = db.execAndGet("PRAGMA freelist_count").getInt64();
  const int64_t page_size = db.execAndGet("PRAGMA page_size").getInt64();
  return (pages - free_pages) * page_size;
}

SQLite::Transaction begin_write(SQLite::Database& db, Durability durability) {
  db.exec(durability == Durability::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  return SQLite::Transaction(db, SQLite::TransactionBehavior::IMMEDIATE);
}

SQLite::Transaction begin_read(SQLite::Database& db) {
  return SQLite::Transaction(db, SQLite::TransactionBehavior::DEFERRED);
}

bool means_every(std::optional<std::string_view> name) { return !name || name->empty(); }

std::string text_of(const SQLite::Column& column) { return column.isNull() ? std::string() : column.getString(); }

std::string bytes_of(const SQLite::Column& column) {
  const int size = column.getBytes();
  if (size == 0) return {};
  return std::string(static_cast<const char*>(column.getBlob()), static_cast<size_t>(size));
}

std::string operator_identity() {
  std::string user;
  if (const passwd* entry = ::getpwuid(::geteuid()); entry != nullptr && entry->pw_name != nullptr)
    user = entry->pw_name;
  else
    user = "uid" + std::to_string(::geteuid());
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return user;
  return user + "@" + host;
}

}  // namespace gapless::journal::detail

namespace gapless::journal {

const char* fault_name(Fault fault) {
  switch (fault) {
    case Fault::busy: return "busy";
    case Fault::full: return "full";
    case Fault::io: return "io";
    case Fault::damaged: return "damaged";
    case Fault::other: return "other";
  }
  return "other";
}

}  // namespace gapless::journal
