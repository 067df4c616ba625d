// The daemon, `gapless run`: the threads that collect and deliver, and the
// main thread that starts them, supervises them and stops them.
//
// The main thread takes SIGINT, SIGTERM and SIGHUP itself (blocked in every
// thread before any starts), holds the daemon lock, opens the journal once
// (waiting out a full disk or a lock held elsewhere), publishes the open
// fault episodes for `gapless status` about once a second, and restarts a
// component that fails after a backoff; only a damaged journal stops the
// daemon. SIGHUP reloads the configuration (config_reload.hpp): senders and
// the collector are stopped, started or restarted, each by its own stop
// flag. The threads and the reasons are in docs/architecture.md ("Threads
// of the daemon").
#pragma once

#include <functional>

#include "core/config.hpp"

namespace gapless::daemon {

// Runs until every component has returned (with `until_drained`: every
// archive polled once, then every sink drained) or a signal stops it.
// Returns the exit code: 0 stopped, 1 stopped by a damaged journal, 130
// stopped by a signal before the journal could be opened; a second signal
// exits at once (130). Throws gapless::Error when it cannot start (another
// daemon holds the journal, the journal is damaged or cannot be opened).
// `read_config` reads the configuration again for a SIGHUP (the file, with
// the command line's additions), throwing gapless::Error naming the key;
// empty when there is no file (embedded defaults): a SIGHUP is then logged
// and changes nothing.
int run(const Config& config, bool until_drained, const std::function<Config()>& read_config = {});

}  // namespace gapless::daemon
