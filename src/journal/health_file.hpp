// "<journal>.health": how the running daemon publishes its open fault
// episodes (core/fault_episode.hpp) for `gapless status`, another process.
//
// Why a file of its own and not a journal table: the faults worth showing
// are the ones that stop the journal from taking writes (a full disk, a lock
// held by someone else), so the journal cannot be where they are reported.
// The file is therefore allocated once, at a fixed size, and rewritten in
// place with pwrite: rewriting it needs no new blocks, so a full disk cannot
// stop it. Created mode 0600.
//
// FORMAT (version 1), kHealthFileBytes bytes:
//   line 1: one JSON object, then "\n"
//     {"format": "gapless-health 1", "pid": <daemon pid>, "written_ms": <unix ms>,
//      "faults": [{"component": "...", "kind": "...", "last_error": "...",
//                  "since_ms": N, "last_ms": N, "occurrences": N}, ...],
//      "faults_left_out": N, "version": "0.1.0", "revision": "f37a84e1a2b3",
//      "sinks": ["cern", ...]}
//   then spaces up to the fixed size.
// version and revision are the daemon's own (core/build_info.hpp), so that
// status can tell a daemon still running the code of before an upgrade. They
// came later: a file without them (a daemon of before) reads as empty
// strings. Adding them kept "gapless-health 1": a reader of before ignores
// keys it does not know, and a missing key has a meaning, so no reader
// misreads either file.
// sinks (came later too, same reasoning) are the sinks the daemon sends to:
// those of the configuration in force and any whose sender a reload is still
// stopping. `gapless retire-sink` refuses one of them, since the daemon may be
// sending the very rows it would delete; a file without the key (a daemon of
// before) says nothing about them, which the reader must not take as "none".
// `faults` are the episodes open when it was written, oldest first; each
// last_error is cut to kHealthErrorChars characters, and episodes that do not
// fit are counted in faults_left_out. The daemon rewrites the file about once
// a second; a reader that meets a half-written first line reads it again.
//
// The file outlives the daemon, so a reader believes it only while its pid
// is alive and holds the daemon lock ("<journal>.lock", daemon_lock.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fault_episode.hpp"

namespace gapless::journal {

constexpr int64_t kHealthFileBytes = 64 * 1024;
constexpr size_t kHealthErrorChars = 500;

struct DaemonHealth {
  int64_t pid = 0;
  int64_t written_ms = 0;
  std::vector<FaultSnapshot> faults;
  int64_t faults_left_out = 0;
  std::string version;   // the daemon's build; empty: a daemon that did not publish it
  std::string revision;
  std::optional<std::vector<std::string>> sinks;  // nothing: a daemon that did not publish them
};

// The first line of the file, without padding; at most kHealthFileBytes - 1 bytes.
std::string format_health(const DaemonHealth& health);
// Nothing when `text` does not start with a whole, valid first line.
std::optional<DaemonHealth> parse_health(std::string_view text);

// The daemon's writer.
class HealthFile {
 public:
  explicit HealthFile(const std::string& journal_path);
  ~HealthFile();
  HealthFile(const HealthFile&) = delete;
  HealthFile& operator=(const HealthFile&) = delete;

  // Writes this process's pid, `faults` and the `sinks` it sends to,
  // creating and allocating the file first when needed (which needs free
  // space, once). Returns false when it could not; that is logged once until
  // it succeeds again. The daemon always names its sinks; a writer that
  // sends to none (a test) may leave them out.
  bool publish(const std::vector<FaultSnapshot>& faults, const std::vector<std::string>& sinks = {});

  const std::string& path() const { return path_; }

 private:
  bool open_allocated();
  std::string path_;
  int fd_ = -1;
  bool failing_ = false;
};

// What the daemon of `journal_path` published: nothing when no daemon is
// running (the file is absent or unreadable, its pid is dead, or that pid
// does not hold the daemon lock).
std::optional<DaemonHealth> read_daemon_health(const std::string& journal_path);

// `pid` is alive and holds the flock of "<journal>.lock" (from /proc/locks).
bool holds_daemon_lock(int64_t pid, const std::string& journal_path);

}  // namespace gapless::journal
