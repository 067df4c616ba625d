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

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/duration.hpp"
#include "core/error.hpp"
#include "ingest/ingest.hpp"
#include "ingest/ingest_command.hpp"
#include "ingest/worker_pool.hpp"
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
// Names listed from a directory before any of them is taken (memory stays
// bounded in a directory of any size).
constexpr size_t kNamesPerRound = 4096;
// Threads taking (lock, read, parse) a round's files: the CPU an element
// costs is about twice a line of `gapless ingest`, and is spread over them.
constexpr size_t kTakers = 4;
// Names taken at once, their messages held beside the batch's.
constexpr size_t kTakenAtOnce = 256;
// Threads removing a committed batch's files: on ext4 mounted `discard`
// each unlink waits for the device's trim, and those waits overlap.
constexpr size_t kRemovers = 8;

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
  // Lists `path`, or the directory `fd` is open on (the listing has its own
  // descriptor; `fd` stays the caller's).
  explicit DirectoryListing(const std::string& path, int fd = -1) : path_(path) {
    if (fd < 0) {
      dir_ = ::opendir(path.c_str());
    } else if (const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0); own >= 0) {
      dir_ = ::fdopendir(own);
      if (dir_ == nullptr) ::close(own);
    }
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

  // Up to `count` names at once: those taken from one round are listed
  // before the round makes its locks, so readdir does not list them back.
  std::vector<std::string> next_round(size_t count) {
    std::vector<std::string> names;
    while (names.size() < count) {
      std::optional<std::string> name = next();
      if (!name) break;
      names.push_back(std::move(*name));
    }
    return names;
  }

 private:
  std::string path_;
  DIR* dir_ = nullptr;
  int error_ = 0;
};

