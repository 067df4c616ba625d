// Proves gapless reads a perfSONAR 5 host's elmond: the data URLs its listing gives (…/base/0, no …/base
// route), pages capped at 10000 and pages shorter than `limit` that do not end the data, for the
// collector's poll and for gapless-replay backfill.
//
// Against the test archive in elmond mode (tests/esmond_archive/README.md
// "elmond mode"), over real HTTP on loopback, into a real journal.
#include <catch2/catch.hpp>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "collector/series_reader.hpp"
#include "core/config.hpp"
#include "esmond/client.hpp"
#include "esmond/data_location.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"
#include "replay/backfill.hpp"
#include "support/collector_fixture.hpp"
#include "support/temp_dir.hpp"

namespace {

using gapless::collector::PollReport;
using gapless::test::ArchiveFlavour;
using gapless::test::EsmondArchive;
using gapless::test::TempDir;
using gapless::test::collector_poll::Fixture;
using gapless::test::collector_poll::hour;
using gapless::test::esmond::SeriesKind;
using nlohmann::json;

constexpr int64_t day = 24 * hour;

std::string path_of(const std::string& rest) { return "/esmond/perfsonar/archive/" + rest; }

std::map<int64_t, std::string> digests_of(const json& points, int64_t from = INT64_MIN, int64_t to = INT64_MAX) {
  std::map<int64_t, std::string> digests;
  for (const json& point : points) {
    const int64_t ts = point.at("ts").get<int64_t>();
    if (ts >= from && ts < to) digests[ts] = gapless::osg::datapoint_digest(point.at("val"));
  }
  return digests;
}

}  // namespace

TEST_CASE("elmond stand-in: data only at the listing's …/base/0, a 3-segment …/base is a 404, limit above "
          "10000 a 400, the default page 1000 documents",
          "[elmond]") {
  EsmondArchive::Options options;
  options.flavour = ArchiveFlavour::elmond;
  options.series = 1;
  options.kinds = {SeriesKind::latency};
  options.now = 1'700'000'000;
  options.start = *options.now - day;  // 1440 runs at the default 60 s
  EsmondArchive archive(options);
  archive.start();
  httplib::Client http("127.0.0.1", archive.port());

  const auto listing = http.Get(path_of("?limit=5").c_str());
  REQUIRE(listing);
  REQUIRE(listing->status == 200);
  CHECK(listing->get_header_value("Content-Type") == "application/json");
  const json list = json::parse(listing->body);
  REQUIRE(list.size() == 1);
  const std::string key = list[0].at("metadata-key");
  CHECK(key.size() == 64);  // Logstash's test checksum
  CHECK(list[0].at("metadata-count-total") == 1);
  std::string base_uri;
  for (const json& et : list[0].at("event-types"))
    if (et.at("event-type") == "packet-loss-rate") {
      base_uri = et.at("base-uri");
      CHECK(et.at("summaries").at(0).at("summary-window").is_number_integer());
    }
  CHECK(base_uri == "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0");

  // esmond's URL for the same data does not exist on elmond.
  const auto three = http.Get(path_of(key + "/packet-loss-rate/base?limit=10").c_str());
  REQUIRE(three);
  CHECK(three->status == 404);
  CHECK_THAT(three->get_header_value("Content-Type"), Catch::StartsWith("text/html"));
  const auto slash = http.Get(path_of(key + "/").c_str());
  REQUIRE(slash);
  CHECK(slash->status == 404);

  const auto base = http.Get((base_uri + "?limit=10").c_str());
  REQUIRE(base);
  CHECK(base->status == 200);
  CHECK(json::parse(base->body).size() <= 10);

  const auto most = http.Get((base_uri + "?limit=10000").c_str());
  REQUIRE(most);
  CHECK(most->status == 200);
  const auto too_many = http.Get((base_uri + "?limit=10001").c_str());
  REQUIRE(too_many);
  CHECK(too_many->status == 400);  // refused, not clamped
  CHECK_THAT(too_many->body, Catch::Contains("limit parameter cannot exceed 10000"));

  // Without limit: the first 1000 documents; those lacking the field are
  // dropped after the limit, so fewer than 1000 points although 1440 runs exist.
  const auto first_page = http.Get(base_uri.c_str());
  REQUIRE(first_page);
  const json page = json::parse(first_page->body);
  const json all = archive.points(key, "packet-loss-rate");
  REQUIRE(all.size() > 1000);
  CHECK(page.size() < 1000);
  CHECK(page.size() > 900);
  CHECK(page.back().at("ts").get<int64_t>() < all.back().at("ts").get<int64_t>());
  CHECK(std::is_sorted(page.begin(), page.end(),
                       [](const json& a, const json& b) {
                         return a.at("ts").get<int64_t>() < b.at("ts").get<int64_t>();
                       }));

  // Rollup summaries are listed but served empty (elmond's data.py skips every bucket).
  const auto rollup = http.Get(path_of(key + "/packet-loss-rate/aggregations/3600").c_str());
  REQUIRE(rollup);
  CHECK(rollup->status == 200);
  CHECK(json::parse(rollup->body).empty());
  const auto bad_window = http.Get(path_of(key + "/packet-loss-rate/aggregations/600").c_str());
  REQUIRE(bad_window);
  CHECK(bad_window->status == 400);
}

