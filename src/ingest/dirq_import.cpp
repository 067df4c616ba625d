// The rescue of a directory queue; what is taken, when, and what is removed
// are in dirq_import.hpp.
#include "ingest/dirq_import.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/duration.hpp"
#include "core/error.hpp"
#include "ingest/ingest.hpp"
#include "ingest/ingest_command.hpp"
#include "journal/configured_journal.hpp"

namespace gapless::ingest {

namespace {

// Bodies per transaction, beside DirqImportOptions::batch_size: memory stays
// bounded when the elements are large.
constexpr size_t kBatchBytes = 16 << 20;
// docs/osg-format.md 3.2: `<8 hex digits>/<14 hex digits>[.lck|.tmp]`.
constexpr size_t kDirectoryNameLength = 8;
constexpr size_t kElementNameLength = 14;
constexpr std::string_view kLockSuffix = ".lck";
constexpr std::string_view kTemporarySuffix = ".tmp";

bool hex_name(std::string_view name, size_t length) {
  return name.size() == length && name.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

bool has_suffix(std::string_view name, std::string_view suffix) {
  return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
}

std::string errno_text(int error) { return std::strerror(error); }

// A directory's entries as the file system lists them, "." and ".." left out.
class DirectoryListing {
 public:
  explicit DirectoryListing(const std::string& path) : path_(path), dir_(::opendir(path.c_str())) {
    if (dir_ == nullptr) error_ = errno;
  }
  ~DirectoryListing() {
    if (dir_ != nullptr) ::closedir(dir_);
  }
  DirectoryListing(const DirectoryListing&) = delete;
  DirectoryListing& operator=(const DirectoryListing&) = delete;

  // 0 when open, else the errno of opendir.
  int open_error() const { return error_; }

  std::optional<std::string> next() {
    if (dir_ == nullptr) return std::nullopt;
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(dir_);
      if (entry == nullptr) {
        if (errno != 0) throw Error("import-dirq: cannot list " + path_ + ": " + errno_text(errno));
        return std::nullopt;
      }
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") return std::string(name);
    }
  }

 private:
  std::string path_;
  DIR* dir_;
  int error_ = 0;
};

// A file the current batch took, and what goes with it once journaled.
struct TakenFile {
  std::string path;
  std::string lock_path;  // its element's .lck, removed after it; empty when none
  bool lock_is_ours = false;
};

class QueueImport {
 public:
  QueueImport(journal::Journal& journal, const DirqImportOptions& options, const MessageRulesConfig& rules)
      : journal_(journal), options_(options), rules_(rules) {
    ::timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    now_ms_ = int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
  }

  // A journal error leaves the batch's files in place, and unlocked.
  ~QueueImport() {
    for (const TakenFile& file : files_)
      if (file.lock_is_ours) ::unlink(file.lock_path.c_str());
  }
  QueueImport(const QueueImport&) = delete;
  QueueImport& operator=(const QueueImport&) = delete;

  void directory(const std::string& path) {
    DirectoryListing listing(path);
    if (listing.open_error() != 0) return unreadable(path, "cannot list it: " + errno_text(listing.open_error()));
    while (std::optional<std::string> name = listing.next()) entry(path, *name);
  }

  DirqImportResult finish() {
    flush();
    return result_;
  }

  void unreadable(const std::string& path, const std::string& reason) {
    ++result_.unreadable;
    if (options_.on_unreadable) options_.on_unreadable(path, reason);
  }

 private:
  void entry(const std::string& directory, const std::string& name) {
    const std::string path = directory + "/" + name;
    if (hex_name(name, kElementNameLength)) return element(path);
    const std::string_view stem = std::string_view(name).substr(0, name.size() - kLockSuffix.size());
    if (has_suffix(name, kLockSuffix) && hex_name(stem, kElementNameLength)) {
      // Beside its element the lock is the element's concern; alone, stompclt
      // stopped between removing an element and removing its lock.
      struct stat element_status {};
      if (::lstat((directory + "/" + std::string(stem)).c_str(), &element_status) == 0) return;
      return if_old_enough(path, TakenFile{path, "", false});
    }
    if (has_suffix(name, kTemporarySuffix) && hex_name(stem, kElementNameLength))
      return if_old_enough(path, TakenFile{path, "", false});
    unreadable(path, "not a directory-queue element (expected 14 lowercase hex digits, optionally .lck or .tmp)");
  }

