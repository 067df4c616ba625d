// What every benchmark in bench/ reports beside its numbers, so that a reader
// can judge a run: when, on what machine, how busy it was, on which file
// system; and the clocks they measure with. One place, so the benchmarks
// describe their runs alike.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

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
// The last `lines` lines of a file (a daemon's log, for a failed run).
std::string tail_of(const std::filesystem::path& file, size_t lines);
double median(std::vector<double> values);

}  // namespace gapless::bench
