// Proves `gapless discard` deletes only parked messages, only when asked with a reason, and records the act.
//
// `gapless discard` as an operator runs it: parked messages only, only when
// asked with a reason, and the act is on record.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::test::run_gapless;
using gapless::test::TempDir;

TEST_CASE("gapless discard removes a parked message for good, says how many, and refuses without a reason",
          "[discard]") {
  TempDir dir("discard");
  const std::string journal_path = dir.file("journal.db");
  const std::string config_path = dir.file("gapless.toml");
  std::ofstream(config_path) << "[journal]\npath = " << nlohmann::json(journal_path).dump()
                             << "\n[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n";
  int64_t parked_id = 0;
  {
    auto journal = Journal::open(journal_path, {"cern"});
    gapless::journal::NewMessage poison{"poison", "/topic/perfsonar.raw.x", {{"big", std::string(20000, 'v')}}, "a"};
    gapless::journal::NewMessage good{"good", "/topic/perfsonar.raw.x", {}, "b"};
    journal->append({poison, good});
    parked_id = journal->claim("cern", 1, {}).at(0).id;
    journal->park_message("cern", parked_id, "a header line of 20004 bytes exceeds max_header_line 10240");
  }
  const std::string errors = dir.file("stderr");

  const auto no_reason = run_gapless({"discard", "--config", config_path, "--sink", "cern"}, errors);
  CHECK(no_reason.exit_code == 2);
  CHECK_THAT(no_reason.err, Contains("--reason"));

  const auto unknown_sink =
      run_gapless({"discard", "--config", config_path, "--sink", "cerm", "--reason", "typo"}, errors);
  CHECK(unknown_sink.exit_code == 2);
  CHECK_THAT(unknown_sink.err, Contains("cerm"));

  const auto discarded = run_gapless({"discard", "--config", config_path, "--sink", "cern", "--message-id",
                                      std::to_string(parked_id), "--reason", "poison, checked by hand"},
                                     errors);
  INFO(discarded.err);
  CHECK(discarded.exit_code == 0);
  CHECK_THAT(discarded.out, Contains("1 parked messages removed for sink cern"));

  const auto again = run_gapless({"discard", "--config", config_path, "--sink", "cern", "--message-id",
                                  std::to_string(parked_id), "--reason", "twice"},
                                 errors);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Contains("nothing removed"));

  auto journal = Journal::open(journal_path, {"cern"});
  CHECK(journal->parked_messages("cern", 10).empty());
  const auto pending = journal->claim("cern", 10, {});
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].gapless_id == "good");  // the rest of the destination untouched
  const auto requests = journal->requests(10);
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].kind == "discard");
  CHECK(requests[0].note == "poison, checked by hand");
  CHECK(requests[0].messages == 1);
}
