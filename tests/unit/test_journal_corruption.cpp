// Proves a journal that is not ours, too new or damaged is refused untouched, and only one daemon at a time holds one.
#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::DaemonLock;
using gapless::journal::Journal;
using gapless::journal::NewMessage;
using namespace gapless::test;

namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Refusals must name the file and leave it as it was.
void require_refused_untouched(const std::string& path, const std::string& expected_words) {
  const std::string before = read_file(path);
  try {
    Journal::open(path, {"cern"});
    FAIL("the journal was opened");
  } catch (const gapless::Error& e) {
    CHECK_THAT(e.what(), Contains(path));
    CHECK_THAT(e.what(), Contains(expected_words));
  }
  CHECK(read_file(path) == before);
}

}  // namespace

TEST_CASE("a journal written by a newer gapless is refused, naming both versions", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  Journal::open(path, {"cern"});
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA user_version = 7");
  }
  require_refused_untouched(path, "schema version 7, newer than version 5");
}

TEST_CASE("another program's SQLite database, or a file that is no database, is refused untouched", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("other.db");

  SECTION("another application_id") {
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("PRAGMA application_id = 1234; CREATE TABLE t(x)");
    }
    require_refused_untouched(path, "is not a gapless journal: its SQLite application_id is 0x000004d2");
  }
  SECTION("no application_id, but tables") {
    {
      SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      db.exec("CREATE TABLE message(x)");
    }
    require_refused_untouched(path, "is not a gapless journal");
  }
  SECTION("not a database at all") {
    std::ofstream(path) << std::string(8192, 'x');
    require_refused_untouched(path, "not a SQLite database");
  }
}

TEST_CASE("a damaged journal is refused with the integrity check's findings, and left as it is", "[journal]") {
  TempDir dir;
  const std::string path = dir.file("j.db");
  {
    auto journal = Journal::open(path, {"cern"});
    for (int batch = 0; batch < 10; ++batch) {
      std::vector<NewMessage> messages;
      for (int i = 0; i < 100; ++i) {
        messages.push_back(message("m-" + std::to_string(batch) + "-" + std::to_string(i)));
        messages.back().body.assign(300, static_cast<char>('a' + i % 26));
      }
      journal->append(messages);
    }
  }
  const auto size = fs::file_size(path);
  constexpr size_t kPage = 4096;
  REQUIRE(size > 100 * kPage);
  {
    // Three pages in the middle of the file become garbage, as a bad disk block would.
    std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(static_cast<std::streamoff>(size / 2 / kPage * kPage));
    const std::string garbage(3 * kPage, '\x5a');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  require_refused_untouched(path, "is damaged");
  CHECK_THROWS_WITH(Journal::open(path, {"cern"}), Contains("quick_check") || Contains("SQLITE_CORRUPT"));
}

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
