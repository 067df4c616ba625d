#include "core/config.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml.hpp>

#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/toml_error_text.hpp"

namespace gapless {

namespace {

// Reads one TOML table key by key. Every key read is remembered so that
// finish() can reject the ones nobody asked for: a misspelt key must be an
// error, not a silent default.
class TableReader {
 public:
  TableReader(const toml::value& table, std::string path) : path_(std::move(path)) {
    if (!table.is_table()) throw Error(path_ + ": expected a table");
    table_ = &table.as_table();
  }

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const toml::value* find(std::string_view key) {
    known_.insert(std::string(key));
    auto it = table_->find(std::string(key));
    return it == table_->end() ? nullptr : &it->second;
  }

  void read(std::string_view key, std::string& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_string()) throw type_error(key, "a string");
      out = value->as_string().str;
    }
  }

  void read(std::string_view key, int& out) {
    int64_t wide = out;
    read(key, wide);
    if (wide < 1 || wide > 1'000'000) throw Error(key_path(key) + ": must be between 1 and 1000000");
    out = static_cast<int>(wide);
  }

  void read(std::string_view key, int64_t& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_integer()) throw type_error(key, "an integer");
      out = value->as_integer();
    }
  }

  void read(std::string_view key, Milliseconds& out) {
    if (const toml::value* value = find(key)) {
      if (value->is_integer()) {
        if (value->as_integer() < 0) throw Error(key_path(key) + ": must not be negative");
        out = std::chrono::seconds(value->as_integer());
      } else if (value->is_string()) {
        out = parse_duration(value->as_string().str, key_path(key));
      } else {
        throw type_error(key, "a duration such as \"30s\" or a number of seconds");
      }
    }
  }

  void read(std::string_view key, bool& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_boolean()) throw type_error(key, "true or false");
      out = value->as_boolean();
    }
  }

  void read(std::string_view key, std::vector<std::string>& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_array()) throw type_error(key, "an array of strings");
      out.clear();
      for (const toml::value& item : value->as_array()) {
        if (!item.is_string()) throw type_error(key, "an array of strings");
        out.push_back(item.as_string().str);
      }
    }
  }

  // Whether the file gives `key` (without marking it read).
  bool given(std::string_view key) const { return table_->count(std::string(key)) != 0; }

  // A table of strings (an http sink's headers), in name order: TOML keeps
  // no order, and a fixed one keeps reloads comparable.
  void read(std::string_view key, std::vector<std::pair<std::string, std::string>>& out) {
    if (const toml::value* value = find(key)) {
      if (!value->is_table()) throw type_error(key, "a table of strings, such as { x-ps-observer = \"192.0.2.10\" }");
      std::map<std::string, std::string> sorted;
      for (const auto& [name, item] : value->as_table()) {
        if (!item.is_string()) throw Error(key_path(key) + "." + name + ": expected a string");
        sorted[name] = item.as_string().str;
      }
      out.assign(sorted.begin(), sorted.end());
    }
  }

  void finish() const {
    for (const auto& [key, value] : *table_)
      if (!known_.count(key)) throw Error(key_path(key) + ": unknown key");
  }

 private:
  Error type_error(std::string_view key, std::string_view expected) const {
    return Error(key_path(key) + ": expected " + std::string(expected));
  }

  const toml::table* table_ = nullptr;
  std::string path_;
  std::set<std::string> known_;
};

