// Proves only one daemon at a time holds a journal: a second is refused with the holder's pid, and the lock dies with its holder.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "journal/daemon_lock.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::DaemonLock;
using gapless::test::TempDir;

TEST_CASE("one daemon per journal: a second lock is refused with the holder's pid, until the first is gone",
          "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  {
    DaemonLock first(path);
    CHECK_THROWS_WITH(DaemonLock{path}, Contains("journal " + path + " is in use by another gapless daemon (pid " +
                                                 std::to_string(::getpid()) + ")"));
  }
  CHECK_NOTHROW(DaemonLock{path});
  CHECK_THROWS_WITH(DaemonLock{dir.file("missing-dir/j.db")}, Contains("missing-dir/j.db.lock"));
}

TEST_CASE("the daemon lock holds across processes and dies with its holder", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  int locked[2];
  int release[2];
  REQUIRE(::pipe(locked) == 0);
  REQUIRE(::pipe(release) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // holds the lock until told to go, then dies without cleaning up
    ::close(locked[0]);
    ::close(release[1]);
    try {
      DaemonLock lock(path);
      char byte = 'L';
      if (::write(locked[1], &byte, 1) != 1) ::_exit(2);
      if (::read(release[0], &byte, 1) < 0) ::_exit(3);
      ::_exit(0);
    } catch (...) {
      ::_exit(1);
    }
  }
  ::close(locked[1]);
  ::close(release[0]);
  char byte = 0;
  REQUIRE(::read(locked[0], &byte, 1) == 1);

  CHECK_THROWS_WITH(DaemonLock{path}, Contains("(pid " + std::to_string(child) + ")"));

  REQUIRE(::write(release[1], "x", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(locked[0]);
  ::close(release[1]);
  CHECK_NOTHROW(DaemonLock{path});
}
