// An esmond-compatible measurement archive for tests, the quick start and the
// benchmarks (esmond itself cannot be installed here). It serves the perfSONAR
// esmond REST API (docs/perfsonar_client_rest.rst, api_v2.py) over HTTP on
// loopback, with the behaviours pinned in docs/esmond.md section 1 (cited as
// "docs/esmond.md 1.x"), generated data and faults on request.
//
//   gapless::test::EsmondArchive::Options options;
//   options.series = 4;
//   gapless::test::EsmondArchive archive(options);
//   archive.start();                       // free port on 127.0.0.1
//   http get archive.base_url()            // .../esmond/perfsonar/archive/
//   archive.advance(600);                  // ten more minutes of data appear
//   archive.add_fault(Fault::of(FaultKind::http_error).matching(key).times(2));
//
// Data is a pure function of (seed, series, event type, ts): nothing is
// stored, weeks of 1-minute data cost nothing, and the same request always
// gets the same bytes. See README.md for the control endpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "faults.hpp"
#include "series.hpp"
#include "store.hpp"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace gapless::test {

// "Now" of the archive: which datapoints exist. Simulated by default, so that
// tests move it explicitly; real time, or simulated time running `speed`
// times faster than real time (speed 0 = frozen), for the executable.
class ArchiveClock {
 public:
  ArchiveClock(int64_t now, double speed);
  int64_t now() const;
  void set_now(int64_t now);
  void advance(int64_t seconds);

 private:
  mutable std::mutex mutex_;
  double anchor_now_;
  std::chrono::steady_clock::time_point anchor_real_;
  double speed_;
};

// Which archive answers: esmond (perfSONAR 4.x, OSG's datastore) or elmond,
// the esmond-compatible reader of perfSONAR 5 hosts (README.md "elmond mode").
enum class ArchiveFlavour { esmond, elmond };

// Options of an EsmondArchive (EsmondArchive::Options).
struct ArchiveOptions {
  ArchiveFlavour flavour = ArchiveFlavour::esmond;
  // elmond: the share of successful runs whose document lacks an event
  // type's field (Logstash writes only the fields a result has). elmond
  // counts such a document against `limit` and then drops it, so a page can
  // be short while later data exists.
  double elmond_missing_field_rate = 0.05;
  // elmond: pScheduler runs (the http archiver's bodies) the archive also
  // holds, one series per test, as Logstash and elmond present them
  // (runs.hpp); their series follow the generated ones. Runs older than the
  // retention policy expire like other points: set `retention` false or
  // `now` near the runs.
  std::vector<nlohmann::json> runs;
  std::string host = "127.0.0.1";
  int port = 0;  // 0: a free port
  int series = 8;
  // Kinds of test, rotated over the series (latency, throughput, trace, rtt).
  std::vector<esmond::SeriesKind> kinds = esmond::all_kinds();
  // Non-empty: every series carries only these of its kind's event types.
  std::vector<std::string> event_types;
  int64_t cadence = 60;                // seconds between runs of a series
  std::optional<int64_t> start;        // first data; default: now - 7 days
  std::optional<int64_t> now;          // initial clock; default: wall-clock time
  double clock_speed = 0;              // 0: simulated, moves by set_now/advance; 1: real time; N: N times faster
  int64_t ingest_delay = 0;            // a run's data appears this long after its ts
  std::map<int, int64_t> series_end;   // series index -> when its test stopped (no later data)
  uint64_t seed = 0;                   // different seeds: different keys and values
  bool retention = true;               // esmond's default expiry (docs/esmond.md 1.4)
  int threads = 32;                    // HTTP worker threads
};

class EsmondArchive {
 public:
  using Options = ArchiveOptions;

  explicit EsmondArchive(Options options = {});
  ~EsmondArchive();
  EsmondArchive(const EsmondArchive&) = delete;
  EsmondArchive& operator=(const EsmondArchive&) = delete;

  // Binds and serves in background threads; throws std::runtime_error when the
  // port cannot be bound. Ignores SIGPIPE process-wide if it has the default
  // action (a client that hangs up must not kill the test).
  void start();
  void stop();

  int port() const { return port_; }
  std::string root_url() const;  // http://127.0.0.1:PORT
  std::string base_url() const;  // http://127.0.0.1:PORT/esmond/perfsonar/archive/

  // The clock.
  int64_t now() const { return clock_.now(); }
  void set_now(int64_t now) { clock_.set_now(now); }
  void advance(int64_t seconds) { clock_.advance(seconds); }

