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
#include "osg/listing_keys.hpp"

namespace gapless::esmond {

using nlohmann::json;

namespace {

// A broken or hostile archive must not exhaust the collector's memory; a
// real page (limit 1000-10000 points) is a few MiB.
constexpr size_t kMaxResponseBytes = size_t{256} << 20;
constexpr size_t kExcerptBytes = 200;

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

// The media type without parameters: "application/json; charset=utf-8" is JSON too.
bool is_json_content_type(std::string_view content_type) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  return media.size() == std::string_view("application/json").size() &&
         starts_with_nocase(media, "application/json");
}

// A body quoted in an error message: one line, markup dropped (error pages
// are HTML), short, and never cut inside a UTF-8 sequence.
std::string excerpt(std::string_view body, bool html) {
  if (html) {  // the <head> only repeats the status in <title>
    for (size_t at = body.find('<'); at != std::string_view::npos; at = body.find('<', at + 1))
      if (starts_with_nocase(body.substr(at), "<body")) {
        body.remove_prefix(at);
        break;
      }
  }
  std::string text;
  bool in_tag = false, space = false;
  for (const char c : body) {
    if (html && c == '<') in_tag = true;
    if (in_tag) {
      if (c == '>') in_tag = false, space = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !text.empty()) text += ' ';
    space = false;
    text += c;
    if (text.size() > kExcerptBytes) break;
  }
  if (text.size() <= kExcerptBytes) return text;
  size_t cut = kExcerptBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
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

// "an integer", "a string": what a value was, for messages.
std::string type_of(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a float";
  if (value.is_null()) return "null";
  const std::string name = value.type_name();
  return (name == "array" || name == "object" ? "an " : "a ") + name;
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

namespace {

// `body` parsed by nlohmann, or FetchError(malformed) saying where it breaks.
json parse_json(const std::string& archive_name, const std::string& url, const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse error".
    std::string_view message = e.what();
    if (const size_t at = message.find("] "); at != std::string_view::npos) message.remove_prefix(at + 2);
    throw fetch_error(FailureKind::malformed, archive_name, url,
                      "not valid JSON (" + std::to_string(body.size()) + " bytes, error at byte " +
                          std::to_string(e.byte) + "): " + std::string(message));
  }
}

}  // namespace

// ---------------------------------------------------------------- metadata

namespace {

// Checks one metadata object of a listing (the fields the collector relies
// on, docs/esmond.md 1.5). Returns a problem, or "" when it is usable.
std::string metadata_problem(const json& object) {
  if (!object.is_object()) return "is " + type_of(object) + ", not an object";
  const auto key = object.find("metadata-key");
  if (key == object.end()) return "has no \"metadata-key\"";
  if (!key->is_string() || key->get_ref<const std::string&>().empty())
    return "\"metadata-key\" is " + (key->is_string() ? std::string("empty") : type_of(*key)) +
           ", not a non-empty string";
  const auto event_types = object.find("event-types");
  if (event_types == object.end()) return "has no \"event-types\"";
  if (!event_types->is_array()) return "\"event-types\" is " + type_of(*event_types) + ", not an array";
  for (size_t i = 0; i < event_types->size(); ++i) {
    const json& et = (*event_types)[i];
    const std::string where = "\"event-types\"[" + std::to_string(i) + "]";
    if (!et.is_object()) return where + " is " + type_of(et) + ", not an object";
    const auto name = et.find("event-type");
    if (name == et.end()) return where + " has no \"event-type\"";
    if (!name->is_string()) return where + ".\"event-type\" is " + type_of(*name) + ", not a string";
    const auto summaries = et.find("summaries");
    if (summaries == et.end()) return where + " has no \"summaries\"";
    if (!summaries->is_array()) return where + ".\"summaries\" is " + type_of(*summaries) + ", not an array";
    for (size_t j = 0; j < summaries->size(); ++j) {
      const json& s = (*summaries)[j];
      const std::string at = where + ".\"summaries\"[" + std::to_string(j) + "]";
      if (!s.is_object()) return at + " is " + type_of(s) + ", not an object";
      const auto type = s.find("summary-type");
      if (type == s.end()) return at + " has no \"summary-type\"";
      if (!type->is_string()) return at + ".\"summary-type\" is " + type_of(*type) + ", not a string";
      const auto window = s.find("summary-window");
      if (window == s.end()) return at + " has no \"summary-window\"";
      // esmond sends the window as a string ("86400", docs/esmond.md 1.5); accept an
      // integer too, but it must be one: it becomes part of a data URL.
      bool whole = false;
      if (window->is_string()) {
        const std::string& text = window->get_ref<const std::string&>();
        whole = !text.empty() && text.size() <= 18 &&
                text.find_first_not_of("0123456789") == std::string::npos;
      } else if (window->is_number_unsigned()) {
        whole = window->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      } else if (window->is_number_integer()) {
        whole = window->get<int64_t>() >= 0;
      }
      if (!whole)
        return at + ".\"summary-window\" is " + window->dump() + ", not a whole number of seconds";
    }
  }
  return "";
}

}  // namespace

std::vector<json> Client::list_metadata(int64_t updated_since, int page_size, std::vector<std::string>* rejected) {
  if (page_size < 1) throw std::invalid_argument("esmond list_metadata: page_size must be positive");
  std::vector<json> objects;
  std::unordered_set<std::string> seen;
  int64_t offset = 0;
  for (;;) {
    // docs/esmond.md 1.2: time-start only, never time-end (it would drop running tests).
    const std::string url = base_url_ + "?format=json&time-start=" + std::to_string(updated_since) +
                            "&limit=" + std::to_string(page_size) + "&offset=" + std::to_string(offset);
    json page = parse_json(archive_name_, url, connection_->get_body(archive_name_, url));
    if (!page.is_array())
      throw fetch_error(FailureKind::invalid, archive_name_, url,
                        "expected a JSON array of metadata objects, got " + type_of(page));
    if (page.empty()) break;
    int64_t count_total = 0;
    for (size_t i = 0; i < page.size(); ++i) {
      json& object = page[i];
      const int64_t index = offset + static_cast<int64_t>(i);
      if (i == 0) {
        const auto total = object.is_object() ? object.find(osg::kCountTotalKey) : object.end();
        if (!object.is_object() || total == object.end() || !total->is_number_integer() || total->get<int64_t>() < 0)
          throw fetch_error(FailureKind::invalid, archive_name_, url,
                            "metadata object at listing index " + std::to_string(index) +
                                " carries no integer \"metadata-count-total\" (esmond >= 2.0 puts it on the "
                                "first object of a page, and paging relies on it)");
        count_total = total->get<int64_t>();
      }
      // One unusable object must not hide the others: it is reported and
      // left out, the rest of the listing is used.
      if (const std::string problem = metadata_problem(object); !problem.empty()) {
        const auto key = object.is_object() ? object.find("metadata-key") : object.end();
        const bool named = key != object.end() && key->is_string() && !key->get_ref<const std::string&>().empty();
        FetchError error = fetch_error(FailureKind::invalid, archive_name_, url,
                                       "metadata object " +
                                           (named ? "metadata-key " + key->get<std::string>() + " " : "") +
                                           "at listing index " + std::to_string(index) + ": " + problem);
        if (rejected == nullptr) throw error;
        rejected->push_back(error.what());
        continue;
      }
      for (const std::string_view name : osg::kPaginationKeys) object.erase(std::string(name));
      // An object listed again on a later page (the listing changed between
      // pages) is kept once.
      if (seen.insert(object["metadata-key"].get<std::string>()).second) objects.push_back(std::move(object));
    }
    offset += static_cast<int64_t>(page.size());
    if (offset >= count_total) break;
  }
  return objects;
}

// ---------------------------------------------------------------- data

namespace {

// The fast reading of a data page: simdjson's DOM, each value straight to its
// canonical text (osg/datapoint.hpp). It reads only pages that are entirely
// plain: valid JSON, every element an object with an integer "ts" and a
// "val", ts strictly ascending inside [time_start, time_end). For anything
// else (invalid JSON, a bad element, a number simdjson reads differently from
// nlohmann) it returns nothing, and the exact reading in fetch_data decides:
// it yields the same points or the error that names the problem, so the
// rules and the messages live in one place.
std::optional<std::vector<osg::Datapoint>> read_plain_page(simdjson::dom::parser& parser, const std::string& body,
                                                           int64_t time_start, std::optional<int64_t> time_end) {
  simdjson::dom::element page;
  if (parser.parse(body).get(page) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array elements;
  if (page.get_array().get(elements) != simdjson::SUCCESS) return std::nullopt;
  std::vector<osg::Datapoint> points;
  points.reserve(elements.size());
  try {
    for (simdjson::dom::element element : elements) {
      simdjson::dom::object fields;
      if (element.get_object().get(fields) != simdjson::SUCCESS) return std::nullopt;
      // Of two equal keys nlohmann keeps the later: so does this loop.
      std::optional<simdjson::dom::element> ts_field;
      std::optional<simdjson::dom::element> val;
      for (simdjson::dom::key_value_pair field : fields) {
        if (field.key == "ts") ts_field = field.value;
        else if (field.key == "val") val = field.value;
      }
      if (!ts_field || !val || ts_field->type() != simdjson::dom::element_type::INT64) return std::nullopt;
      const int64_t ts = ts_field->get_int64().value_unsafe();
      if ((!points.empty() && ts <= points.back().ts) || ts < time_start || (time_end && ts >= *time_end))
        return std::nullopt;
      points.push_back(osg::Datapoint::from_canonical_text(ts, osg::canonical_text(*val)));
    }
  } catch (const gapless::Error&) {
    return std::nullopt;  // an element type canonical_text does not know: the exact reading decides
  }
  return points;
}

}  // namespace

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
  if (std::optional<std::vector<osg::Datapoint>> points = read_plain_page(connection_->parser, body, time_start, time_end))
    return std::move(*points);

  // The exact reading: nlohmann's DOM, every rule checked with its message.
  json page = parse_json(archive_name_, url, body);
  const auto bad = [&](size_t index, const std::string& problem) {
    return fetch_error(FailureKind::invalid, archive_name_, url,
                       "datapoint " + std::to_string(index) + " " + problem + " (nothing of this page is used)");
  };
  if (!page.is_array())
    throw fetch_error(FailureKind::invalid, archive_name_, url,
                      "expected a JSON array of datapoints, got " + type_of(page) + ": " +
                          excerpt(page.dump(), false));
  std::vector<osg::Datapoint> points;
  points.reserve(page.size());
  for (size_t i = 0; i < page.size(); ++i) {
    json& element = page[i];
    if (!element.is_object()) throw bad(i, "is " + type_of(element) + ", not an object");
    const auto ts_field = element.find("ts");
    if (ts_field == element.end()) throw bad(i, "has no \"ts\"");
    if (!ts_field->is_number_integer() ||
        (ts_field->is_number_unsigned() &&
         ts_field->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      throw bad(i, "\"ts\" is " + ts_field->dump() + " (" + type_of(*ts_field) + "), not an integer");
    const int64_t ts = ts_field->get<int64_t>();
    const auto val = element.find("val");
    if (val == element.end()) throw bad(i, "(ts " + std::to_string(ts) + ") has no \"val\"");
    if (!points.empty() && ts <= points.back().ts)
      throw bad(i, "\"ts\" " + std::to_string(ts) + " does not follow " + std::to_string(points.back().ts) +
                       ": not strictly ascending");
    if (ts < time_start) throw bad(i, "\"ts\" " + std::to_string(ts) + " is before time-start");
    if (time_end && ts >= *time_end) throw bad(i, "\"ts\" " + std::to_string(ts) + " is after time-end");
    try {
      points.emplace_back(ts, *val);
    } catch (const gapless::Error& e) {
      throw bad(i, std::string("has a value that cannot be written as JSON: ") + e.what());
    }
  }
  return points;
}

}  // namespace gapless::esmond