  void element(const std::string& path) {
    const std::string lock_path = path + std::string(kLockSuffix);
    if (options_.keep) {
      struct stat lock_status {};
      if (::lstat(lock_path.c_str(), &lock_status) == 0) return if_old_enough(path, TakenFile{path, "", false});
      return take(TakenFile{path, "", false});
    }
    // Directory::Queue's lock: whoever makes the link holds the element.
    if (::link(path.c_str(), lock_path.c_str()) == 0) {
      // A fresh lock to anyone's purge(). Failing with ENOENT, the element was
      // locked and removed by another while the link was made: not ours.
      if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0 && errno == ENOENT) {
        ::unlink(lock_path.c_str());
        return;
      }
      return take(TakenFile{path, lock_path, true});
    }
    const int error = errno;
    if (error == ENOENT) return;  // taken by whoever holds the queue beside us
    if (error == EEXIST) return if_old_enough(path, TakenFile{path, lock_path, false});
    unreadable(path, "cannot lock it (link to " + lock_path + "): " + errno_text(error));
  }

  // A lock or a .tmp: another process may be sending or writing it.
  void if_old_enough(const std::string& path, TakenFile file) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) {
      if (errno == ENOENT) return;
      return unreadable(path, "cannot stat it: " + errno_text(errno));
    }
    const int64_t modified_ms = int64_t{status.st_mtim.tv_sec} * 1000 + status.st_mtim.tv_nsec / 1'000'000;
    if (now_ms_ - modified_ms < options_.min_age.count()) {
      ++result_.left_young;
      return;
    }
    take(std::move(file));
  }

  void take(TakenFile file) {
    std::string text;
    if (std::optional<std::string> failure = read_whole(file.path, text)) return leave(file, *failure);
    try {
      journal::NewMessage message = parse_message_at_the_door(text, rules_);
      batch_bytes_ += message.body.size();
      messages_.push_back(std::move(message));
    } catch (const std::exception& e) {  // the parser's words, whatever their type
      return leave(file, e.what());
    }
    files_.push_back(std::move(file));
    if (messages_.size() >= options_.batch_size || batch_bytes_ >= kBatchBytes) flush();
  }

  void leave(const TakenFile& file, const std::string& reason) {
    if (file.lock_is_ours) ::unlink(file.lock_path.c_str());
    unreadable(file.path, reason);
  }

  // Empty when `text` holds the file, else why not.
  static std::optional<std::string> read_whole(const std::string& path, std::string& text) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return "cannot open it: " + errno_text(errno);
    struct stat status {};
    std::optional<std::string> failure;
    if (::fstat(fd, &status) != 0) {
      failure = "cannot stat it: " + errno_text(errno);
    } else if (!S_ISREG(status.st_mode)) {
      failure = "not a regular file";
    } else {
      text.resize(static_cast<size_t>(status.st_size));
      size_t done = 0;
      while (done < text.size()) {
        const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
          failure = "cannot read it: " + errno_text(errno);
          break;
        }
        if (got == 0) break;
        done += static_cast<size_t>(got);
      }
      text.resize(done);
      if (!failure && text.find_first_not_of(" \t\r\n") == std::string::npos)
        failure = "empty file (no message in it)";
    }
    ::close(fd);
    return failure;
  }

  // One transaction; then, unless `keep`, the files it journaled go.
  void flush() {
    if (messages_.empty()) return;
    const journal::AppendResult appended = journal_.append(messages_);
    result_.appended += appended.appended;
    result_.duplicates += appended.duplicates;
    result_.elements += static_cast<int64_t>(files_.size());
    messages_.clear();
    batch_bytes_ = 0;
    if (options_.after_commit) options_.after_commit();
    std::vector<TakenFile> files = std::move(files_);
    files_.clear();
    if (options_.keep) return;
    for (const TakenFile& file : files) {
      if (::unlink(file.path.c_str()) != 0 && errno != ENOENT) {
        unreadable(file.path, "journaled, but cannot be removed: " + errno_text(errno) +
                                  " (the next import finds it journaled and removes it)");
        if (file.lock_is_ours) ::unlink(file.lock_path.c_str());
        continue;
      }
      if (!file.lock_path.empty()) ::unlink(file.lock_path.c_str());
      ++result_.removed;
    }
  }

  journal::Journal& journal_;
  const DirqImportOptions& options_;
  const MessageRulesConfig& rules_;
  int64_t now_ms_ = 0;
  std::vector<journal::NewMessage> messages_;
  std::vector<TakenFile> files_;  // files_[i] holds messages_[i]
  size_t batch_bytes_ = 0;
  DirqImportResult result_;
};

