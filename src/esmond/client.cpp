#include "esmond/client.hpp"

#include <curl/curl.h>
#include <simdjson.h>

#include <cctype>
#include <limits>
#include <new>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "core/curl_global.hpp"
#include "core/duration.hpp"
#include "core/hex.hpp"
#include "esmond/pages.hpp"

namespace gapless::esmond {

using nlohmann::json;

namespace {

// A broken or hostile archive must not exhaust the collector's memory; a
// real page (limit 1000-10000 points) is a few MiB.
constexpr size_t kMaxResponseBytes = size_t{256} << 20;

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// The media type without parameters: "application/json; charset=utf-8" is JSON too.
bool is_json_content_type(std::string_view content_type) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  return media.size() == std::string_view("application/json").size() &&
         starts_with_nocase(media, "application/json");
}

// HTTP/2 has no reason phrase; the common ones keep messages readable.
std::string_view standard_reason(long status) {
  switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

std::string percent_encode_segment(std::string_view segment, std::string_view what) {
  if (segment.empty() || segment == "." || segment == "..")
    throw gapless::Error("esmond data path: " + std::string(what) + " \"" + std::string(segment) +
                         "\" cannot be a URL path segment");
  std::string out;
  for (const char c : segment) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '_' || c == '.' || c == '~';  // RFC 3986, locale-free
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      append_hex(out, byte, HexCase::upper);
    }
  }
  return out;
}

}  // namespace

std::string_view failure_kind_name(FailureKind kind) {
  switch (kind) {
    case FailureKind::connect: return "connect";
    case FailureKind::timeout: return "timeout";
    case FailureKind::http_status: return "http-status";
    case FailureKind::redirect: return "redirect";
    case FailureKind::not_json: return "not-json";
    case FailureKind::malformed: return "malformed";
    case FailureKind::invalid: return "invalid";
  }
  return "unknown";
}

FetchError::FetchError(FailureKind kind, std::string url, const std::string& message)
    : gapless::Error(message), kind_(kind), url_(std::move(url)) {}

std::string data_path(const SeriesPath& series) {
  std::string path = percent_encode_segment(series.metadata_key, "metadata-key") + "/" +
                     percent_encode_segment(series.event_type, "event-type") + "/";
  const std::string& type = series.summary_type;
  if (type.empty() || type == "base") return path + "base";
  std::string plural;  // docs/esmond.md 1.1: the URL takes the plural, the JSON the singular
  if (type == "aggregation") plural = "aggregations";
  else if (type == "average") plural = "averages";
  else if (type == "statistics") plural = "statistics";
  else
    throw gapless::Error("esmond data path: unknown summary-type \"" + type + "\" of metadata-key " +
                         series.metadata_key + " event-type " + series.event_type +
                         " (known: aggregation, average, statistics)");
  if (series.summary_window < 0)
    throw gapless::Error("esmond data path: negative summary-window " + std::to_string(series.summary_window) +
                         " of metadata-key " + series.metadata_key + " event-type " + series.event_type);
  return path + plural + "/" + std::to_string(series.summary_window);
}

// ---------------------------------------------------------------- HTTP

struct Client::Connection {
  struct Response {
    long status = 0;
    std::string reason;
    std::string body;
    bool too_large = false;
    bool out_of_memory = false;
  };

  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  ClientOptions options;
  char error[CURL_ERROR_SIZE] = {};
  Response response;
  simdjson::dom::parser parser;  // reused: it keeps its buffers between pages

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  explicit Connection(ClientOptions opts) : options(std::move(opts)) {
    initialise_curl_once();
    curl = curl_easy_init();
    if (curl == nullptr) throw gapless::Error("libcurl: cannot create a handle");
    headers = curl_slist_append(nullptr, "Accept: application/json");
    if (headers == nullptr) {
      curl_easy_cleanup(curl);
      throw std::bad_alloc();
    }
    // Several threads each own a Client: no SIGALRM-based DNS timeouts.
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    // A configured file:// (or any other scheme) must not read anything but
    // an archive.
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    // An archive that moved must be reconfigured; silently following could
    // collect from another host under this archive's name.
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    // Pages of JSON shrink ~10x; the size bound below applies to the decoded body.
    // gzip only: it decodes cheaply, while a server offered brotli may spend
    // far more compressing each page than the transfer saves on a LAN.
    if (options.gzip) curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
    // Refuses an announced oversize body before any of it is read.
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Connection::on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Connection::on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
  }

