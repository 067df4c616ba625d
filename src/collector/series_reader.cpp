#include "collector/series_reader.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <iterator>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "esmond/data_location.hpp"
#include "core/destination_filter.hpp"
#include "journal/series_description.hpp"
#include "osg/destination.hpp"
#include "osg/message_builder.hpp"
#include "osg/message_time.hpp"

namespace gapless::collector {

namespace {

// The index in `messages` of the message carrying the point at `ts`. The
// builder slices ascending points into consecutive messages, each starting
// at its time (osg::message_time: its `ts_start` header).
std::vector<int64_t> message_starts(const std::vector<journal::NewMessage>& messages) {
  std::vector<int64_t> starts;
  starts.reserve(messages.size());
  for (const journal::NewMessage& message : messages)
    if (const std::optional<int64_t> start = osg::message_time(message.headers)) starts.push_back(*start);
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

// Room left in a frame for the headers a sender adds to each SEND, which the
// message builder cannot count (osg::message_frame_size): transaction and
// receipt (decimal counters, at most 20 digits each, the receipt's ':'
// escaped to 2 bytes), persistent:true and gapless-resend (a request id):
// about 140 bytes today. 512 leaves a margin for a header the sender may add
// later; a message that still ends up too large is parked by the sender,
// naming the limit, never lost.
constexpr int64_t kSenderHeaderRoom = 512;

ReadOptions read_options(const Config& config, const ArchiveConfig& archive) {
  ReadOptions options;
  options.page_size = archive.page_size;
  options.datapoints_per_message = static_cast<size_t>(archive.datapoints_per_message);
  // Each sink's max_message_size counts its whole SEND frame, and every
  // message goes to every sink: messages are split below the smallest, and
  // never above the archive's own max_message_size (an upper bound, for a
  // site that wants smaller messages than its brokers take).
  int64_t largest_frame = archive.max_message_size;
  for (const SinkConfig& sink : config.sinks) largest_frame = std::min(largest_frame, sink.max_message_size);
  // A limit below the room makes one message per datapoint; the sender then
  // parks what is still too large.
  options.max_frame_bytes = static_cast<size_t>(std::max<int64_t>(0, largest_frame - kSenderHeaderRoom));
  options.refused_headers = config.messages.refused_headers;
  options.sinks = config.sinks;
  options.summary_grace_seconds = std::chrono::duration_cast<std::chrono::seconds>(archive.summary_grace).count();
  return options;
}

osg::BuildOptions build_options(const ReadOptions& options, double rsv_timestamp) {
  osg::BuildOptions build;
  build.datapoints_per_message = options.datapoints_per_message;
  build.max_frame_bytes = options.max_frame_bytes;
  build.refused_headers = options.refused_headers;
  build.rsv_timestamp = rsv_timestamp;
  return build;
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

namespace {

// Where a read ends: `to`, and for a summary the first window still filling.
std::optional<int64_t> read_end_of(const SeriesRead& read, int64_t now, const ReadOptions& options) {
  const journal::SeriesKey& key = read.series.key;
  if (key.summary_type.empty()) return read.to;
  // Summary points at or after this ts are still filling (docs/esmond.md 1.6).
  const int64_t first_open = now - key.summary_window - options.summary_grace_seconds + 1;
  return read.to ? std::min(*read.to, first_open) : first_open;
}

// A page on its way from the archive to the journal. `points` is empty and
// `fetched` false for a read with nothing to request (its range is empty).
struct Page {
  size_t read = 0;  // index in the reads
  int64_t time_start = 0;
  bool fetched = false;
  std::vector<osg::Datapoint> points;
  // The archive holds nothing more in the read's range after these points
  // (esmond: a short page; elmond: an empty one, esmond/data_location.hpp).
  bool exhausted = false;
  bool last = false;             // the read's last page
  std::exception_ptr failure;    // the request failed: the read ends here, unjournaled
};

// The archive side of read_in_order: requests the pages of every read in
// turn, one request at a time, each page from the previous one's last ts
// (which parsing gives, so this never waits for the journal), into a queue
// at most `kPagesAhead` pages long. Its own thread, so that the archive serving a
// page, its parsing and digests overlap with the journal's writes and fsync.
class PageFetcher {
 public:
  PageFetcher(esmond::Client& client, const std::vector<SeriesRead>& reads, int64_t now, const ReadOptions& options,
              const std::atomic<bool>& stop)
      : client_(client), reads_(reads), now_(now), options_(options), stop_(stop), thread_([this] { run(); }) {}

  ~PageFetcher() {
    {
      std::lock_guard lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    thread_.join();  // waits for a request in flight (bounded by the HTTP timeout)
  }

  PageFetcher(const PageFetcher&) = delete;
  PageFetcher& operator=(const PageFetcher&) = delete;

  // The next page in order, or nothing once every read is fetched or `stop`
  // cut the fetching short.
  std::optional<Page> next() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !queue_.empty() || finished_; });
    if (queue_.empty()) return std::nullopt;
    Page page = std::move(queue_.front());
    queue_.pop_front();
    changed_.notify_all();
    return page;
  }

  // Drops the rest of read `index` (its journaling failed).
  void abandon(size_t index) {
    std::lock_guard lock(mutex_);
    abandoned_ = index;
    std::erase_if(queue_, [index](const Page& page) { return page.read == index; });
    changed_.notify_all();
  }

 private:
  static constexpr size_t kPagesAhead = 2;

  // False when cancelled (the reader is gone).
  bool push(Page page) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return queue_.size() < kPagesAhead || cancelled_; });
    if (cancelled_) return false;
    if (abandoned_ != page.read) queue_.push_back(std::move(page));
    changed_.notify_all();
    return true;
  }

