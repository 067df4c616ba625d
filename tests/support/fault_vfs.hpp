// A fault-injecting SQLite VFS for the journal's power-loss tests: it wraps
// the default VFS (SQLite's documented sqlite3_vfs and sqlite3_io_methods
// interfaces) and, while installed, becomes the default itself, so every
// connection a test opens goes through it (the Journal's, JournalSql's, the
// integrity check's) without a hook in src/journal.
//
// It counts the writes and fsyncs (xWrite, xSync) of the named files (the
// journal and its -wal; the -shm is shared memory, not written through
// xWrite), and can
//   - fail the N-th write (SQLITE_IOERR_WRITE) or the N-th fsync
//     (SQLITE_IOERR_FSYNC), once: the process goes on;
//   - fail the N-th fsync and cut the power at once, the disk keeping every
//     write made (the page cache was flushed after all): what a failed
//     commit may leave behind it;
//   - cut the power right after the N-th write: from then on every write,
//     fsync, truncate and delete fails, as in a machine that has stopped, and
//     restore_durable_state() then leaves each file as its last fsync made
//     it durable and deletes the -shm (shared memory, rebuilt from the -wal
//     by the next open). The writes not synced since are lost; or the N-th
//     lands torn, its first half only; or, with a seed, each of them lands
//     or not, whole or cut at a 512-byte sector, as a disk may write back
//     its cache in any order.
// Files that exist when first opened count as durable as they are. Deleting
// a file counts as durable at once (the directory entry is not modelled).
// One thread at a time; one instance at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct sqlite3_vfs;

namespace gapless::test {

class FaultVfs {
 public:
  enum class Fault { none, fail_write, fail_sync, power_cut, fail_sync_then_cut };
  struct Plan {
    Fault fault = Fault::none;
    int64_t n = 0;      // the N-th write (fail_write, power_cut) or fsync (fail_sync), from 1
    bool torn = false;       // power_cut: the N-th write lands half
    uint32_t landing = 0;    // power_cut: not 0, the seed that picks which unsynced writes land
  };

  FaultVfs();   // registers as SQLite's default VFS
  ~FaultVfs();  // the wrapped VFS is the default again; every connection must be closed before
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  // Counters to zero, then counts (and injects) from now on.
  void arm(const Plan& plan);
  // Stops counting and injecting; a power cut stays in force until restore.
  void disarm();

  int64_t writes() const { return writes_; }
  int64_t syncs() const { return syncs_; }
  bool fired() const { return fired_; }  // the planned fault happened

  // After a power cut, with every connection closed: each file the VFS saw
  // rewritten to its durable state, the -shm files deleted; then forgets
  // every file, as forget() does.
  void restore_durable_state();
  // Forgets what it knows of files: the next open reads them as durable.
  void forget();

  // For the VFS's callbacks (fault_vfs.cpp).
  struct Write {
    int64_t offset = 0;
    std::string bytes;
  };
  struct Durable {
    bool exists = false;
    std::string bytes;
    std::vector<Write> unsynced;  // made since the last fsync, in order
  };
  sqlite3_vfs* wrapped() const { return wrapped_; }
  bool power_is_off() const { return power_off_; }
  void note_opened(const std::string& path);
  void note_synced(const std::string& path, std::string bytes);
  void note_deleted(const std::string& path);
  // What the write or fsync about to run must do: 0 to go ahead, else the
  // SQLite error code to return instead of doing it.
  int before_write(const std::string& path, int64_t offset, const void* data, int amount);
  int before_sync();
  bool knows(const std::string& path) const { return files_.count(path) != 0; }

 private:
  sqlite3_vfs* wrapped_ = nullptr;
  std::unique_ptr<sqlite3_vfs> vfs_;
  Plan plan_;
  bool armed_ = false;
  bool fired_ = false;
  bool power_off_ = false;
  int64_t writes_ = 0;
  int64_t syncs_ = 0;
  std::map<std::string, Durable> files_;
  std::string cut_path_;                // the file of the cut's write
  bool keep_written_ = false;           // the cut keeps every write made (fail_sync_then_cut)
};

}  // namespace gapless::test