// An intermediate directory, open while it is read and until the removals of
// its last journaled batch: every call on its entries is relative to it
// (no path walked again per file).
class QueueDirectory {
 public:
  QueueDirectory(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~QueueDirectory() { ::close(fd_); }
  QueueDirectory(const QueueDirectory&) = delete;
  QueueDirectory& operator=(const QueueDirectory&) = delete;

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  std::string path_of(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
  int fd_;
};

// A file the current batch took, and what goes with it once journaled.
struct TakenFile {
  std::shared_ptr<const QueueDirectory> directory;
  std::string name;
  bool has_lock = false;  // its element's .lck, removed after it
  bool lock_is_ours = false;

  std::string path() const { return directory->path_of(name); }
  std::string lock_name() const { return name + std::string(kLockSuffix); }
};

// A file taken, with its message.
struct Taken {
  TakenFile file;
  journal::NewMessage message;
};

class QueueImport {
 public:
  QueueImport(std::string queue_path, journal::Journal& journal, const DirqImportOptions& options,
              const Config& config)
      : queue_path_(std::move(queue_path)), journal_(journal), options_(options), config_(config) {
    ::timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    now_ms_ = int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
  }

  // A journal error leaves the batch's files in place, and unlocked (the
  // batch being written unlocks its own).
  ~QueueImport() {
    if (writing_.valid()) writing_.wait();
    unlock(files_);
  }
  QueueImport(const QueueImport&) = delete;
  QueueImport& operator=(const QueueImport&) = delete;

  void directory(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return unreadable(path, "cannot list it: " + errno_text(errno));
    const auto directory = std::make_shared<const QueueDirectory>(path, fd);
    DirectoryListing listing(path, fd);
    if (listing.open_error() != 0) return unreadable(path, "cannot list it: " + errno_text(listing.open_error()));
    for (;;) {
      const std::vector<std::string> names = listing.next_round(kNamesPerRound);
      if (names.empty()) break;
      for (size_t begin = 0; begin < names.size(); begin += kTakenAtOnce) {
        const size_t count = std::min(kTakenAtOnce, names.size() - begin);
        std::vector<std::optional<Taken>> taken(count);
        takers_.for_each(count, [&](size_t i, size_t worker) {
          taken[i] = entry(directory, names[begin + i], texts_[worker]);
        });
        // In the listing's order: a batch holds what one reader would have put in it.
        for (size_t i = 0; i < count; ++i) {
          if (!taken[i]) continue;
          try {
            add(std::move(*taken[i]));
          } catch (...) {  // the writer's error: what is taken and not yet added is unlocked
            for (size_t rest = i + 1; rest < count; ++rest)
              if (taken[rest] && taken[rest]->file.lock_is_ours)
                ::unlinkat(directory->fd(), taken[rest]->file.lock_name().c_str(), 0);
            throw;
          }
        }
      }
    }
  }

  DirqImportResult finish() {
    flush();
    wait_for_writer();
    return result_;
  }

  // Also called by the writer's thread.
  void unreadable(const std::string& path, const std::string& reason) {
    const std::lock_guard<std::mutex> lock(report_mutex_);
    ++result_.unreadable;
    if (options_.on_unreadable) options_.on_unreadable(path, reason);
  }

 private:
  using Directory = std::shared_ptr<const QueueDirectory>;

  static bool present(const Directory& directory, const std::string& name) {
    struct stat status {};
    return ::fstatat(directory->fd(), name.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0;
  }

  // The file `name` of `directory`, taken with its message, or nothing
  // (left alone, or reported); `text` is the calling thread's read buffer.
  // Called by several threads at once.
  std::optional<Taken> entry(const Directory& directory, const std::string& name, std::string& text) {
    if (hex_name(name, kElementNameLength)) return element(directory, name, text);
    const std::string_view stem = std::string_view(name).substr(0, name.size() - kLockSuffix.size());
    if (has_suffix(name, kLockSuffix) && hex_name(stem, kElementNameLength)) {
      // Beside its element the lock is the element's concern; alone, stompclt
      // stopped between removing an element and removing its lock.
      if (present(directory, std::string(stem))) return std::nullopt;
      return if_old_enough(TakenFile{directory, name, false, false}, text, Recent::skipped);
    }
    if (has_suffix(name, kTemporarySuffix) && hex_name(stem, kElementNameLength))
      return if_old_enough(TakenFile{directory, name, false, false}, text);
    unreadable(directory->path_of(name),
               "not a directory-queue element (expected 14 lowercase hex digits, optionally .lck or .tmp)");
    return std::nullopt;
  }

  std::optional<Taken> element(const Directory& directory, const std::string& name, std::string& text) {
    TakenFile file{directory, name, false, false};
    if (options_.keep) {
      if (present(directory, file.lock_name())) return if_old_enough(std::move(file), text);
      return take(std::move(file), text);
    }
    // Directory::Queue's lock: whoever makes the link holds the element.
    if (::linkat(directory->fd(), name.c_str(), directory->fd(), file.lock_name().c_str(), 0) == 0) {
      file.has_lock = file.lock_is_ours = true;
      return take(std::move(file), text);
    }
    const int error = errno;
    if (error == ENOENT) return std::nullopt;  // taken by whoever holds the queue beside us
    if (error == EEXIST) {
      file.has_lock = true;
      return if_old_enough(std::move(file), text);
    }
    unreadable(file.path(), "cannot lock it (link to " + file.lock_name() + "): " + errno_text(error));
    return std::nullopt;
  }

  // A lone lock made since the import began is one of its own, listed back
  // while the writer's thread removes it after its element, or another's
  // being removed as well; an abandoned one is older.
  enum class Recent { counted_young, skipped };

  // A lock or a .tmp: another process may be sending or writing it.
  std::optional<Taken> if_old_enough(TakenFile file, std::string& text, Recent recent = Recent::counted_young) {
    struct stat status {};
    if (::fstatat(file.directory->fd(), file.name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return std::nullopt;
      unreadable(file.path(), "cannot stat it: " + errno_text(errno));
      return std::nullopt;
    }
    const int64_t modified_ms = int64_t{status.st_mtim.tv_sec} * 1000 + status.st_mtim.tv_nsec / 1'000'000;
    // A second's margin: the file system's clock runs a little behind.
    if (recent == Recent::skipped && modified_ms >= now_ms_ - 1000) return std::nullopt;
    if (now_ms_ - modified_ms < options_.min_age.count()) {
      const std::lock_guard<std::mutex> lock(report_mutex_);
      ++result_.left_young;
      return std::nullopt;
    }
    return take(std::move(file), text);
  }

  std::optional<Taken> take(TakenFile file, std::string& text) {
    const int fd = ::openat(file.directory->fd(), file.name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
      const int error = errno;
      // Our fresh lock's element gone: another took it between link and open.
      if (error == ENOENT && file.lock_is_ours) ::unlinkat(file.directory->fd(), file.lock_name().c_str(), 0);
      else leave(file, "cannot open it: " + errno_text(error));
      return std::nullopt;
    }
    // A fresh lock to anyone's purge(): the lock is this inode's mtime.
    if (file.lock_is_ours) ::futimens(fd, nullptr);
    std::optional<std::string> failure = read_whole(fd, text);
    ::close(fd);
    if (failure) {
      leave(file, *failure);
      return std::nullopt;
    }
    journal::NewMessage message;
    try {
      message = parse_message_at_the_door(text, config_);
    } catch (const std::exception& e) {  // the parser's words, whatever their type
      leave(file, e.what());
      return std::nullopt;
    }
    return Taken{std::move(file), std::move(message)};
  }

  // A taken file into the batch, which goes to the writer once full.
  void add(Taken taken) {
    batch_bytes_ += taken.message.body.size();
    messages_.push_back(std::move(taken.message));
    files_.push_back(std::move(taken.file));
    if (messages_.size() >= options_.batch_size || batch_bytes_ >= kBatchBytes) flush();
  }

  void leave(const TakenFile& file, const std::string& reason) {
    if (file.lock_is_ours) ::unlinkat(file.directory->fd(), file.lock_name().c_str(), 0);
    unreadable(file.path(), reason);
  }

  // Empty when `text` holds the file open on `fd`, else why not.
  static std::optional<std::string> read_whole(int fd, std::string& text) {
    struct stat status {};
    if (::fstat(fd, &status) != 0) return "cannot stat it: " + errno_text(errno);
    if (!S_ISREG(status.st_mode)) return std::string("not a regular file");
    text.resize(static_cast<size_t>(status.st_size));
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return "cannot read it: " + errno_text(errno);
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    text.resize(done);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return std::string("empty file (no message in it)");
    return std::nullopt;
  }

  struct Batch {
    std::vector<journal::NewMessage> messages;
    std::vector<TakenFile> files;  // files[i] holds messages[i]
  };

  // The batch read so far goes to the writer's thread, once the one before
  // it is written: the next batch is read while this one is journaled and
  // removed (at most two batches in memory).
  void flush() {
    if (messages_.empty()) return;
    wait_for_writer();
    Batch batch{std::move(messages_), std::move(files_)};
    messages_.clear();
    files_.clear();
    batch_bytes_ = 0;
    writing_ = std::async(std::launch::async, [this, batch = std::move(batch)] { write(batch); });
  }

  // The writer's error (the journal's, or the test hook's) surfaces here.
  void wait_for_writer() {
    if (writing_.valid()) writing_.get();
  }

  static void unlock(const std::vector<TakenFile>& files) {
    for (const TakenFile& file : files)
      if (file.lock_is_ours) ::unlinkat(file.directory->fd(), file.lock_name().c_str(), 0);
  }

  // One transaction; then, unless `keep`, the files it journaled go, and
  // their directories are synced once per batch so that the removals outlive
  // a power cut (else a queue's elements could come back after the journal
  // pruned them, and be journaled and sent again).
  void write(const Batch& batch) {
    try {
      if (options_.before_batch) stop_at_size_limit();
      const journal::AppendResult appended = journal_.append(batch.messages);
      {
        const std::lock_guard<std::mutex> lock(report_mutex_);
        result_.appended += appended.appended;
        result_.duplicates += appended.duplicates;
        result_.elements += static_cast<int64_t>(batch.files.size());
      }
      if (options_.after_commit) options_.after_commit();
    } catch (...) {
      unlock(batch.files);
      throw;
    }
    if (options_.keep) return;
    // Removed by several threads: freeing a file's blocks may wait for the
    // device (ext4 mounted with `discard` trims them within the unlink), and
    // those waits overlap; the directory's own changes the kernel serialises.
    std::atomic<int64_t> removed{0};
    removers_.for_each(batch.files.size(), [&](size_t i, size_t) {
      if (remove(batch.files[i])) ++removed;
    });
    {
      const std::lock_guard<std::mutex> lock(report_mutex_);
      result_.removed += removed;
    }
    std::vector<const QueueDirectory*> changed;
    for (const TakenFile& file : batch.files)
      if (changed.empty() || changed.back() != file.directory.get()) changed.push_back(file.directory.get());
    for (const QueueDirectory* directory : changed)
      if (::fsync(directory->fd()) != 0)
        spdlog::warn("import-dirq: removals not synced directory={} error=\"{}\" (a power cut may bring back "
                     "elements already journaled)",
                     directory->path(), errno_text(errno));
  }

  // [journal] max_size reached: the import stops before this batch.
  void stop_at_size_limit() {
    try {
      options_.before_batch();
    } catch (const AtSizeLimit& e) {
      const std::lock_guard<std::mutex> lock(report_mutex_);
      throw AtSizeLimit("import-dirq: stopped: " + std::to_string(result_.elements) +
                        " elements were journaled before it (they stay" +
                        (options_.keep ? std::string(")") : std::string(", removed from the queue)")) +
                        ", every other element stays in " + queue_path_ + ", unlocked: " + e.what() +
                        " (what is already journaled is skipped)");
    }
  }

  // A journaled file: the element, then its lock, as the libraries remove
  // them. False: it is left, reported.
  bool remove(const TakenFile& file) {
    const int fd = file.directory->fd();
    if (::unlinkat(fd, file.name.c_str(), 0) != 0 && errno != ENOENT) {
      unreadable(file.path(), "journaled, but cannot be removed: " + errno_text(errno) +
                                  " (the next import finds it journaled and removes it)");
      if (file.lock_is_ours) ::unlinkat(fd, file.lock_name().c_str(), 0);
      return false;
    }
    if (file.has_lock) ::unlinkat(fd, file.lock_name().c_str(), 0);
    return true;
  }

  std::string queue_path_;
  journal::Journal& journal_;
  const DirqImportOptions& options_;
  const Config& config_;  // the door's [messages] and sinks
  int64_t now_ms_ = 0;
  WorkerPool takers_{kTakers - 1};      // the reader's thread among them
  WorkerPool removers_{kRemovers - 1};  // the writer's thread among them
  std::vector<std::string> texts_ = std::vector<std::string>(kTakers);  // each taker's file being read
  std::vector<journal::NewMessage> messages_;
  std::vector<TakenFile> files_;  // files_[i] holds messages_[i]
  size_t batch_bytes_ = 0;
  std::future<void> writing_;  // the batch before, journaled and removed in a thread of its own
  std::mutex report_mutex_;    // result_ and on_unreadable, shared with that thread
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
                             const DirqImportOptions& options, const Config& config) {
  const std::string newest = newest_directory(queue_path);
  DirqImportResult result;
  {
    QueueImport queue(queue_path, journal, options, config);
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
  return within_disk_reserve(config, "import-dirq", [&](const BeforeBatch& before_batch) {
    options.before_batch = before_batch;
    auto journal = journal::open_configured(config);
    const DirqImportResult result = import_dirq(queue_path, *journal, options, config);
    std::cout << "import-dirq: " << result.elements << " elements read: " << result.appended << " journaled, "
              << result.duplicates << " already journaled, " << result.removed << " removed; "
              << result.left_young << " locked or being written, younger than " << format_duration(options.min_age)
              << ", left alone; " << result.unreadable << " left in place, unreadable (listed on stderr)\n";
    return result.unreadable == 0 ? 0 : 1;
  });
}

}  // namespace gapless::ingest
