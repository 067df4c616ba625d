// Proves times are read in the forms operators type, and an unreadable one is an error naming the option.
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/timestamp.hpp"

using gapless::format_timestamp;
using gapless::parse_timestamp;

TEST_CASE("times as operators type them: ISO 8601 dates, date-times with or without offset, unix seconds",
          "[timestamp]") {
  CHECK(parse_timestamp("2016-08-23", "--from") == 1471910400);
  CHECK(parse_timestamp("2016-08-23T14:00", "--from") == 1471910400 + 14 * 3600);
  CHECK(parse_timestamp("2016-08-23T14:00:05", "--from") == 1471910400 + 14 * 3600 + 5);
  CHECK(parse_timestamp("2016-08-23 14:00:05Z", "--from") == 1471910400 + 14 * 3600 + 5);
  CHECK(parse_timestamp("2016-08-23T14:00:05+02:00", "--from") == 1471910400 + 12 * 3600 + 5);
  CHECK(parse_timestamp("2016-08-23T14:00-0130", "--from") == 1471910400 + 15 * 3600 + 30 * 60);
  CHECK(parse_timestamp("1471910400", "--from") == 1471910400);
  CHECK(format_timestamp(1471910400 + 5) == "2016-08-23T00:00:05Z");
}

TEST_CASE("an unreadable time is an error naming the option and the accepted forms", "[timestamp]") {
  for (const char* bad : {"", "yesterday", "2016-13-01", "2016-08-23T25:00", "2016-08-23x", "23/08/2016"}) {
    INFO(bad);
    try {
      parse_timestamp(bad, "--to");
      FAIL("accepted");
    } catch (const gapless::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("--to") && Catch::Contains("ISO 8601"));
    }
  }
}
