// Proves a configuration that is not valid TOML is refused without quoting a value of the file (a passcode, a token), but with the line and its key.
#include <catch2/catch.hpp>

#include <string>

#include "core/config.hpp"
#include "core/error.hpp"

namespace {

std::string error_of(const std::string& toml) {
  try {
    gapless::parse_config(toml, "gapless.toml");
  } catch (const gapless::Error& e) {
    return e.what();
  }
  FAIL("accepted:\n" << toml);
  return "";
}

constexpr const char* kSink = "[[sink]]\nname = \"a\"\nbrokers = [\"stomp://h:1\"]\n";

}  // namespace

TEST_CASE("a TOML syntax error names the line and its key, never the value on it", "[config]") {
  const std::string unterminated = error_of(std::string(kSink) + "passcode = \"pc-9f3e\n");
  CHECK_THAT(unterminated, Catch::Contains("not valid TOML") && Catch::Contains(" 4 | passcode = ..."));
  CHECK_THAT(unterminated, !Catch::Contains("pc-9f3e"));

  const std::string trailing = error_of(std::string(kSink) + "passcode = \"pc-9f3e\" x\n");
  CHECK_THAT(trailing, Catch::Contains("passcode = ...") && Catch::Contains("expected newline, but got 'x'"));
  CHECK_THAT(trailing, !Catch::Contains("pc-9f3e"));

  const std::string twice = error_of(std::string(kSink) + "passcode = \"pc-9f3e\"\npasscode = \"pc-9f3e\"\n");
  CHECK_THAT(twice, Catch::Contains("already exists") && Catch::Contains(" 5 | passcode = ..."));
  CHECK_THAT(twice, !Catch::Contains("pc-9f3e"));
}
