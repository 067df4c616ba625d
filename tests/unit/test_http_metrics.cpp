// GET /metrics (src/http/metrics.hpp) is text a Prometheus server accepts:
// each family's HELP and TYPE once, its samples together after them, and a
// histogram's buckets cumulative with +Inf equal to _count; and it holds the
// daemon's own families beside those of `gapless status --prometheus`.
// Also POST /v1/resend's body and token rules (src/http/resend_request.hpp).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/latency_histogram.hpp"
#include "http/endpoint.hpp"
#include "http/metrics.hpp"
#include "http/resend_request.hpp"
#include "journal/journal.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using gapless::Config;
using gapless::test::TempDir;
namespace http = gapless::http;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// name{a="x",b="y"} value
Sample parse_sample(const std::string& line) {
  static const std::regex form(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  static const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)\"(,|$))");
  std::smatch match;
  REQUIRE(std::regex_match(line, match, form));
  Sample sample{match[1], {}, match[4]};
  const std::string labels = match[3];
  for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label); it != std::sregex_iterator(); ++it)
    sample.labels[(*it)[1]] = (*it)[2];
  return sample;
}

struct Exposition {
  std::map<std::string, std::string> type_of;  // family -> type
  std::vector<Sample> samples;
};

// Fails the test at the first line that breaks the text format's rules.
Exposition check_well_formed(const std::string& text) {
  Exposition out;
  std::set<std::string> helped;
  std::string current;  // the family whose samples may follow
  std::set<std::string> closed;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    INFO(line);
    REQUIRE(!line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(helped.insert(name).second);  // HELP once per family
      if (!current.empty()) closed.insert(current);
      current = name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      CHECK(name == current);  // TYPE right after its HELP
      CHECK(out.type_of.emplace(name, type).second);  // TYPE once per family
      CHECK((type == "gauge" || type == "counter" || type == "histogram"));
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample sample = parse_sample(line);
    std::string family = sample.name;
    if (out.type_of[current] == "histogram")
      for (const std::string suffix : {"_bucket", "_sum", "_count"})
        if (family == current + suffix) family = current;
    CHECK(family == current);  // samples together, under their family
    CHECK(closed.count(family) == 0);
    out.samples.push_back(std::move(sample));
  }
  return out;
}

struct MetricsFixture {
  TempDir dir{"http-metrics"};
  Config config;

  MetricsFixture() {
    config.journal.path = dir.file("journal.db");
    gapless::SinkConfig sink;
    sink.name = "cern";
    sink.brokers = {"stomp://127.0.0.1:1"};
    config.sinks = {sink};
    gapless::ArchiveConfig archive;
    archive.name = "psds";
    archive.url = "http://psds.example.org/esmond/perfsonar/archive/";
    config.archives = {archive};
    auto journal = gapless::journal::Journal::open(config.journal.path, {"cern"});
    gapless::test::append_many(*journal, "m", 3, "/topic/perfsonar.raw.throughput");
    gapless::journal::ArchivePoll poll;
    poll.archive_url = archive.url;
    poll.name = archive.name;
    poll.polled_ms = 1'700'000'000'000;
    poll.failures = {{"request", 1}};
    poll.last_error = "HTTP 500";
    journal->record_poll(poll);
  }

  std::string render(const http::DaemonSnapshot& daemon) {
    auto journal = gapless::journal::Journal::open(config.journal.path, {}, false);
    std::ostringstream text;
    http::write_metrics(config, *journal, daemon, text);
    return text.str();
  }
};

http::DaemonSnapshot daemon_with_latencies(const std::vector<int64_t>& latencies_ms) {
  gapless::LatencyHistogram histogram;
  for (const int64_t ms : latencies_ms) histogram.observe(std::chrono::milliseconds(ms));
  http::DaemonSnapshot daemon;
  daemon.started_ms = 1'700'000'000'000;
  gapless::sender::CountersSnapshot counters;
  counters.delivered = static_cast<int64_t>(latencies_ms.size());
  counters.connected = true;
  counters.reconnects = 2;
  counters.broker_errors = {{"connect-failed", 4}, {"connection-lost", 2}, {"not-authorized", 0}};
  counters.latency = histogram.snapshot();
  gapless::sender::CountersSnapshot idle;  // a sink that delivered nothing yet
  idle.latency = gapless::LatencyHistogram().snapshot();
  daemon.sinks = {{"cern", counters}, {"backup \"b\"", idle}};
  daemon.faults = {{"collector archive=psds", "disk-full", "full", 1, 2, 3}};
  return daemon;
}

}  // namespace