std::string read_first_line(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw Error(what + ": cannot read \"" + path + "\"");
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// The host of a broker URI ("stomp://HOST:PORT", "[v6]" allowed), or "".
std::string broker_host(const std::string& uri) {
  const size_t scheme = uri.find("://");
  if (scheme == std::string::npos) return "";
  const std::string rest = uri.substr(scheme + 3);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.find_first_of(":/"));
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Whether a URL carries "user:password@" (or "user@") before its host.
bool has_credentials(const std::string& url) {
  const size_t authority = url.find("://");
  if (authority == std::string::npos) return false;
  const size_t start = authority + 3;
  return url.substr(start, url.find_first_of("/?#", start) - start).find('@') != std::string::npos;
}

// A passcode file must be the daemon's secret: readable by group or others
// is a warning; empty is an error, never "no passcode" (a truncated file
// must not silently log in without one).
std::string read_passcode_file(const std::string& file, const std::string& key,
                               std::vector<std::string>& warnings) {
  std::string passcode = read_first_line(file, key);
  if (passcode.empty())
    throw Error(key + ": \"" + file + "\" is empty (or its first line is); an empty passcode_file is an error, "
                "not \"no passcode\": put the passcode on its first line, or remove passcode_file");
  struct stat info {};
  if (::stat(file.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
    warnings.push_back(key + ": \"" + file + "\" is readable by group or others (mode " + mode +
                       "); run chmod 600 " + file);
  }
  return passcode;
}

// [push]. The secrets' files are read when the endpoint starts (a missing
// one names its key there); here only what the keys say together.
PushConfig read_push(const toml::value& value) {
  TableReader reader(value, "push");
  PushConfig push;
  reader.read("listen", push.listen);
  reader.read("cert_file", push.cert_file);
  reader.read("key_file", push.key_file);
  reader.read("login", push.login);
  reader.read("password_file", push.password_file);
  reader.read("token_file", push.token_file);
  reader.read("max_body_size", push.max_body_size);
  reader.read("paths", push.paths);
  reader.read("threads", push.threads);
  reader.read("archive_url", push.archive_url);
  reader.read("retry_after", push.retry_after);
  reader.finish();
  if (!push.listen.empty() && push.listen.rfind(':') == std::string::npos)
    throw Error("push.listen: expected HOST:PORT, such as \"127.0.0.1:11284\"");
  if (push.cert_file.empty() != push.key_file.empty())
    throw Error("push.cert_file: cert_file and key_file go together (TLS needs both)");
  if (push.login.empty() != push.password_file.empty())
    throw Error("push.login: login and password_file go together (HTTP Basic authentication needs both)");
  if (!push.password_file.empty() && !push.token_file.empty())
    throw Error("push.token_file: at most one authentication: login with password_file (Basic), or token_file "
                "(bearer), not both");
  if (push.login.find(':') != std::string::npos)
    throw Error("push.login: must not contain ':' (HTTP Basic separates the login from the password with it)");
  if (push.max_body_size < 1024)
    throw Error("push.max_body_size: below 1024 bytes no pScheduler run fits (a throughput run is about 850 bytes "
                "compact, usually far more)");
  if (push.paths.empty()) throw Error("push.paths: must name at least one path, such as \"/\"");
  for (const std::string& path : push.paths)
    if (path.empty() || path.front() != '/')
      throw Error("push.paths: \"" + path + "\" must start with '/'");
  if (push.threads > 1024) throw Error("push.threads: must be between 1 and 1024");
  if (has_credentials(push.archive_url))
    throw Error("push.archive_url: must not hold credentials (user:password@), which logs, status and message ids "
                "would show");
  if (!push.archive_url.empty() && push.archive_url.rfind("http://", 0) != 0 &&
      push.archive_url.rfind("https://", 0) != 0)
    throw Error("push.archive_url: expected the http:// or https:// URL a backfill of the pushing host reads, "
                "such as \"https://ps.example.org/esmond/perfsonar/archive/\"");
  if (push.retry_after < std::chrono::seconds(1) || push.retry_after > std::chrono::hours(1))
    throw Error("push.retry_after: must be between 1s and 1h");
  return push;
}

// Keys of one protocol only. Given for a sink of the other protocol they
// would be silently ignored, so they are errors naming the key.
const std::vector<std::string_view> kStompOnlyKeys = {
    "brokers", "broker", "passcode", "passcode_file", "virtual_host", "transaction_size", "window", "max_header_line",
    "max_headers", "max_in_flight_bytes", "message_attempts", "receipt_timeout", "heartbeat", "connect_timeout",
    "failback_interval", "park_retry_interval", "park_retry_max"};
const std::vector<std::string_view> kHttpOnlyKeys = {"url", "method", "headers", "password_file", "timeout",
                                                     "max_requests_in_flight"};

// An HTTP header name is a token (RFC 9110 5.6.2); a value has no control
// character: a line break in either would split the request.
bool is_header_token(std::string_view name) {
  if (name.empty()) return false;
  for (const char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return false;
  return true;
}

bool has_control_character(std::string_view text) {
  for (const char c : text)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

// What only an http sink's keys say together (sender/http_sender.hpp).
void check_http_sink(SinkConfig& sink, const TableReader& reader, const std::string& path,
                     std::vector<std::string>& warnings) {
  if (sink.url.empty()) throw Error(reader.key_path("url") + ": required for an http sink (the Logstash URL)");
  // Checked first: the errors below quote the URL, and so do the logs and status.
  if (has_credentials(sink.url))
    throw Error(reader.key_path("url") + ": must not hold credentials (user:password@), which logs and status would "
                "show; use login and password_file");
  const bool plain = sink.url.rfind("http://", 0) == 0;
  if (!plain && sink.url.rfind("https://", 0) != 0)
    throw Error(reader.key_path("url") + ": expected an http:// or https:// URL, got \"" + sink.url + "\"");
  if (sink.method != "put" && sink.method != "post")
    throw Error(reader.key_path("method") + ": expected \"put\" or \"post\", got \"" + sink.method + "\"");
  std::set<std::string> names;
  for (const auto& [name, header_value] : sink.headers) {
    if (!is_header_token(name))
      throw Error(reader.key_path("headers") + ": \"" + name + "\" is not an HTTP header name");
    if (has_control_character(header_value))
      throw Error(reader.key_path("headers") + "." + name + ": a header value must not hold a control character");
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!names.insert(lower).second)
      throw Error(reader.key_path("headers") + ": \"" + name + "\" is given twice (header names ignore case)");
    if (lower == "authorization" && !sink.login.empty())
      throw Error(reader.key_path("headers") + ": an Authorization header and login/password_file are exclusive");
  }
  if (sink.login.empty() != sink.password_file.empty())
    throw Error(path + ": login and password_file go together (HTTP Basic authentication needs both)");
  if (sink.login.find(':') != std::string::npos)
    throw Error(reader.key_path("login") + ": must not contain ':' (HTTP Basic separates login and password with it)");
  if (!sink.password_file.empty()) {
    sink.password = read_passcode_file(sink.password_file, reader.key_path("password_file"), warnings);
    const size_t host_start = sink.url.find("://") + 3;
    const std::string host = sink.url.substr(host_start, sink.url.find_first_of(":/", host_start) - host_start);
    if (plain && !is_loopback(host))
      warnings.push_back(reader.key_path("url") + ": the password is sent in clear text to " + sink.url +
                         " (plain http:// to a host that is not this one); use https://");
  }
  if (sink.timeout < std::chrono::milliseconds(100))
    throw Error(reader.key_path("timeout") + ": must be at least 100ms");
  if (sink.max_requests_in_flight > 1000)
    throw Error(reader.key_path("max_requests_in_flight") + ": must be between 1 and 1000");
}

// `accept`: the destinations the sink takes (core/destination_filter.hpp);
// left out, its protocol's default. An empty list would take nothing.
void read_accept(TableReader& reader, SinkConfig& sink) {
  const bool given = reader.given("accept");
  reader.read("accept", sink.accept);
  if (!given) {
    sink.accept = default_accept(sink.protocol);
    return;
  }
  if (sink.accept.empty())
    throw Error(reader.key_path("accept") + ": empty, the sink would take no message (leave accept out for the "
                "protocol's default " + accept_text(default_accept(sink.protocol)) + ")");
  for (size_t i = 0; i < sink.accept.size(); ++i)
    if (const std::optional<std::string> error = accept_entry_error(sink.accept[i]))
      throw Error(reader.key_path("accept") + "[" + std::to_string(i) + "]: " + *error);
}

SinkConfig read_sink(const toml::value& value, const std::string& path, std::vector<std::string>& warnings) {
  TableReader reader(value, path);
  SinkConfig sink;
  reader.read("name", sink.name);
  reader.read("protocol", sink.protocol);
  if (sink.protocol != "stomp" && sink.protocol != "http")
    throw Error(reader.key_path("protocol") + ": unknown protocol \"" + sink.protocol + "\" (supported: stomp, http)");
  read_accept(reader, sink);
  const bool http = sink.protocol == "http";
  for (const std::string_view key : http ? kStompOnlyKeys : kHttpOnlyKeys)
    if (reader.given(key))
      throw Error(reader.key_path(key) + ": not a key of " + (http ? "an http" : "a stomp") + " sink (only of " +
                  (http ? "a stomp" : "an http") + " sink)");
  reader.read("url", sink.url);
  reader.read("method", sink.method);
  reader.read("headers", sink.headers);
  reader.read("password_file", sink.password_file);
  reader.read("timeout", sink.timeout);
  reader.read("max_requests_in_flight", sink.max_requests_in_flight);
  reader.read("brokers", sink.brokers);
  reader.read("login", sink.login);
  reader.read("passcode", sink.passcode);
  reader.read("passcode_file", sink.passcode_file);
  reader.read("ca_file", sink.ca_file);
  reader.read("cert_file", sink.cert_file);
  reader.read("key_file", sink.key_file);
  reader.read("virtual_host", sink.virtual_host);
  reader.read("broker", sink.broker);
  reader.read("transaction_size", sink.transaction_size);
  reader.read("window", sink.window);
  reader.read("max_message_size", sink.max_message_size);
  reader.read("max_header_line", sink.max_header_line);
  reader.read("max_headers", sink.max_headers);
  reader.read("max_in_flight_bytes", sink.max_in_flight_bytes);
  reader.read("message_attempts", sink.message_attempts);
  reader.read("receipt_timeout", sink.receipt_timeout);
  reader.read("heartbeat", sink.heartbeat);
  reader.read("connect_timeout", sink.connect_timeout);
  reader.read("reconnect_min", sink.reconnect_min);
  reader.read("reconnect_max", sink.reconnect_max);
  reader.read("failback_interval", sink.failback_interval);
  reader.read("park_retry_interval", sink.park_retry_interval);
  reader.read("park_retry_max", sink.park_retry_max);
  reader.read("shutdown_timeout", sink.shutdown_timeout);
  reader.finish();

  if (sink.name.empty()) throw Error(reader.key_path("name") + ": required");
  if (sink.cert_file.empty() != sink.key_file.empty())
    throw Error(path + ": cert_file and key_file go together");
  if (sink.max_message_size < 1) throw Error(reader.key_path("max_message_size") + ": must be positive");
  if (sink.reconnect_min > sink.reconnect_max)
    throw Error(reader.key_path("reconnect_min") + ": larger than reconnect_max");
  if (http) {
    check_http_sink(sink, reader, path, warnings);
    return sink;
  }
  if (sink.brokers.empty()) throw Error(reader.key_path("brokers") + ": at least one broker URI is required");
  if (sink.broker != "auto" && sink.broker != "activemq" && sink.broker != "rabbitmq")
    throw Error(reader.key_path("broker") + ": unknown broker \"" + sink.broker +
                "\" (supported: auto, activemq, rabbitmq)");
  if (!sink.passcode.empty() && !sink.passcode_file.empty())
    throw Error(path + ": passcode and passcode_file are exclusive");
  if (!sink.passcode_file.empty())
    sink.passcode = read_passcode_file(sink.passcode_file, reader.key_path("passcode_file"), warnings);
  if (sink.max_header_line < 1) throw Error(reader.key_path("max_header_line") + ": must be positive");
  if (sink.max_headers < 1) throw Error(reader.key_path("max_headers") + ": must be positive");
  if (sink.max_in_flight_bytes < sink.max_message_size)
    throw Error(reader.key_path("max_in_flight_bytes") + ": must be at least max_message_size (" +
                std::to_string(sink.max_message_size) + "), or the largest message could never be sent");
  if (sink.park_retry_interval > sink.park_retry_max)
    throw Error(reader.key_path("park_retry_interval") + ": larger than park_retry_max");
  if (!sink.passcode.empty())
    for (const std::string& broker : sink.brokers)
      if (broker.rfind("stomp://", 0) == 0 && !is_loopback(broker_host(broker)))
        warnings.push_back(reader.key_path("brokers") + ": the passcode is sent in clear text to " + broker +
                           " (plain stomp:// to a host that is not this one); use stomp+ssl://");
  return sink;
}

ArchiveConfig read_archive(const toml::value& value, const std::string& path) {
  TableReader reader(value, path);
  ArchiveConfig archive;
  reader.read("name", archive.name);
  reader.read("url", archive.url);
  reader.read("poll_interval", archive.poll_interval);
  reader.read("lookback", archive.lookback);
  reader.read("event_types", archive.event_types);
  reader.read("summaries", archive.summaries);
  reader.read("http_timeout", archive.http_timeout);
  reader.read("connect_timeout", archive.connect_timeout);
  reader.read("ca_file", archive.ca_file);
  std::string compression = archive.gzip ? "gzip" : "none";
  reader.read("compression", compression);
  reader.read("overlap", archive.overlap);
  reader.read("summary_grace", archive.summary_grace);
  reader.read("page_size", archive.page_size);
  reader.read("datapoints_per_message", archive.datapoints_per_message);
  reader.read("max_message_size", archive.max_message_size);
  reader.finish();

  if (archive.name.empty()) throw Error(reader.key_path("name") + ": required");
  if (compression != "gzip" && compression != "none")
    throw Error(reader.key_path("compression") + ": expected \"gzip\" or \"none\", got \"" + compression + "\"");
  archive.gzip = compression == "gzip";
  // Checked first, as for an http sink; and an archive's URL is also part of
  // every message id, so a password in it would travel to the brokers.
  if (has_credentials(archive.url))
    throw Error(reader.key_path("url") + ": must not hold credentials (user:password@), which logs, status and "
                "message ids would show");
  if (archive.url.rfind("http://", 0) != 0 && archive.url.rfind("https://", 0) != 0)
    throw Error(reader.key_path("url") + ": expected an http:// or https:// URL of the archive "
                "(.../esmond/perfsonar/archive/), got \"" + archive.url + "\"");
  if (archive.url.back() != '/') archive.url += '/';
  if (archive.event_types.empty()) throw Error(reader.key_path("event_types") + ": must name at least one event type");
  for (const std::string& event_type : archive.event_types)
    if (event_type.empty() || event_type.find_first_of("/?#& ") != std::string::npos)
      throw Error(reader.key_path("event_types") + ": \"" + event_type + "\" is not an event type");
  if (archive.poll_interval < std::chrono::seconds(1))
    throw Error(reader.key_path("poll_interval") + ": must be at least 1s");
  if (archive.http_timeout < std::chrono::seconds(1))
    throw Error(reader.key_path("http_timeout") + ": must be at least 1s");
  if (archive.page_size < 2) throw Error(reader.key_path("page_size") + ": must be at least 2");
  if (archive.max_message_size < 1) throw Error(reader.key_path("max_message_size") + ": must be positive");
  return archive;
}

}  // namespace

const std::vector<std::string>& osg_event_types() {
  static const std::vector<std::string> types = {
      "packet-loss-rate", "packet-trace", "packet-retransmits", "throughput", "throughput-subintervals",
      "failures", "packet-count-sent", "packet-count-lost", "histogram-owdelay", "histogram-ttl",
      "packet-retransmits-subintervals", "packet-loss-rate-bidir", "packet-count-lost-bidir"};
  return types;
}

const ArchiveConfig* Config::find_archive(std::string_view name) const {
  for (const ArchiveConfig& archive : archives)
    if (archive.name == name) return &archive;
  return nullptr;
}

const SinkConfig* Config::find_sink(std::string_view name) const {
  for (const SinkConfig& sink : sinks)
    if (sink.name == name) return &sink;
  return nullptr;
}

std::vector<std::string> Config::sink_names() const {
  std::vector<std::string> names;
  for (const SinkConfig& sink : sinks) names.push_back(sink.name);
  return names;
}

Config default_config() {
  Config config;
  SinkConfig sink;
  sink.name = "local";
  sink.brokers = {"stomp://127.0.0.1:61613"};
  sink.login = "collector";
  sink.passcode = "collector-secret";
  sink.accept = default_accept(sink.protocol);
  config.sinks.push_back(sink);
  return config;
}

namespace {

// The offset of the first byte that does not begin a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), or nothing.
std::optional<size_t> invalid_utf8_at(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto byte = [&](size_t at) { return at < text.size() ? static_cast<unsigned char>(text[at]) : 0; };
    const unsigned char lead = byte(i);
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
    if (lead < 0x80) length = 1;
    else if (lead >= 0xC2 && lead <= 0xDF) length = 2;
    else if (lead == 0xE0) length = 3, low = 0xA0;
    else if (lead >= 0xE1 && lead <= 0xEC) length = 3;
    else if (lead == 0xED) length = 3, high = 0x9F;
    else if (lead >= 0xEE && lead <= 0xEF) length = 3;
    else if (lead == 0xF0) length = 4, low = 0x90;
    else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
    else if (lead == 0xF4) length = 4, high = 0x8F;
    else return i;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = byte(i + k);
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF)) return i;
    }
    i += length;
  }
  return std::nullopt;
}

}  // namespace

