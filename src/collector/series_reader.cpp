#include "collector/series_reader.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "core/clock.hpp"
#include "osg/message_builder.hpp"

namespace gapless::collector {

namespace {

esmond::SeriesPath path_of(const journal::SeriesKey& key) {
  return esmond::SeriesPath{key.metadata_key, key.event_type, key.summary_type, key.summary_window};
}

// The index in `messages` of the message carrying the point at `ts`. The
// builder slices ascending points into consecutive messages, each starting
// at its `ts_start` header.
std::vector<int64_t> message_starts(const std::vector<journal::NewMessage>& messages) {
  std::vector<int64_t> starts;
  starts.reserve(messages.size());
  for (const journal::NewMessage& message : messages)
    for (const auto& [name, value] : message.headers)
      if (name == "ts_start") starts.push_back(std::stoll(value));
  return starts;
}

std::optional<int64_t> integer_of(const nlohmann::json& value) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    return std::stoll(text);
  }
  return std::nullopt;
}

}  // namespace

esmond::ClientOptions client_options(const ArchiveConfig& archive) {
  esmond::ClientOptions options;
  options.timeout = archive.http_timeout;
  options.connect_timeout = archive.connect_timeout;
  options.ca_file = archive.ca_file;
  options.gzip = archive.gzip;
  return options;
}

ReadOptions read_options(const ArchiveConfig& archive) {
  ReadOptions options;
  options.page_size = archive.page_size;
  options.datapoints_per_message = static_cast<size_t>(archive.datapoints_per_message);
  options.max_message_bytes = static_cast<size_t>(archive.max_message_size);
  options.summary_grace_seconds = std::chrono::duration_cast<std::chrono::seconds>(archive.summary_grace).count();
  return options;
}

std::vector<SeriesInMetadata> series_in_metadata(const nlohmann::json& metadata, const std::string& archive_url,
                                                 const std::vector<std::string>& event_types, bool summaries) {
  std::vector<SeriesInMetadata> found;
  const std::string key = metadata.at("metadata-key").get<std::string>();
  for (const nlohmann::json& event : metadata.at("event-types")) {
    const std::string event_type = event.at("event-type").get<std::string>();
    if (std::find(event_types.begin(), event_types.end(), event_type) == event_types.end())
      continue;
    const auto updated = [](const nlohmann::json& object) {
      const auto it = object.find("time-updated");
      return it == object.end() ? std::nullopt : integer_of(*it);
    };
    found.push_back({journal::SeriesKey{archive_url, key, event_type, "", 0}, updated(event)});
    if (!summaries) continue;
    for (const nlohmann::json& summary : event.at("summaries")) {
      const std::optional<int64_t> window = integer_of(summary.at("summary-window"));
      const std::string type = summary.at("summary-type").get<std::string>();
      if (!window || type.empty() || type == "base") continue;  // the client validated; esmond lists no others
      found.push_back({journal::SeriesKey{archive_url, key, event_type, type, *window}, updated(summary)});
    }
  }
  return found;
}