TEST_CASE("a poll of an elmond archive journals every point once although its pages come back short and "
          "page_size exceeds elmond's maximum",
          "[elmond]") {
  Fixture f(4, day, {}, ArchiveFlavour::elmond);
  SECTION("page_size 1000, elmond's default: every series spans two pages") {}
  SECTION("page_size 20000: elmond would answer 400, so 10000 is asked") { f.config.page_size = 20000; }
  const PollReport first = f.poll();
  CHECK(first.listed);
  CHECK(first.failures.empty());
  INFO(first.last_error);
  const auto series = f.series();
  REQUIRE(series.size() == gapless::test::collector_poll::allowed_event_types(*f.archive, f.config));
  int64_t multi_page = 0;
  for (const auto& s : series) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    const auto served = f.served(s);
    CHECK(f.journaled(s) == served);
    if (served.size() > 1000) ++multi_page;
  }
  CHECK(multi_page > 0);
  const PollReport again = f.poll();
  CHECK(again.points_journaled == 0);
  CHECK(again.failures.empty());
  f.archive->advance(30 * 60);
  CHECK(f.poll().points_journaled > 0);
  for (const auto& s : f.series()) CHECK(f.journaled(s) == f.served(s));
}

TEST_CASE("gapless-replay backfill from an elmond archive fills the window exactly, and a second one adds "
          "nothing",
          "[elmond]") {
  const int64_t now = gapless::unix_now_ms() / 1000;
  EsmondArchive::Options options;
  options.flavour = ArchiveFlavour::elmond;
  options.series = 2;
  options.kinds = {SeriesKind::latency, SeriesKind::throughput};
  options.now = now;
  options.start = now - 30 * hour;
  EsmondArchive archive(options);
  archive.start();
  TempDir dir("elmond-backfill");
  const gapless::Config config = gapless::parse_config(
      "[journal]\npath = \"" + dir.file("journal.db") + "\"\n"
      "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
      "[[archive]]\nname = \"ps5\"\nurl = \"" + archive.base_url() + "\"\n",
      "elmond-backfill.toml");

  gapless::replay::Selection selection;
  selection.from = now - 26 * hour;  // 1440 runs a series: more than one page
  selection.to = now - 2 * hour;
  const std::atomic<bool> stop{false};
  const auto first = gapless::replay::backfill(config, selection, 0, false, stop, nullptr);
  CHECK(first.failures == 0);
  CHECK(first.points_journaled > 0);
  const auto second = gapless::replay::backfill(config, selection, 0, false, stop, nullptr);
  CHECK(second.failures == 0);  // (summary windows still filling stay uncovered, read again then)
  CHECK(second.points_journaled == 0);
  CHECK(second.messages == 0);

  auto journal = gapless::journal::Journal::open(config.journal.path, {"local"});
  const auto series = journal->series_of_archive(archive.base_url());
  REQUIRE_FALSE(series.empty());
  int64_t statistics = 0;
  for (const auto& s : series) {
    INFO(s.key.metadata_key << " " << s.key.event_type << " " << s.key.summary_type << " " << s.key.summary_window);
    const auto& key = s.key;
    const json served = archive.points(key.metadata_key, key.event_type,
                                       key.summary_type.empty() ? "base" : key.summary_type, key.summary_window);
    // A summary point is stamped with its window's start: the backfill reads a window earlier.
    const auto window = digests_of(served, selection.from - key.summary_window, selection.to);
    CHECK(journal->datapoint_digests(s.id, INT64_MIN, INT64_MAX) == window);
    if (key.summary_type == "statistics" && !window.empty()) ++statistics;
  }
  CHECK(statistics > 0);  // summaries read at the listing's …/statistics/0
}

