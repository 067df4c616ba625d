// Proves import-dirq journals every message a stompclt directory queue holds, once, leaves what is young or unreadable in place (reported), removes only what a committed transaction holds, and stops where the journal reaches [journal] max_size.
//
// The queues are built here in Directory::Queue::Simple's exact layout
// (docs/osg-format.md 3.2-3.4): `<8 hex>/<14 hex>` elements added through a
// `.tmp` and link(), locks as hard links `.lck`, ages set with utimensat.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingest/dirq_import.hpp"
#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using gapless::ingest::DirqImportOptions;
using gapless::ingest::DirqImportResult;
using gapless::ingest::import_dirq;
using gapless::test::count_rows;
using gapless::test::TempDir;

namespace {

constexpr int64_t kHour = 3600;
const std::string kDestination = "/topic/perfsonar.raw.packet-loss-rate";

bool exists(const std::string& path) {
  struct stat status {};
  return ::lstat(path.c_str(), &status) == 0;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// The modification time `seconds_ago` (a lock's age is its element's mtime:
// they are one inode).
void set_age(const std::string& path, int64_t seconds_ago) {
  const ::timespec when{static_cast<time_t>(::time(nullptr) - seconds_ago), 0};
  const ::timespec times[2] = {when, when};
  if (::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    throw std::runtime_error("utimensat failed on " + path);
}

int64_t mtime_of(const std::string& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) throw std::runtime_error("cannot stat " + path);
  return status.st_mtim.tv_sec;
}

// An element as Messaging::Message 1.5 writes a text body (3.4): no spaces,
// "text" first, a header number unquoted.
std::string perl_element(int number) {
  return R"({"text":true,"header":{"destination":")" + kDestination +
         R"(","ts_start":1473706479,"summaries":"0"},"body":"{\"datapoints\":{\"1473706479\":)" +
         std::to_string(number) + R"(}}"})";
}

// An element as rsv-perfsonar's Python 2 writer left it (3.3): spaces, integer
// headers, a byte-string body with neither "text" nor "encoding".
std::string rsv_element(int number) {
  return R"({"header": {"input-source": "ps.example.org", "ts_start": 1473706479, "event-type": "packet-loss-rate", )"
         R"("summaries": 0, "destination": ")" + kDestination +
         R"("}, "body": "{\"meta\": {}, \"datapoints\": {\"1473706479\": )" + std::to_string(number) + R"(}}"})";
}

// A Directory::Queue::Simple queue (granularity 5) in a temporary directory.
class DirectoryQueue {
 public:
  explicit DirectoryQueue(const std::string& path) : path_(path) { fs::create_directories(path_); }

  const std::string& path() const { return path_; }

  // add(): `<name>.tmp` written, linked to `<name>`, unlinked. Returns the element's path.
  std::string add(int64_t seconds, const std::string& json) {
    const std::string element = next_name(seconds);
    write_file(element + ".tmp", json);
    if (::link((element + ".tmp").c_str(), element.c_str()) != 0) throw std::runtime_error("link failed");
    ::unlink((element + ".tmp").c_str());
    return element;
  }

  // A writer stopped before link(): only `<name>.tmp`. Returns its path.
  std::string add_unfinished(int64_t seconds, const std::string& json) {
    const std::string temporary = next_name(seconds) + ".tmp";
    write_file(temporary, json);
    return temporary;
  }

  // lock(): a hard link `<element>.lck`; the library sets the mtime, the test its age.
  static std::string lock(const std::string& element) {
    const std::string lock_path = element + ".lck";
    if (::link(element.c_str(), lock_path.c_str()) != 0) throw std::runtime_error("lock failed");
    return lock_path;
  }

  // Every file left under the queue, relative to it.
  std::set<std::string> files() const {
    std::set<std::string> found;
    for (const auto& entry : fs::recursive_directory_iterator(path_))
      if (entry.is_regular_file()) found.insert(fs::relative(entry.path(), path_).string());
    return found;
  }

  std::string directory_of(int64_t seconds) const {
    char name[16];
    std::snprintf(name, sizeof name, "%08llx", static_cast<unsigned long long>(seconds - seconds % 5));
    return path_ + "/" + name;
  }

