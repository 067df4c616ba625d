// Proves fault episodes are published for `gapless status`, and the disk reserve gives the journal room when the disk fills.
//
// The daemon's published fault episodes (journal/health_file.hpp) and the
// disk reserve (journal/disk_reserve.hpp), as `gapless status` and the
// producers rely on them.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/build_info.hpp"
#include "core/fault_episode.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/health_file.hpp"
#include "support/temp_dir.hpp"

using gapless::FaultSnapshot;
using gapless::test::TempDir;
namespace journal = gapless::journal;

namespace {

// A pid that was alive a moment ago and is not any more.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

FaultSnapshot disk_full() {
  return FaultSnapshot{"collector archive=psds", "disk-full", "journal /x: append: the disk is full \"quoted\"\nline",
                       1'000, 2'000, 7};
}

}  // namespace

TEST_CASE("health file: the running daemon's open faults reach a reader", "[health-file]") {
  TempDir dir("health");
  const std::string journal_path = dir.file("journal.db");
  journal::DaemonLock lock(journal_path);  // this process is the daemon
  journal::HealthFile health(journal_path);
  REQUIRE(health.publish({disk_full(), FaultSnapshot{"sender sink=cern", "journal-busy", "locked", 3'000, 4'000, 1}},
                         {"cern", "old"}));

  const auto read = journal::read_daemon_health(journal_path);
  REQUIRE(read);
  CHECK(read->pid == ::getpid());
  REQUIRE(read->faults.size() == 2);
  CHECK(read->faults[0].component == "collector archive=psds");
  CHECK(read->faults[0].kind == "disk-full");
  CHECK(read->faults[0].last_error == disk_full().last_error);
  CHECK(read->faults[0].since_ms == 1'000);
  CHECK(read->faults[0].last_ms == 2'000);
  CHECK(read->faults[0].occurrences == 7);
  CHECK(read->faults[1].kind == "journal-busy");
  CHECK(read->sinks == std::vector<std::string>{"cern", "old"});  // what retire-sink must not touch

  // Written in place: the file keeps its size and its blocks, and is private.
  struct stat info {};
  REQUIRE(::stat(health.path().c_str(), &info) == 0);
  CHECK(info.st_size == journal::kHealthFileBytes);
  CHECK(info.st_blocks * 512 >= journal::kHealthFileBytes);
  CHECK((info.st_mode & 0777) == 0600);

  // The faults are gone: the next write says so.
  REQUIRE(health.publish({}, {"cern"}));
  CHECK(journal::read_daemon_health(journal_path)->faults.empty());
  CHECK(journal::read_daemon_health(journal_path)->sinks == std::vector<std::string>{"cern"});
}

TEST_CASE("health file: nothing is shown for a daemon that is not running", "[health-file]") {
  TempDir dir("health");
  const std::string journal_path = dir.file("journal.db");
  CHECK_FALSE(journal::read_daemon_health(journal_path));  // no file

  // A file left by a daemon whose pid is dead.
  journal::DaemonHealth left{dead_pid(), 1'000, {disk_full()}, 0};
  std::string text = journal::format_health(left) + "\n";
  text.resize(journal::kHealthFileBytes, ' ');
  std::ofstream(journal_path + ".health") << text;
  REQUIRE(journal::parse_health(text));
  CHECK_FALSE(journal::read_daemon_health(journal_path));

  // A live pid (ours) that does not hold the daemon lock: not the daemon.
  journal::HealthFile health(journal_path);
  REQUIRE(health.publish({disk_full()}, {}));
  CHECK_FALSE(journal::read_daemon_health(journal_path));
  {
    journal::DaemonLock lock(journal_path);
    CHECK(journal::read_daemon_health(journal_path));
  }
  CHECK_FALSE(journal::read_daemon_health(journal_path));  // lock released
}

TEST_CASE("health file: the daemon publishes its own version and revision; a file of a daemon of before, without "
          "them or its sinks, still reads",
          "[health-file]") {
  TempDir dir("health");
  const std::string journal_path = dir.file("journal.db");
  journal::DaemonLock lock(journal_path);
  journal::HealthFile health(journal_path);
  REQUIRE(health.publish({disk_full()}, {}));
  const auto read = journal::read_daemon_health(journal_path);
  REQUIRE(read);
  CHECK(read->version == gapless::build_version());
  CHECK(read->revision == gapless::build_revision());

  // Written by the daemon of before these fields, word for word.
  const auto before = journal::parse_health(
      R"({"faults":[{"component":"sender sink=cern","kind":"journal-busy","last_error":"locked","last_ms":4000,)"
      R"("occurrences":1,"since_ms":3000}],"faults_left_out":0,"format":"gapless-health 1","pid":42,)"
      R"("written_ms":1000})"
      "\n");
  REQUIRE(before);
  CHECK(before->pid == 42);
  REQUIRE(before->faults.size() == 1);
  CHECK(before->version.empty());
  CHECK(before->revision.empty());
  CHECK_FALSE(before->sinks);  // unknown, not "none"
}

TEST_CASE("health file: many faults stay within the fixed size, the rest counted", "[health-file]") {
  std::vector<FaultSnapshot> faults;
  for (int i = 0; i < 500; ++i) {
    FaultSnapshot fault = disk_full();
    fault.component = "sender sink=s" + std::to_string(i);
    fault.last_error = std::string(2'000, 'e');
    faults.push_back(fault);
  }
  const std::string text = journal::format_health({42, 1, faults, 0});
  CHECK(static_cast<int64_t>(text.size()) < journal::kHealthFileBytes);
  const auto parsed = journal::parse_health(text + "\n");
  REQUIRE(parsed);
  CHECK(parsed->faults.size() + static_cast<size_t>(parsed->faults_left_out) == faults.size());
  CHECK(parsed->faults_left_out > 0);
  CHECK(parsed->faults[0].last_error.size() == journal::kHealthErrorChars);
  // A half-written first line is not believed.
  CHECK_FALSE(journal::parse_health(text.substr(0, text.size() / 2)));
  CHECK_FALSE(journal::parse_health(text.substr(0, text.size() / 2) + "\n"));
}

TEST_CASE("disk reserve: taken, released on a full disk, refused without room", "[disk-reserve]") {
  TempDir dir("reserve");
  const std::string journal_path = dir.file("journal.db");
  journal::DiskReserve reserve(journal_path, 256 * 1024);
  CHECK_FALSE(reserve.held());
  REQUIRE(reserve.take());
  CHECK(reserve.held());
  struct stat info {};
  REQUIRE(::stat(reserve.path().c_str(), &info) == 0);
  CHECK(info.st_size == 256 * 1024);
  CHECK(info.st_blocks * 512 >= 256 * 1024);  // real blocks: giving them back frees space
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(reserve.take());  // held: nothing to do

  CHECK(reserve.release());
  CHECK_FALSE(std::filesystem::exists(reserve.path()));
  CHECK_FALSE(reserve.release());  // someone released it already

  // Taken back only with room for it and as much again: a reserve of more
  // than half the free space is refused, and nothing is left behind.
  struct statvfs space {};
  REQUIRE(::statvfs(dir.path().c_str(), &space) == 0);
  const auto available = static_cast<int64_t>(space.f_bavail) * static_cast<int64_t>(space.f_frsize);
  journal::DiskReserve too_large(journal_path, available / 2 + 1024 * 1024);
  CHECK_FALSE(too_large.take());
  CHECK_FALSE(too_large.held());
  CHECK_FALSE(std::filesystem::exists(too_large.path()));
  CHECK_FALSE(std::filesystem::exists(too_large.path() + ".partial"));

  journal::DiskReserve none(journal_path, 0);  // disabled
  CHECK(none.take());
  CHECK_FALSE(none.release());
}
