// Proves the esmond client reads exactly what an archive holds: its URLs, paging and filters, values kept as served.
//
// The esmond client against the esmond-compatible test archive over real
// HTTP: paging (docs/esmond.md 1.3), the listing's time filter (docs/esmond.md 1.2), values kept
// exactly (docs/esmond.md 1.6). The archive's faults and the answers esmond
// never gives: test_archive_faults.cpp.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"
#include "support/esmond_client_fixture.hpp"

namespace {

using gapless::esmond::Client;
using gapless::esmond::ClientOptions;
using gapless::esmond::FailureKind;
using gapless::esmond::FetchError;
using gapless::esmond::SeriesPath;
using gapless::test::EsmondArchive;
using gapless::test::Fault;
using gapless::test::FaultKind;
using gapless::test::esmond::SeriesKind;
using nlohmann::json;

using namespace gapless::test::esmond_client;

// Pages like the collector will: explicit limit, time-start = last ts + 1
// until a short page (docs/esmond.md 1.3).
std::vector<gapless::osg::Datapoint> read_all(Client& client, const SeriesPath& path, int64_t begin,
                                              std::optional<int64_t> end, int limit, int* pages = nullptr) {
  std::vector<gapless::osg::Datapoint> all;
  for (int64_t start = begin;;) {
    auto page = client.fetch_data(path, start, end, limit);
    if (pages) ++*pages;
    REQUIRE(page.size() <= static_cast<size_t>(limit));
    for (auto& p : page) all.push_back(std::move(p));
    if (page.size() < static_cast<size_t>(limit)) break;
    start = all.back().ts + 1;
  }
  return all;
}

// The collected points equal what the archive serves: same ts, same value
// text (so 7016320000.0 stays a float, not 7016320000).
void check_same(const std::vector<gapless::osg::Datapoint>& got, const json& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("point " << i);
    CHECK(got[i].ts == expected[i].at("ts").get<int64_t>());
    CHECK(got[i].value == expected[i].at("val").dump());
    CHECK(got[i].digest == gapless::osg::datapoint_digest(expected[i].at("val")));
  }
}

}  // namespace

// ---------------------------------------------------------------- URLs

TEST_CASE("data_path uses esmond's URL forms (docs/esmond.md 1.1)", "[esmond-client]") {
  using gapless::esmond::data_path;
  CHECK(data_path({"abc", "throughput", "", 0}) == "abc/throughput/base");
  CHECK(data_path({"abc", "throughput", "base", 0}) == "abc/throughput/base");
  CHECK(data_path({"abc", "packet-loss-rate", "aggregation", 3600}) == "abc/packet-loss-rate/aggregations/3600");
  CHECK(data_path({"abc", "throughput", "average", 86400}) == "abc/throughput/averages/86400");
  CHECK(data_path({"abc", "histogram-owdelay", "statistics", 0}) == "abc/histogram-owdelay/statistics/0");
  // A hostile key cannot add path segments or a query.
  CHECK(data_path({"a/../b?x=1", "throughput", "", 0}) == "a%2F..%2Fb%3Fx%3D1/throughput/base");
  CHECK_THROWS_AS(data_path({"abc", "throughput", "median", 60}), gapless::Error);
  CHECK_THROWS_AS(data_path({"", "throughput", "", 0}), gapless::Error);
  CHECK_THROWS_AS(data_path({"..", "throughput", "", 0}), gapless::Error);
  CHECK_THROWS_AS(data_path({"abc", "throughput", "average", -1}), gapless::Error);
}

TEST_CASE("failure kinds have stable metric names", "[esmond-client]") {
  using gapless::esmond::failure_kind_name;
  CHECK(failure_kind_name(FailureKind::connect) == "connect");
  CHECK(failure_kind_name(FailureKind::timeout) == "timeout");
  CHECK(failure_kind_name(FailureKind::http_status) == "http-status");
  CHECK(failure_kind_name(FailureKind::redirect) == "redirect");
  CHECK(failure_kind_name(FailureKind::not_json) == "not-json");
  CHECK(failure_kind_name(FailureKind::malformed) == "malformed");
  CHECK(failure_kind_name(FailureKind::invalid) == "invalid");
}

