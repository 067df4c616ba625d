// Running this build's `gapless` (or $GAPLESS_BIN) as an operator would,
// from a unit test: exit code, stdout and stderr apart. The unit tests'
// meson.build defines GAPLESS_BUILD_BIN.
#pragma once

#include <stdio.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace gapless::test {

inline std::string gapless_binary() {
  const char* configured = std::getenv("GAPLESS_BIN");
  if (configured != nullptr && *configured != '\0') return configured;
  return GAPLESS_BUILD_BIN;
}

// For /bin/sh: in single quotes, a single quote closed, escaped and reopened.
inline std::string shell_quoted(const std::string& text) {
  std::string result = "'";
  for (const char c : text) result += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return result + "'";
}

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `gapless <args>`; stderr goes through `stderr_file` (a path the test owns).
inline CommandResult run_gapless(const std::vector<std::string>& args, const std::string& stderr_file) {
  std::string command = shell_quoted(gapless_binary());
  for (const std::string& argument : args) command += " " + shell_quoted(argument);
  command += " 2>" + shell_quoted(stderr_file);
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  char buffer[4096];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, read);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream err(stderr_file);
  result.err.assign(std::istreambuf_iterator<char>(err), {});
  return result;
}

}  // namespace gapless::test
