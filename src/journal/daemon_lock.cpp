#include "journal/daemon_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/error.hpp"

namespace gapless::journal {
namespace {

std::string lock_path_of(const std::string& journal_path) { return journal_path + ".lock"; }

// The holder's pid as its lock file records it, or "unknown" (a holder that
// has not written it yet, or a file written by something else).
std::string recorded_pid(int fd) {
  char text[32] = {};
  const ssize_t size = ::pread(fd, text, sizeof text - 1, 0);
  std::string pid;
  for (ssize_t i = 0; i < size && text[i] >= '0' && text[i] <= '9'; ++i) pid += text[i];
  return pid.empty() ? "unknown" : pid;
}

// Writes "<pid>\n" over the start of the file, then cuts what a longer
// earlier pid left behind: a reader never sees an empty file, only this pid
// (or the previous one).
bool record_pid(int fd) {
  const std::string text = std::to_string(::getpid()) + "\n";
  return ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()) &&
         ::ftruncate(fd, static_cast<off_t>(text.size())) == 0;
}

}  // namespace

DaemonLock::DaemonLock(const std::string& journal_path) {
  const std::string lock_path = lock_path_of(journal_path);
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw Error("journal " + journal_path + ": cannot open the daemon lock file " + lock_path + ": " +
                std::strerror(errno));

  // flock() locks belong to this open file description: a second DaemonLock,
  // even in the same process, opens its own and is refused.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = recorded_pid(fd_);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      throw Error("journal " + journal_path + " is in use by another gapless daemon (pid " + holder +
                  "); only one `gapless run` may use a journal (lock file " + lock_path + ")");
    throw Error("journal " + journal_path + ": cannot lock " + lock_path + ": " + std::strerror(error));
  }

  // The pid is only for the refusal message of a second daemon; the lock is
  // the flock. On a full disk it cannot be written, and the daemon must
  // still start: delivering what is journaled is what a full disk needs most.
  if (!record_pid(fd_))
    spdlog::warn("daemon: cannot record the pid in the lock file path={} error=\"{}\" (the lock is held)", lock_path,
                 std::strerror(errno));
}

// The file stays: unlinking it would let a newcomer lock a fresh inode while
// someone still waits on the old one. Closing releases the lock.
DaemonLock::~DaemonLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace gapless::journal