ReadResult read_series(esmond::Client& client, journal::Journal& journal, const journal::Series& series,
                       const nlohmann::json& metadata, int64_t from, std::optional<int64_t> to, int64_t now,
                       const ReadOptions& options, const std::atomic<bool>& stop) {
  const journal::SeriesKey& key = series.key;
  const bool summary = !key.summary_type.empty();
  // Summary points at or after this ts are still filling (ref 1.6).
  const int64_t first_open = now - key.summary_window - options.summary_grace_seconds + 1;
  const std::optional<int64_t> read_end =
      summary ? std::optional<int64_t>(to ? std::min(*to, first_open) : first_open) : to;

  osg::BuildOptions build;
  build.datapoints_per_message = options.datapoints_per_message;
  build.max_message_bytes = options.max_message_bytes;
  build.rsv_timestamp = static_cast<double>(unix_now_ms()) / 1000.0;

  ReadResult result;
  const esmond::SeriesPath path = path_of(key);
  const auto fetch = [&client, &path, read_end, &options](int64_t start) {
    return client.fetch_data(path, start, read_end, options.page_size);
  };
  const auto past_end = [&read_end](int64_t start) { return read_end && start >= *read_end; };

  int64_t time_start = from;
  if (past_end(time_start)) return result;
  if (stop.load()) {
    result.stopped = true;
    return result;
  }
  std::vector<osg::Datapoint> points = fetch(time_start);
  for (;;) {
    ++result.pages;
    result.points_read += static_cast<int64_t>(points.size());
    const bool last_page = points.size() < static_cast<size_t>(options.page_size);
    const int64_t next_start = last_page ? 0 : points.back().ts + 1;

    // Read-ahead: the next page is requested now and arrives while this one
    // is de-duplicated, built and journaled, so the archive, the parser and
    // the journal's fsync overlap instead of taking turns. Still one request
    // at a time per archive: this page's request has completed.
    std::future<std::vector<osg::Datapoint>> next_page;
    if (!last_page && !past_end(next_start) && !stop.load())
      next_page = std::async(std::launch::async, fetch, next_start);

    journal::Collected collected;
    collected.series_id = series.id;
    collected.read_from = time_start;
    collected.points_read = static_cast<int64_t>(points.size());
    if (!last_page) {
      collected.read_to = next_start;
    } else {
      // Everything the archive held up to the end of the read is in hand.
      // With an explicit end (a backfill, closed summary windows) that is the
      // end. With an open end, only up to the newest point: the stretch after
      // it may still fill (results are written after their ts), and coverage
      // must never claim what the journal may lack (invariant 13).
      collected.read_to = read_end ? *read_end : time_start;
      if (!points.empty()) collected.read_to = std::max(collected.read_to, points.back().ts + 1);
    }

    // De-duplication: keep the points not journaled with this value.
    std::vector<osg::Datapoint> fresh;
    if (!points.empty()) {
      const std::map<int64_t, std::string> known =
          journal.datapoint_digests(series.id, points.front().ts, points.back().ts);
      fresh.reserve(points.size());
      for (osg::Datapoint& point : points) {
        const auto it = known.find(point.ts);
        if (it != known.end() && it->second == point.digest) continue;
        if (it != known.end()) {
          ++result.corrections;
          spdlog::info("collector: correction archive={} series={} ts={} (value changed since it was journaled)",
                       client.archive_name(), series.id, point.ts);
        }
        fresh.push_back(std::move(point));
      }
    }

    if (!fresh.empty()) {
      try {
        collected.messages = osg::build_messages(key, metadata, fresh, build);
      } catch (const Error& e) {
        throw DataError(e.what());
      }
      const std::vector<int64_t> starts = message_starts(collected.messages);
      size_t message = 0;
      collected.datapoints.reserve(fresh.size());
      for (osg::Datapoint& point : fresh) {
        while (message + 1 < starts.size() && starts[message + 1] <= point.ts) ++message;
        collected.datapoints.push_back({point.ts, std::move(point.digest), message});
      }
      for (journal::NewMessage& m : collected.messages) {
        m.priority = options.priority;
        m.request_id = options.request_id;
      }
    }
    // The cursor follows the data, not the clock: the next poll re-reads the
    // overlap behind the newest point, where late points land (a test's
    // result is written after its ts), however the polls fall in time.
    if (options.advance_cursor) collected.cursor_ts = points.empty() ? time_start : points.back().ts + 1;

    const journal::AppendResult appended = journal.record_collected(collected);
    result.points_journaled += static_cast<int64_t>(fresh.size());
    result.messages += appended.appended;
    if (options.after_page) options.after_page(result);

    if (!next_page.valid()) {
      if (!last_page && !past_end(next_start)) result.stopped = true;  // `stop` kept the next page unread
      break;
    }
    if (stop.load()) {
      result.stopped = true;
      break;  // the page read ahead is dropped unjournaled (the future waits for its request)
    }
    time_start = next_start;
    points = next_page.get();
  }
  return result;
}

}  // namespace gapless::collector
