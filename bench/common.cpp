#include "common.hpp"

#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "core/error.hpp"

namespace gapless::bench {

namespace {

std::string first_line_with(const std::filesystem::path& file, std::string_view prefix) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return "";
}

}  // namespace

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

double timeval_seconds(const timeval& value) {
  return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) / 1e6;
}

double cpu_seconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime);
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t name_end = text.rfind(')');  // the command name may hold spaces
  if (name_end == std::string::npos) throw Error("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(name_end + 1));
  std::string skipped;
  for (int field = 3; field <= 13; ++field) fields >> skipped;  // state .. majflt
  unsigned long long user_ticks = 0, system_ticks = 0;
  fields >> user_ticks >> system_ticks;  // fields 14 and 15
  return static_cast<double>(user_ticks + system_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

Stopwatch::Stopwatch()
    : start_(Clock::now()), process_cpu_(cpu_seconds(RUSAGE_SELF)), thread_cpu_(cpu_seconds(RUSAGE_THREAD)) {}
double Stopwatch::seconds() const { return seconds_between(start_, Clock::now()); }
double Stopwatch::process_cpu() const { return cpu_seconds(RUSAGE_SELF) - process_cpu_; }
double Stopwatch::thread_cpu() const { return cpu_seconds(RUSAGE_THREAD) - thread_cpu_; }

std::string utc_now_text() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &parts);
  return text;
}

std::string machine_description() {
  std::string cpu = first_line_with("/proc/cpuinfo", "model name\t: ");
  std::string memory = first_line_with("/proc/meminfo", "MemTotal:");
  memory.erase(0, memory.find_first_not_of(' '));
  utsname system{};
  uname(&system);
  return std::to_string(std::thread::hardware_concurrency()) + " cores (" + (cpu.empty() ? "unknown CPU" : cpu) +
         "), " + memory + " RAM, Linux " + system.release;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string file_system_of(const std::filesystem::path& dir) {
  struct statfs info {};
  if (statfs(dir.c_str(), &info) != 0) return "unknown";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53UL: return "ext2/3/4";
    case 0x01021994UL: return "tmpfs (fsync is free: not a durable measurement)";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x794c7630UL: return "overlayfs";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "type 0x%lx", static_cast<unsigned long>(info.f_type));
      return text;
    }
  }
}

std::string tail_of(const std::filesystem::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string text;
  for (const std::string& kept : last) text += "    " + kept + "\n";
  return text;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

}  // namespace gapless::bench