 private:
  // `%08x%05x%01x`: seconds, microseconds, the writer's random digit.
  std::string next_name(int64_t seconds) {
    fs::create_directories(directory_of(seconds));
    char name[32];
    std::snprintf(name, sizeof name, "%08llx%05x%01x", static_cast<unsigned long long>(seconds), micros_++, 0xb);
    return directory_of(seconds) + "/" + name;
  }

  std::string path_;
  unsigned micros_ = 600990;
};

struct ImportFixture {
  TempDir dir{"dirq-import-test"};
  DirectoryQueue queue{dir.file("rsv-perfsonar")};
  std::unique_ptr<gapless::journal::Journal> journal = gapless::journal::Journal::open(dir.file("j.db"), {"local"});
  std::map<std::string, std::string> unreadable;  // path -> reason

  DirqImportResult run_import(DirqImportOptions options = {}) {
    options.on_unreadable = [this](const std::string& path, const std::string& reason) { unreadable[path] = reason; };
    return import_dirq(queue.path(), *journal, options, gapless::default_config());  // sink "local"
  }

  int64_t messages() { return count_rows(*journal, "SELECT COUNT(*) FROM message"); }

  std::set<std::string> bodies() {
    std::set<std::string> found;
    for (const auto& message : gapless::test::claim_all(*journal, "local")) found.insert(message.body);
    return found;
  }
};

std::string body_of(int number) { return "{\"datapoints\":{\"1473706479\":" + std::to_string(number) + "}}"; }
std::string rsv_body_of(int number) {
  return "{\"meta\": {}, \"datapoints\": {\"1473706479\": " + std::to_string(number) + "}}";
}

}  // namespace

TEST_CASE("import-dirq loses no old element, ordinary, locked, lone lock or .tmp, and takes no young lock or .tmp",
          "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - 2 * kHour;
  const std::string oldest_directory = f.queue.directory_of(old_time - 60);
  const std::string lone = f.queue.add(old_time - 60, perl_element(1));  // alone in the oldest directory
  const std::string ordinary = f.queue.add(old_time, perl_element(2));
  const std::string from_rsv = f.queue.add(old_time, rsv_element(3));
  const std::string locked_old = f.queue.add(old_time, perl_element(4));
  DirectoryQueue::lock(locked_old);
  set_age(locked_old, kHour);  // a stompclt that died while sending it
  const std::string unfinished_old = f.queue.add_unfinished(old_time, perl_element(5));
  set_age(unfinished_old, kHour);
  const std::string lone_lock = DirectoryQueue::lock(f.queue.add(old_time, perl_element(6)));
  ::unlink(lone_lock.substr(0, lone_lock.size() - 4).c_str());  // stompclt stopped between its two unlinks
  set_age(lone_lock, kHour);
  const std::string locked_young = f.queue.add(old_time, perl_element(7));
  DirectoryQueue::lock(locked_young);  // being sent right now
  set_age(locked_young, 0);
  const std::string unfinished_young = f.queue.add_unfinished(old_time, perl_element(8));  // being written
  const std::string newest = f.queue.add(old_time + 60, perl_element(9));

  const DirqImportResult result = f.run_import();

  CHECK(result.appended == 7);
  CHECK(result.duplicates == 0);
  CHECK(result.removed == 7);
  CHECK(result.left_young == 2);
  CHECK(result.unreadable == 0);
  CHECK(f.unreadable.empty());
  CHECK(f.bodies() == std::set<std::string>{body_of(1), body_of(2), rsv_body_of(3), body_of(4), body_of(5),
                                            body_of(6), body_of(9)});
  const std::string old_directory = fs::path(ordinary).parent_path().filename().string();
  const std::string young_lock = fs::path(locked_young).filename().string() + ".lck";
  CHECK(f.queue.files() == std::set<std::string>{old_directory + "/" + fs::path(locked_young).filename().string(),
                                                 old_directory + "/" + young_lock,
                                                 old_directory + "/" + fs::path(unfinished_young).filename().string()});
  CHECK_FALSE(exists(oldest_directory));                          // emptied, and not the newest
  CHECK(exists(fs::path(newest).parent_path().string()));         // the newest stays, as purge() leaves it
}