// The newest intermediate directory (greatest name), which a running writer
// may be adding to: it is never removed.
std::string newest_directory(const std::string& queue_path) {
  DirectoryListing listing(queue_path);
  if (listing.open_error() != 0)
    throw Error("import-dirq: cannot read the directory queue " + queue_path + ": " +
                errno_text(listing.open_error()));
  std::string newest;
  while (std::optional<std::string> name = listing.next())
    if (hex_name(*name, kDirectoryNameLength) && *name > newest) newest = *name;
  return newest;
}

}  // namespace

DirqImportResult import_dirq(const std::string& queue_path, journal::Journal& journal,
                             const DirqImportOptions& options, const MessageRulesConfig& rules) {
  const std::string newest = newest_directory(queue_path);
  DirqImportResult result;
  {
    QueueImport queue(journal, options, rules);
    DirectoryListing listing(queue_path);
    while (std::optional<std::string> name = listing.next()) {
      const std::string path = queue_path + "/" + *name;
      if (hex_name(*name, kDirectoryNameLength))
        queue.directory(path);
      else
        queue.unreadable(path, "not part of a directory queue (expected directories named by 8 lowercase hex digits)");
    }
    result = queue.finish();
  }
  // Emptied directories go as purge() removes them: all but the newest. A
  // directory still holding something is refused by rmdir itself.
  if (!options.keep) {
    DirectoryListing listing(queue_path);
    while (std::optional<std::string> name = listing.next())
      if (hex_name(*name, kDirectoryNameLength) && *name < newest) ::rmdir((queue_path + "/" + *name).c_str());
  }
  spdlog::info(
      "import-dirq: done queue={} elements={} appended={} duplicates={} removed={} left_young={} unreadable={}",
      queue_path, result.elements, result.appended, result.duplicates, result.removed, result.left_young,
      result.unreadable);
  return result;
}

int import_dirq_command(const Config& config, const std::string& queue_path, DirqImportOptions options) {
  options.on_unreadable = [](const std::string& path, const std::string& reason) {
    std::cerr << "gapless: import-dirq: " << path << ": " << reason << "; left in place\n";
  };
  return within_disk_reserve(config, "import-dirq", [&] {
    auto journal = journal::open_configured(config);
    const DirqImportResult result = import_dirq(queue_path, *journal, options, config.messages);
    std::cout << "import-dirq: " << result.elements << " elements read: " << result.appended << " journaled, "
              << result.duplicates << " already journaled, " << result.removed << " removed; "
              << result.left_young << " locked or being written, younger than " << format_duration(options.min_age)
              << ", left alone; " << result.unreadable << " left in place, unreadable (listed on stderr)\n";
    return result.unreadable == 0 ? 0 : 1;
  });
}

}  // namespace gapless::ingest
