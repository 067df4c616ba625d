// OSG network-metrics messages, as rsv-perfsonar published them and as the
// consumers that read perfsonar.raw.* / perfsonar.summary.* expect them
// (docs/osg-format.md 2.2). One message per (series, slice of
// datapoints); the gapless-id is a pure function of the series' natural key
// and the slice's content, so re-collecting identical data yields the same
// ids and corrected data new ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "journal/journal.hpp"
#include "osg/datapoint.hpp"

namespace gapless::osg {

struct BuildOptions {
  size_t datapoints_per_message = 100;  // OSG used 100
  // The largest frame a message may make, as message_frame_size counts it. A
  // larger slice is split, never dropped. The caller leaves room for the
  // headers a sender adds to each SEND (collector::read_options does).
  size_t max_frame_bytes = 10'000'000;
  // The door's rules (stomp::journal_refusal): a message that breaks one
  // fails the whole build, naming the series.
  std::vector<std::string> refused_headers = MessageRulesConfig{}.refused_headers;
  double rsv_timestamp = 0;  // the `rsv-timestamp` header: collection time, unix seconds
};

// Bytes of the SEND frame of `message` as stomp::encode writes it with the
// message's destination, gapless-id, headers, content-length and body, and
// none of the headers a sender adds to each SEND (transaction, receipt,
// persistent, gapless-resend).
size_t message_frame_size(const journal::NewMessage& message);

// Builds the messages for consecutive datapoints of one series (ascending ts).
// `metadata` is the archive's metadata object (dashes in its keys become
// underscores in `meta`, values keep their JSON type). Raw data goes to
// /topic/perfsonar.raw.<event-type>, summaries to /topic/perfsonar.summary.<event-type>.
// Throws gapless::Error naming the series when the metadata lacks a field
// consumers rely on (input-source, input-destination), or when a message
// would be refused at the door (stomp::journal_refusal: say an event type
// with a control character, or a NUL in input-source).
std::vector<journal::NewMessage> build_messages(const journal::SeriesKey& series, const nlohmann::json& metadata,
                                                const std::vector<Datapoint>& points, const BuildOptions& options);

}  // namespace gapless::osg