  // GET `url`; the body of a 200 application/json answer. Throws FetchError.
  std::string get_body(const std::string& archive_name, const std::string& url);

  ~Connection() {
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
  }

  // libcurl callbacks: C frames, so nothing may propagate out of them.
  static size_t on_body(char* data, size_t size, size_t count, void* self) {
    Response& r = static_cast<Connection*>(self)->response;
    const size_t n = size * count;
    if (r.body.size() + n > kMaxResponseBytes) {
      r.too_large = true;
      return 0;
    }
    try {
      r.body.append(data, n);
    } catch (const std::bad_alloc&) {
      r.out_of_memory = true;
      return 0;
    }
    return n;
  }

  static size_t on_header(char* data, size_t size, size_t count, void* self) {
    Response& r = static_cast<Connection*>(self)->response;
    const size_t n = size * count;
    const std::string_view line(data, n);
    // "HTTP/1.1 503 Service Unavailable": keep the reason phrase for messages.
    if (line.rfind("HTTP/", 0) == 0) {
      std::string_view rest = line.substr(std::min(line.size(), line.find(' ')));
      rest = trim(rest);
      rest = rest.substr(std::min(rest.size(), rest.find(' ')));
      try {
        r.reason = std::string(trim(rest));
      } catch (const std::bad_alloc&) {
        return 0;
      }
    }
    return n;
  }
};

namespace {

FetchError fetch_error(FailureKind kind, const std::string& archive_name, const std::string& url,
                       const std::string& problem) {
  return FetchError(kind, url, "archive " + archive_name + ": GET " + url + ": " + problem);
}

struct Failure {
  FailureKind kind;
  std::string problem;
};

Failure failure_of(CURLcode rc, const char* detail, const ClientOptions& options, bool too_large,
                   bool out_of_memory) {
  std::string what = curl_easy_strerror(rc);
  if (detail[0] != '\0') what += std::string(" (") + detail + ")";
  if (too_large || rc == CURLE_FILESIZE_EXCEEDED)
    return {FailureKind::invalid, "response larger than " + std::to_string(kMaxResponseBytes >> 20) +
                                      " MiB, refused (" + what + ")"};
  if (out_of_memory) return {FailureKind::invalid, "out of memory reading the response"};
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return {FailureKind::timeout, "no complete answer within " + format_duration(options.timeout) +
                                        " (connect timeout " + format_duration(options.connect_timeout) +
                                        "): " + what};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return {FailureKind::invalid, "bad URL: " + what};
    case CURLE_GOT_NOTHING: return {FailureKind::connect, "connection closed without a response: " + what};
    case CURLE_PARTIAL_FILE: return {FailureKind::connect, "response cut short: " + what};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return {FailureKind::connect, "TLS handshake or certificate verification failed: " + what};
    default: return {FailureKind::connect, what};
  }
}

}  // namespace

// ---------------------------------------------------------------- Client