  bool abandoned(size_t index) {
    std::lock_guard lock(mutex_);
    return abandoned_ == index || cancelled_;
  }

  void run() {
    for (size_t index = 0; index < reads_.size() && fetch_read(index); ++index) {
    }
    std::lock_guard lock(mutex_);
    finished_ = true;
    changed_.notify_all();
  }

  // False when fetching must end (stop, or cancelled).
  bool fetch_read(size_t index) {
    const SeriesRead& read = reads_[index];
    const std::optional<int64_t> read_end = read_end_of(read, now_, options_);
    esmond::SeriesPath path{read.series.key.metadata_key, read.series.key.event_type,
                            read.series.key.summary_type, read.series.key.summary_window, ""};
    // Follow the listing's URI; never ask more than the archive answers.
    const esmond::DataLocation location = esmond::locate_data(read.metadata, path);
    path.path = location.path;
    const int limit = std::min(options_.page_size, esmond::max_page_size(location.flavour));
    int64_t time_start = read.from;
    if (read_end && time_start >= *read_end) return push(Page{index, time_start, false, {}, true, true, nullptr});
    for (;;) {
      if (stop_.load()) return false;
      if (abandoned(index)) return true;
      Page page{index, time_start, true, {}, false, false, nullptr};
      try {
        page.points = client_.fetch_data(path, time_start, read_end, limit);
      } catch (...) {
        page.failure = std::current_exception();
        page.last = true;
        return push(std::move(page));
      }
      const bool short_page = page.points.size() < static_cast<size_t>(limit);
      page.exhausted = page.points.empty() || (short_page && esmond::short_page_ends_data(location.flavour));
      const int64_t next_start = page.points.empty() ? 0 : page.points.back().ts + 1;
      page.last = page.exhausted || (read_end && next_start >= *read_end);
      const bool last = page.last;
      if (!push(std::move(page))) return false;
      if (last) return true;
      time_start = next_start;
    }
  }

  esmond::Client& client_;
  const std::vector<SeriesRead>& reads_;
  const int64_t now_;
  const ReadOptions& options_;
  const std::atomic<bool>& stop_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Page> queue_;
  bool finished_ = false;
  bool cancelled_ = false;
  std::optional<size_t> abandoned_;
  std::thread thread_;  // last: starts once everything above exists
};

// Journals `collected` in transactions of at most `messages_per_transaction`
// messages (0: one transaction). Each part holds its messages' datapoints;
// the last one also the coverage and the cursor, which therefore never claim
// a datapoint that is not journaled yet (journal invariants 11 and 13). A
// crash between parts leaves journaled datapoints without coverage: the read
// is done again and finds them by their digests.
journal::AppendResult record_in_parts(journal::Journal& journal, journal::Collected collected,
                                      size_t messages_per_transaction) {
  const size_t total = collected.messages.size();
  if (messages_per_transaction == 0 || total <= messages_per_transaction) return journal.record_collected(collected);
  journal::AppendResult appended;
  size_t point = 0;  // datapoints are in message order
  for (size_t begin = 0; begin < total; begin += messages_per_transaction) {
    const size_t end = std::min(total, begin + messages_per_transaction);
    const bool last = end == total;
    journal::Collected part;
    part.series_id = collected.series_id;
    part.messages.assign(std::make_move_iterator(collected.messages.begin() + static_cast<long>(begin)),
                         std::make_move_iterator(collected.messages.begin() + static_cast<long>(end)));
    for (; point < collected.datapoints.size() && collected.datapoints[point].message < end; ++point) {
      journal::CollectedDatapoint& datapoint = collected.datapoints[point];
      part.datapoints.push_back({datapoint.ts, std::move(datapoint.digest), datapoint.message - begin});
    }
    if (last) {
      part.read_from = collected.read_from;
      part.read_to = collected.read_to;
      part.points_read = collected.points_read;
      part.cursor_ts = collected.cursor_ts;
    }
    const journal::AppendResult result = journal.record_collected(part);
    appended.appended += result.appended;
    appended.duplicates += result.duplicates;
  }
  return appended;
}

