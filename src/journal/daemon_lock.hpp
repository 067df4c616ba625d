// One daemon per journal. `gapless run` holds an exclusive flock() on
// "<journal>.lock" for its whole life; the kernel releases it when the process
// dies, even by kill -9, so a stale lock file never blocks a restart. The file
// records the holder's pid for the refusal message. Other commands (status,
// ingest, retry-parked, gapless-replay) do not take it: the journal is safe for
// them beside a running daemon.
#pragma once

#include <string>

namespace gapless::journal {

class DaemonLock {
 public:
  // Throws gapless::Error ("journal X is in use by another gapless daemon (pid N)").
  explicit DaemonLock(const std::string& journal_path);
  ~DaemonLock();
  DaemonLock(const DaemonLock&) = delete;
  DaemonLock& operator=(const DaemonLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace gapless::journal