TEST_CASE("metrics: the text is well formed: HELP and TYPE once per family, samples together under it", "[http]") {
  MetricsFixture fixture;
  const std::string text = fixture.render(daemon_with_latencies({3, 7, 7, 120, 2000, 400000}));
  const Exposition exposition = check_well_formed(text);
  // status --prometheus's families and the daemon's own, in one exposition.
  for (const std::string family :
       {"gapless_build_info", "gapless_restart_required", "gapless_messages", "gapless_archive_failures_total",
        "gapless_messages_journaled", "gapless_oldest_undelivered_age_seconds",
        "gapless_oldest_pending_age_seconds", "gapless_journal_size_bytes",
        "gapless_journal_disk_free_bytes", "gapless_journal_faults_open", "gapless_sink_connected",
        "gapless_sink_reconnects_total", "gapless_sink_broker_errors_total", "gapless_sink_delivery_latency_seconds"}) {
    INFO(family);
    CHECK(exposition.type_of.count(family) == 1);
  }
  std::map<std::string, std::string> values;
  for (const Sample& sample : exposition.samples) {
    std::string key = sample.name;
    for (const auto& [name, value] : sample.labels) key += "," + name + "=" + value;
    values[key] = sample.value;
  }
  CHECK(values["gapless_messages_journaled,destination=/topic/perfsonar.raw.throughput,sink=cern"] == "3");
  CHECK(values["gapless_journal_faults_open,kind=disk-full"] == "1");
  CHECK(values["gapless_journal_faults_open,kind=journal-size-limit"] == "0");
  CHECK(values["gapless_sink_broker_errors_total,kind=connect-failed,sink=cern"] == "4");
  CHECK(values["gapless_sink_reconnects_total,sink=cern"] == "2");
  CHECK(values["gapless_sink_connected,sink=backup \\\"b\\\""] == "0");  // a label value escaped
}

TEST_CASE("metrics: the latency histogram's buckets are cumulative and +Inf equals _count", "[http]") {
  MetricsFixture fixture;
  const std::vector<int64_t> latencies = {3, 7, 7, 120, 2000, 400000};
  const Exposition exposition = check_well_formed(fixture.render(daemon_with_latencies(latencies)));
  CHECK(exposition.type_of.at("gapless_sink_delivery_latency_seconds") == "histogram");
  std::map<std::string, std::vector<std::pair<double, int64_t>>> buckets;  // by sink
  std::map<std::string, int64_t> counts;
  std::map<std::string, std::string> sums;
  for (const Sample& sample : exposition.samples) {
    if (sample.name == "gapless_sink_delivery_latency_seconds_bucket") {
      const std::string le = sample.labels.at("le");
      buckets[sample.labels.at("sink")].push_back(
          {le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le), std::stoll(sample.value)});
    } else if (sample.name == "gapless_sink_delivery_latency_seconds_count") {
      counts[sample.labels.at("sink")] = std::stoll(sample.value);
    } else if (sample.name == "gapless_sink_delivery_latency_seconds_sum") {
      sums[sample.labels.at("sink")] = sample.value;
    }
  }
  REQUIRE(buckets.size() == 2);
  for (const auto& [sink, series] : buckets) {
    INFO(sink);
    REQUIRE(series.size() > 2);
    for (size_t i = 1; i < series.size(); ++i) {
      CHECK(series[i].first > series[i - 1].first);    // le ascending
      CHECK(series[i].second >= series[i - 1].second);  // cumulative
    }
    CHECK(series.back().first == std::numeric_limits<double>::infinity());
    CHECK(series.back().second == counts.at(sink));
  }
  const auto& cern = buckets.at("cern");
  CHECK(cern.front() == std::pair{0.005, int64_t{1}});  // 3 ms
  CHECK(cern[1] == std::pair{0.01, int64_t{3}});        // 7 ms twice
  CHECK(cern[cern.size() - 2].second == 5);             // 400 s is beyond the last bound (300 s)...
  CHECK(counts.at("cern") == 6);                        // ...and only in +Inf
  CHECK(sums.at("cern") == "402.137");
}

