#include "harness/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "core/error.hpp"

#ifndef GAPLESS_BUILD_BIN
#error "tests/harness/meson.build must define GAPLESS_BUILD_BIN"
#endif

extern char** environ;

namespace gapless::test {
namespace {

using namespace std::chrono_literals;

// How often wait loops look at the child: short enough not to slow tests down,
// long enough not to burn a core of a 2-core CI machine.
constexpr auto kPollInterval = 5ms;

std::string errno_text(int error) { return std::strerror(error); }

std::string join(const std::vector<std::string>& args) {
  std::string text;
  for (const auto& arg : args) {
    if (!text.empty()) text += ' ';
    text += arg;
  }
  return text;
}

ExitStatus decode_wait_status(int wstatus) {
  ExitStatus status;
  if (WIFSIGNALED(wstatus)) {
    status.signal = WTERMSIG(wstatus);
    status.code = 128 + status.signal;
  } else {
    status.code = WEXITSTATUS(wstatus);
  }
  return status;
}

// The child's environment: ours, with `set` applied and `unset` removed.
std::vector<std::string> build_environment(const std::map<std::string, std::string>& set,
                                           const std::vector<std::string>& unset) {
  std::map<std::string, std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    merged[std::string(text.substr(0, eq))] = std::string(text.substr(eq + 1));
  }
  for (const auto& [name, value] : set) merged[name] = value;
  for (const auto& name : unset) merged.erase(name);
  std::vector<std::string> result;
  result.reserve(merged.size());
  for (const auto& [name, value] : merged) result.push_back(name + "=" + value);
  return result;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

std::string read_whole_fd(int fd) {
  if (fd < 0) return {};
  std::string text;
  char buffer[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  return text;
}

// RAII for posix_spawn_file_actions_t.
class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&actions_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Sets up child descriptor `target` (1 or 2) as `output` says. For a capture
// returns the memfd (our end) in `capture_fd`.
void route_output(FileActions& actions, int target, const Output& output, int& capture_fd,
                  const std::string& program) {
  switch (output.kind) {
    case Output::Kind::capture: {
      capture_fd = ::memfd_create(target == 1 ? "stdout" : "stderr", MFD_CLOEXEC);
      if (capture_fd < 0) throw Error("memfd_create for " + program + ": " + errno_text(errno));
      posix_spawn_file_actions_adddup2(actions.get(), capture_fd, target);
      break;
    }
    case Output::Kind::file:
      posix_spawn_file_actions_addopen(actions.get(), target, output.path.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0644);
      break;
    case Output::Kind::discard:
      posix_spawn_file_actions_addopen(actions.get(), target, "/dev/null", O_WRONLY, 0);
      break;
    case Output::Kind::inherit:
      break;
  }
}

}  // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) {
    const char* abbrev = sigabbrev_np(signal);
    return std::string("killed by SIG") + (abbrev ? abbrev : std::to_string(signal));
  }
  return "exit " + std::to_string(code);
}

Process Process::spawn(SpawnOptions options) {
  if (options.args.empty()) throw Error("Process::spawn: no program given");
  Process process;
  process.name_ = options.args.front();

  FileActions actions;
  // Tests never feed a child through stdin; a child that reads it gets EOF
  // instead of stealing the terminal.
  posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  route_output(actions, 1, options.out, process.out_fd_, process.name_);
  route_output(actions, 2, options.err, process.err_fd_, process.name_);
  // Descriptors of other threads (Paho, STOMP clients, other children's
  // captures) may lack O_CLOEXEC; a child must not inherit them.
  posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(actions.get(), options.working_dir.c_str());
  }

  std::vector<std::string> args = options.args;
  std::vector<std::string> env = build_environment(options.env, options.unset_env);
  auto argv = c_strings(args);
  auto envp = c_strings(env);
  int rc = ::posix_spawnp(&process.pid_, argv[0], actions.get(), nullptr, argv.data(), envp.data());
  if (rc != 0) {
    process.pid_ = -1;
    throw Error("cannot start " + join(options.args) + ": " + errno_text(rc));
  }
  return process;
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      name_(std::move(other.name_)),
      status_(std::move(other.status_)),
      out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (running()) kill();
    close_captures();
    pid_ = std::exchange(other.pid_, -1);
    name_ = std::move(other.name_);
    status_ = std::move(other.status_);
    out_fd_ = std::exchange(other.out_fd_, -1);
    err_fd_ = std::exchange(other.err_fd_, -1);
  }
  return *this;
}

Process::~Process() {
  if (running()) kill();
  close_captures();
}