TEST_CASE("the base URL gets its trailing slash; only http(s) is accepted", "[esmond-client]") {
  Client client(archive_name, "http://127.0.0.1:1/esmond/perfsonar/archive", quick());
  CHECK(client.base_url() == "http://127.0.0.1:1/esmond/perfsonar/archive/");
  CHECK(client.archive_name() == archive_name);
  CHECK_THROWS_AS(Client(archive_name, "file:///etc/esmond/perfsonar/archive/", quick()), FetchError);
  CHECK_THROWS_AS(Client(archive_name, "", quick()), FetchError);
}

// ---------------------------------------------------------------- listing

TEST_CASE("listing pages by offset and returns every metadata object once (docs/esmond.md 1.3)", "[esmond-client]") {
  EsmondArchive archive(options(23));
  archive.start();
  Client client(archive_name, archive.base_url(), quick());

  const uint64_t before = archive.requests_served();
  const std::vector<json> listed = client.list_metadata(0, 5);
  // ceil(23 / 5) pages and not one more: the count on the first element ends it.
  CHECK(archive.requests_served() - before == 5);
  REQUIRE(listed.size() == 23);
  std::set<std::string> keys;
  for (const json& m : listed) {
    const std::string key = m.at("metadata-key");
    CHECK(keys.insert(key).second);
    // Exactly the archive's object, minus the page's pagination keys.
    CHECK(m == archive.metadata(key));
    CHECK(!m.contains("metadata-count-total"));
    CHECK(!m.contains("metadata-next-page"));
  }
  const std::vector<std::string> all = archive.metadata_keys();
  CHECK(keys == std::set<std::string>(all.begin(), all.end()));

  SECTION("one page when it is large enough") {
    const uint64_t start = archive.requests_served();
    CHECK(client.list_metadata(0).size() == 23);
    CHECK(archive.requests_served() - start == 1);
  }
  SECTION("a page size that divides the total exactly") {
    CHECK(client.list_metadata(0, 23).size() == 23);
    CHECK(client.list_metadata(0, 1).size() == 23);
  }
}

TEST_CASE("updated_since filters on event types' time-updated, as esmond does (docs/esmond.md 1.2)", "[esmond-client]") {
  EsmondArchive::Options o = options(12);
  o.series_end = {{1, t0 - 2 * day}, {4, t0 - 3 * day}, {7, t0 - 5 * day}};
  EsmondArchive archive(o);
  archive.start();
  Client client(archive_name, archive.base_url(), quick());

  // What esmond's filter selects: some event type with time-updated >= since.
  const auto expected = [&](int64_t since) {
    std::set<std::string> keys;
    for (const std::string& key : archive.metadata_keys()) {
      const json metadata = archive.metadata(key);
      for (const json& et : metadata.at("event-types"))
        if (et.at("time-updated").is_number_integer() && et.at("time-updated").get<int64_t>() >= since)
          keys.insert(key);
    }
    return keys;
  };
  const auto listed = [&](int64_t since) {
    std::set<std::string> keys;
    for (const json& m : client.list_metadata(since, 4)) keys.insert(m.at("metadata-key").get<std::string>());
    return keys;
  };

  const std::set<std::string> recent = listed(t0 - day);
  CHECK(recent == expected(t0 - day));
  CHECK(recent.size() == 9);  // the three finished tests are out
  CHECK(recent.count(archive.series()[1].key) == 0);
  CHECK(recent.count(archive.series()[0].key) == 1);
  CHECK(listed(t0 - 4 * day) == expected(t0 - 4 * day));
  CHECK(listed(t0 - 4 * day).size() == 11);
  CHECK(listed(t0 - 6 * day).size() == 12);
  CHECK(listed(t0 + 1).empty());  // nothing written after now
}

