// A read of one series as the collector hands it to Journal::record_collected,
// for tests of what the journal makes of it: one message carrying `points`
// (no message when there are none), each point's digest made from its ts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "journal/journal.hpp"

namespace gapless::test {

inline journal::Collected collected_read(int64_t series_id, const std::string& gapless_id,
                                         const std::string& destination, const std::vector<int64_t>& points,
                                         int64_t read_from, int64_t read_to) {
  journal::Collected collected;
  collected.series_id = series_id;
  if (!points.empty()) {
    journal::NewMessage message;
    message.gapless_id = gapless_id;
    message.destination = destination;
    message.body = "{}";
    collected.messages.push_back(message);
  }
  for (const int64_t ts : points) {
    char digest[40];
    std::snprintf(digest, sizeof digest, "%032llx", static_cast<unsigned long long>(ts));
    collected.datapoints.push_back({ts, digest, 0});
  }
  collected.read_from = read_from;
  collected.read_to = read_to;
  collected.points_read = static_cast<int64_t>(points.size());
  return collected;
}

}  // namespace gapless::test
