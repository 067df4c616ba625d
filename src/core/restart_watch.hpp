// Upgrade safety: notices that the running executable, or a shared library
// it has loaded, was replaced on disk while the process runs, so that an
// operator learns the process must be restarted to run what is installed.
//
// Why: a package upgrade (dpkg renames the new file over the old one) leaves
// a long-running daemon executing the old code, and a library overwritten
// in place can crash it at any later page fault; both went
// unnoticed for months once (issue 12, "the 2016 root cause").
//
// What counts as replaced, per file (the target of /proc/self/exe and every
// file mapped executable from /proc/self/maps, recorded when the watch is
// made): its path now names another file (device or inode differ: a rename
// over it), or no file (deleted), or the same inode with another size or
// mtime (overwritten in place, which Linux refuses for a running executable
// but not for a library). Each check is a few stat calls and one read of
// /proc/self/maps.
//
// A restart requirement is a fault episode of kind kRestartRequiredKind,
// component "daemon", that stays open for the life of the process: its
// one "fault: begins" log line names the file, and the daemon's health file
// (journal/health_file.hpp) carries it to `gapless status` (text, JSON,
// Prometheus `gapless_restart_required`).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fault_episode.hpp"

namespace gapless {

// The FaultSnapshot::kind of a restart requirement.
constexpr std::string_view kRestartRequiredKind = "restart-required";

// How often the daemon compares; GAPLESS_RESTART_CHECK_MS (milliseconds, for
// tests) overrides it.
constexpr std::chrono::milliseconds kRestartCheckInterval = std::chrono::minutes(1);
constexpr const char* kRestartCheckEnvironment = "GAPLESS_RESTART_CHECK_MS";

class RestartWatch {
 public:
  // Records the identity of the executable and of every library mapped now.
  RestartWatch();

  // For the daemon's main loop, as often as it likes: compares at most once
  // per interval, and opens the restart-required episode the first time a
  // file differs from what was recorded.
  void poll();

  // Compares now: the first file found replaced, described ("/usr/lib/...
  // /libssl.so.3 was replaced on disk (another inode at its path): restart
  // to run the installed one"); nothing while every file is as recorded. A
  // library mapped since the last comparison (dlopen) is recorded as it is now.
  std::optional<std::string> replaced_file();

  bool restart_required() const { return episode_.is_open(); }

 private:
  struct FileIdentity {  // as stat() saw the path when recorded
    std::string path;
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
  };
  static std::optional<FileIdentity> identity_of(const std::string& path);  // nothing when stat() fails
  std::vector<FileIdentity> files_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point next_check_;
  FaultEpisode episode_{"daemon"};
};

}  // namespace gapless
