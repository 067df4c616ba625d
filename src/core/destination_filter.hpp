// Which sink takes which message: each sink's `accept` list of destination
// filters, and the door check every producer runs before it journals a
// message. The journal (journal invariant 3) matches with the same rule, so
// a message gets a delivery row exactly for the sinks that take it.
//
// An entry is an exact destination ("/topic/perfsonar.raw.throughput"), or a
// prefix ending in ">" in ActiveMQ's wildcard spirit: "/topic/perfsonar.>"
// takes every destination that starts with "/topic/perfsonar.", "/pscheduler/>"
// every pushed run. Nothing else is special ("*" and "." are plain
// characters). Every entry starts with "/"; ">" only at the end.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gapless {

struct SinkConfig;

// The list a sink of `protocol` takes when the configuration leaves `accept`
// out: "stomp", the brokers' destinations (/topic/ and /queue/); "http", the
// runs pScheduler pushed (osg::run_destination: /pscheduler/run/<test type>).
// Any other protocol: none.
std::vector<std::string> default_accept(std::string_view protocol);

// What is wrong with an entry ("must start with /", ...), or nothing.
std::optional<std::string> accept_entry_error(std::string_view entry);

// Whether `accept` takes `destination` (one entry suffices).
bool accepts(const std::vector<std::string>& accept, std::string_view destination);

// The list `sink` takes: its `accept`, or its protocol's default when empty
// (a SinkConfig built in code; load_config always fills it in).
std::vector<std::string> accept_of(const SinkConfig& sink);

// "[/topic/>, /queue/>]", for errors, logs and status.
std::string accept_text(const std::vector<std::string>& accept);

// The door: which of `sinks` take `destination`, and when none does, the
// refusal every producer gives (ingest names its line, the collector its
// series, the push endpoint its request).
struct DestinationTakers {
  std::vector<std::string> sinks;  // names, in configuration order
  // Empty when a sink takes the destination; else "no sink takes destination
  // \"/x\" (sink \"cern\" accepts [/topic/>, /queue/>]; ...)".
  std::string refusal;

  bool taken() const { return !sinks.empty(); }
};
DestinationTakers destination_takers(const std::vector<SinkConfig>& sinks, std::string_view destination);

}  // namespace gapless
