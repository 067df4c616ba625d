// The destination OSG's consumers read a series' messages from
// (docs/osg-format.md 2.2): raw data on /topic/perfsonar.raw.<event-type>,
// summaries on /topic/perfsonar.summary.<event-type>. The one place that
// spells these names; the builder, backfill and resend's selection ask here.
#pragma once

#include <string>
#include <string_view>

#include "journal/journal.hpp"

namespace gapless::osg {

enum class DataKind { raw, summary };

std::string destination_of(std::string_view event_type, DataKind kind);

// The destination of a series' messages: raw for its base data, summary for
// one of its summaries.
std::string destination_of(const journal::SeriesKey& series);

}  // namespace gapless::osg
