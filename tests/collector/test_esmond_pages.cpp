// Proves an archive's pages are read from their bodies alone as the esmond
// client relies on: every unreadable page is a PageError saying why (the
// client turns it into a FetchError naming the archive and URL), never
// another exception that would stop the collector's poll unreported. The
// cases named "(fuzz: ...)" are inputs the fuzz targets of tests/fuzz found.
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <string>

#include "esmond/pages.hpp"

using gapless::esmond::FailureKind;
using gapless::esmond::PageError;

namespace {

// The kind and text of the PageError reading `body` as a data page threw;
// "" when it read.
std::pair<FailureKind, std::string> data_page_error(const std::string& body) {
  try {
    gapless::esmond::read_data_page(body, 0, std::nullopt);
  } catch (const PageError& e) {
    return {e.kind(), e.what()};
  }
  return {FailureKind::connect, ""};
}

std::pair<FailureKind, std::string> listing_page_error(const std::string& body) {
  try {
    gapless::esmond::read_listing_page(body, 0);
  } catch (const PageError& e) {
    return {e.kind(), e.what()};
  }
  return {FailureKind::connect, ""};
}

}  // namespace

TEST_CASE("a data page holding a number beyond a double is a malformed page, not an escaped json error "
          "(fuzz: esmond_data_page, 75e777)",
          "[esmond-client]") {
  simdjson::dom::parser parser;
  const std::string body = R"([{"ts": 100, "val": 75e777}])";
  CHECK_FALSE(gapless::esmond::read_plain_data_page(parser, body, 0, std::nullopt));
  const auto [kind, text] = data_page_error(body);
  CHECK(kind == FailureKind::malformed);
  CHECK_THAT(text, Catch::Contains("not valid JSON") && Catch::Contains("number overflow"));
  CHECK(data_page_error("1e511").first == FailureKind::malformed);
}

TEST_CASE("a listing page holding a number beyond a double is a malformed page, not an escaped json error "
          "(fuzz: esmond_listing_page, 1e511)",
          "[esmond-client]") {
  const auto [kind, text] = listing_page_error("1e511");
  CHECK(kind == FailureKind::malformed);
  CHECK_THAT(text, Catch::Contains("not valid JSON") && Catch::Contains("number overflow"));
  CHECK(listing_page_error(R"([{"metadata-count-total": 1, "metadata-key": "k", "event-types": [], "x": -2e400}])")
            .first == FailureKind::malformed);
}

TEST_CASE("the fast and the exact reading of a plain data page give the same points", "[esmond-client]") {
  simdjson::dom::parser parser;
  const std::string body = R"([{"ts": 100, "val": 7016320000.0}, {"val": {"b": 1, "a": [1.5, "x"]}, "ts": 160}])";
  const auto fast = gapless::esmond::read_plain_data_page(parser, body, 100, 161);
  const auto exact = gapless::esmond::read_data_page(body, 100, 161);
  REQUIRE(fast);
  REQUIRE(fast->size() == 2);
  REQUIRE(exact.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(fast->at(i).ts == exact[i].ts);
    CHECK(fast->at(i).value == exact[i].value);
    CHECK(fast->at(i).digest == exact[i].digest);
  }
  CHECK(exact[1].value == R"({"a":[1.5,"x"],"b":1})");
}

TEST_CASE("a listing page reports each unusable object and keeps the others, without the page keys",
          "[esmond-client]") {
  const auto page = gapless::esmond::read_listing_page(
      R"([{"metadata-count-total": 3, "metadata-next-page": null, "metadata-key": "a", "event-types": []},
          {"metadata-key": 7, "event-types": []},
          {"metadata-key": "c", "event-types": [{"event-type": "x", "summaries": []}]}])",
      10);
  CHECK(page.size == 3);
  CHECK(page.count_total == 3);
  REQUIRE(page.objects.size() == 2);
  CHECK_FALSE(page.objects[0].contains("metadata-count-total"));
  CHECK_FALSE(page.objects[0].contains("metadata-next-page"));
  REQUIRE(page.rejected.size() == 1);
  CHECK_THAT(page.rejected[0], Catch::Contains("at listing index 11") && Catch::Contains("\"metadata-key\" is an integer"));
}
