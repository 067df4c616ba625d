// `gapless import-dirq`: the rescue of an old stompclt / rsv-perfsonar
// directory queue (Directory::Queue::Simple; layout and element format in
// docs/osg-format.md 3.2-3.4): every message left in it is journaled, each
// element parsed and checked at the door as `gapless ingest` does a line
// (ingest::parse_message_at_the_door, one parser).
//
// What is taken from `<queue>/<8 hex digits>/`:
// - an element `<14 hex digits>`: locked first the way the Perl and Python
//   libraries lock (hard link `<name>.lck`, mtime set to now), so a stompclt
//   running beside the import cannot send what is being imported, nor the
//   import remove what stompclt is sending;
// - an element another process holds locked, and a `.lck` whose element is
//   gone (stompclt stopped between its two unlinks): only when the lock is
//   older than `min_age`; a younger one is being sent right now;
// - a `.tmp` (a message being written, or one left by a crash): only when
//   older than `min_age`. One left between link and unlink is a copy of an
//   element: its gapless-id is the same, so it adds nothing.
// Anything else, and an element that cannot be read, parsed or is refused at
// the door, is reported (path and reason) and left in place; importing goes
// on with the rest.
//
// Each batch is one journal transaction; without `keep`, its files are
// removed only after that transaction has committed, and their directory is
// synced once per batch, so that a removal outlives a power cut. A crash in
// between leaves them to the next import, where they are already journaled
// (same gapless-id) and only removed. With `keep` the queue is only read: no
// lock, no mtime, nothing removed. A batch is journaled and removed in a
// thread of its own while the next one is read, so memory holds two batches
// (and a round of 4096 names, 256 of them being taken), whatever the queue's
// size: the directories are read as the file system lists them, not sorted.
// Files are taken (locked, read, parsed) by 4 threads and removed by 8, started
// once per import (ingest/worker_pool.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/config.hpp"
#include "ingest/ingest.hpp"
#include "journal/journal.hpp"

namespace gapless::ingest {

struct DirqImportOptions {
  bool keep = false;
  std::chrono::milliseconds min_age = std::chrono::minutes(10);
  size_t batch_size = 1000;  // elements per transaction (and at most 16 MiB of bodies)
  // Called with each file left in place because it cannot be imported, and
  // why; one call at a time, from any of the import's threads.
  std::function<void(const std::string& path, const std::string& reason)> on_unreadable;
  // Called before each batch's transaction, in the writer's thread: an
  // AtSizeLimit (ingest.hpp) it throws stops the import there, the batches
  // before journaled (and removed), that batch and the rest left in the
  // queue, unlocked; import_dirq throws it, naming the queue and the count.
  BeforeBatch before_batch;
  // Tests: called after each batch's commit, before its files are removed (a
  // crash there is what the next import must survive), in the writer's thread.
  std::function<void()> after_commit;
};

struct DirqImportResult {
  int64_t elements = 0;    // element, .lck and .tmp files read and journaled or found journaled
  int64_t appended = 0;
  int64_t duplicates = 0;  // already journaled (same gapless-id)
  int64_t removed = 0;     // of those elements (their .lck counted with them)
  int64_t left_young = 0;  // locked or .tmp, younger than min_age
  int64_t unreadable = 0;  // reported through on_unreadable, left in place
};

// Throws gapless::Error naming the queue when its directory cannot be read,
// and lets journal errors through (the batches before were journaled).
DirqImportResult import_dirq(const std::string& queue_path, journal::Journal& journal,
                             const DirqImportOptions& options, const Config& config);

// The command: within the disk reserve and [journal] max_size
// (ingest_command.hpp), each unreadable file on stderr, a summary on stdout.
// Returns 0, or 1 when a file was left unreadable (everything else is
// journaled); throws at max_size.
int import_dirq_command(const Config& config, const std::string& queue_path, DirqImportOptions options);

}  // namespace gapless::ingest
