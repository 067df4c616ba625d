// Proves `gapless status` shows an operator and a metrics scraper what the journal holds, in text, JSON and Prometheus form.
//
// `gapless status` as an operator or a metrics scraper reads it: the built
// binary (GAPLESS_BIN, else this build's) run on a journal prepared through
// the library. Archive health in the text, --json and --prometheus outputs.
#include <stdio.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::ArchivePoll;
using gapless::journal::Journal;
using gapless::test::CommandResult;
using gapless::test::TempDir;
using nlohmann::json;

namespace {

const std::string kPsdsUrl = "https://psds.example.org/esmond/perfsonar/archive/";
const std::string kOddUrl = "http://odd.example.org/esmond/perfsonar/archive/";
const std::string kQuietUrl = "http://quiet.example.org/esmond/perfsonar/archive/";
const std::string kOddName = "we\"ird\\name";  // label values must escape both
constexpr int64_t kSuccessMs = 1'700'000'000'123;
const std::string kLastError = "archive psds: GET " + kPsdsUrl + "?format=json&time-start=1: HTTP 503 Service Unavailable";

// A journal with a failing archive (psds), an archive with an odd name, a
// configured archive never polled (quiet) and one pending message.
struct StatusFixture {
  StatusFixture() {
    std::ofstream config(config_path);
    config << "[journal]\npath = " << json(journal_path).dump() << "\n"
           << "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << "[[archive]]\nname = \"quiet\"\nurl = " << json(kQuietUrl).dump() << "\n";
    config.close();

    auto journal = Journal::open(journal_path, {"local"});
    gapless::journal::NewMessage message;
    message.gapless_id = "m-1";
    message.destination = "/topic/perfsonar.raw.throughput";
    message.body = "{}";
    REQUIRE(journal->append({message}).appended == 1);

    ArchivePoll poll;
    poll.archive_url = kPsdsUrl;
    poll.name = "psds";
    poll.polled_ms = kSuccessMs;
    poll.complete = true;
    poll.points_journaled = 500;
    journal->record_poll(poll);
    poll.polled_ms = kSuccessMs + 60'000;
    poll.points_journaled = 0;
    poll.failures = {{"http-status", 2}, {"timeout", 1}};
    poll.last_error = kLastError;
    journal->record_poll(poll);

    ArchivePoll odd;
    odd.archive_url = kOddUrl;
    odd.name = kOddName;
    odd.polled_ms = kSuccessMs;
    odd.complete = true;
    journal->record_poll(odd);
  }

  // `gapless status --config F <args>`, stdout and stderr apart.
  CommandResult status(const std::vector<std::string>& args) const {
    std::vector<std::string> arguments = {"status", "--config", config_path};
    arguments.insert(arguments.end(), args.begin(), args.end());
    return gapless::test::run_gapless(arguments, dir.file("stderr"));
  }

