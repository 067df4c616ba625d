// What every benchmark in bench/ reports beside its numbers, so that a reader
// can judge a run: when, on what machine, how busy it was, on which file
// system; and the clocks they measure with. One place, so the benchmarks
// describe their runs alike.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace gapless::bench {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to);
double timeval_seconds(const struct timeval& value);

// User + system CPU seconds of the calling thread (RUSAGE_THREAD) or of this
// whole process (RUSAGE_SELF).
double cpu_seconds(int who);

// User + system CPU seconds of another process (all its threads), from
// /proc/PID/stat: a broker's or a daemon's share of the work.
double process_cpu_seconds(pid_t pid);

// Wall time and CPU of one measured stretch: the calling thread's own and the
// whole process's (which adds its other threads, e.g. an in-process archive).
class Stopwatch {
 public:
  Stopwatch();
  double seconds() const;
  double process_cpu() const;
  double thread_cpu() const;

 private:
  Clock::time_point start_;
  double process_cpu_, thread_cpu_;
};

std::string utc_now_text();          // "2026-11-30 18:36 UTC"
std::string machine_description();   // cores, CPU model, RAM, kernel
// Other work on the machine shares its cores with what is measured.
std::string load_average();          // "1.63 2.72 4.23"
// fsync on tmpfs costs nothing: a "durable" rate measured there says nothing
// about a disk, so the reader is told.
std::string file_system_of(const std::filesystem::path& dir);

// The mount `dir` is on and its options, from /proc/self/mounts
// ("/dev/vda on / (rw,relatime,discard)"): whether the file system trims
// within each unlink (`discard`) decides what removing many files costs.
std::string mount_of(const std::filesystem::path& dir);
// The last `lines` lines of a file (a daemon's log, for a failed run).
std::string tail_of(const std::filesystem::path& file, size_t lines);
double median(std::vector<double> values);

// ---- command lines and work directories ----

// Bad usage: the benchmarks print it with their usage text and exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// `text` as an integer >= minimum, or UsageError naming `option`.
int64_t parse_integer(const std::string& option, const char* text, int64_t minimum);

// `dir` (created if needed) when given, else a fresh "<name>-XXXXXX" under
// the system's temporary directory.
std::filesystem::path make_work_dir(const std::filesystem::path& dir, const std::string& name);

// ---- child processes ----

struct ChildResult {
  int wait_status = 0;
  rusage usage{};
  Clock::time_point ended;
  double cpu_seconds() const;
  bool ok() const;  // exited 0
};

// "exit 1", "killed by KILL".
std::string describe_status(int wait_status);

// fork + exec with stdout and stderr appended to `log`, so that wait4() gives
// this child's own CPU and peak RSS (the harness's Process reaps with waitpid
// and cannot). A pidfd lets the waiting sleep in poll() until the exit, so the
// wall time is exact and waiting costs no CPU on a 2-core machine.
class Child {
 public:
  Child(const std::vector<std::string>& args, const std::filesystem::path& log);
  ~Child();  // kills the child if it still runs
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  Clock::time_point started() const { return started_; }
  void signal(int sig) const;

  // The result once the child ended within `timeout`; nothing otherwise.
  std::optional<ChildResult> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  Clock::time_point started_;
  std::optional<ChildResult> result_;
};

}  // namespace gapless::bench
