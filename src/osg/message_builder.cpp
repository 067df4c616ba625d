#include "osg/message_builder.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "core/stable_id.hpp"
#include "journal/series_description.hpp"
#include "osg/destination.hpp"
#include "osg/listing_keys.hpp"
#include "stomp/frame.hpp"
#include "stomp/message_rules.hpp"

// What goes on the bus, and why (docs/osg-format.md 2.2):
//
//   raw:     destination /topic/perfsonar.raw.<event-type>
//            body {"meta":{...},"datapoints":{"<ts>":<val>,...}}
//   summary: destination /topic/perfsonar.summary.<event-type>
//            body {"meta":{...},"summaries":[{"event_type":..,"summary_type":..,
//                  "summary_window":"<window>","summary_data":[[ts,val],...]}]}
//
// Headers, in this order: event-type, input-source, input-destination,
// org_metadata_key, ts_start (smallest ts of the message), summaries ("0" raw,
// "1" summary), rsv-timestamp. gapless-id and persistent are the sender's.
//
// rsv-timestamp: rsv-perfsonar wrote "%s" % time.time(), which under Python 2
// (str of a float, 12 significant digits) gives e.g. "1473706480.12". We
// always write two decimals ("%.2f"); consumers parse it as a float.
//
// meta: every field of the archive's metadata object, dashes in the keys
// turned into underscores, values as the archive sent them, plus
// org_metadata_key. Left out are the fields that describe the archive's REST
// layout rather than the measurement: event-types, uri, url, and the three
// pagination keys esmond adds to the first element of a listing page
// (osg/listing_keys.hpp), which would otherwise make the meta of one test
// depend on where it fell in a page.
//
// Bodies are assembled from the canonical text of each part (osg/datapoint.hpp)
// rather than by building one nlohmann::ordered_json per message: the text is
// identical to ordered_json's compact dump of {"meta", then
// "datapoints"/"summaries"} in ascending ts order, but each value is
// serialised once, when it is parsed (its text also feeds its digest), and
// the size of any slice is known before its body is built. Floats keep their
// decimal point: 7016320000.0, not 7016320000, and the shortest text that
// round-trips (0.04666666666666667).