Client::Client(std::string archive_name, std::string base_url, ClientOptions options)
    : archive_name_(std::move(archive_name)), base_url_(std::move(base_url)) {
  if (!starts_with_nocase(base_url_, "http://") && !starts_with_nocase(base_url_, "https://"))
    throw FetchError(FailureKind::invalid, base_url_,
                     "archive " + archive_name_ + ": base URL " + base_url_ + " is not an http:// or https:// URL");
  if (base_url_.back() != '/') base_url_ += '/';
  connection_ = std::make_unique<Connection>(std::move(options));
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

std::string Client::Connection::get_body(const std::string& archive_name, const std::string& url) {
  response = Response{};
  error[0] = '\0';
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  // The body can be large; whatever happens below, it is not kept past this call.
  Response r = std::exchange(response, Response{});
  if (rc != CURLE_OK) {
    Failure f = failure_of(rc, error, options, r.too_large, r.out_of_memory);
    throw fetch_error(f.kind, archive_name, url, f.problem);
  }

  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  const char* type = nullptr;
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  const std::string content_type = type == nullptr ? "" : type;
  const bool html = starts_with_nocase(content_type, "text/html");
  const std::string reason = r.reason.empty() ? std::string(standard_reason(r.status)) : r.reason;
  const std::string status_line = "HTTP " + std::to_string(r.status) + (reason.empty() ? "" : " " + reason);

  if (r.status >= 300 && r.status < 400) {
    const char* location = nullptr;
    curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location);
    if (location != nullptr && location[0] != '\0')
      throw fetch_error(FailureKind::redirect, archive_name, url,
                        status_line + " to " + location +
                            ", not followed: if the archive moved, change its configured URL");
  }
  if (r.status != 200) {
    const std::string body = excerpt(r.body, html);
    throw fetch_error(FailureKind::http_status, archive_name, url,
                      status_line + (body.empty() ? "" : ": " + body));
  }
  if (!is_json_content_type(content_type)) {
    const std::string body = excerpt(r.body, html);
    throw fetch_error(FailureKind::not_json, archive_name, url,
                      (content_type.empty() ? std::string("no Content-Type") : "Content-Type " + content_type) +
                          ", not application/json" + (body.empty() ? "" : ": " + body));
  }
  return std::move(r.body);
}

// ---------------------------------------------------------------- metadata

std::vector<json> Client::list_metadata(int64_t updated_since, int page_size, std::vector<std::string>* rejected) {
  if (page_size < 1) throw std::invalid_argument("esmond list_metadata: page_size must be positive");
  std::vector<json> objects;
  std::unordered_set<std::string> seen;
  int64_t offset = 0;
  for (;;) {
    // docs/esmond.md 1.2: time-start only, never time-end (it would drop running tests).
    const std::string url = base_url_ + "?format=json&time-start=" + std::to_string(updated_since) +
                            "&limit=" + std::to_string(page_size) + "&offset=" + std::to_string(offset);
    ListingPage page;
    try {
      page = read_listing_page(connection_->get_body(archive_name_, url), offset);
    } catch (const PageError& e) {
      throw fetch_error(e.kind(), archive_name_, url, e.what());
    }
    if (page.size == 0) break;
    for (const std::string& problem : page.rejected) {
      FetchError error = fetch_error(FailureKind::invalid, archive_name_, url, problem);
      if (rejected == nullptr) throw error;
      rejected->push_back(error.what());
    }
    // An object listed again on a later page (the listing changed between
    // pages) is kept once.
    for (json& object : page.objects)
      if (seen.insert(object["metadata-key"].get<std::string>()).second) objects.push_back(std::move(object));
    offset += static_cast<int64_t>(page.size);
    if (offset >= page.count_total) break;
  }
  return objects;
}

// ---------------------------------------------------------------- data

std::vector<osg::Datapoint> Client::fetch_data(const SeriesPath& series, int64_t time_start,
                                               std::optional<int64_t> time_end, int limit) {
  if (limit < 1) throw std::invalid_argument("esmond fetch_data: limit must be positive");
  if (time_end && *time_end <= time_start) return {};
  // docs/esmond.md 1.2: esmond's time-end is inclusive; docs/esmond.md 1.3: always an explicit limit.
  std::string url = base_url_ + (series.path.empty() ? data_path(series) : series.path) +
                    "?format=json&time-start=" + std::to_string(time_start);
  if (time_end) url += "&time-end=" + std::to_string(*time_end - 1);
  url += "&limit=" + std::to_string(limit);

  const std::string body = connection_->get_body(archive_name_, url);
  if (std::optional<std::vector<osg::Datapoint>> points =
          read_plain_data_page(connection_->parser, body, time_start, time_end))
    return std::move(*points);
  try {
    return read_data_page(body, time_start, time_end);
  } catch (const PageError& e) {
    throw fetch_error(e.kind(), archive_name_, url, e.what());
  }
}

}  // namespace gapless::esmond
