// `gapless run --config F` of this build (or $GAPLESS_BIN) as a child of a
// unit test, its stdout and stderr appended to a log file the test reads;
// killed and reaped if the test ends first, so a failed REQUIRE leaves no
// daemon behind. The integration tests have tests/harness/process for this;
// the unit tests do not link the harness (it brings the brokers' code).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/gapless_command.hpp"

namespace gapless::test {

class BackgroundDaemon {
 public:
  // `environment`: variables set (an empty value removes the variable) in
  // the child's copy of the test's environment.
  BackgroundDaemon(const std::string& config_path, std::string log_path,
                   const std::map<std::string, std::string>& environment = {})
      : log_path_(std::move(log_path)) {
    std::map<std::string, std::string> variables;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      const std::string text(*entry);
      const size_t equals = text.find('=');
      if (equals != std::string::npos) variables[text.substr(0, equals)] = text.substr(equals + 1);
    }
    for (const auto& [name, value] : environment) {
      if (value.empty())
        variables.erase(name);
      else
        variables[name] = value;
    }
    std::vector<std::string> entries;
    for (const auto& [name, value] : variables) entries.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (std::string& entry : entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = {gapless_binary(), "run", "--config", config_path};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int failed = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (failed != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(failed));
  }
  ~BackgroundDaemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  BackgroundDaemon(const BackgroundDaemon&) = delete;
  BackgroundDaemon& operator=(const BackgroundDaemon&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int number) const { ::kill(pid_, number); }

  // SIGTERM, then its exit code (128 + signal if killed, -1 if it is still
  // running after `timeout`).
  int stop(std::chrono::steady_clock::duration timeout = std::chrono::seconds(30)) {
    ::kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  // What it logged so far.
  std::string log() const {
    std::ifstream in(log_path_);
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

}  // namespace gapless::test