TEST_CASE("resend over HTTP: the body's fields are the command line's, a bad one is refused naming it", "[http]") {
  Config config;
  gapless::SinkConfig sink;
  sink.name = "cern";
  config.sinks = {sink};
  const http::ResendRequest request = http::parse_resend_request(
      R"({"from": "2016-08-23", "to": 1471996800, "destination": "/topic/perfsonar.raw.throughput",
          "event-type": ["throughput", "packet-loss-rate"], "source-host": "a.example.org", "rate": 50,
          "reason": "OSG asked", "dry-run": true})",
      config);
  CHECK(request.selection.from == 1471910400);
  CHECK(request.selection.to == 1471996800);
  CHECK(request.sink == "cern");  // the only sink, as the command defaults it
  CHECK(request.destinations == std::vector<std::string>{"/topic/perfsonar.raw.throughput"});
  CHECK(request.selection.event_types == std::vector<std::string>{"throughput", "packet-loss-rate"});
  CHECK(request.selection.source_host == "a.example.org");
  CHECK(request.rate == 50);
  CHECK(request.reason == "OSG asked");
  CHECK(request.dry_run);

  const auto refused_field = [&](const std::string& body) {
    try {
      http::parse_resend_request(body, config);
    } catch (const http::BadField& e) {
      return e.field();
    }
    return std::string("(accepted)");
  };
  CHECK(refused_field(R"({"to": "2016-08-24"})") == "from");
  CHECK(refused_field(R"({"from": "2016-08-24", "to": "2016-08-23"})") == "from");
  CHECK(refused_field(R"({"from": "yesterday", "to": "2016-08-23"})") == "from");
  CHECK(refused_field(R"({"from": "2016-08-23", "to": "2016-08-24", "sink": "nowhere"})") == "sink");
  CHECK(refused_field(R"({"from": "2016-08-23", "to": "2016-08-24", "archive": "nowhere"})") == "archive");
  CHECK(refused_field(R"({"from": "2016-08-23", "to": "2016-08-24", "rate": -1})") == "rate");
  CHECK(refused_field(R"({"from": "2016-08-23", "to": "2016-08-24", "--sink": "cern"})") == "--sink");
  CHECK(refused_field("not json") == "body");
}

TEST_CASE("resend over HTTP: only the exact bearer token is authorized", "[http]") {
  CHECK(http::authorized("Bearer s3cret-token", "s3cret-token"));
  CHECK_FALSE(http::authorized("Bearer s3cret-toke", "s3cret-token"));
  CHECK_FALSE(http::authorized("Bearer s3cret-token2", "s3cret-token"));
  CHECK_FALSE(http::authorized("Bearer S3cret-token", "s3cret-token"));
  CHECK_FALSE(http::authorized("Basic s3cret-token", "s3cret-token"));
  CHECK_FALSE(http::authorized("", "s3cret-token"));
  CHECK_FALSE(http::authorized("Bearer ", ""));  // no token configured: nothing matches
}

TEST_CASE("resend over HTTP with no token_file configured is refused 403, saying to set http.token_file", "[http]") {
  MetricsFixture fixture;
  fixture.config.http.listen = "127.0.0.1:0";  // any free port
  http::Endpoint endpoint(fixture.config, [] { return http::DaemonSnapshot{}; });
  httplib::Client client("127.0.0.1", endpoint.port());
  auto answer = client.Post("/v1/resend", {{"Authorization", "Bearer anything"}},
                            R"({"from": "2016-08-23", "to": "2016-08-24"})", "application/json");
  REQUIRE(answer);
  CHECK(answer->status == 403);
  CHECK_THAT(answer->body, Catch::Contains("set http.token_file"));
  // The endpoint still serves the rest.
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK_THAT(metrics->body, Catch::Contains("# TYPE gapless_build_info gauge"));
}