Config parse_config(std::string_view toml_text, std::string_view origin) {
  toml::value root;
  // TOML is UTF-8; toml11 3.7 reads past the end of its buffer on a broken
  // sequence inside a literal string (found by tests/fuzz), so it never sees one.
  if (const std::optional<size_t> at = invalid_utf8_at(toml_text))
    throw Error(std::string(origin) + ": not valid TOML: not UTF-8 (byte " + std::to_string(*at + 1) +
                " does not begin a well-formed UTF-8 character)");
  try {
    std::istringstream stream{std::string(toml_text)};
    root = toml::parse(stream, std::string(origin));
  } catch (const std::exception& e) {
    throw Error(std::string(origin) + ": not valid TOML: " + toml_error_without_values(e.what()));
  }

  Config config;
  config.origin = std::string(origin);
  try {
    TableReader top(root, "");
    top.read("log_level", config.log_level);
    if (!known_log_level(config.log_level))
      throw Error("log_level: unknown level \"" + config.log_level + "\" (expected trace, debug, info, warn, error or off)");
    if (const toml::value* journal = top.find("journal")) {
      TableReader reader(*journal, "journal");
      reader.read("path", config.journal.path);
      reader.read("group", config.journal.group);
      reader.read("disk_reserve", config.journal.disk_reserve);
      reader.read("keep_delivered", config.journal.keep_delivered);
      reader.read("max_size", config.journal.max_size);
      reader.finish();
      if (config.journal.disk_reserve < 0) throw Error("journal.disk_reserve: must not be negative");
      if (config.journal.max_size < 0) throw Error("journal.max_size: must not be negative (0: no limit)");
      if (config.journal.max_size > 0 && config.journal.max_size < 1024 * 1024)
        throw Error("journal.max_size: below 1 MiB (1048576), the journal could not hold its own tables; 0 for no limit");
      if (config.journal.path.empty()) throw Error("journal.path: must not be empty");
    }
    if (const toml::value* messages = top.find("messages")) {
      TableReader reader(*messages, "messages");
      reader.read("refused_headers", config.messages.refused_headers);
      reader.finish();
    }
    if (const toml::value* sinks = top.find("sink")) {
      if (!sinks->is_array()) throw Error("sink: expected an array of tables ([[sink]])");
      const auto& array = sinks->as_array();
      for (size_t i = 0; i < array.size(); ++i)
        config.sinks.push_back(read_sink(array[i], "sink[" + std::to_string(i) + "]", config.warnings));
    }
    if (const toml::value* collector = top.find("collector")) {
      TableReader reader(*collector, "collector");
      reader.read("max_concurrent_requests", config.collector.max_concurrent_requests);
      reader.read("retry_min", config.collector.retry_min);
      reader.read("retry_max", config.collector.retry_max);
      reader.finish();
      if (config.collector.retry_min > config.collector.retry_max)
        throw Error("collector.retry_min: larger than collector.retry_max");
    }
    if (const toml::value* http = top.find("http")) {
      TableReader reader(*http, "http");
      reader.read("listen", config.http.listen);
      reader.read("stalled_after", config.http.stalled_after);
      reader.read("failed_polls", config.http.failed_polls);
      reader.read("token_file", config.http.token_file);
      reader.read("cert_file", config.http.cert_file);
      reader.read("key_file", config.http.key_file);
      reader.finish();
      if (config.http.cert_file.empty() != config.http.key_file.empty())
        throw Error("http.cert_file: cert_file and key_file go together (TLS needs both)");
      if (!config.http.listen.empty() && config.http.listen.rfind(':') == std::string::npos)
        throw Error("http.listen: expected HOST:PORT, such as \"127.0.0.1:9464\"");
    }
    if (const toml::value* push = top.find("push")) config.push = read_push(*push);
    if (const toml::value* archives = top.find("archive")) {
      if (!archives->is_array()) throw Error("archive: expected an array of tables ([[archive]])");
      const auto& array = archives->as_array();
      for (size_t i = 0; i < array.size(); ++i)
        config.archives.push_back(read_archive(array[i], "archive[" + std::to_string(i) + "]"));
    }
    top.finish();
  } catch (const Error& e) {
    throw Error(std::string(origin) + ": " + e.what());
  }

  std::set<std::string> names;
  for (const SinkConfig& sink : config.sinks)
    if (!names.insert(sink.name).second)
      throw Error(std::string(origin) + ": sink name \"" + sink.name + "\" is used twice");
  if (config.sinks.empty()) throw Error(std::string(origin) + ": no [[sink]] configured");
  std::set<std::string> archive_names;
  std::set<std::string> archive_urls;
  for (const ArchiveConfig& archive : config.archives) {
    if (!archive_names.insert(archive.name).second)
      throw Error(std::string(origin) + ": archive name \"" + archive.name + "\" is used twice");
    if (!archive_urls.insert(archive.url).second)
      throw Error(std::string(origin) + ": archive URL " + archive.url + " is configured twice");
  }
  return config;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("config " + path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace gapless
