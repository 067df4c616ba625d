#include "common.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

std::string mount_of(const std::filesystem::path& dir) {
  std::error_code error;
  const std::string path = std::filesystem::canonical(dir, error).string();
  if (error) return "unknown";
  std::ifstream mounts("/proc/self/mounts");
  std::string device, point, type, options, line;
  std::string best_device, best_point, best_options;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    if (!(fields >> device >> point >> type >> options)) continue;
    const bool contains = path == point || point == "/" || path.rfind(point + "/", 0) == 0;
    if (contains && point.size() >= best_point.size()) {  // the last of equal mounts is the one seen
      best_device = device;
      best_point = point;
      best_options = options;
    }
  }
  if (best_point.empty()) return "unknown";
  return best_device + " on " + best_point + " (" + best_options + ")";
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

int64_t parse_integer(const std::string& option, const char* text, int64_t minimum) {
  if (text == nullptr) throw UsageError(option + " needs a value");
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < minimum)
    throw UsageError(option + " wants an integer >= " + std::to_string(minimum) + ", not \"" + text + "\"");
  return value;
}

std::filesystem::path make_work_dir(const std::filesystem::path& dir, const std::string& name) {
  if (!dir.empty()) {
    std::filesystem::create_directories(dir);
    return std::filesystem::absolute(dir);
  }
  std::string pattern = (std::filesystem::temp_directory_path() / (name + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw Error("mkdtemp " + pattern + ": " + std::strerror(errno));
  return pattern;
}

double ChildResult::cpu_seconds() const { return timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime); }
bool ChildResult::ok() const { return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0; }

std::string describe_status(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return std::string("killed by ") + sigabbrev_np(WTERMSIG(wait_status));
  return "status " + std::to_string(wait_status);
}

Child::Child(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) throw Error("cannot open " + log.string() + " or /dev/null");
  started_ = Clock::now();
  pid_ = ::fork();
  if (pid_ == 0) {  // only async-signal-safe calls from here to exec: we have threads
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0u, 0);  // none of our sockets (subscriber, archive) leak into it
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid_ < 0) throw Error(std::string("fork: ") + std::strerror(errno));
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
}

Child::~Child() {
  if (!result_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::milliseconds(10'000));
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

void Child::signal(int sig) const {
  if (!result_) ::kill(pid_, sig);
}

std::optional<ChildResult> Child::wait(std::chrono::milliseconds timeout) {
  if (result_) return result_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (pidfd_ >= 0) {
      pollfd watched{pidfd_, POLLIN, 0};
      ::poll(&watched, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ChildResult result;
    const pid_t reaped = ::wait4(pid_, &result.wait_status, WNOHANG, &result.usage);
    if (reaped == pid_) {
      result.ended = Clock::now();
      result_ = result;
      return result_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
  }
}

}  // namespace gapless::bench
