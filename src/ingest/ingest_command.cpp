// `gapless ingest` as a command; see ingest_command.hpp.
#include "ingest/ingest_command.hpp"

#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "ingest/ingest.hpp"
#include "journal/configured_journal.hpp"
#include "journal/disk_reserve.hpp"
#include "journal/size_limit.hpp"
#include "journal/fault_retry.hpp"
#include "journal/journal.hpp"

namespace gapless::ingest {

namespace {

int run_ingest(const Config& config, const std::string& path, size_t batch, const BeforeBatch& before_batch) {
  auto journal = journal::open_configured(config);
  IngestResult result;
  if (path == "-") {
    result = ingest_stream(std::cin, "stdin", *journal, batch, config, before_batch);
  } else {
    std::ifstream input(path, std::ios::binary);
    if (!input) throw Error("ingest: cannot open \"" + path + "\"");
    result = ingest_stream(input, path, *journal, batch, config, before_batch);
  }
  std::cout << "ingested " << result.lines << " lines: " << result.appended << " journaled, "
            << result.duplicates << " already journaled\n";
  return 0;
}

}  // namespace

// A producer (journal/disk_reserve.hpp) writes only while it holds the disk
// reserve, and on a full disk gives the reserve back so that the daemon's
// delivery of what is journaled goes on.
int within_disk_reserve(const Config& config, std::string_view command,
                        const std::function<int(const BeforeBatch&)>& produce) {
  journal::DiskReserve reserve(config.journal.path, config.journal.disk_reserve);
  const std::string free_space =
      "Free space on the file system of " + config.journal.path + ", then run the same command again";
  if (!reserve.take())
    throw Error(std::string(command) +
                ": the disk holding the journal is nearly full, nothing was journaled: its last space is "
                "kept for delivering what is already journaled (the disk reserve " + reserve.path() +
                " cannot be taken). " + free_space);
  // [journal] max_size (journal/size_limit.hpp), measured afresh before each
  // batch: a batch of a second ago's measure would pass the limit.
  journal::SizeLimit size_limit(config.journal.path, config.journal.max_size, 0);
  const BeforeBatch before_batch = [&] {
    if (const std::optional<int64_t> bytes = size_limit.reached())
      throw AtSizeLimit("the journal " + config.journal.path + " holds " + std::to_string(*bytes) +
                        " bytes, at its [journal] max_size (" + std::to_string(config.journal.max_size) +
                        "). The daemon's pruning of delivered messages brings it below once they are kept long "
                        "enough (keep_delivered); run the same command again then, or raise max_size");
  };
  try {
    before_batch();
  } catch (const AtSizeLimit& e) {
    throw AtSizeLimit(std::string(command) + ": nothing was journaled: " + e.what());
  }
  try {
    return produce(before_batch);
  } catch (const Error& e) {
    const auto* journal_error = dynamic_cast<const journal::JournalError*>(&e);
    const bool full = journal_error != nullptr
                          ? journal::fault_on_disk(*journal_error, config.journal.path) == journal::Fault::full
                          : std::string_view(e.what()).find("(SQLITE_FULL)") != std::string_view::npos;
    if (!full) throw;
    reserve.release();
    throw Error(std::string(command) + ": the disk is full: " + std::string(e.what()) +
                ". Batches before it were journaled. " + free_space + ": what is already journaled is skipped");
  }
}

int run_command(const Config& config, const std::string& path, size_t batch) {
  return within_disk_reserve(config, "ingest",
                             [&](const BeforeBatch& before_batch) { return run_ingest(config, path, batch, before_batch); });
}

}  // namespace gapless::ingest