  TempDir dir{"status-test"};
  std::string journal_path = dir.file("journal.db");
  std::string config_path = dir.file("gapless.toml");
};

const json& archive_named(const json& status, const std::string& name) {
  for (const json& archive : status.at("archives"))
    if (archive.at("archive") == name) return archive;
  FAIL("no archive " << name << " in " << status.dump(2));
  throw std::logic_error("unreachable");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("status --json lists each archive's polls, failures by kind with their total, and last error",
          "[status]") {
  StatusFixture f;
  const CommandResult result = f.status({"--json"});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  const json status = json::parse(result.out);
  REQUIRE(status.at("archives").size() == 3);

  const json& psds = archive_named(status, "psds");
  CHECK(psds.at("url") == kPsdsUrl);
  CHECK(psds.at("polls_total") == 2);
  CHECK(psds.at("failed_polls_total") == 1);
  CHECK(psds.at("consecutive_failed_polls") == 1);
  CHECK(psds.at("points_journaled_total") == 500);
  CHECK(psds.at("last_success_ms") == kSuccessMs);
  CHECK(psds.at("last_poll_ms") == kSuccessMs + 60'000);
  CHECK(psds.at("failures").at("http-status").at("count") == 2);
  CHECK(psds.at("failures").at("timeout").at("count") == 1);
  CHECK(psds.at("failures_total") == 3);
  CHECK(psds.at("last_error") == kLastError);

  const json& quiet = archive_named(status, "quiet");  // configured, never polled
  CHECK(quiet.at("url") == kQuietUrl);
  CHECK(quiet.at("polls_total") == 0);
  CHECK(quiet.at("last_poll_ms").is_null());
  CHECK(quiet.at("last_success_ms").is_null());

  CHECK(status.at("sinks").at(0).at("destinations").at(0).at("pending") == 1);  // the sinks are still there
}

TEST_CASE("status prints a section per archive: failing or not, ages, failures by kind, last error", "[status]") {
  StatusFixture f;
  const CommandResult result = f.status({});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  // The text wraps at 80 columns (status/problems.hpp): read as one line.
  const std::string out = std::regex_replace(result.out, std::regex("\n +"), " ");
  CHECK_THAT(out, Contains("archive psds " + kPsdsUrl + ": FAILING, 1 failed polls since the last success"));
  CHECK_THAT(out, Contains("failures 3: http-status 2, timeout 1"));
  CHECK_THAT(out, Contains("last error "));
  // Its URL is longer than a line, and broken where the line ends.
  CHECK_THAT(out, Contains("archive psds: GET https://psds.example.org/"));
  CHECK_THAT(out, Contains("HTTP 503 Service Unavailable"));
  CHECK_THAT(out, Contains("archive quiet " + kQuietUrl + ": not polled yet"));
  CHECK_THAT(out, Contains(kOddUrl + ": ok"));
}

TEST_CASE("status --prometheus exposes archive failures by kind and sink counts in the text format", "[status]") {
  StatusFixture f;
  const CommandResult result = f.status({"--prometheus"});
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  INFO(result.out);

  // Well-formed: every sample line parses, belongs to the family whose TYPE
  // came last, and each family is declared once (its samples together).
  const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  const std::regex help_line(R"(^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  const std::string label = R"([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\[\\"n])*")";
  const std::regex sample_line("^([a-zA-Z_:][a-zA-Z0-9_:]*)\\{" + label + "(?:," + label +
                               ")*\\} -?[0-9]+(?:\\.[0-9]+)?$");
  std::set<std::string> families;
  std::string family;
  std::set<std::string> samples;
  for (const std::string& line : lines_of(result.out)) {
    INFO("line: " << line);
    std::smatch match;
    if (std::regex_match(line, match, type_line)) {
      family = match[1];
      CHECK(families.insert(family).second);
    } else if (std::regex_match(line, match, sample_line)) {
      CHECK(match[1] == family);
      samples.insert(line);
    } else {
      CHECK(std::regex_match(line, help_line));
    }
  }

  const std::string psds = "archive=\"psds\",url=\"" + kPsdsUrl + "\"";
  const std::string quiet = "archive=\"quiet\",url=\"" + kQuietUrl + "\"";
  for (const std::string& expected : {
           "gapless_archive_failures_total{" + psds + ",kind=\"http-status\"} 2",
           "gapless_archive_failures_total{" + psds + ",kind=\"timeout\"} 1",
           "gapless_archive_failures_total{" + psds + ",kind=\"connect\"} 0",  // every kind, from 0
           "gapless_archive_consecutive_failed_polls{" + psds + "} 1",
           "gapless_archive_failed_polls_total{" + psds + "} 1",
           "gapless_archive_polls_total{" + psds + "} 2",
           "gapless_archive_points_journaled_total{" + psds + "} 500",
           "gapless_archive_last_success_timestamp_seconds{" + psds + "} 1700000000.123",
           "gapless_archive_last_poll_timestamp_seconds{" + psds + "} 1700000060.123",
           "gapless_archive_polls_total{" + quiet + "} 0",
           "gapless_archive_last_success_timestamp_seconds{" + quiet + "} 0.000",
           "gapless_archive_polls_total{archive=\"we\\\"ird\\\\name\",url=\"" + kOddUrl + "\"} 1",
           std::string("gapless_messages{sink=\"local\",destination=\"/topic/perfsonar.raw.throughput\","
                       "state=\"pending\"} 1"),
           std::string("gapless_messages{sink=\"local\",destination=\"/topic/perfsonar.raw.throughput\","
                       "state=\"delivered\"} 0"),
       })
    CHECK(samples.count(expected) == 1);
}

TEST_CASE("status refuses --json together with --prometheus", "[status]") {
  StatusFixture f;
  const CommandResult result = f.status({"--json", "--prometheus"});
  CHECK(result.exit_code == 2);  // bad usage, as for every other usage error
  CHECK_THAT(result.err, Contains("--prometheus") && Contains("--json"));
  CHECK(result.out.empty());

  const CommandResult unknown = f.status({"--jsn"});
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Contains("--jsn"));
}
