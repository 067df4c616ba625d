// Proves durations read and print as the configuration documents them, and retry delays double within their bounds.
#include <catch2/catch.hpp>

#include "core/backoff.hpp"
#include "core/duration.hpp"
#include "core/error.hpp"

using gapless::Milliseconds;
using gapless::parse_duration;

TEST_CASE("durations take a unit, a bare integer is seconds", "[config]") {
  CHECK(parse_duration("30s", "k") == Milliseconds(30'000));
  CHECK(parse_duration("5m", "k") == Milliseconds(300'000));
  CHECK(parse_duration("1h", "k") == Milliseconds(3'600'000));
  CHECK(parse_duration("21d", "k") == Milliseconds(21LL * 86'400'000));
  CHECK(parse_duration("250ms", "k") == Milliseconds(250));
  CHECK(parse_duration("45", "k") == Milliseconds(45'000));
}

TEST_CASE("malformed durations name the key and the text", "[config]") {
  for (const char* bad : {"", "s", "5x", "-3s", "3.5s", "5 m", "99999999999999999999d"}) {
    INFO(bad);
    try {
      parse_duration(bad, "sink[0].heartbeat");
      FAIL("accepted");
    } catch (const gapless::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("sink[0].heartbeat"));
      CHECK_THAT(e.what(), Catch::Contains("invalid duration"));
    }
  }
}

TEST_CASE("durations print in their shortest exact unit", "[config]") {
  CHECK(gapless::format_duration(Milliseconds(90'000)) == "90s");
  CHECK(gapless::format_duration(Milliseconds(3'600'000)) == "1h");
  CHECK(gapless::format_duration(Milliseconds(1'500)) == "1500ms");
  CHECK(gapless::format_duration(Milliseconds(0)) == "0ms");
}

TEST_CASE("a retry delay doubles per failure from the minimum and never passes the maximum", "[backoff]") {
  using std::chrono::milliseconds;
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 1) == milliseconds(1000));
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 2) == milliseconds(2000));
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 5) == milliseconds(16000));
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 6) == milliseconds(30000));
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 1'000'000) == milliseconds(30000));
  CHECK(gapless::doubling_delay(milliseconds(1000), milliseconds(30000), 0) == milliseconds(1000));
}
