// Proves a daemon whose executable or a loaded library is replaced on disk (an upgrade) says restart_required in status, metrics and one log line.
//
// Issue 12, upgrade safety (the 2016 root cause: a daemon ran old code for
// months after an upgrade). The daemon is this build's `gapless`, or a copy
// of it, run against a journal of its own and a sink whose broker never
// answers (none is needed to watch files); its check interval is cut to
// 200 ms through GAPLESS_RESTART_CHECK_MS.
//   build/tests/integration/integration-tests '[upgrade]'
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/process.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using gapless::test::eventually;
using gapless::test::Output;
using gapless::test::Process;
using gapless::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string file_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// A daemon on a journal of its own; `binary` and `env` say what it runs.
struct WatchedDaemon {
  TempDir dir{"upgrade"};
  std::string config = dir.file("gapless.toml");
  std::string journal = dir.file("journal.db");
  fs::path log = dir.path() / "daemon.err";
  std::optional<Process> daemon;

  WatchedDaemon() {
    std::ofstream(config) << "[journal]\npath = " << nlohmann::json(journal).dump() << "\n"
                          << "[[sink]]\nname = \"nowhere\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n";
  }

  void start(const fs::path& binary, std::map<std::string, std::string> env = {}) {
    env["GAPLESS_RESTART_CHECK_MS"] = "200";
    daemon = Process::spawn({.args = {binary.string(), "run", "--config", config},
                             .env = env,
                             .out = Output::discard(),
                             .err = Output::to_file(log)});
    REQUIRE(eventually(30s, [&] { return status().at("daemon").at("running").get<bool>(); }));
  }

  // As an operator runs it: this build's `gapless`, never the watched file.
  // `format`: "--json", "--prometheus", or "" for the text.
  std::string status_output(const std::string& format) {
    std::vector<std::string> args = {gapless::test::gapless_binary().string(), "status", "--config", config};
    if (!format.empty()) args.push_back(format);
    const auto result = gapless::test::run(args);
    INFO(result.err);
    REQUIRE(result.ok());
    return result.out;
  }
  nlohmann::json status() { return nlohmann::json::parse(status_output("--json")); }
  bool restart_required() { return status().at("daemon").at("restart_required").get<bool>(); }

  // The restart-required fault's error, "" when there is none.
  std::string restart_error() {
    const nlohmann::json now = status();  // kept: the loop reads into it
    for (const nlohmann::json& fault : now.at("daemon").at("faults"))
      if (fault.at("kind") == "restart-required") return fault.at("last_error").get<std::string>();
    return "";
  }
};

// A shared library every Debian system has, to load as a copy of our own.
std::optional<fs::path> system_zlib() {
  for (const char* dir : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                          "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64"})
    if (fs::exists(fs::path(dir) / "libz.so.1")) return fs::path(dir) / "libz.so.1";
  return std::nullopt;
}

}  // namespace

TEST_CASE("the daemon's executable replaced by rename, as dpkg does, goes unnoticed while it runs old code",
          "[upgrade]") {
  WatchedDaemon watched;
  const fs::path binary = watched.dir.path() / "gapless";
  fs::copy_file(gapless::test::gapless_binary(), binary);
  fs::permissions(binary, fs::perms::owner_all);
  const std::string named = fs::canonical(binary).string();  // as /proc/self/exe names it
  watched.start(binary);

  std::this_thread::sleep_for(1s);  // five checks of unchanged files: no false alarm
  CHECK_FALSE(watched.restart_required());

  // The upgrade: a new file beside it, renamed over it (the running one's inode lives on).
  const fs::path upgraded = watched.dir.path() / "gapless.dpkg-new";
  fs::copy_file(binary, upgraded);
  std::ofstream(upgraded, std::ios::app | std::ios::binary) << "upgraded";
  fs::permissions(upgraded, fs::perms::owner_all);
  fs::rename(upgraded, binary);

  CHECK(eventually(10s, [&] { return watched.restart_required(); }));
  CHECK_THAT(watched.restart_error(), Contains(named) && Contains("restart"));
  CHECK_THAT(watched.status_output("--prometheus"),
             Contains("gapless_restart_required{journal=\"" + watched.journal + "\"} 1"));
  // The text's first problem: the restart, naming the replaced file.
  const std::string text = watched.status_output("");
  CHECK_THAT(text, Contains("PROBLEMS (") && Contains("restart required"));
  CHECK(text.find("restart required") < text.find("sink nowhere"));

  std::this_thread::sleep_for(1s);  // more checks: still one line
  const std::string log = file_text(watched.log);
  INFO(log);
  CHECK(occurrences(log, "kind=restart-required") == 1);
  CHECK_THAT(log, Contains(named));
  CHECK(watched.daemon->terminate().code == 0);
}

TEST_CASE("a shared library the daemon loaded, overwritten in place, goes unnoticed while it runs", "[upgrade]") {
  const std::optional<fs::path> zlib = system_zlib();
  REQUIRE(zlib.has_value());
  WatchedDaemon watched;
  const fs::path library = watched.dir.path() / "libz.so.1";
  fs::copy_file(*zlib, library);
  const std::string named = fs::canonical(library).string();  // as /proc/self/maps names it
  watched.start(gapless::test::gapless_binary(), {{"LD_PRELOAD", library.string()}});

  std::this_thread::sleep_for(1s);
  CHECK_FALSE(watched.restart_required());

  // Written in place, same inode: past its end, so the mapped pages stay as they are.
  std::ofstream(library, std::ios::app | std::ios::binary) << "overwritten";

  CHECK(eventually(10s, [&] { return watched.restart_required(); }));
  CHECK_THAT(watched.restart_error(), Contains(named) && Contains("in place"));
  CHECK(watched.daemon->terminate().code == 0);
}