// Journals one page of `read` (de-duplication, messages, datapoints,
// coverage and the cursor in one transaction), adding to `result`.
void journal_page(esmond::Client& client, journal::Journal& journal, const SeriesRead& read, Page& page,
                  std::optional<int64_t> read_end, const osg::BuildOptions& build, const ReadOptions& options,
                  ReadResult& result) {
  const journal::Series& series = read.series;
  std::vector<osg::Datapoint>& points = page.points;
  ++result.pages;
  result.points_read += static_cast<int64_t>(points.size());

  journal::Collected collected;
  collected.series_id = series.id;
  collected.read_from = page.time_start;
  collected.points_read = static_cast<int64_t>(points.size());
  if (!page.exhausted) {
    collected.read_to = points.back().ts + 1;
  } else {
    // Everything the archive held up to the end of the read is in hand.
    // With an explicit end (a backfill, closed summary windows) that is the
    // end. With an open end, only up to the newest point: the stretch after
    // it may still fill (results are written after their ts), and coverage
    // must never claim what the journal may lack (invariant 13).
    collected.read_to = read_end ? *read_end : page.time_start;
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
    if (!options.sinks.empty()) {  // the door: nothing is journaled for nobody
      const DestinationTakers takers = destination_takers(options.sinks, osg::destination_of(series.key));
      if (!takers.taken())
        throw DataError("archive " + client.archive_name() + ": series " + journal::describe(series.key) + ": " +
                        takers.refusal);
    }
    try {
      collected.messages = osg::build_messages(series.key, read.metadata, fresh, build);
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
  if (options.advance_cursor) collected.cursor_ts = points.empty() ? page.time_start : points.back().ts + 1;

  const journal::AppendResult appended = record_in_parts(journal, std::move(collected), options.messages_per_transaction);
  result.points_journaled += static_cast<int64_t>(fresh.size());
  result.messages += appended.appended;
  if (options.after_page) options.after_page(result);
}

}  // namespace

void read_in_order(esmond::Client& client, journal::Journal& journal, const std::vector<SeriesRead>& reads,
                   int64_t now, const ReadOptions& options, const std::atomic<bool>& stop, const ReadDone& done) {
  const osg::BuildOptions build = build_options(options, static_cast<double>(unix_now_ms()) / 1000.0);

  PageFetcher fetcher(client, reads, now, options, stop);
  std::optional<size_t> open_read;  // has pages journaled, and no `done` yet
  ReadResult result;
  while (std::optional<Page> page = fetcher.next()) {
    if (open_read != page->read) {
      open_read = page->read;
      result = ReadResult{};
    }
    const SeriesRead& read = reads[page->read];
    if (page->failure) {
      open_read.reset();
      done(page->read, result, page->failure);
      continue;
    }
    if (page->fetched) {
      try {
        journal_page(client, journal, read, *page, read_end_of(read, now, options), build, options, result);
      } catch (const DataError&) {
        fetcher.abandon(page->read);
        open_read.reset();
        done(page->read, result, std::current_exception());
        continue;
      }
      // A journal failure (gapless::Error) propagates: the fetcher is
      // cancelled on the way out and nothing after this page is journaled.
    }
    if (page->last) {
      open_read.reset();
      done(page->read, result, nullptr);
    }
  }
  // `stop` cut the fetching short: the read in progress ends where it is.
  if (open_read) {
    result.stopped = true;
    done(*open_read, result, nullptr);
  }
}

ReadResult read_series(esmond::Client& client, journal::Journal& journal, const journal::Series& series,
                       const nlohmann::json& metadata, int64_t from, std::optional<int64_t> to, int64_t now,
                       const ReadOptions& options, const std::atomic<bool>& stop) {
  const std::vector<SeriesRead> reads{SeriesRead{series, metadata, from, to}};
  ReadResult result;
  std::exception_ptr failure;
  bool finished = false;
  read_in_order(client, journal, reads, now, options, stop,
                [&](size_t, const ReadResult& read, std::exception_ptr read_failure) {
                  result = read;
                  failure = read_failure;
                  finished = true;
                });
  if (failure) std::rethrow_exception(failure);
  if (!finished) result.stopped = true;  // stopped before its first page
  return result;
}

}  // namespace gapless::collector
