// gapless configuration: the TOML file, its defaults and its validation.
// etc/gapless.example.toml documents every key; this file is where each key is
// read, so the two must change together. Unknown keys and bad values are errors
// that name the key ("sink[0].window: ..."): a typo must never silently fall
// back to a default.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/duration.hpp"

namespace gapless {

struct JournalConfig {
  std::string path = "gapless-journal.db";
  // The journal and its companions (-wal, -shm, .lock, .reserve) are created
  // mode 0600; with a group, 0660 and owned by that group (a monitoring user
  // running `gapless status` must be able to open the WAL's -shm file).
  std::string group;
  // Bytes kept in "<path>.reserve" beside the journal and given back to the
  // file system when the disk fills, so that delivery marks can still be
  // written while collection pauses (journal/disk_reserve.hpp). 0: none.
  int64_t disk_reserve = 16 * 1024 * 1024;
  // Retention (issue 12): a message delivered to every sink registered in
  // the journal is kept this long after its last delivery, for resend
  // requests, then pruned. Undelivered messages are never pruned.
  Milliseconds keep_delivered{std::chrono::hours(24 * 7)};
  // Bytes the journal file may hold (0: no limit). At the limit producers
  // (collection, ingest, backfill) pause; delivery and pruning go on.
  int64_t max_size = 0;

  bool operator==(const JournalConfig&) const = default;
};

// [http]: the daemon's endpoint for monitoring and resend requests.
struct HttpConfig {
  std::string listen;  // "HOST:PORT"; empty: no endpoint
  // /healthz turns 503 when a sink with pending messages delivered nothing,
  // or a destination or message stayed parked, for longer than this.
  Milliseconds stalled_after{std::chrono::minutes(15)};
  int failed_polls = 3;     // /healthz turns 503 after an archive failed this many polls in a row
  std::string token_file;   // first line: the bearer token POST /v1/resend requires; empty: resend refused
  std::string cert_file;    // TLS (PEM), with key_file; empty: plain HTTP
  std::string key_file;

  bool operator==(const HttpConfig&) const = default;
};

// [push]: the endpoint pScheduler's http archiver sends its runs to
// (push/endpoint.hpp; docs/perfsonar5.md).
struct PushConfig {
  std::string listen;     // "HOST:PORT"; empty: no push endpoint
  std::string cert_file;  // TLS (PEM), with key_file; empty: plain HTTP
  std::string key_file;
  // Authentication, at most one: HTTP Basic (login, and password_file's first
  // line), or a bearer token (token_file's first line). Neither: none asked.
  std::string login;
  std::string password_file;
  std::string token_file;
  int64_t max_body_size = 16 * 1024 * 1024;
  std::vector<std::string> paths = {"/", "/logstash"};  // the paths accepted, by PUT or POST
  int threads = 32;  // connections served at once (pScheduler opens up to 25 from one host)
  // The esmond-style archive URL a backfill of the pushing host reads (its
  // elmond): the OSG messages of a pushed run carry the identity a backfill
  // from there would give them. Empty: https://<the run's host>/esmond/perfsonar/archive/.
  std::string archive_url;
  Milliseconds retry_after{std::chrono::seconds(30)};  // Retry-After of a 503 (journal full or paused)

  bool operator==(const PushConfig&) const = default;
};

// What every producer (ingest, collector, backfill) refuses at the door, on
// top of what can never be a valid STOMP frame (stomp/message_rules.hpp).
struct MessageRulesConfig {
  // Headers a broker honours by dropping or failing a message after it
  // accepted it: `expires` (ActiveMQ discards an expired message after its
  // RECEIPT) and `transformation` (fails on Debian's ActiveMQ, no XStream).
  std::vector<std::string> refused_headers = {"expires", "transformation"};

  bool operator==(const MessageRulesConfig&) const = default;
};

struct SinkConfig {
  std::string name;
  std::string protocol = "stomp";  // "stomp" (sender/sender.hpp) or "http" (sender/http_sender.hpp)
  // Which messages this sink takes, by destination (core/destination_filter.hpp).
  // Left out of the file: the protocol's default (a stomp sink takes /topic/ and
  // /queue/ destinations, an http sink the pushed pScheduler runs).
  std::vector<std::string> accept;

  // protocol "http": each message's body, unchanged, by PUT or POST to `url`.
  std::string url;
  std::string method = "put";  // "put" or "post"
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request, in this order
  std::string password_file;   // with login: HTTP Basic authentication, the password on its first line
  std::string password;        // password_file's first line, read with the configuration; secret: never logged
  Milliseconds timeout{std::chrono::seconds(30)};  // one request, connection included
  int max_requests_in_flight = 8;

  // protocol "stomp".
  // Tried in order; after a failover the sender returns to the first one when
  // it is reachable again.
  std::vector<std::string> brokers;
  std::string login;
  std::string passcode;       // secret: never logged
  std::string passcode_file;  // read at start; its first line is the passcode
  std::string ca_file;        // empty: the system's trust store
  std::string cert_file;      // client certificate (PEM), with key_file
  std::string key_file;
  std::string virtual_host;   // STOMP `host` header; empty: the broker's host name
  // Which broker this is, and so which delivery pattern the sender uses
  // (sender.cpp): "auto" (from the CONNECTED frame's `server` header),
  // "activemq" or "rabbitmq".
  std::string broker = "auto";

