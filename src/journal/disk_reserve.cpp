#include "journal/disk_reserve.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gapless::journal {

std::optional<FreeSpace> free_space(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  struct statvfs space {};
  if (::statvfs(directory.c_str(), &space) != 0) return std::nullopt;
  return FreeSpace{static_cast<int64_t>(space.f_bavail) * static_cast<int64_t>(space.f_frsize),
                   space.f_files > 0 && space.f_favail == 0};
}

DiskReserve::DiskReserve(std::string journal_path, int64_t bytes)
    : reserve_path_(std::move(journal_path) + ".reserve"), bytes_(bytes) {}

bool DiskReserve::held() const {
  if (bytes_ <= 0) return true;
  struct stat info {};
  return ::stat(reserve_path_.c_str(), &info) == 0 && info.st_size >= bytes_;
}

bool DiskReserve::take() {
  if (bytes_ <= 0 || held()) return true;
  // Room for the reserve and as much again: taking it must not be what
  // fills the disk again at once.
  const std::optional<FreeSpace> space = free_space(reserve_path_);
  if (!space || space->bytes < 2 * bytes_) return false;

  // Written under a temporary name and renamed: a reserve is whole or absent.
  const std::string partial = reserve_path_ + ".partial";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const int error = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes_));
  const bool synced = error == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(partial.c_str(), reserve_path_.c_str()) != 0) {
    ::unlink(partial.c_str());
    return false;
  }
  spdlog::info("journal: disk reserve taken path={} bytes={}", reserve_path_, bytes_);
  return true;
}

bool DiskReserve::release() {
  if (bytes_ <= 0) return false;
  if (::unlink(reserve_path_.c_str()) != 0) return false;  // absent: someone released it already
  spdlog::warn("journal: disk full, reserve released for delivery path={} bytes={} (producers pause until there "
               "is room for it again)",
               reserve_path_, bytes_);
  return true;
}

}  // namespace gapless::journal
