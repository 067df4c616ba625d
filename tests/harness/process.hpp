// Child processes for the integration tests: the broker script, openssl,
// keytool, the gapless daemon under test.
//
// Why not std::system/popen: tests need a timeout on every wait (a hung child
// must fail the test, not the CI run), signals (SIGTERM vs SIGKILL is what the
// crash tests are about), and output kept apart from the test's own.
//
// Output is captured into memory files (memfd), not pipes: a grandchild that
// keeps the pipe open (a daemon the child started) can never make us hang,
// and nothing has to read while the child runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gapless::test {

// Where a child's stdout or stderr goes.
struct Output {
  enum class Kind { capture, file, inherit, discard };
  Kind kind = Kind::capture;
  std::filesystem::path path;  // Kind::file: appended to, created if missing

  static Output capture() { return {}; }
  static Output to_file(std::filesystem::path path) { return {Kind::file, std::move(path)}; }
  static Output inherit() { return {Kind::inherit, {}}; }  // the test's own stdout/stderr
  static Output discard() { return {Kind::discard, {}}; }
};

// Designated initializers work: Process::spawn({.args = {"sleep", "1"}, .out = Output::inherit()}).
struct SpawnOptions {
  // args[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> args{};
  // Added to (or replacing in) the test process's environment.
  std::map<std::string, std::string> env{};
  // Removed from the environment (after `env` is applied).
  std::vector<std::string> unset_env{};
  std::filesystem::path working_dir{};  // empty: the test's current directory
  Output out = Output::capture();
  Output err = Output::capture();
};

// How a child ended. `code` follows the shell's convention so that one int
// tells all: the exit status, or 128 + signal number when killed by a signal.
struct ExitStatus {
  int code = 0;
  int signal = 0;  // non-zero when killed by a signal
  bool exited_normally() const { return signal == 0; }
  std::string describe() const;  // "exit 0", "killed by SIGKILL"
};

class Process {
 public:
  // Starts the child. Throws gapless::Error naming the program on failure
  // (e.g. not found). Every descriptor but 0, 1, 2 is closed in the child.
  static Process spawn(SpawnOptions options);

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // A child still running is SIGKILLed and reaped: a failed REQUIRE must not
  // leave processes behind.
  ~Process();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }  // args[0], for messages

  // Reaps the child if it ended. True while it runs.
  bool running();
  // Waits at most `timeout`; the status if the child ended by then.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  // Waits at most `timeout`; throws gapless::Error (with the captured stderr)
  // if the child is still running then. The child is left running.
  ExitStatus wait(std::chrono::milliseconds timeout);
  // The status once it ended (nothing while it runs).
  std::optional<ExitStatus> status() const { return status_; }

  // Sends `sig`; nothing if the child already ended and was reaped.
  void signal(int sig);
  // SIGTERM, up to `grace` for it to end, then SIGKILL. Returns how it ended.
  ExitStatus terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL and reap (a crash as far as the child is concerned).
  ExitStatus kill();

  // What the child wrote so far (Output::capture only; empty otherwise).
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  Process() = default;
  void close_captures();

  pid_t pid_ = -1;
  std::string name_;
  std::optional<ExitStatus> status_;
  int out_fd_ = -1;  // memfd with the child's stdout, when captured
  int err_fd_ = -1;
};

struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
  bool ok() const { return status.exited_normally() && status.code == 0; }
  // "openssl req ... : exit 1\n<stderr>" for error messages.
  std::string describe(const std::vector<std::string>& args) const;
};

// Runs a command to completion (stdout and stderr captured). If it has not
// ended after `timeout` it is killed and gapless::Error is thrown. A non-zero
// exit is NOT an error here: check result.ok().
RunResult run(SpawnOptions options, std::chrono::milliseconds timeout = std::chrono::seconds(60));
RunResult run(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60));
// Like run(), but throws gapless::Error with the command, status and stderr
// unless it exited 0. Returns stdout.
std::string run_checked(std::vector<std::string> args,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it,
// close). Another process may take it before you do; callers that need
// several ports must ask free_tcp_ports so the ports at least differ.
uint16_t free_tcp_port();
std::vector<uint16_t> free_tcp_ports(size_t count);

// The gapless daemon under test: $GAPLESS_BIN (set by tests/integration/meson.build),
// else the binary of the build tree this harness was compiled in.
std::filesystem::path gapless_binary();
// gapless-replay of the same build tree, found beside gapless_binary()'s.
std::filesystem::path gapless_replay_binary();

// Memory of a running process, from /proc/PID/status.
struct MemoryUsage {
  size_t rss_kib = 0;  // VmRSS: resident now
  size_t hwm_kib = 0;  // VmHWM: peak resident ("high water mark")
  size_t rss_anon_kib = 0;  // RssAnon: resident heap and stacks, without the mapped executable and libraries
};
// Throws gapless::Error if the process does not exist.
MemoryUsage read_memory_usage(pid_t pid);

}  // namespace gapless::test