TEST_CASE("import-dirq reports a corrupt element by path and reason and leaves it, unlocked, while importing the rest",
          "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  const std::string good = f.queue.add(old_time, perl_element(1));
  const std::string corrupt = f.queue.add(old_time, perl_element(2).substr(0, 40));  // cut short by a power cut
  const std::string empty = f.queue.add(old_time, "");
  const std::string refused = f.queue.add(old_time, R"({"header":{"destination":"/topic/t","expires":"0"},"body":"x"})");
  const std::string stray = fs::path(good).parent_path().string() + "/notes.txt";
  write_file(stray, "not an element");

  const DirqImportResult result = f.run_import();

  CHECK(result.appended == 1);
  CHECK(result.unreadable == 4);
  REQUIRE(f.unreadable.count(corrupt) == 1);
  CHECK_THAT(f.unreadable[corrupt], Contains("not valid JSON"));
  REQUIRE(f.unreadable.count(empty) == 1);
  CHECK_THAT(f.unreadable[empty], Contains("empty file"));
  REQUIRE(f.unreadable.count(refused) == 1);
  CHECK_THAT(f.unreadable[refused], Contains("message refused") && Contains("expires"));
  REQUIRE(f.unreadable.count(stray) == 1);
  CHECK_THAT(f.unreadable[stray], Contains("not a directory-queue element"));
  for (const std::string& left : {corrupt, empty, refused}) {
    CHECK(exists(left));
    CHECK_FALSE(exists(left + ".lck"));  // stompclt can still take it, or the operator mend it
  }
  CHECK_FALSE(exists(good));
  CHECK(f.messages() == 1);
}

TEST_CASE("import-dirq run twice with --keep journals nothing new and changes nothing in the queue", "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  for (int i = 0; i < 5; ++i) f.queue.add(old_time, perl_element(i));
  const std::string locked = f.queue.add(old_time, perl_element(5));
  DirectoryQueue::lock(locked);
  set_age(locked, kHour);
  const std::set<std::string> before = f.queue.files();
  const int64_t locked_mtime = mtime_of(locked);

  DirqImportOptions keep;
  keep.keep = true;
  const DirqImportResult first = f.run_import(keep);
  const DirqImportResult second = f.run_import(keep);

  CHECK(first.appended == 6);
  CHECK(second.appended == 0);
  CHECK(second.duplicates == 6);
  CHECK(f.messages() == 6);
  CHECK(f.queue.files() == before);  // no element removed, no lock made or left
  CHECK(mtime_of(locked) == locked_mtime);
}

TEST_CASE("import-dirq removes an element only after the transaction that journaled it has committed", "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  std::vector<std::string> elements;
  for (int i = 0; i < 5; ++i) elements.push_back(f.queue.add(old_time, perl_element(i)));

  DirqImportOptions options;
  options.batch_size = 2;
  std::vector<int64_t> journaled_at_commit;
  std::vector<size_t> present_at_commit;
  options.after_commit = [&] {
    journaled_at_commit.push_back(f.messages());  // another connection: what is committed
    size_t present = 0;
    for (const std::string& element : elements) present += exists(element) ? 1 : 0;
    present_at_commit.push_back(present);
  };
  const DirqImportResult result = f.run_import(options);

  CHECK(result.removed == 5);
  CHECK(journaled_at_commit == std::vector<int64_t>{2, 4, 5});
  // Each batch's files are still there when its commit is seen from outside.
  CHECK(present_at_commit == std::vector<size_t>{5, 3, 1});
  CHECK(f.queue.files().empty());
}

TEST_CASE("import-dirq after a crash between commit and removal journals those elements once", "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  for (int i = 0; i < 3; ++i) f.queue.add(old_time, perl_element(i));
  const std::set<std::string> queued = f.queue.files();

  DirqImportOptions crashing;
  crashing.after_commit = [] { throw std::runtime_error("killed between commit and unlink"); };
  CHECK_THROWS_WITH(f.run_import(crashing), "killed between commit and unlink");
  CHECK(f.messages() == 3);
  CHECK(f.queue.files() == queued);  // journaled, still queued, no lock of the import left

  const DirqImportResult again = f.run_import();

  CHECK(again.appended == 0);
  CHECK(again.duplicates == 3);
  CHECK(again.removed == 3);
  CHECK(f.messages() == 3);
  CHECK(f.queue.files().empty());
}

TEST_CASE("import-dirq takes a directory longer than one listing round whole, its own locks listed back not counted "
          "as young", "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  constexpr int kElements = 4200;  // more names than one round lists (4096): the rest are listed beside our locks
  for (int i = 0; i < kElements; ++i) f.queue.add(old_time, perl_element(i));

  DirqImportOptions options;
  options.batch_size = 100;  // batches removed while the directory is still listed
  const DirqImportResult result = f.run_import(options);

  CHECK(result.appended == kElements);
  CHECK(result.duplicates == 0);
  CHECK(result.removed == kElements);
  CHECK(result.left_young == 0);
  CHECK(result.unreadable == 0);
  CHECK(f.messages() == kElements);
  CHECK(f.queue.files().empty());
}

