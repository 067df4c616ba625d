// `gapless ingest` as a command: the JSON lines of a file, or of standard
// input ("-"), journaled in batches into the configured journal, with a
// summary line on standard output.
//
// The command is a producer (journal/disk_reserve.hpp): it writes only while
// it holds the disk reserve, and on a full disk gives the reserve back, so
// that the daemon's delivery of what is journaled goes on, and refuses with
// what to do.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "ingest/ingest.hpp"

namespace gapless::ingest {

// Returns the exit code (0); throws gapless::Error naming the input, or the
// disk, when it cannot.
int run_command(const Config& config, const std::string& path, size_t batch);

// Runs `produce` (a producer's whole work, returning its exit code) while
// holding the disk reserve; refuses, or on a full disk gives the reserve back,
// with what to do, naming `command` ("ingest", "import-dirq"). [journal]
// max_size (journal/size_limit.hpp) is checked before `produce` (refused:
// nothing journaled) and by the BeforeBatch it is given, before each of its
// batches (measured each time, so a long run stops where it reaches the
// limit, not only one that starts there).
int within_disk_reserve(const Config& config, std::string_view command,
                        const std::function<int(const BeforeBatch&)>& produce);

}  // namespace gapless::ingest
