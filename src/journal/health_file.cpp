#include "journal/health_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/build_info.hpp"
#include "core/clock.hpp"

namespace gapless::journal {

namespace {

constexpr std::string_view kFormat = "gapless-health 1";

nlohmann::json fault_json(const FaultSnapshot& fault) {
  std::string error = fault.last_error.substr(0, kHealthErrorChars);
  return {{"component", fault.component}, {"kind", fault.kind},       {"last_error", error},
          {"since_ms", fault.since_ms},   {"last_ms", fault.last_ms}, {"occurrences", fault.occurrences}};
}

bool pid_alive(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

std::string format_health(const DaemonHealth& health) {
  nlohmann::json out{{"format", kFormat},
                     {"pid", health.pid},
                     {"written_ms", health.written_ms},
                     {"faults", nlohmann::json::array()},
                     {"faults_left_out", health.faults_left_out},
                     {"version", health.version},
                     {"revision", health.revision}};
  if (health.sinks) out["sinks"] = *health.sinks;
  // Room for the counter of what is left out growing by a few digits.
  const size_t room = static_cast<size_t>(kHealthFileBytes) - 64;
  size_t used = out.dump().size();
  for (size_t i = 0; i < health.faults.size(); ++i) {
    nlohmann::json fault = fault_json(health.faults[i]);
    const size_t size = fault.dump().size() + 1;
    if (used + size > room) {
      out["faults_left_out"] = health.faults_left_out + static_cast<int64_t>(health.faults.size() - i);
      break;
    }
    used += size;
    out["faults"].push_back(std::move(fault));
  }
  // ensure_ascii: one byte per character, and no newline can appear inside.
  return out.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

std::optional<DaemonHealth> parse_health(std::string_view text) {
  const size_t end = text.find('\n');
  if (end == std::string_view::npos) return std::nullopt;
  const nlohmann::json in = nlohmann::json::parse(text.substr(0, end), nullptr, false);
  if (in.is_discarded() || !in.is_object() || in.value("format", "") != kFormat) return std::nullopt;
  try {
    DaemonHealth health;
    health.pid = in.at("pid").get<int64_t>();
    health.written_ms = in.at("written_ms").get<int64_t>();
    health.faults_left_out = in.value("faults_left_out", int64_t{0});
    health.version = in.value("version", std::string());
    health.revision = in.value("revision", std::string());
    if (in.contains("sinks")) health.sinks = in.at("sinks").get<std::vector<std::string>>();
    for (const nlohmann::json& fault : in.at("faults"))
      health.faults.push_back(FaultSnapshot{fault.at("component").get<std::string>(),
                                            fault.at("kind").get<std::string>(),
                                            fault.at("last_error").get<std::string>(),
                                            fault.at("since_ms").get<int64_t>(), fault.at("last_ms").get<int64_t>(),
                                            fault.at("occurrences").get<int64_t>()});
    return health;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

HealthFile::HealthFile(const std::string& journal_path) : path_(journal_path + ".health") {}

HealthFile::~HealthFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool HealthFile::open_allocated() {
  if (fd_ >= 0) return true;
  const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Real blocks for the whole size, once: every later pwrite lands in them.
  // (A file left by an earlier daemon has them already; fallocate is then a no-op.)
  if (::posix_fallocate(fd, 0, static_cast<off_t>(kHealthFileBytes)) != 0) {
    ::close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

bool HealthFile::publish(const std::vector<FaultSnapshot>& faults, const std::vector<std::string>& sinks) {
  std::string text =
      format_health(DaemonHealth{::getpid(), unix_now_ms(), faults, 0, build_version(), build_revision(), sinks});
  text += '\n';
  text.resize(static_cast<size_t>(kHealthFileBytes), ' ');
  const bool written = open_allocated() && ::pwrite(fd_, text.data(), text.size(), 0) ==
                                               static_cast<ssize_t>(text.size());
  if (!written && !failing_)
    spdlog::warn("daemon: cannot publish fault episodes for gapless status path={} error=\"{}\" (tried again every "
                 "second)",
                 path_, std::strerror(errno));
  else if (written && failing_)
    spdlog::info("daemon: fault episodes published again path={}", path_);
  failing_ = !written;
  return written;
}

bool holds_daemon_lock(int64_t pid, const std::string& journal_path) {
  if (!pid_alive(pid)) return false;
  struct stat lock_file {};
  if (::stat((journal_path + ".lock").c_str(), &lock_file) != 0) return false;
  // /proc/locks names each lock's holder and file: "1: FLOCK  ADVISORY  WRITE
  // 1234 08:01:5678 0 EOF" (device major:minor in hex, then the inode). A
  // blocked waiter's line has "->" after the number and is not a holder.
  char device[64];
  std::snprintf(device, sizeof device, "%02x:%02x:%llu", major(lock_file.st_dev), minor(lock_file.st_dev),
                static_cast<unsigned long long>(lock_file.st_ino));
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string number, type, advisory, mode, holder, file;
    if (!(fields >> number >> type >> advisory >> mode >> holder >> file)) continue;
    if (type == "FLOCK" && holder == std::to_string(pid) && file == device) return true;
  }
  return false;
}

std::optional<DaemonHealth> read_daemon_health(const std::string& journal_path) {
  const std::string path = journal_path + ".health";
  // A read may meet a rewrite half done: read again a few times.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text(static_cast<size_t>(kHealthFileBytes), '\0');
    const ssize_t size = ::pread(fd, text.data(), text.size(), 0);
    ::close(fd);
    if (size <= 0) return std::nullopt;
    text.resize(static_cast<size_t>(size));
    std::optional<DaemonHealth> health = parse_health(text);
    if (!health) continue;
    if (!holds_daemon_lock(health->pid, journal_path)) return std::nullopt;
    return health;
  }
  return std::nullopt;
}

}  // namespace gapless::journal
