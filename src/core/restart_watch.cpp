#include "core/restart_watch.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/duration.hpp"

namespace gapless {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";  // how /proc/PID/maps shows an unlinked file

// The executable: the target of /proc/self/exe.
std::string executable_path() {
  std::string path(4096, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size());
  if (length <= 0) return "";
  path.resize(static_cast<size_t>(length));
  return path;
}

// Every file mapped executable now (the program and its shared libraries), as
// /proc/self/maps names them: " (deleted)" ends the name of one unlinked since.
std::vector<std::string> executable_mappings() {
  std::vector<std::string> paths;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    // address perms offset dev inode [path]; the path may hold spaces
    std::istringstream fields(line);
    std::string address, perms, offset, device, inode;
    if (!(fields >> address >> perms >> offset >> device >> inode)) continue;
    std::string path;
    std::getline(fields >> std::ws, path);
    if (perms.find('x') == std::string::npos || path.empty() || path[0] != '/') continue;
    if (path.rfind("/memfd:", 0) == 0 || path.rfind("/dev/", 0) == 0) continue;  // not files of a package
    if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(path);
  }
  return paths;
}

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::optional<RestartWatch::FileIdentity> RestartWatch::identity_of(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileIdentity{path, static_cast<uint64_t>(info.st_dev), static_cast<uint64_t>(info.st_ino),
                      static_cast<int64_t>(info.st_size),
                      static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

RestartWatch::RestartWatch()
    : interval_(interval_from_environment(kRestartCheckEnvironment, kRestartCheckInterval, "restart-watch")),
      next_check_(std::chrono::steady_clock::now()) {
  next_check_ += interval_;
  const std::string executable = executable_path();
  std::vector<std::string> paths = executable_mappings();
  if (!executable.empty() && !ends_with(executable, kDeletedSuffix)) paths.insert(paths.begin(), executable);
  for (const std::string& path : paths) {
    if (ends_with(path, kDeletedSuffix)) continue;  // already gone when we started: nothing to compare against
    if (std::any_of(files_.begin(), files_.end(), [&](const FileIdentity& file) { return file.path == path; }))
      continue;
    if (std::optional<FileIdentity> identity = identity_of(path)) files_.push_back(std::move(*identity));
  }
  spdlog::debug("restart-watch: watching files={} executable={} interval_ms={}", files_.size(), executable,
                interval_.count());
}

std::optional<std::string> RestartWatch::replaced_file() {
  const auto restart = [](const std::string& path, const char* what) {
    return path + " " + what + ": restart gapless to run the installed one";
  };
  for (const std::string& mapped : executable_mappings()) {
    if (ends_with(mapped, kDeletedSuffix))
      return restart(mapped.substr(0, mapped.size() - kDeletedSuffix.size()),
                     "was replaced or deleted on disk (its mapping shows it deleted)");
    const bool known =
        std::any_of(files_.begin(), files_.end(), [&](const FileIdentity& file) { return file.path == mapped; });
    if (known) continue;
    if (std::optional<FileIdentity> identity = identity_of(mapped))  // loaded since (dlopen): compared from now on
      files_.push_back(std::move(*identity));
  }
  for (const FileIdentity& file : files_) {
    const std::optional<FileIdentity> now = identity_of(file.path);
    if (!now) return restart(file.path, "was deleted or renamed away on disk");
    if (now->device != file.device || now->inode != file.inode)
      return restart(file.path, "was replaced on disk (another inode at its path)");
    if (now->size != file.size || now->mtime_ns != file.mtime_ns)
      return restart(file.path, "was overwritten in place on disk (size or mtime changed)");
  }
  return std::nullopt;
}

void RestartWatch::poll() {
  if (episode_.is_open()) return;  // stays open for the life of the process; logged once
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return;
  next_check_ = now + interval_;
  if (const std::optional<std::string> replaced = replaced_file())
    episode_.occurred(kRestartRequiredKind, *replaced);  // the one log line, and status
}

}  // namespace gapless