TEST_CASE("import-dirq adds nothing for a .tmp left between link and unlink (a copy of its element)", "[dirq]") {
  ImportFixture f;
  const int64_t old_time = ::time(nullptr) - kHour;
  const std::string element = f.queue.add(old_time, perl_element(1));
  const std::string copy = element + ".tmp";
  write_file(copy, perl_element(1));
  set_age(copy, kHour);

  const DirqImportResult result = f.run_import();

  CHECK(result.appended == 1);
  CHECK(result.duplicates == 1);
  CHECK(f.queue.files().empty());
}

TEST_CASE("gapless import-dirq exits 1 naming the unreadable element on stderr, and --min-age 0s takes young locks",
          "[dirq][command]") {
  TempDir dir{"dirq-import-command"};
  DirectoryQueue queue(dir.file("queue"));
  const int64_t now = ::time(nullptr);
  queue.add(now, perl_element(1));
  const std::string young = queue.add(now, perl_element(2));
  DirectoryQueue::lock(young);
  set_age(young, 0);
  const std::string corrupt = queue.add(now, "{\"header\":");
  const std::string config_path = dir.file("gapless.toml");
  write_file(config_path, "[journal]\npath = " + nlohmann::json(dir.file("journal.db")).dump() +
                              "\n[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n");

  const auto first = gapless::test::run_gapless({"import-dirq", "--config", config_path, queue.path()},
                                                 dir.file("stderr"));
  INFO("stdout: " << first.out << "\nstderr: " << first.err);
  CHECK(first.exit_code == 1);
  CHECK_THAT(first.err, Contains(corrupt + ": not valid JSON") && Contains("left in place"));
  CHECK_THAT(first.out, Contains("1 journaled") && Contains("1 locked or being written, younger than 10m"));
  CHECK(exists(young));

  const auto second = gapless::test::run_gapless(
      {"import-dirq", "--config", config_path, "--min-age", "0s", queue.path()}, dir.file("stderr"));
  INFO("stdout: " << second.out << "\nstderr: " << second.err);
  CHECK(second.exit_code == 1);  // the corrupt element is still there
  CHECK_THAT(second.out, Contains("1 journaled"));
  CHECK_FALSE(exists(young));
  CHECK(exists(corrupt));
}

TEST_CASE("gapless import-dirq that reaches max_size stops before its next batch, exits 1, and leaves the rest in the "
          "queue unlocked", "[dirq][command][size-limit]") {
  TempDir dir{"dirq-import-size-limit"};
  DirectoryQueue queue(dir.file("queue"));
  // 1500 elements of about 2 KB: the first batch (1000, about 2 MB) passes a limit of 1 MiB, the second must not start.
  const int64_t old_time = ::time(nullptr) - kHour;
  for (int i = 0; i < 1500; ++i)
    queue.add(old_time, R"({"text":true,"header":{"destination":")" + kDestination + R"("},"body":")" +
                            std::to_string(i) + std::string(2000, 'x') + "\"}");
  const std::string config_path = dir.file("gapless.toml");
  const std::string journal_path = dir.file("journal.db");
  write_file(config_path, "[journal]\npath = " + nlohmann::json(journal_path).dump() +
                              "\nmax_size = 1048576\n[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n");

  const auto result =
      gapless::test::run_gapless({"import-dirq", "--config", config_path, queue.path()}, dir.file("stderr"));

  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Contains("[journal] max_size (1048576)"));
  CHECK_THAT(result.err, Contains("import-dirq: stopped: 1000 elements were journaled before it (they stay, removed "
                                  "from the queue), every other element stays in " + queue.path() + ", unlocked"));
  auto journal = gapless::journal::Journal::open(journal_path, {"local"});
  CHECK(count_rows(*journal, "SELECT COUNT(*) FROM message") == 1000);  // without the per-batch check: 1500
  const std::set<std::string> left = queue.files();
  CHECK(left.size() == 500);
  for (const std::string& file : left) CHECK_FALSE(fs::path(file).extension() == ".lck");
}