  // Draining.
  int transaction_size = 500;           // SENDs per STOMP transaction
  int window = 4;                       // transactions awaiting their COMMIT receipt
  // Limits of what this sink's broker accepts; a message beyond one is parked
  // for this sink alone before anything is sent, the limit named in the
  // reason. Defaults: ActiveMQ's fixed header limits, and RabbitMQ's frame
  // limit (4 MiB, below ActiveMQ's 100 MiB), so that they suit both.
  int64_t max_message_size = 4 * 1024 * 1024;  // the whole SEND frame: command, headers and body
  int64_t max_header_line = 10 * 1024;         // bytes of one encoded header line ("name:value")
  int64_t max_headers = 1000;                  // headers of one SEND frame, ours included
  // What is claimed and not yet confirmed, in bytes of frames: with window x
  // transaction_size this bounds the sender's memory whatever the message sizes.
  int64_t max_in_flight_bytes = 64 * 1024 * 1024;
  // A message is parked, with the broker's words, once the broker refused
  // its own SEND this many times, or once it failed this many times alone
  // after the sender narrowed a failing transaction down to it (the broker
  // dropped the connection or answered an ERROR without saying which).
  int message_attempts = 3;
  Milliseconds receipt_timeout{std::chrono::minutes(5)};  // generous: brokers withhold receipts under flow control
  Milliseconds heartbeat{std::chrono::seconds(10)};
  Milliseconds connect_timeout{std::chrono::seconds(10)};
  Milliseconds reconnect_min{std::chrono::seconds(1)};
  Milliseconds reconnect_max{std::chrono::minutes(1)};
  Milliseconds failback_interval{std::chrono::minutes(5)};  // how often to try the first broker again
  Milliseconds park_retry_interval{std::chrono::minutes(10)};  // first retry of a parked destination
  Milliseconds park_retry_max{std::chrono::hours(6)};
  Milliseconds shutdown_timeout{std::chrono::seconds(30)};  // wait for receipts on SIGTERM

  // Every setting the same (a SIGHUP reload restarts a sink's sender when not).
  bool operator==(const SinkConfig&) const = default;
};

// The event types OSG published (rsv-perfsonar's allowedEvents, 2017-2018;
// docs/osg-format.md 2.1): the default of [[archive]] event_types.
const std::vector<std::string>& osg_event_types();

// One perfSONAR measurement archive (esmond) to poll.
struct ArchiveConfig {
  std::string name;  // for logs and commands; message ids use the URL, so renaming resends nothing
  std::string url;   // the .../esmond/perfsonar/archive/ base
  Milliseconds poll_interval{std::chrono::minutes(5)};
  Milliseconds lookback{std::chrono::hours(24)};  // how far back the first poll of a series reads
  std::vector<std::string> event_types = osg_event_types();
  bool summaries = true;
  Milliseconds http_timeout{std::chrono::seconds(60)};
  Milliseconds connect_timeout{std::chrono::seconds(10)};
  std::string ca_file;  // https: verified against this file, or the system's trust store
  // Ask the archive to gzip its pages: saves ~90 % of the transfer across a
  // WAN; off ("none") for an archive on the same host or LAN, where
  // compressing costs the archive more CPU than the transfer saves.
  bool gzip = true;
  // Late data: each poll re-reads this much behind a series' cursor and
  // journals only datapoints it has not journaled (or whose value changed).
  Milliseconds overlap{std::chrono::hours(1)};
  // A summary point is final once its window has closed; it is published
  // after window + grace (esmond keeps updating it until then, docs/esmond.md 1.6).
  Milliseconds summary_grace{std::chrono::minutes(5)};
  int page_size = 1000;               // `limit` of each data request (the official client's 1000)
  int datapoints_per_message = 100;   // as OSG published
  int64_t max_message_size = 10'000'000;  // bytes; a larger slice is split, never dropped

  bool operator==(const ArchiveConfig&) const = default;
};

// [collector]: what all archives share.
struct CollectorConfig {
  int max_concurrent_requests = 8;  // across all archives; also the number of polling threads
  Milliseconds retry_min{std::chrono::seconds(30)};  // backoff after a failed request, doubling
  Milliseconds retry_max{std::chrono::minutes(30)};

  bool operator==(const CollectorConfig&) const = default;
};

struct Config {
  JournalConfig journal;
  MessageRulesConfig messages;
  std::vector<SinkConfig> sinks;
  CollectorConfig collector;
  std::vector<ArchiveConfig> archives;
  HttpConfig http;
  PushConfig push;
  std::string log_level = "info";
  std::string origin = "embedded defaults";  // where it was read from, for messages
  // What is allowed but unwise (a passcode file others can read, a passcode
  // in clear text to another host): logged by the daemon at start.
  std::vector<std::string> warnings;

  const SinkConfig* find_sink(std::string_view name) const;
  std::vector<std::string> sink_names() const;  // in configuration order
  const ArchiveConfig* find_archive(std::string_view name) const;
};

// The defaults used when no --config is given: a journal in the current
// directory and one sink to a local broker on stomp://127.0.0.1:61613.
Config default_config();

// Throws gapless::Error naming the file and the key.
Config load_config(const std::string& path);
Config parse_config(std::string_view toml_text, std::string_view origin);

}  // namespace gapless