void Process::close_captures() {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  out_fd_ = err_fd_ = -1;
}

bool Process::running() {
  if (pid_ < 0 || status_) return false;
  int wstatus = 0;
  pid_t rc = ::waitpid(pid_, &wstatus, WNOHANG);
  if (rc == pid_) {
    status_ = decode_wait_status(wstatus);
    return false;
  }
  if (rc < 0 && errno == ECHILD) {
    // Reaped elsewhere: we cannot know how it ended.
    status_ = ExitStatus{-1, 0};
    return false;
  }
  return true;
}

std::optional<ExitStatus> Process::wait_for(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
  return status_;
}

ExitStatus Process::wait(std::chrono::milliseconds timeout) {
  if (auto status = wait_for(timeout)) return *status;
  throw Error(name_ + " (pid " + std::to_string(pid_) + ") still running after " +
              std::to_string(timeout.count()) + " ms; stderr so far:\n" + stderr_text());
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

ExitStatus Process::terminate(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (auto status = wait_for(grace)) return *status;
  return kill();
}

ExitStatus Process::kill() {
  signal(SIGKILL);
  // SIGKILL cannot be caught; only a process stuck in the kernel (D state)
  // takes a while.
  if (auto status = wait_for(std::chrono::seconds(30))) return *status;
  throw Error(name_ + " (pid " + std::to_string(pid_) + ") survived SIGKILL for 30 s");
}

std::string Process::stdout_text() const { return read_whole_fd(out_fd_); }
std::string Process::stderr_text() const { return read_whole_fd(err_fd_); }

std::string RunResult::describe(const std::vector<std::string>& args) const {
  std::string text = join(args) + ": " + status.describe();
  if (!err.empty()) text += "\n" + err;
  return text;
}

RunResult run(SpawnOptions options, std::chrono::milliseconds timeout) {
  options.out = Output::capture();
  options.err = Output::capture();
  auto args = options.args;
  Process process = Process::spawn(std::move(options));
  auto status = process.wait_for(timeout);
  if (!status) {
    process.kill();
    throw Error(join(args) + ": still running after " + std::to_string(timeout.count()) +
                " ms, killed; stderr:\n" + process.stderr_text() + "\nstdout:\n" + process.stdout_text());
  }
  return RunResult{*status, process.stdout_text(), process.stderr_text()};
}

RunResult run(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  SpawnOptions options;
  options.args = std::move(args);
  return run(std::move(options), timeout);
}

std::string run_checked(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  RunResult result = run(args, timeout);
  if (!result.ok()) throw Error(result.describe(args));
  return result.out;
}

namespace {

// A socket bound to 127.0.0.1:0; the caller reads the port and closes it.
int bind_ephemeral_socket() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error("free_tcp_port: socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int error = errno;
    ::close(fd);
    throw Error("free_tcp_port: bind 127.0.0.1:0: " + errno_text(error));
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t length = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    throw Error("free_tcp_port: getsockname: " + errno_text(errno));
  }
  return ntohs(addr.sin_port);
}

}  // namespace

uint16_t free_tcp_port() { return free_tcp_ports(1).front(); }

std::vector<uint16_t> free_tcp_ports(size_t count) {
  // All sockets stay bound until every port is read, so the kernel cannot
  // hand out the same port twice.
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  try {
    for (size_t i = 0; i < count; ++i) {
      fds.push_back(bind_ephemeral_socket());
      ports.push_back(bound_port(fds.back()));
    }
  } catch (...) {
    for (int fd : fds) ::close(fd);
    throw;
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

std::filesystem::path gapless_binary() {
  const char* configured = std::getenv("GAPLESS_BIN");
  if (configured != nullptr && *configured != '\0') return configured;
  return GAPLESS_BUILD_BIN;
}

std::filesystem::path gapless_replay_binary() {
  return gapless_binary().parent_path().parent_path() / "tools" / "replay" / "gapless-replay";
}

MemoryUsage read_memory_usage(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::ifstream in(path);
  if (!in) throw Error("read_memory_usage: cannot read " + path + " (no such process?)");
  MemoryUsage usage;
  std::string line;
  while (std::getline(in, line)) {
    // Lines look like "VmRSS:\t   12345 kB".
    std::istringstream fields(line);
    std::string key;
    size_t kib = 0;
    fields >> key >> kib;
    if (key == "VmRSS:") usage.rss_kib = kib;
    if (key == "VmHWM:") usage.hwm_kib = kib;
    if (key == "RssAnon:") usage.rss_anon_kib = kib;
  }
  return usage;
}

}  // namespace gapless::test
