// The time an OSG message describes (docs/osg-format.md 2.2): what `gapless
// ingest` gives the journal as an appended message's window time, so that a
// resend window finds ingested OSG messages by their data, not by when they
// were ingested.
#pragma once

#include <cstdint>
#include <optional>

#include "journal/journal.hpp"

namespace gapless::osg {

// The value of the first `ts_start` header that is an integer: unix seconds of
// the first datapoint the message carries (docs/osg-format.md 2.2). Only
// digits count, leading zeros included, at most 18 of them (they fit in 64
// bits); a fraction, a sign, an empty value or a longer number is passed
// over. Nothing when no header qualifies.
std::optional<int64_t> message_time(const journal::Headers& headers);

}  // namespace gapless::osg
