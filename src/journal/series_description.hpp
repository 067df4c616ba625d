// The one text that names a measurement series (journal::SeriesKey) in
// errors and log lines, so the journal, the message builder and the
// collector name a series alike: "archive URL metadata-key K event-type E
// (base data)" or "... (summary TYPE WINDOW)".
#pragma once

#include <string>

#include "journal/journal.hpp"

namespace gapless::journal {

std::string describe(const SeriesKey& key);

}  // namespace gapless::journal
