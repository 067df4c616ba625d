#include "journal/disk_reserve.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gapless::journal {

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
  const std::string directory = [&] {
    const size_t slash = reserve_path_.rfind('/');
    return slash == std::string::npos ? std::string(".") : reserve_path_.substr(0, slash + 1);
  }();
  struct statvfs space {};
  if (::statvfs(directory.c_str(), &space) != 0) return false;
  const auto available = static_cast<int64_t>(space.f_bavail) * static_cast<int64_t>(space.f_frsize);
  if (available < 2 * bytes_) return false;

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
