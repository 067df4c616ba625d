// What a resend's filters mean for an OSG message, stated as the journal's
// generic conditions (journal::MessageCondition: destinations, header values),
// so that the journal selects ingested messages without reading OSG's format
// and replay's resend without spelling it (docs/osg-format.md 2.2, 2.3).
#pragma once

#include <string>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::osg {

// A message of one of `event_types`: on its raw or summary destination, or
// carrying the event type in its `event-type` header.
journal::MessageCondition of_event_types(const std::vector<std::string>& event_types);

// A message measured from `host`: its `input-source` header.
journal::MessageCondition from_source_host(const std::string& host);

// A message measured towards `host`: its `input-destination` header.
journal::MessageCondition to_destination_host(const std::string& host);

}  // namespace gapless::osg