namespace gapless::osg {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;
using journal::describe;

bool describes_archive_layout(const std::string& key) {
  return key == "event-types" || key == "uri" || key == "url" || is_pagination_key(key);
}

std::string required_string(const journal::SeriesKey& series, const json& metadata, const char* field) {
  auto it = metadata.find(field);
  if (it == metadata.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    throw Error(describe(series) + ": metadata has no \"" + field + "\" (consumers need it)");
  return it->get<std::string>();
}

std::string meta_text(const journal::SeriesKey& series, const json& metadata) {
  ordered_json meta = ordered_json::object();
  for (const auto& [key, value] : metadata.items()) {
    if (describes_archive_layout(key)) continue;
    std::string name = key;
    std::replace(name.begin(), name.end(), '-', '_');
    meta[name] = ordered_json(value);
  }
  meta["org_metadata_key"] = series.metadata_key;
  return meta.dump();
}

std::string format_rsv_timestamp(double seconds) {
  char text[64];
  std::snprintf(text, sizeof text, "%.2f", seconds);
  return text;
}

// The gapless-id of one slice. NEVER CHANGE THIS DERIVATION (nor
// datapoint_digest): consumers and the journal de-duplicate on it, so an id
// must stay the same for the same data forever; a new derivation needs a new
// scheme tag, and then old and new messages no longer match up.
//
//   content = stable_id("osg-content/v1", {"<ts> <datapoint_digest>\n" for each
//                                           point of the slice, ascending ts})
//   id      = stable_id("osg/v1", {archive_url, metadata_key, event_type,
//                                  summary_type ("" for base data),
//                                  summary_window (decimal, "0" for base data),
//                                  first ts (decimal), last ts (decimal),
//                                  content})
//
// Deliberately left out: meta (a metadata field the archive adds later must not
// turn identical data into "new" data), rsv-timestamp (collection time),
// destination and headers (functions of the parts above), and the archive's
// config name (renaming an archive must not resend it). The ts in `content`
// are decimal digits and the digests fixed-length hex, so the text is
// unambiguous.
std::string slice_id(const journal::SeriesKey& series, const std::string& window, const Datapoint* const* begin,
                     const Datapoint* const* end) {
  std::string content;
  content.reserve(static_cast<size_t>(end - begin) * 56);
  for (const Datapoint* const* slot = begin; slot != end; ++slot) {
    const Datapoint* point = *slot;
    content += std::to_string(point->ts);
    content += ' ';
    content += point->digest;
    content += '\n';
  }
  std::string content_digest = stable_id("osg-content/v1", {content});
  std::string first = std::to_string((*begin)->ts);
  std::string last = std::to_string((*(end - 1))->ts);
  return stable_id("osg/v1", {series.archive_url, series.metadata_key, series.event_type, series.summary_type,
                              window, first, last, content_digest});
}

class Builder {
 public:
  Builder(const journal::SeriesKey& series, const json& metadata, const std::vector<Datapoint>& datapoints,
          const BuildOptions& options)
      : series_(series), options_(options), summary_(!series.summary_type.empty()),
        window_(std::to_string(series.summary_window)) {
    if (series.event_type.empty()) throw Error(describe(series) + ": empty event type");
    if (!summary_ && series.summary_window != 0)
      throw Error(describe(series) + ": base data with a summary window");
    if (options.datapoints_per_message == 0)
      throw Error(describe(series) + ": datapoints_per_message must be at least 1");
    if (!metadata.is_object()) throw Error(describe(series) + ": metadata is not a JSON object");

    headers_ = {{"event-type", series.event_type},
                {"input-source", required_string(series, metadata, "input-source")},
                {"input-destination", required_string(series, metadata, "input-destination")},
                {"org_metadata_key", series.metadata_key}};
    rsv_timestamp_ = format_rsv_timestamp(options.rsv_timestamp);
    destination_ = destination_of(series);

    // The frame of a message less what varies by slice: the digits of
    // ts_start and content-length (never escaped) and the body. gapless-ids
    // all have the length of stable_id's output.
    stomp::Frame fixed{"SEND", {{"destination", destination_}, {"gapless-id", std::string(stable_id("", {}).size(), '0')}}, {}};
    for (const auto& header : headers_) fixed.headers.push_back(header);
    fixed.add("ts_start", "").add("summaries", "0").add("rsv-timestamp", rsv_timestamp_).add("content-length", "");
    fixed_frame_bytes_ = stomp::encoded_size(fixed);

    std::string meta = meta_text(series, metadata);
    if (summary_) {
      // The window as a string, as esmond lists it and as consumers compare
      // it (s['summary_window'] == '60').
      prefix_ = "{\"meta\":" + meta + ",\"summaries\":[{\"event_type\":" + json(series.event_type).dump() +
                ",\"summary_type\":" + json(series.summary_type).dump() +
                ",\"summary_window\":" + json(window_).dump() + ",\"summary_data\":[";
      suffix_ = "]}]}";
    } else {
      prefix_ = "{\"meta\":" + meta + ",\"datapoints\":{";
      suffix_ = "}}";
    }

    points_.reserve(datapoints.size());
    for (const Datapoint& datapoint : datapoints) points_.push_back(&datapoint);
    order_points();

    // entry_end_[i]: bytes of the entries 0..i-1 with their separators, so the
    // body size of any slice is a subtraction.
    entry_end_.reserve(points_.size() + 1);
    entry_end_.push_back(0);
    for (const Datapoint* point : points_) entry_end_.push_back(entry_end_.back() + entry_size(*point) + 1);
  }

  std::vector<journal::NewMessage> build() {
    std::vector<journal::NewMessage> messages;
    for (size_t begin = 0; begin < points_.size(); begin += options_.datapoints_per_message)
      emit(begin, std::min(points_.size(), begin + options_.datapoints_per_message), messages);
    return messages;
  }

 private:
  // Ascending ts, one value per ts: a consumer reads datapoints as a map keyed
  // by ts, so two values at one ts would silently become one. esmond serves
  // each series in ascending order and refuses duplicate ts (HTTP 409); this
  // only guards the contract. An exact repeat is dropped (nothing is lost);
  // two different values at one ts is an error rather than a guess.
  void order_points() {
    auto by_ts = [](const Datapoint* a, const Datapoint* b) { return a->ts < b->ts; };
    if (!std::is_sorted(points_.begin(), points_.end(), by_ts))
      std::stable_sort(points_.begin(), points_.end(), by_ts);
    auto same = [&](const Datapoint* a, const Datapoint* b) {
      if (a->ts != b->ts) return false;
      if (a->value != b->value)
        throw Error(describe(series_) + ": two different values at ts " + std::to_string(a->ts));
      return true;
    };
    points_.erase(std::unique(points_.begin(), points_.end(), same), points_.end());
  }

  // Bytes of one entry without its separating comma.
  size_t entry_size(const Datapoint& point) const {
    size_t ts_digits = std::to_string(point.ts).size();
    // raw: "<ts>":<value>     summary: [<ts>,<value>]
    return ts_digits + 3 + point.value.size();
  }

  size_t body_size(size_t begin, size_t end) const {
    return prefix_.size() + (entry_end_[end] - entry_end_[begin] - 1) + suffix_.size();
  }

  // message_frame_size of the slice's message, without building it.
  size_t frame_size(size_t begin, size_t end) const {
    const size_t body = body_size(begin, end);
    return fixed_frame_bytes_ + std::to_string(points_[begin]->ts).size() + std::to_string(body).size() + body;
  }

  // A slice whose frame would exceed max_frame_bytes is halved until each
  // part fits; a single datapoint that alone is too large still becomes its
  // own message (never dropped: the sender parks it, naming the limit).
  void emit(size_t begin, size_t end, std::vector<journal::NewMessage>& messages) const {
    if (end - begin > 1 && frame_size(begin, end) > options_.max_frame_bytes) {
      size_t middle = begin + (end - begin) / 2;
      emit(begin, middle, messages);
      emit(middle, end, messages);
      return;
    }
    journal::NewMessage message;
    message.gapless_id = slice_id(series_, window_, points_.data() + begin, points_.data() + end);
    message.destination = destination_;
    message.headers = headers_;
    message.headers.emplace_back("ts_start", std::to_string(points_[begin]->ts));
    message.headers.emplace_back("summaries", summary_ ? "1" : "0");
    message.headers.emplace_back("rsv-timestamp", rsv_timestamp_);
    std::string& body = message.body;
    body.reserve(body_size(begin, end));
    body += prefix_;
    for (size_t i = begin; i < end; ++i) {
      if (i != begin) body += ',';
      const Datapoint& point = *points_[i];
      if (summary_) {
        body += '[';
        body += std::to_string(point.ts);
        body += ',';
        body += point.value;
        body += ']';
      } else {
        body += '"';
        body += std::to_string(point.ts);
        body += "\":";
        body += point.value;
      }
    }
    body += suffix_;
    check_at_the_door(message);
    messages.push_back(std::move(message));
  }

  // Archive data that can never make a valid frame (an event type with a
  // control character, a NUL in input-source) fails the series here, before
  // anything of it is journaled.
  void check_at_the_door(const journal::NewMessage& message) const {
    stomp::HeaderList headers = message.headers;
    headers.emplace_back("gapless-id", message.gapless_id);
    if (std::optional<std::string> refusal =
            stomp::journal_refusal(message.destination, headers, options_.refused_headers))
      throw Error(describe(series_) + ": message refused: " + *refusal);
  }

  const journal::SeriesKey& series_;
  const BuildOptions& options_;
  bool summary_;
  std::string window_;
  journal::Headers headers_;  // the headers every message of the series shares, before ts_start
  std::string rsv_timestamp_;
  std::string destination_;
  std::string prefix_;
  std::string suffix_;
  std::vector<const Datapoint*> points_;  // the caller's datapoints, ascending ts
  std::vector<size_t> entry_end_;
  size_t fixed_frame_bytes_ = 0;
};

}  // namespace

size_t message_frame_size(const journal::NewMessage& message) {
  // The body's bytes are added rather than copied into the frame.
  stomp::Frame frame{"SEND", {{"destination", message.destination}, {"gapless-id", message.gapless_id}}, {}};
  for (const auto& header : message.headers) frame.headers.push_back(header);
  frame.add("content-length", std::to_string(message.body.size()));
  return stomp::encoded_size(frame) + message.body.size();
}

std::vector<journal::NewMessage> build_messages(const journal::SeriesKey& series, const nlohmann::json& metadata,
                                                const std::vector<Datapoint>& points, const BuildOptions& options) {
  try {
    // Validates even when there are no points, so a bad series is reported
    // on its first, empty poll.
    return Builder(series, metadata, points, options).build();
  } catch (const nlohmann::json::exception& e) {
    // dump() refuses metadata strings that are not valid UTF-8; metadata
    // parsed from the archive never is, but a bad field must still name its series.
    throw Error(describe(series) + ": " + e.what());
  }
}

}  // namespace gapless::osg
