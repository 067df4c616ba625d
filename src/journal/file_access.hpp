// Who may read the journal. It holds every undelivered measurement and, in
// message headers, whatever producers put there, so the journal and its
// companions ("-wal", "-shm", ".lock", ".reserve", ".health") are private to
// the daemon's user: mode 0600 whatever the umask. With [journal] group they
// are 0660 and belong to that group instead, so that a monitoring user in it
// can run `gapless status` (a reader of a WAL journal must open its -shm
// file read-write).
//
// SQLite creates "-wal" and "-shm" with the permission bits of the database
// file (and corrects them against the umask), so creating the database file
// with the right mode is what makes them right. Their group is the creating
// process's, unless the directory is setgid: with `group`, make the state
// directory setgid to that group (systemd's StateDirectory does not), or run
// the daemon with that group as its primary group.
#pragma once

#include <optional>
#include <string>

namespace gapless::journal {

// Creates `path` empty, mode 0600, when it does not exist. Throws
// gapless::Error naming the file when it cannot.
void create_private_file(const std::string& path);

// Gives `group` read and write access to the journal at `journal_path` and
// to each companion that exists: chgrp, then mode 0660. Throws gapless::Error
// naming the group or the file.
void share_with_group(const std::string& journal_path, const std::string& group);

// A warning when the existing journal can be read by others (mode & 0004),
// naming the file, its mode and the fix; nothing otherwise.
std::optional<std::string> exposure_warning(const std::string& journal_path);

}  // namespace gapless::journal