  // What the archive holds, for checking what a client collected.
  const std::vector<esmond::Series>& series() const { return series_; }
  std::vector<std::string> metadata_keys() const;
  // The metadata object as served (url/uri against root_url()).
  nlohmann::json metadata(const std::string& key) const;
  // Every point with begin <= ts <= end that exists now, as served (by
  // elmond: without the documents that lack the field, summaries with a
  // window served empty):
  // [{"ts":..,"val":..}, ...]. summary_type "base" or a JSON summary name.
  nlohmann::json points(const std::string& key, const std::string& event_type, const std::string& summary_type = "base",
                        int64_t window = 0, int64_t begin = 0, std::optional<int64_t> end = std::nullopt) const;

  // Late data: writes a point at an older ts now (behind a client's cursor);
  // a ts already holding a point is overwritten. Without `val`, a generated
  // value. Returns the value written. Throws std::invalid_argument for an
  // unknown key or event type.
  nlohmann::json insert_point(const std::string& key, const std::string& event_type, int64_t ts,
                              std::optional<nlohmann::json> val = std::nullopt);
  // A correction: a changed value for a ts that has a point now (throws
  // std::invalid_argument if none). Without `val`, a different value of the
  // same type. Returns the new value.
  nlohmann::json correct_point(const std::string& key, const std::string& event_type, int64_t ts,
                               std::optional<nlohmann::json> val = std::nullopt);

  // Faults (see faults.hpp). add_fault returns an id for fault_fired/remove_fault.
  int add_fault(Fault fault) { return faults_.add(std::move(fault)); }
  bool remove_fault(int id) { return faults_.remove(id); }
  void clear_faults() { faults_.clear(); }
  int fault_fired(int id) const { return faults_.fired(id); }

  // Counters over archive requests (control requests excluded).
  uint64_t requests_served() const { return requests_.load(); }
  uint64_t points_served() const { return points_.load(); }

 private:
  struct Reply;

  const esmond::Series* find_series(const std::string& key) const;
  void handle_get(const httplib::Request& req, httplib::Response& res);
  void handle_control(const httplib::Request& req, httplib::Response& res);
  Reply route(const httplib::Request& req, int64_t now);
  Reply listing(const httplib::Request& req, int64_t now);
  Reply metadata_detail(const httplib::Request& req, const std::string& key, int64_t now);
  Reply event_type_detail(const std::string& key, const std::string& event_type, int64_t now);
  Reply data(const httplib::Request& req, const std::vector<std::string>& parts, int64_t now);
  Reply summary_details(const std::string& key, const std::string& event_type, const std::string& summary_type,
                        int64_t now);
  void send(httplib::Response& res, Reply reply);
  void apply_fault(const httplib::Request& req, httplib::Response& res, const Fault& fault, Reply& reply);
  bool sleep_unless_stopped(int milliseconds);
  nlohmann::json metadata_json(const esmond::Series& s, const std::string& root, int64_t now) const;
  nlohmann::json event_type_json(const esmond::Series& s, const esmond::EventType& et, int64_t now) const;
  // What a data URL serves (nothing when the series lacks the event type or
  // summary), ascending.
  void serve_points(const esmond::Series& s, const std::string& event_type, const std::string& summary_type,
                    int64_t window, int64_t begin, int64_t end, int64_t now, const esmond::Emit& emit) const;

  // elmond mode (elmond.cpp).
  Reply elmond_route(const httplib::Request& req, int64_t now);
  Reply elmond_listing(const httplib::Request& req, int64_t now);
  Reply elmond_data(const httplib::Request& req, const std::vector<std::string>& parts, int64_t now);
  nlohmann::json elmond_metadata_json(const esmond::Series& s, const std::string& root, int64_t now) const;
  // Run documents of `event_type` (each a ts, and the value when the
  // document has the field) in [begin, end], ascending; `emit` returns false
  // to stop.
  void elmond_documents(const esmond::Series& s, const std::string& event_type, const std::string& summary_type,
                        int64_t begin, int64_t end, int64_t now,
                        const std::function<bool(int64_t ts, const nlohmann::json* val)>& emit) const;
  std::optional<int64_t> elmond_latest_run(const esmond::Series& s, int64_t now) const;

  Options options_;
  std::vector<esmond::Series> series_;
  std::unordered_map<std::string, size_t> by_key_;  // metadata-key -> index in series_
  esmond::Store store_;
  mutable ArchiveClock clock_;
  FaultTable faults_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> points_{0};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace gapless::test