TEST_CASE("runs pushed by pScheduler, held by the elmond stand-in as Logstash and elmond present them, are "
          "backfilled value for value under Logstash's test checksum",
          "[elmond]") {
  std::vector<json> runs;
  for (const char* name : {"throughput-tcp", "throughput-udp", "throughput-failed", "latencybg", "trace", "rtt"}) {
    std::ifstream in(std::string(GAPLESS_SOURCE_DIR) + "/tests/data/pscheduler/" + name + ".json");
    runs.push_back(json::parse(in));
  }
  EsmondArchive::Options options;
  options.flavour = ArchiveFlavour::elmond;
  options.series = 0;
  options.runs = runs;
  options.retention = false;  // the sample runs are from 2024
  EsmondArchive archive(options);
  archive.start();

  // The key of throughput-tcp.json, as src/osg/test_checksum computes it too
  // (tests/unit/test_pscheduler_run.cpp): two readings of Logstash's script.
  const auto keys = archive.metadata_keys();
  const std::string tcp = "fa2e818f0bbc46352e841e48b065fa658de1cf224607db9c778c58bbccc5874d";
  REQUIRE(std::find(keys.begin(), keys.end(), tcp) != keys.end());
  const json throughput = archive.points(tcp, "throughput");
  REQUIRE(throughput.size() == 1);
  CHECK(throughput[0].at("ts") == 1715698535);  // run.start-time 2024-05-14T10:55:35-04:00
  CHECK(throughput[0].at("val") == runs[0].at("result").at("summary").at("summary").at("throughput-bits"));
  CHECK(archive.points(tcp, "throughput-subintervals")[0].at("val") == json::array());  // elmond finds no "throughput"
  CHECK(archive.points(tcp, "packet-retransmits-subintervals")[0].at("val").size() == 2);

  int64_t failures = 0, traces = 0, histograms = 0;
  for (const std::string& key : keys) {
    failures += static_cast<int64_t>(archive.points(key, "failures").size());
    const json trace = archive.points(key, "packet-trace");
    if (!trace.empty()) {
      ++traces;
      const json& hops = trace[0].at("val");
      REQUIRE(hops.size() == 4);
      CHECK(hops[0].at("rtt").get<double>() == Approx(0.412));  // PT0.000412S in ms
      CHECK(hops[1].at("mtu") == 9000);                         // carried forward
      CHECK(hops[2].at("success") == 0);
      CHECK(hops[2].at("error-message") == "no-reply");
    }
    const json owdelay = archive.points(key, "histogram-owdelay");
    if (!owdelay.empty()) {
      ++histograms;
      CHECK(owdelay[0].at("val") == json{{"10.10", 12}, {"10.20", 398}, {"10.30", 180}, {"11.00", 7}});
      CHECK(archive.points(key, "packet-loss-rate")[0].at("val").get<double>() == Approx(3.0 / 600));
    }
  }
  CHECK(failures == 1);  // throughput-failed.json
  CHECK(traces == 1);
  CHECK(histograms == 1);

  TempDir dir("elmond-runs");
  const gapless::Config config = gapless::parse_config(
      "[journal]\npath = \"" + dir.file("journal.db") + "\"\n"
      "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
      "[[archive]]\nname = \"ps5\"\nurl = \"" + archive.base_url() + "\"\nsummaries = false\n",
      "elmond-runs.toml");
  gapless::replay::Selection selection;
  selection.from = 1715600000;
  selection.to = 1715800000;
  const std::atomic<bool> stop{false};
  const auto backfill = gapless::replay::backfill(config, selection, 0, false, stop, nullptr);
  CHECK(backfill.failures == 0);
  auto journal = gapless::journal::Journal::open(config.journal.path, {"local"});
  int64_t journaled = 0;
  for (const auto& s : journal->series_of_archive(archive.base_url())) {
    INFO(s.key.metadata_key << " " << s.key.event_type);
    const auto digests = journal->datapoint_digests(s.id, INT64_MIN, INT64_MAX);
    CHECK(digests == digests_of(archive.points(s.key.metadata_key, s.key.event_type)));
    journaled += static_cast<int64_t>(digests.size());
  }
  CHECK(journaled == backfill.points_journaled);
  CHECK(journaled > 10);
}

