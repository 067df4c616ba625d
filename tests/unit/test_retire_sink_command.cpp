// Proves a sink removed from the configuration shows in `gapless status` as
// orphaned with what it still holds, and that `gapless retire-sink` refuses a
// configured or unknown sink, or one the running daemon still sends to (its
// file changed, the daemon not reloaded), and otherwise ends what the journal
// kept for it.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "journal/health_file.hpp"
#include "journal/journal.hpp"
#include "support/background_daemon.hpp"
#include "support/eventually.hpp"
#include "support/gapless_command.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;
using gapless::test::append_many;
using gapless::test::BackgroundDaemon;
using gapless::test::eventually;
using gapless::test::run_gapless;
using gapless::test::TempDir;

namespace {

const nlohmann::json* sink_in(const nlohmann::json& status, const std::string& name) {
  for (const auto& sink : status["sinks"])
    if (sink["sink"] == name) return &sink;
  return nullptr;
}

}  // namespace

TEST_CASE("status shows a removed sink as orphaned; retire-sink refuses a configured or unknown sink, then retires it",
          "[retire]") {
  TempDir dir("retire-command");
  const std::string journal_path = dir.file("journal.db");
  const std::string config_path = dir.file("gapless.toml");
  // "old" was configured once; the file now names cern alone.
  std::ofstream(config_path) << "[journal]\npath = " << nlohmann::json(journal_path).dump()
                             << "\n[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n";
  {
    auto journal = Journal::open(journal_path, {"cern", "old"});
    append_many(*journal, "m", 3);
    journal->park_message("old", journal->claim("old", 1, {}).at(0).id, "too large");
  }
  const std::string errors = dir.file("stderr");

  const auto json = run_gapless({"status", "--json", "--config", config_path}, errors);
  REQUIRE(json.exit_code == 0);
  const auto status = nlohmann::json::parse(json.out);
  REQUIRE(sink_in(status, "old") != nullptr);
  CHECK((*sink_in(status, "old"))["configured"] == false);
  CHECK((*sink_in(status, "cern"))["configured"] == true);
  const auto text = run_gapless({"status", "--config", config_path}, errors);
  CHECK_THAT(text.out, Contains("sink old is orphaned"));  // its counts: JSON above; the line: status/problems.cpp

  const auto configured = run_gapless({"retire-sink", "--config", config_path, "--sink", "cern", "--reason", "x"}, errors);
  CHECK(configured.exit_code == 2);
  CHECK_THAT(configured.err, Contains("still in") && Contains("remove it from the configuration first"));
  const auto unknown = run_gapless({"retire-sink", "--config", config_path, "--sink", "olf", "--reason", "x"}, errors);
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.err, Contains("no sink named \"olf\""));
  const auto no_reason = run_gapless({"retire-sink", "--config", config_path, "--sink", "old"}, errors);
  CHECK(no_reason.exit_code == 2);

  const auto retired =
      run_gapless({"retire-sink", "--config", config_path, "--sink", "old", "--reason", "broker shut down"}, errors);
  INFO(retired.err);
  CHECK(retired.exit_code == 0);
  CHECK_THAT(retired.out, Contains("2 pending and 1 parked messages removed"));
  const auto after = nlohmann::json::parse(run_gapless({"status", "--json", "--config", config_path}, errors).out);
  CHECK(sink_in(after, "old") == nullptr);
  CHECK_THAT(run_gapless({"status", "--config", config_path}, errors).out, !Contains("orphaned"));
}

TEST_CASE("retire-sink refuses a sink the running daemon still sends to (removed from the file, no reload yet), "
          "and retires it once a reload has stopped its sender",
          "[retire]") {
  TempDir dir("retire-running");
  const std::string journal_path = dir.file("journal.db");
  const std::string config_path = dir.file("gapless.toml");
  const std::string errors = dir.file("stderr");
  const auto write_config = [&](bool with_old) {
    // Brokers nobody listens on: the senders retry, and "old" keeps its rows pending.
    std::ofstream(config_path) << "[journal]\npath = " << nlohmann::json(journal_path).dump()
                               << "\n[[sink]]\nname = \"cern\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
                               << (with_old ? "[[sink]]\nname = \"old\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n" : "");
  };
  write_config(true);
  {
    auto journal = Journal::open(journal_path, {"cern", "old"});
    append_many(*journal, "m", 3);
  }
  BackgroundDaemon daemon(config_path, dir.file("daemon.log"));
  const auto log = [&] {
    std::ifstream in(dir.file("daemon.log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  REQUIRE(eventually(std::chrono::seconds(20), [&] { return log().find("daemon: start") != std::string::npos; }));
  INFO(log());

  // The operator removed "old" from the file but did not reload the daemon: it still sends to "old".
  write_config(false);
  const auto refused =
      run_gapless({"retire-sink", "--config", config_path, "--sink", "old", "--reason", "broker shut down"}, errors);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Contains("the running daemon (pid " + std::to_string(daemon.pid()) +
                                   ") still sends to sink \"old\": reload it first (systemctl reload gapless)"));
  const auto kept = nlohmann::json::parse(run_gapless({"status", "--json", "--config", config_path}, errors).out);
  REQUIRE(sink_in(kept, "old") != nullptr);  // nothing removed
  CHECK((*sink_in(kept, "old"))["destinations"][0]["pending"] == 3);

  // Reloaded: the daemon stops the sender of "old", and the sink can be retired.
  daemon.signal(SIGHUP);
  gapless::test::CommandResult retired;
  CHECK(eventually(std::chrono::seconds(20), [&] {
    retired =
        run_gapless({"retire-sink", "--config", config_path, "--sink", "old", "--reason", "broker shut down"}, errors);
    return retired.exit_code == 0;
  }));
  INFO(retired.err);
  CHECK_THAT(retired.out, Contains("sink old retired") && Contains("3 pending and 0 parked messages removed"));
  CHECK_THAT(log(), Contains("sender stopped by the reload sink=old"));
  CHECK(daemon.stop() == 0);
}
