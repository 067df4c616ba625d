// OSG network-metrics messages, as rsv-perfsonar published them and as the
// consumers that read perfsonar.raw.* / perfsonar.summary.* expect them
// (shared/reference/perfsonar-osg.md 2.2). One message per (series, slice of
// datapoints); the gapless-id is a pure function of the series' natural key
// and the slice's content, so re-collecting identical data yields the same
// ids and corrected data new ones.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "journal/journal.hpp"
#include "osg/datapoint.hpp"

namespace gapless::osg {

// One series of an esmond archive (see journal::SeriesKey).
using SeriesIdentity = journal::SeriesKey;

struct BuildOptions {
  size_t datapoints_per_message = 100;  // OSG used 100
  size_t max_message_bytes = 10'000'000;  // rsv's mq-max-message-size: a larger slice is split, never dropped
  double rsv_timestamp = 0;  // the `rsv-timestamp` header: collection time, unix seconds
};

// Builds the messages for consecutive datapoints of one series (ascending ts).
// `metadata` is the archive's metadata object (dashes in its keys become
// underscores in `meta`, values keep their JSON type). Raw data goes to
// /topic/perfsonar.raw.<event-type>, summaries to /topic/perfsonar.summary.<event-type>.
// Throws gapless::Error naming the series when the metadata lacks a field
// consumers rely on (input-source, input-destination).
std::vector<journal::NewMessage> build_messages(const SeriesIdentity& series, const nlohmann::json& metadata,
                                                const std::vector<Datapoint>& points, const BuildOptions& options);

}  // namespace gapless::osg
