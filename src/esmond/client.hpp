// Reading a perfSONAR esmond archive over HTTP(S) (docs/esmond.md section 1). The esmond facts this client is built on:
//
// * docs/esmond.md 1.2: time filters on the metadata list test each event type's
//   `time-updated`, not data timestamps. A closed window (time-start AND
//   time-end) would drop every test still running, so the list is asked with
//   `time-start` only; time windows apply to the data URLs.
// * docs/esmond.md 1.2: esmond's `time-end` is inclusive; fetch_data takes a half-open
//   [time_start, time_end) and sends time-end = time_end - 1.
// * docs/esmond.md 1.3: without `limit` a query gets the oldest 1500 points, and the
//   `Link: rel="next"` header stops after one further page (a request WITH
//   `limit` never gets one). Both calls therefore always send an explicit
//   `limit` and never follow Link: data is paged by time (time-start = last
//   ts + 1 until a short page), the metadata list by offset against
//   `metadata-count-total`, which esmond puts on the first element of a page.
// * docs/esmond.md 1.2: DRF also renders HTML for browsers, so `format=json` and
//   `Accept: application/json` are sent and any other Content-Type is an error.
//
// Every failure is a FetchError whose kind drives metrics and retry
// decisions; nothing partial is ever returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "osg/datapoint.hpp"

namespace gapless::esmond {

struct ClientOptions {
  std::chrono::milliseconds timeout{30'000};  // whole request
  std::chrono::milliseconds connect_timeout{10'000};
  std::string ca_file;  // empty: system trust store; https is always verified (peer + host)
  std::string user_agent = "gapless/0.1";
  bool gzip = true;  // Accept-Encoding: gzip (ArchiveConfig::gzip says when not to)
};

// What went wrong, for metrics and retry decisions.
enum class FailureKind { connect, timeout, http_status, redirect, not_json, malformed, invalid };

// "connect", "timeout", "http-status", "redirect", "not-json", "malformed", "invalid".
std::string_view failure_kind_name(FailureKind kind);

// Thrown by every Client call. what() names the archive (config name), the
// full URL and the problem, e.g.
// "archive psds: GET http://.../base?time-start=5&limit=1000: HTTP 503 Service Unavailable".
class FetchError : public gapless::Error {
 public:
  FetchError(FailureKind kind, std::string url, const std::string& message);
  FailureKind kind() const { return kind_; }
  const std::string& url() const { return url_; }

 private:
  FailureKind kind_;
  std::string url_;
};

// One data series to read: base data (summary_type empty or "base"), or one
// summary (summary_type "aggregation", "average" or "statistics"; window in
// seconds). Not journal::SeriesKey: a data URL is relative to the client's
// own archive, so there is no archive_url to carry, and the client uses no
// journal type (docs/architecture.md, the modules' uses).
struct SeriesPath {
  std::string metadata_key;
  std::string event_type;
  std::string summary_type;
  int64_t summary_window = 0;
  // The data's URL relative to the archive base as the listing gives it
  // (esmond/data_location.hpp); empty: data_path builds esmond's.
  std::string path{};
};

// The URL of a series' data relative to the archive base: "<key>/<event-type>/base"
// or "<key>/<event-type>/<plural>/<window>" (docs/esmond.md 1.1: the URL uses the plural
// of the summary type). Key and event type are percent-encoded, so a hostile
// metadata key cannot steer the request elsewhere. Throws gapless::Error for a
// summary type esmond does not know.
std::string data_path(const SeriesPath& series);

// One per thread; reuses its connection (keep-alive).
class Client {
 public:
  // base_url ends with .../esmond/perfsonar/archive/ (the slash is added if
  // missing). Throws FetchError(invalid) unless it is an http or https URL.
  Client(std::string archive_name, std::string base_url, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // Every metadata object of the archive with an event type updated at or
  // after `updated_since` (unix s), each once (by metadata-key), without the
  // three pagination keys esmond adds to a page's first element. Pages with
  // limit/offset (page_size) until `metadata-count-total` objects are read or
  // a page is empty; a page whose first object lacks the count is
  // FetchError(invalid). Each object is validated ("metadata-key",
  // "event-types" with "event-type" and "summaries" of "summary-type" and
  // "summary-window", a string or an integer). A bad one is described
  // (naming its key or listing index and the field) in `rejected` and left
  // out, so that it cannot hide the others; without `rejected` it is a
  // FetchError(invalid).
  std::vector<nlohmann::json> list_metadata(int64_t updated_since, int page_size = 1000,
                                            std::vector<std::string>* rejected = nullptr);

  // One page of a series' data: at most `limit` points with
  // time_start <= ts (< time_end when given), ascending, each value as its
  // canonical text with its digest (osg/datapoint.hpp: a float stays a
  // float). An empty range returns nothing without a
  // request. Elements must be objects with an integer "ts" and a "val";
  // ts strictly ascending and inside the range: otherwise FetchError(invalid)
  // naming the element index and the field. limit < 1 or page_size < 1 is a
  // programming error: std::invalid_argument.
  std::vector<osg::Datapoint> fetch_data(const SeriesPath& series, int64_t time_start,
                                         std::optional<int64_t> time_end, int limit);

  const std::string& archive_name() const { return archive_name_; }
  const std::string& base_url() const { return base_url_; }

 private:
  struct Connection;

  std::string archive_name_;
  std::string base_url_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace gapless::esmond
