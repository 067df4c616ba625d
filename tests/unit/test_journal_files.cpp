// Who may read the journal: its files are the daemon user's alone, or one
// group's, whatever the umask (journal/file_access.hpp).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "journal/daemon_lock.hpp"
#include "journal/file_access.hpp"
#include "journal/journal.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::test::TempDir;

namespace {

struct stat stat_of(const std::string& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info;
}

unsigned mode_of(const std::string& path) { return stat_of(path).st_mode & 0777; }

// Sets the umask for one scope: the test's files must not depend on the caller's.
class Umask {
 public:
  explicit Umask(mode_t mask) : previous_(::umask(mask)) {}
  ~Umask() { ::umask(previous_); }

 private:
  mode_t previous_;
};

}  // namespace

TEST_CASE("a fresh journal, its -wal and -shm and the lock file are 0600 under umask 022, not 0644", "[files]") {
  Umask umask(022);
  TempDir dir;
  const std::string path = dir.file("journal.db");
  gapless::journal::DaemonLock lock(path);
  auto journal = Journal::open(path, {"cern"});
  REQUIRE(fs::exists(path + "-wal"));
  REQUIRE(fs::exists(path + "-shm"));
  CHECK(mode_of(path) == 0600);
  CHECK(mode_of(path + "-wal") == 0600);
  CHECK(mode_of(path + "-shm") == 0600);
  CHECK(mode_of(path + ".lock") == 0600);
  CHECK_FALSE(gapless::journal::exposure_warning(path));
}

TEST_CASE("with a group, the journal and its companions are 0660 and that group's, so status can read them",
          "[files]") {
  Umask umask(022);
  TempDir dir;
  const std::string path = dir.file("journal.db");
  auto journal = Journal::open(path, {"cern"});
  const struct group* own = ::getgrgid(::getegid());
  REQUIRE(own != nullptr);
  gapless::journal::share_with_group(path, own->gr_name);
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    INFO(file);
    CHECK(mode_of(file) == 0660);
    CHECK(stat_of(file).st_gid == own->gr_gid);
  }
  CHECK_THROWS_WITH(gapless::journal::share_with_group(path, "no-such-group-gapless"),
                    Contains("journal.group") && Contains("no-such-group-gapless"));
}

TEST_CASE("an existing journal readable by others is named in a warning with the fix", "[files]") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  Journal::open(path, {"cern"}).reset();
  ::chmod(path.c_str(), 0644);
  const auto warning = gapless::journal::exposure_warning(path);
  REQUIRE(warning);
  CHECK_THAT(*warning, Contains(path) && Contains("0644") && Contains("chmod 600"));
}
