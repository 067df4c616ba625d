// Backlogs for the delivery tests: numbered messages on topics, padded to a
// body size, each with the gapless-id `gapless ingest` would give it, so a
// subscriber's gapless-ids can be compared with what was journaled.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::test {

// Message `index` on /topic/<topic>, about `body_size` bytes of JSON body,
// with event-type and index headers.
journal::NewMessage numbered_message(const std::string& topic, int index, size_t body_size = 100);

// `per_topic` numbered messages on each topic, interleaved: 0 on every topic, then 1...
std::vector<journal::NewMessage> messages_on(const std::vector<std::string>& topics, int per_topic,
                                             size_t body_size = 100);

}  // namespace gapless::test