TEST_CASE("a listing's base-uri or summary uri cannot steer a data request to another series, host or query",
          "[elmond]") {
  using gapless::esmond::ArchiveFlavour;
  using gapless::esmond::locate_data;
  const std::string key = "0123abcd";
  const auto listing = [&](const std::string& base_uri, const json& summaries = json::array()) {
    return json{{"metadata-key", key},
                {"event-types", json::array({{{"event-type", "packet-loss-rate"},
                                              {"base-uri", base_uri},
                                              {"summaries", summaries}}})}};
  };
  const gapless::esmond::SeriesPath base{key, "packet-loss-rate", "", 0};
  const auto elmond = locate_data(listing("/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0"), base);
  CHECK(elmond.path == key + "/packet-loss-rate/base/0");
  CHECK(elmond.flavour == ArchiveFlavour::elmond);
  const auto esmond = locate_data(listing("/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base"), base);
  CHECK(esmond.path == key + "/packet-loss-rate/base");  // what data_path builds: esmond's URLs unchanged
  CHECK(esmond.flavour == ArchiveFlavour::esmond);
  // Behind a proxy that adds a prefix, or elmond with an empty PROXY_PATH.
  CHECK(locate_data(listing("/ps1/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0"), base).path ==
        key + "/packet-loss-rate/base/0");
  CHECK(locate_data(listing("/" + key + "/packet-loss-rate/base/0"), base).path == key + "/packet-loss-rate/base/0");
  // Anything else: the built esmond path.
  for (const std::string& hostile : std::vector<std::string>{
           "http://elsewhere.example/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0",
        "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/../../other/packet-loss-rate/base",
        std::string("/esmond/perfsonar/archive/other/packet-loss-rate/base/0"),
        "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0?limit=1",
        "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0/extra"}) {
    INFO(hostile);
    CHECK(locate_data(listing(hostile), base).path == key + "/packet-loss-rate/base");
  }
  // A summary's uri, matched by type and window (an integer from elmond, a string from esmond).
  const json summaries = json::array(
      {{{"summary-type", "aggregation"}, {"summary-window", 3600},
        {"uri", "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/aggregations/3600"}},
       {{"summary-type", "aggregation"}, {"summary-window", "86400"},
        {"uri", "/esmond/perfsonar/archive/" + key + "/packet-loss-rate/aggregations/86400"}}});
  const auto with = listing("/esmond/perfsonar/archive/" + key + "/packet-loss-rate/base/0", summaries);
  CHECK(locate_data(with, {key, "packet-loss-rate", "aggregation", 86400}).path ==
        key + "/packet-loss-rate/aggregations/86400");
  const auto hourly = locate_data(with, {key, "packet-loss-rate", "aggregation", 3600});
  CHECK(hourly.path == key + "/packet-loss-rate/aggregations/3600");
  CHECK(hourly.flavour == ArchiveFlavour::elmond);
}
