#include "journal/file_access.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.hpp"

namespace gapless::journal {

namespace {

const char* const kCompanions[] = {"", "-wal", "-shm", ".lock", ".reserve", ".health"};

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

void create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return;
    throw Error("journal " + path + ": cannot create the file: " + std::strerror(errno));
  }
  ::fchmod(fd, 0600);  // the umask only removes bits; this states the mode whatever it is
  ::close(fd);
}

void share_with_group(const std::string& journal_path, const std::string& group) {
  errno = 0;
  const struct group* entry = ::getgrnam(group.c_str());
  if (entry == nullptr)
    throw Error("journal.group: no group named \"" + group + "\" on this host" +
                (errno != 0 ? std::string(" (") + std::strerror(errno) + ")" : std::string()));
  for (const char* suffix : kCompanions) {
    const std::string path = journal_path + suffix;
    if (::access(path.c_str(), F_OK) != 0) continue;
    if (::chown(path.c_str(), static_cast<uid_t>(-1), entry->gr_gid) != 0 || ::chmod(path.c_str(), 0660) != 0)
      throw Error("journal.group: cannot give group \"" + group + "\" access to " + path + ": " +
                  std::strerror(errno));
  }
}

std::optional<std::string> exposure_warning(const std::string& journal_path) {
  struct stat info {};
  if (::stat(journal_path.c_str(), &info) != 0 || (info.st_mode & S_IROTH) == 0) return std::nullopt;
  return "journal " + journal_path + " is readable by every user of this host (mode " + octal(info.st_mode) +
         "): run chmod 600 " + journal_path + " (or set [journal] group to share it with one group)";
}

}  // namespace gapless::journal