// ---------------------------------------------------------------- data

TEST_CASE("fetch_data pages base data by time and reads exactly what the archive holds", "[esmond-client]") {
  EsmondArchive archive(options(4));
  archive.start();
  Client client(archive_name, archive.base_url(), quick());
  const auto& series = first_of(archive, SeriesKind::throughput);
  const SeriesPath path{series.key, "throughput", "", 0};

  SECTION("closed window: time_end is exclusive") {
    const int64_t begin = t0 - 2 * day;
    // An end that falls exactly on a point: that point must not be read.
    const json around = archive.points(series.key, "throughput", "base", 0, t0 - day, t0 - day + hour);
    REQUIRE(!around.empty());
    const int64_t end = around[0].at("ts").get<int64_t>();
    int pages = 0;
    const auto got = read_all(client, path, begin, end, 37, &pages);
    const json expected = archive.points(series.key, "throughput", "base", 0, begin, end - 1);
    CHECK(pages > 10);
    check_same(got, expected);
    REQUIRE(!got.empty());
    CHECK(got.back().ts < end);
    // Floats stay floats: throughput is sent as 7016320000.0.
    for (const auto& p : got) {
      CHECK(json::parse(p.value).is_number_float());
      CHECK(contains(p.value, "."));
    }
  }
  SECTION("open end") {
    const int64_t begin = t0 - 6 * hour;
    const auto got = read_all(client, path, begin, std::nullopt, 50);
    const json expected = archive.points(series.key, "throughput", "base", 0, begin);
    CHECK(expected.size() > 100);
    check_same(got, expected);
  }
  SECTION("histograms keep their string keys, failures their objects") {
    const auto& latency = first_of(archive, SeriesKind::latency);
    const int64_t begin = t0 - 12 * hour;
    check_same(read_all(client, {latency.key, "histogram-owdelay", "", 0}, begin, t0, 64),
               archive.points(latency.key, "histogram-owdelay", "base", 0, begin, t0 - 1));
    check_same(read_all(client, {latency.key, "failures", "", 0}, t0 - 7 * day, t0, 3),
               archive.points(latency.key, "failures", "base", 0, t0 - 7 * day, t0 - 1));
  }
  SECTION("an empty range asks nothing") {
    const uint64_t before = archive.requests_served();
    CHECK(client.fetch_data(path, t0, t0, 10).empty());
    CHECK(client.fetch_data(path, t0, t0 - 5, 10).empty());
    CHECK(archive.requests_served() == before);
    CHECK_THROWS_AS(client.fetch_data(path, t0 - day, t0, 0), std::invalid_argument);
  }
}

TEST_CASE("fetch_data pages summaries (docs/esmond.md 1.1 plural URLs)", "[esmond-client]") {
  EsmondArchive archive(options(4));
  archive.start();
  Client client(archive_name, archive.base_url(), quick());
  const auto& latency = first_of(archive, SeriesKind::latency);
  const auto& throughput = first_of(archive, SeriesKind::throughput);

  const int64_t begin = t0 - 4 * day;
  const auto loss = read_all(client, {latency.key, "packet-loss-rate", "aggregation", 3600}, begin, t0, 5);
  CHECK(loss.size() > 80);
  check_same(loss, archive.points(latency.key, "packet-loss-rate", "aggregation", 3600, begin, t0 - 1));

  check_same(read_all(client, {latency.key, "histogram-owdelay", "statistics", 86400}, t0 - 7 * day, std::nullopt, 2),
             archive.points(latency.key, "histogram-owdelay", "statistics", 86400, t0 - 7 * day));

  const auto averages = read_all(client, {throughput.key, "throughput", "average", 86400}, t0 - 7 * day, t0, 3);
  CHECK(averages.size() >= 6);
  check_same(averages, archive.points(throughput.key, "throughput", "average", 86400, t0 - 7 * day, t0 - 1));
}
