// Proves what `meson install` ships for systemd holds: files under the prefix, a unit that runs the installed program, that systemd-analyze verify accepts and rates well hardened, and `gapless --version` and `gapless-replay --version` naming their build.
//
// The unit is the one this build configured (build/etc/gapless.service);
// meson's own record of what `meson install` copies where
// (meson-info/intro-installed.json) says where it lands. systemd-analyze
// verify needs the program in ExecStart to exist, so it verifies a copy
// whose ExecStart names this build's program instead of the installed path;
// nothing else is changed.
#include <catch2/catch.hpp>

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/build_info.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

namespace {

using gapless::test::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Where `meson install` puts the file the build has at `built` (absolute).
std::string installed_path(const std::string& built) {
  const nlohmann::json installed =
      nlohmann::json::parse(read_file(std::string(GAPLESS_BUILD_ROOT) + "/meson-info/intro-installed.json"));
  return installed.value(built, std::string("(not installed)"));
}

std::string exec_start(const std::string& unit) {
  std::istringstream lines(unit);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("ExecStart=", 0) == 0) return line.substr(10);
  return "";
}

// The systemd-analyze of this machine, or "" when there is none.
std::string systemd_analyze() {
  for (const char* candidate : {"/usr/bin/systemd-analyze", "/bin/systemd-analyze"})
    if (::access(candidate, X_OK) == 0) return candidate;
  return "";
}

struct Verified {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// `systemd-analyze <verb> <unit_path>`.
Verified analyze_unit(const std::string& analyze, const std::string& verb, const std::string& unit_path) {
  const std::string command = gapless::test::shell_quoted(analyze) + " " + verb + " " +
                              gapless::test::shell_quoted(unit_path) + " 2>&1";
  Verified result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t read = 0;
  while ((read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, read);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// The configured unit as a file named gapless.service in `dir`, its program
// replaced by this build's, and `from` (if any) replaced by `to`.
std::string unit_copy(const TempDir& dir, const std::string& from, const std::string& to) {
  std::string unit = read_file(GAPLESS_UNIT_FILE);
  const std::string installed_program = installed_path(GAPLESS_BUILD_BIN);
  const size_t program = unit.find("ExecStart=" + installed_program);
  REQUIRE(program != std::string::npos);
  unit.replace(program, 10 + installed_program.size(), "ExecStart=" + gapless::test::gapless_binary());
  if (!from.empty()) {
    const size_t at = unit.find(from);
    REQUIRE(at != std::string::npos);
    unit.replace(at, from.size(), to);
  }
  const std::string path = dir.file("gapless.service");
  std::ofstream(path) << unit;
  return path;
}

}  // namespace

TEST_CASE("meson install puts the programs, the unit and the example config under the prefix, and the unit runs "
          "the installed program",
          "[service]") {
  const std::string prefix = GAPLESS_INSTALL_PREFIX;
  const std::string build = GAPLESS_BUILD_ROOT;
  CHECK(installed_path(GAPLESS_BUILD_BIN) == prefix + "/bin/gapless");
  CHECK(installed_path(build + "/tools/replay/gapless-replay") == prefix + "/bin/gapless-replay");
  CHECK(installed_path(GAPLESS_UNIT_FILE) == std::string(GAPLESS_SYSTEMD_UNIT_DIR) + "/gapless.service");
  CHECK(installed_path(std::string(GAPLESS_SOURCE_DIR) + "/etc/gapless.example.toml") ==
        prefix + "/share/doc/gapless/examples/gapless.example.toml");
  CHECK(installed_path(std::string(GAPLESS_SOURCE_DIR) + "/etc/gapless.sysusers") ==
        prefix + "/lib/sysusers.d/gapless.conf");

  const std::string unit = read_file(GAPLESS_UNIT_FILE);
  CHECK(exec_start(unit) == prefix + "/bin/gapless run --config /etc/gapless/gapless.toml");
  for (const char* placeholder : {"@bindir@", "@docdir@"}) CHECK(unit.find(placeholder) == std::string::npos);
}

TEST_CASE("systemctl reload sends the daemon SIGHUP, its reload request", "[service]") {
  const std::string unit = read_file(GAPLESS_UNIT_FILE);
  CHECK(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n") != std::string::npos);
}

TEST_CASE("systemd-analyze verify accepts the unit, and reports a broken copy of it", "[service]") {
  const std::string analyze = systemd_analyze();
  if (analyze.empty()) {
    WARN("systemd-analyze not found (Debian package systemd): the unit is not verified here");
    return;
  }
  TempDir dir("service-unit");
  const Verified good = analyze_unit(analyze, "verify", unit_copy(dir, "", ""));
  INFO(good.output);
  CHECK(good.exit_code == 0);
  // It also prints, and exits 0, for a key it does not know: silence is the verdict.
  CHECK(good.output.find("gapless.service") == std::string::npos);

  const Verified misspelled = analyze_unit(analyze, "verify", unit_copy(dir, "WatchdogSec=", "WatchdgSec="));
  INFO(misspelled.output);
  CHECK(misspelled.output.find("Unknown key 'WatchdgSec'") != std::string::npos);
}

TEST_CASE("gapless --version names the version and the source revision it was built from", "[service]") {
  TempDir dir("version");
  const gapless::test::CommandResult result = gapless::test::run_gapless({"--version"}, dir.file("stderr"));
  CHECK(result.exit_code == 0);
  CHECK(result.out == gapless::build_description() + "\n");
  CHECK(result.out.rfind("gapless " + std::string(GAPLESS_PROJECT_VERSION) + " (revision ", 0) == 0);
  // Built from a git checkout, so `git describe` named a commit.
  if (std::filesystem::exists(std::string(GAPLESS_SOURCE_DIR) + "/.git"))
    CHECK(std::string(gapless::build_revision()) != "unknown");
}

TEST_CASE("gapless-replay --version names the same version and revision as gapless --version", "[service]") {
  TempDir dir("version");
  const std::string command = gapless::test::shell_quoted(GAPLESS_REPLAY_BIN) + " --version 2>" +
                              gapless::test::shell_quoted(dir.file("stderr"));
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[256];
  for (size_t read; (read = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, read);
  const int status = ::pclose(pipe);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(out == gapless::build_description("gapless-replay") + "\n");
  CHECK(out.rfind("gapless-replay " + std::string(GAPLESS_PROJECT_VERSION) + " (revision " +
                      gapless::build_revision() + ")",
                  0) == 0);
}

TEST_CASE("the unit's hardening keeps systemd-analyze security's exposure level at 2.0 or below", "[service]") {
  const std::string analyze = systemd_analyze();
  if (analyze.empty()) {
    WARN("systemd-analyze not found (Debian package systemd): the unit's hardening is not measured here");
    return;
  }
  TempDir dir("service-unit");
  const Verified security = analyze_unit(analyze, "security --offline=true --no-pager", unit_copy(dir, "", ""));
  INFO(security.output);
  // "→ Overall exposure level for gapless.service: 1.9 OK"
  const std::string label = "Overall exposure level for gapless.service: ";
  const size_t at = security.output.find(label);
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(security.output.substr(at + label.size())) <= 2.0);
}
