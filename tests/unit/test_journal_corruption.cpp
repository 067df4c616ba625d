// Proves a journal that is not ours, too new or damaged is refused untouched.
#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
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
    db.exec("PRAGMA user_version = 8");
  }
  require_refused_untouched(path, "schema version 8, newer than version 7");
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
