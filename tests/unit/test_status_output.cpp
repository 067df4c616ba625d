// The three renderings of `gapless status` (text, --json, --prometheus)
// pinned byte for byte, so that moving the code that renders them is proven
// to change nothing a person or a scraper reads. The journal and the daemon's
// health file are arranged so every time shown is fixed (ages of 0, times
// in the future); what still varies (the journal's path, this process's pid,
// when the health file was written, now_ms, and this build's version and
// revision, replaced only where they are exactly core/build_info.hpp's) is
// replaced by placeholders.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "core/build_info.hpp"
#include "journal/daemon_lock.hpp"
#include "journal/health_file.hpp"
#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using gapless::FaultSnapshot;
using gapless::journal::ArchivePoll;
using gapless::journal::Journal;
using gapless::test::CommandResult;
using gapless::test::TempDir;
using nlohmann::json;

namespace {

const std::string kThroughput = "/topic/perfsonar.raw.throughput";
const std::string kPacketLoss = "/topic/perfsonar.raw.packet-loss";
const std::string kPsdsUrl = "https://psds.example.org/esmond/perfsonar/archive/";
const std::string kOddUrl = "http://odd.example.org/esmond/perfsonar/archive/";
const std::string kQuietUrl = "http://quiet.example.org/esmond/perfsonar/archive/";
// After any run of this test: every age shown is then 0.
constexpr int64_t kFutureMs = 4'000'000'000'123;
// Before any run of this test: "next retry in" is then 0.
constexpr int64_t kPastMs = 1'600'000'000'000;

// Two sinks; on sink "local" one message pending, one delivered, one parked
// alone and a parked destination; three archives (failing, odd name, never
// polled); a running "daemon" (this process holds the daemon lock) with two
// open faults.
struct StatusOutputFixture {
  StatusOutputFixture() {
    std::ofstream config(config_path);
    config << "[journal]\npath = " << json(journal_path).dump() << "\n"
           << "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << "[[sink]]\nname = \"backup\"\nbrokers = [\"stomp://127.0.0.1:2\"]\n"
           << "[[archive]]\nname = \"quiet\"\nurl = " << json(kQuietUrl).dump() << "\n";
    config.close();

    auto journal = Journal::open(journal_path, {"local", "backup"});
    std::vector<gapless::journal::NewMessage> messages;
    for (const auto& [id, destination] : {std::pair{"m-pending", kThroughput}, std::pair{"m-delivered", kThroughput},
                                          std::pair{"m-parked", kThroughput}, std::pair{"m-loss", kPacketLoss}}) {
      gapless::journal::NewMessage message;
      message.gapless_id = id;
      message.destination = destination;
      message.body = "{}";
      messages.push_back(message);
    }
    REQUIRE(journal->append(messages).appended == 4);
    const auto claimed = journal->claim("local", 10, {});
    REQUIRE(claimed.size() == 4);
    journal->mark_delivered("local", {claimed.at(1).id});
    journal->park_message("local", claimed.at(2).id, "frame larger than max_message_size (S3)");
    journal->park_destination("local", kPacketLoss, "not authorized to write to " + kPacketLoss, kPastMs);
    journal->park_destination("local", kPacketLoss, "not authorized to write to " + kPacketLoss, kPastMs);

    ArchivePoll poll;
    poll.archive_url = kPsdsUrl;
    poll.name = "psds";
    poll.polled_ms = kFutureMs;
    poll.complete = true;
    poll.points_journaled = 500;
    journal->record_poll(poll);
    poll.polled_ms = kFutureMs + 60'000;
    poll.points_journaled = 0;
    poll.failures = {{"http-status", 2}, {"timeout", 1}};
    poll.last_error = "archive psds: GET " + kPsdsUrl + "?format=json: HTTP 503 Service Unavailable";
    journal->record_poll(poll);

    ArchivePoll odd;
    odd.archive_url = kOddUrl;
    odd.name = "we\"ird\\name";
    odd.polled_ms = kFutureMs;
    odd.complete = true;
    journal->record_poll(odd);
    journal.reset();

    // Journal times are the clock's; fixed here so that ages and timestamps are.
    gapless::test::JournalSql sql(journal_path);
    sql.exec("UPDATE message SET journaled_ms = " + std::to_string(kFutureMs) + " + id");
    sql.exec("UPDATE parked_destination SET parked_ms = " + std::to_string(kFutureMs));

    FaultSnapshot full{"sender sink=local", "disk-full", "database or disk is full", kFutureMs, kFutureMs + 1000, 7};
    FaultSnapshot busy{"collector archive=psds", "journal-busy", "database is locked", kFutureMs + 2000,
                       kFutureMs + 3000, 2};
    REQUIRE(health.publish({full, busy}));
  }

  // `gapless status --config F <args>`, with what varies between runs replaced.
  std::string status(const std::vector<std::string>& args) const {
    std::vector<std::string> arguments = {"status", "--config", config_path};
    arguments.insert(arguments.end(), args.begin(), args.end());
    const CommandResult result = gapless::test::run_gapless(arguments, dir.file("stderr"));
    INFO("stderr: " << result.err);
    REQUIRE(result.exit_code == 0);
    std::string out = result.out;
    for (size_t at = out.find(journal_path); at != std::string::npos; at = out.find(journal_path, at))
      out.replace(at, journal_path.size(), "<journal>");
    for (const auto& [shown, placeholder] :
         {std::pair{std::string("(revision ") + gapless::build_revision() + ")", std::string("(revision <revision>)")},
          std::pair{std::string("gapless ") + gapless::build_version() + " ", std::string("gapless <version> ")},
          std::pair{json(gapless::build_revision()).dump(), std::string(R"("<revision>")")},
          std::pair{json(gapless::build_version()).dump(), std::string(R"("<version>")")}})
      for (size_t at = out.find(shown); at != std::string::npos; at = out.find(shown, at))
        out.replace(at, shown.size(), placeholder);
    for (const auto& [pattern, placeholder] : {std::pair{R"(daemon: pid [0-9]+,)", "daemon: pid <pid>,"},
                                               std::pair{R"("pid": [0-9]+)", R"("pid": <pid>)"},
                                               std::pair{R"("published_ms": [0-9]+)", R"("published_ms": <published_ms>)"},
                                               std::pair{R"("now_ms": [0-9]+)", R"("now_ms": <now_ms>)"}})
      out = std::regex_replace(out, std::regex(pattern), placeholder);
    return out;
  }

  TempDir dir{"status-output-test"};
  std::string journal_path = dir.file("journal.db");
  std::string config_path = dir.file("gapless.toml");
  gapless::journal::DaemonLock lock{journal_path};
  gapless::journal::HealthFile health{journal_path};
};

// What `gapless status` prints for this fixture: what needs a person first,
// in 80 columns (status/problems.hpp), then the overview.
const std::string kExpectedText = R"golden(gapless <version> (revision <revision>)
journal <journal>
daemon: pid <pid>, gapless <version> (revision <revision>), 2 open faults

PROBLEMS (5)
  fault in sender sink=local: disk-full for 0s (since 2096-10-02T07:06:40Z), 7
    occurrences, last 0s ago: database or disk is full
  fault in collector archive=psds: journal-busy for 0s (since
    2096-10-02T07:06:42Z), 2 occurrences, last 0s ago: database is locked
  sink local: destination /topic/perfsonar.raw.packet-loss parked for 0s, 1
    messages (attempts 2, next retry in 0s): not authorized to write to
    /topic/perfsonar.raw.packet-loss
  sink local: message 3 (m-parked) parked on /topic/perfsonar.raw.throughput:
    frame larger than max_message_size (S3)
  archive psds failing: 1 failed polls since its last success 0s ago; last error
    0s ago: archive psds: GET
    https://psds.example.org/esmond/perfsonar/archive/?format=json: HTTP 503
    Service Unavailable

sink backup: pending=4 delivered=0 parked=0
  accepts [/topic/>, /queue/>]
  destination                              pending  delivered    parked  oldest
  /topic/perfsonar.raw.packet-loss               1          0         0  0s
  /topic/perfsonar.raw.throughput                3          0         0  0s

sink local: pending=1 delivered=1 parked=2
  accepts [/topic/>, /queue/>]
  destination                              pending  delivered    parked  oldest
  /topic/perfsonar.raw.packet-loss (PARKED)
                                                 0          0         1  0s
  /topic/perfsonar.raw.throughput                1          1         1  0s

archive psds https://psds.example.org/esmond/perfsonar/archive/: FAILING, 1
  failed polls since the last success
  last poll 0s ago, last success 0s ago; polls 2 (failed 1), points journaled
    500
  failures 3: http-status 2, timeout 1
  last error 0s ago: archive psds: GET
    https://psds.example.org/esmond/perfsonar/archive/?format=json: HTTP 503
    Service Unavailable

archive quiet http://quiet.example.org/esmond/perfsonar/archive/: not polled yet

archive we"ird\name http://odd.example.org/esmond/perfsonar/archive/: ok
  last poll 0s ago, last success 0s ago; polls 1 (failed 0), points journaled 0
  failures 0
)golden";

const std::string kExpectedJson = R"golden({
  "archives": [
    {
      "archive": "psds",
      "consecutive_failed_polls": 1,
      "failed_polls_total": 1,
      "failures": {
        "http-status": {
          "count": 2,
          "last_ms": 4000000060123
        },
        "timeout": {
          "count": 1,
          "last_ms": 4000000060123
        }
      },
      "failures_total": 3,
      "first_poll_ms": 4000000000123,
      "last_error": "archive psds: GET https://psds.example.org/esmond/perfsonar/archive/?format=json: HTTP 503 Service Unavailable",
      "last_error_ms": 4000000060123,
      "last_poll_ms": 4000000060123,
      "last_success_ms": 4000000000123,
      "points_journaled_total": 500,
      "polls_total": 2,
      "url": "https://psds.example.org/esmond/perfsonar/archive/"
    },
    {
      "archive": "quiet",
      "consecutive_failed_polls": 0,
      "failed_polls_total": 0,
      "failures": {},
      "failures_total": 0,
      "first_poll_ms": null,
      "last_error": null,
      "last_error_ms": null,
      "last_poll_ms": null,
      "last_success_ms": null,
      "points_journaled_total": 0,
      "polls_total": 0,
      "url": "http://quiet.example.org/esmond/perfsonar/archive/"
    },
    {
      "archive": "we\"ird\\name",
      "consecutive_failed_polls": 0,
      "failed_polls_total": 0,
      "failures": {},
      "failures_total": 0,
      "first_poll_ms": 4000000000123,
      "last_error": null,
      "last_error_ms": null,
      "last_poll_ms": 4000000000123,
      "last_success_ms": 4000000000123,
      "points_journaled_total": 0,
      "polls_total": 1,
      "url": "http://odd.example.org/esmond/perfsonar/archive/"
    }
  ],
  "daemon": {
    "faults": [
      {
        "component": "sender sink=local",
        "kind": "disk-full",
        "last_error": "database or disk is full",
        "last_ms": 4000000001123,
        "occurrences": 7,
        "since_ms": 4000000000123
      },
      {
        "component": "collector archive=psds",
        "kind": "journal-busy",
        "last_error": "database is locked",
        "last_ms": 4000000003123,
        "occurrences": 2,
        "since_ms": 4000000002123
      }
    ],
    "faults_left_out": 0,
    "pid": <pid>,
    "published_ms": <published_ms>,
    "restart_required": false,
    "revision": "<revision>",
    "running": true,
    "version": "<version>"
  },
  "journal": "<journal>",
  "now_ms": <now_ms>,
  "revision": "<revision>",
  "sinks": [
    {
      "accept": [
        "/topic/>",
        "/queue/>"
      ],
      "configured": true,
      "destinations": [
        {
          "delivered": 0,
          "destination": "/topic/perfsonar.raw.packet-loss",
          "oldest_pending_ms": 4000000000127,
          "oldest_undelivered_ms": 4000000000127,
          "parked": 0,
          "pending": 1
        },
        {
          "delivered": 0,
          "destination": "/topic/perfsonar.raw.throughput",
          "oldest_pending_ms": 4000000000124,
          "oldest_undelivered_ms": 4000000000124,
          "parked": 0,
          "pending": 3
        }
      ],
      "parked_messages": [],
      "sink": "backup"
    },
    {
      "accept": [
        "/topic/>",
        "/queue/>"
      ],
      "configured": true,
      "destinations": [
        {
          "delivered": 0,
          "destination": "/topic/perfsonar.raw.packet-loss",
          "oldest_pending_ms": null,
          "oldest_undelivered_ms": 4000000000127,
          "parked": 1,
          "parked_destination": {
            "attempts": 2,
            "next_retry_ms": 1600000000000,
            "parked_at_ms": 4000000000123,
            "reason": "not authorized to write to /topic/perfsonar.raw.packet-loss"
          },
          "pending": 0
        },
        {
          "delivered": 1,
          "destination": "/topic/perfsonar.raw.throughput",
          "oldest_pending_ms": 4000000000124,
          "oldest_undelivered_ms": 4000000000124,
          "parked": 1,
          "pending": 1
        }
      ],
      "parked_messages": [
        {
          "attempts": 1,
          "destination": "/topic/perfsonar.raw.throughput",
          "gapless_id": "m-parked",
          "id": 3,
          "reason": "frame larger than max_message_size (S3)"
        }
      ],
      "sink": "local"
    }
  ],
  "version": "<version>"
}
)golden";

const std::string kExpectedPrometheus = R"golden(# HELP gapless_build_info The version of gapless and the source revision it was built from.
# TYPE gapless_build_info gauge
gapless_build_info{version="<version>",revision="<revision>"} 1
# HELP gapless_archive_polls_total Polls of the archive by the collector.
# TYPE gapless_archive_polls_total counter
gapless_archive_polls_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 2
gapless_archive_polls_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0
gapless_archive_polls_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 1
# HELP gapless_archive_failed_polls_total Polls of the archive in which anything failed (see gapless_archive_failures_total).
# TYPE gapless_archive_failed_polls_total counter
gapless_archive_failed_polls_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 1
gapless_archive_failed_polls_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0
gapless_archive_failed_polls_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 0
# HELP gapless_archive_consecutive_failed_polls Failed polls of the archive since its last successful one.
# TYPE gapless_archive_consecutive_failed_polls gauge
gapless_archive_consecutive_failed_polls{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 1
gapless_archive_consecutive_failed_polls{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0
gapless_archive_consecutive_failed_polls{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 0
# HELP gapless_archive_last_poll_timestamp_seconds When the latest poll of the archive ended (0: never).
# TYPE gapless_archive_last_poll_timestamp_seconds gauge
gapless_archive_last_poll_timestamp_seconds{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 4000000060.123
gapless_archive_last_poll_timestamp_seconds{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0.000
gapless_archive_last_poll_timestamp_seconds{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 4000000000.123
# HELP gapless_archive_last_success_timestamp_seconds When the latest poll that read everything without a failure ended (0: never).
# TYPE gapless_archive_last_success_timestamp_seconds gauge
gapless_archive_last_success_timestamp_seconds{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 4000000000.123
gapless_archive_last_success_timestamp_seconds{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0.000
gapless_archive_last_success_timestamp_seconds{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 4000000000.123
# HELP gapless_archive_points_journaled_total Datapoints of the archive journaled by the collector (new or corrected).
# TYPE gapless_archive_points_journaled_total counter
gapless_archive_points_journaled_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/"} 500
gapless_archive_points_journaled_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/"} 0
gapless_archive_points_journaled_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/"} 0
# HELP gapless_archive_failures_total Failures while polling the archive, by kind (failed requests, series, metadata objects).
# TYPE gapless_archive_failures_total counter
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="connect"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="data"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="http-status"} 2
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="invalid"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="invalid-metadata"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="journal"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="malformed"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="not-json"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="redirect"} 0
gapless_archive_failures_total{archive="psds",url="https://psds.example.org/esmond/perfsonar/archive/",kind="timeout"} 1
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="connect"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="data"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="http-status"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="invalid"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="invalid-metadata"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="journal"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="malformed"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="not-json"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="redirect"} 0
gapless_archive_failures_total{archive="quiet",url="http://quiet.example.org/esmond/perfsonar/archive/",kind="timeout"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="connect"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="data"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="http-status"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="invalid"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="invalid-metadata"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="journal"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="malformed"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="not-json"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="redirect"} 0
gapless_archive_failures_total{archive="we\"ird\\name",url="http://odd.example.org/esmond/perfsonar/archive/",kind="timeout"} 0
# HELP gapless_daemon_running 1 when a gapless daemon holds this journal and publishes its fault episodes, else 0.
# TYPE gapless_daemon_running gauge
gapless_daemon_running{journal="<journal>"} 1
# HELP gapless_restart_required 1 when the running daemon's executable or a shared library it loaded was replaced on disk (an upgrade): it runs the old code until restarted. Else 0.
# TYPE gapless_restart_required gauge
gapless_restart_required{journal="<journal>"} 0
# HELP gapless_fault_open An open fault episode of the daemon (a full disk, a journal locked by another process, ...): 1 while it lasts, absent otherwise.
# TYPE gapless_fault_open gauge
gapless_fault_open{component="sender sink=local",kind="disk-full"} 1
gapless_fault_open{component="collector archive=psds",kind="journal-busy"} 1
# HELP gapless_fault_occurrences Occurrences of each open fault episode since it began.
# TYPE gapless_fault_occurrences gauge
gapless_fault_occurrences{component="sender sink=local",kind="disk-full"} 7
gapless_fault_occurrences{component="collector archive=psds",kind="journal-busy"} 2
# HELP gapless_fault_since_timestamp_seconds When each open fault episode began.
# TYPE gapless_fault_since_timestamp_seconds gauge
gapless_fault_since_timestamp_seconds{component="sender sink=local",kind="disk-full"} 4000000000.123
gapless_fault_since_timestamp_seconds{component="collector archive=psds",kind="journal-busy"} 4000000002.123
# HELP gapless_messages Journaled messages per sink and destination, by delivery state.
# TYPE gapless_messages gauge
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.packet-loss",state="pending"} 1
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.packet-loss",state="delivered"} 0
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.packet-loss",state="parked"} 0
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.throughput",state="pending"} 3
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.throughput",state="delivered"} 0
gapless_messages{sink="backup",destination="/topic/perfsonar.raw.throughput",state="parked"} 0
gapless_messages{sink="local",destination="/topic/perfsonar.raw.packet-loss",state="pending"} 0
gapless_messages{sink="local",destination="/topic/perfsonar.raw.packet-loss",state="delivered"} 0
gapless_messages{sink="local",destination="/topic/perfsonar.raw.packet-loss",state="parked"} 1
gapless_messages{sink="local",destination="/topic/perfsonar.raw.throughput",state="pending"} 1
gapless_messages{sink="local",destination="/topic/perfsonar.raw.throughput",state="delivered"} 1
gapless_messages{sink="local",destination="/topic/perfsonar.raw.throughput",state="parked"} 1
# HELP gapless_oldest_undelivered_timestamp_seconds Journal time of the oldest pending or parked message per sink and destination (absent: none).
# TYPE gapless_oldest_undelivered_timestamp_seconds gauge
gapless_oldest_undelivered_timestamp_seconds{sink="backup",destination="/topic/perfsonar.raw.packet-loss"} 4000000000.127
gapless_oldest_undelivered_timestamp_seconds{sink="backup",destination="/topic/perfsonar.raw.throughput"} 4000000000.124
gapless_oldest_undelivered_timestamp_seconds{sink="local",destination="/topic/perfsonar.raw.packet-loss"} 4000000000.127
gapless_oldest_undelivered_timestamp_seconds{sink="local",destination="/topic/perfsonar.raw.throughput"} 4000000000.124
)golden";

}  // namespace

TEST_CASE("status text output is unchanged byte for byte", "[status]") {
  StatusOutputFixture f;
  CHECK(f.status({}) == kExpectedText);
}

TEST_CASE("status --json output is unchanged byte for byte", "[status]") {
  StatusOutputFixture f;
  CHECK(f.status({"--json"}) == kExpectedJson);
}

TEST_CASE("status --prometheus output is unchanged byte for byte", "[status]") {
  StatusOutputFixture f;
  CHECK(f.status({"--prometheus"}) == kExpectedPrometheus);
}

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

std::string raw_status(const StatusOutputFixture& f) {
  const CommandResult result = gapless::test::run_gapless({"status", "--config", f.config_path}, f.dir.file("stderr"));
  INFO("stderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

}  // namespace

TEST_CASE("status text puts problems before the overview and fits 80 columns, a broker's long reason wrapped and "
          "cut in the middle, keeping what failed and why",
          "[status]") {
  StatusOutputFixture f;
  {
    auto journal = Journal::open(f.journal_path, {"local", "backup"});
    gapless::journal::NewMessage message;
    message.gapless_id = "m-long";
    message.destination = "/topic/perfsonar.raw.histogram-owdelay";
    message.body = "{}";
    REQUIRE(journal->append({message}).appended == 1);
    journal->claim("backup", 10, {});
    journal->park_destination("backup", message.destination,
                              "User collector is not authorized to write to: topic://perfsonar.raw.histogram-owdelay "
                              "java.lang.SecurityException: " +
                                  std::string(2000, 'x') + " at org.apache.activemq.security.AuthorizationBroker"
                                  ".addDestination(AuthorizationBroker.java:201)",
                              kPastMs);
  }
  const std::string out = raw_status(f);
  INFO(out);
  for (const std::string& line : lines_of(out)) {
    INFO(line);
    CHECK(line.size() <= 80);
  }
  const size_t problems = out.find("\nPROBLEMS (");
  REQUIRE(problems != std::string::npos);
  CHECK(problems < out.find("\nsink "));
  CHECK(problems < out.find("\narchive "));
  std::string joined = out;  // the wrapped reason read as one line again
  joined = std::regex_replace(joined, std::regex("\n    "), " ");
  CHECK(joined.find("sink backup: destination /topic/perfsonar.raw.histogram-owdelay parked for") != std::string::npos);
  CHECK(joined.find("User collector is not authorized to write to: topic://perfsonar.raw.histogram-owdelay") !=
        std::string::npos);
  CHECK(joined.find("(AuthorizationBroker.java:201)") != std::string::npos);
  CHECK(out.find(std::string(100, 'x')) == std::string::npos);  // cut: status --json has it whole
}

TEST_CASE("status shows the running daemon's own version and, when it is not the installed gapless's, says to "
          "restart it",
          "[status]") {
  StatusOutputFixture f;
  {
    gapless::journal::DaemonHealth older{::getpid(), kFutureMs, {}, 0, "0.0.9", "v0.0.9-3-gdeadbee"};
    std::string text = gapless::journal::format_health(older) + "\n";
    text.resize(gapless::journal::kHealthFileBytes, ' ');
    std::ofstream(f.journal_path + ".health") << text;
  }
  const std::string out = raw_status(f);
  INFO(out);
  CHECK(out.find("daemon: pid " + std::to_string(::getpid()) + ", gapless 0.0.9 (revision v0.0.9-3-gdeadbee)") !=
        std::string::npos);
  const std::string joined = std::regex_replace(out, std::regex("\n    "), " ");
  CHECK(joined.find("the running daemon runs other code than the installed gapless: restart it") != std::string::npos);
  CHECK(joined.find("the installed one is " + gapless::build_description()) != std::string::npos);

  const CommandResult raw =
      gapless::test::run_gapless({"status", "--config", f.config_path, "--json"}, f.dir.file("stderr"));
  const json status = json::parse(raw.out);
  CHECK(status.at("daemon").at("version") == "0.0.9");
  CHECK(status.at("daemon").at("revision") == "v0.0.9-3-gdeadbee");
}

TEST_CASE("status names an archive's lagging cursors, judged by its poll interval and each series' cadence, and a "
          "journal near max_size",
          "[status]") {
  StatusOutputFixture f;
  const int64_t now_s = ::time(nullptr);
  {
    auto journal = Journal::open(f.journal_path, {"local", "backup"});
    // Two series of the configured archive "quiet" (poll_interval 5m: 15m
    // allowed), both 2 hours behind: a one-minute test lags, a six-hour one
    // does not (its cadence allows 6h more).
    gapless::journal::SeriesKey minute{kQuietUrl, "m-minute", "packet-loss-rate", "", 0};
    gapless::journal::SeriesKey six_hours{kQuietUrl, "m-six-hours", "throughput", "", 0};
    journal->register_series(minute, R"({"time-interval": "60"})");
    journal->register_series(six_hours, R"({"time-interval": "21600"})");
    // Past max_size's 90 %: a message of a megabyte.
    gapless::journal::NewMessage large;
    large.gapless_id = "m-large";
    large.destination = kThroughput;
    large.body = std::string(1'100'000, 'x');
    REQUIRE(journal->append({large}).appended == 1);
  }
  {
    gapless::test::JournalSql sql(f.journal_path);
    sql.exec("UPDATE series SET cursor_ts = " + std::to_string(now_s - 7200));
  }
  {
    std::ofstream config(f.config_path);
    config << "[journal]\npath = " << json(f.journal_path).dump() << "\nmax_size = " << 2 * 1024 * 1024 << "\n"
           << "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << "[[sink]]\nname = \"backup\"\nbrokers = [\"stomp://127.0.0.1:2\"]\n"
           << "[[archive]]\nname = \"quiet\"\nurl = " << json(kQuietUrl).dump() << "\n";
  }
  const std::string out = raw_status(f);
  INFO(out);
  const std::string joined = std::regex_replace(out, std::regex("\n    "), " ");
  CHECK(joined.find("archive quiet lagging: 1 of 2 series have a cursor more than 3 poll intervals (15m) plus "
                    "their cadence behind now; furthest 2h") != std::string::npos);
  CHECK(joined.find("metadata-key m-minute") != std::string::npos);
  // Below 90 % of 2 MiB: not named.
  CHECK(joined.find("journal near its size limit") == std::string::npos);

  // A limit the journal's bytes in use (what max_size limits) fill to 95 %: named, with both sizes.
  const int64_t bytes = Journal::open(f.journal_path, {"local", "backup"}, false)->bytes_in_use();
  REQUIRE(bytes * 100 / 95 > 1024 * 1024);  // max_size's own minimum
  {
    std::ifstream in(f.config_path);
    std::string text{std::istreambuf_iterator<char>(in), {}};
    text = std::regex_replace(text, std::regex("max_size = [0-9]+"), "max_size = " + std::to_string(bytes * 100 / 95));
    std::ofstream(f.config_path) << text;
  }
  const std::string near = std::regex_replace(raw_status(f), std::regex("\n    "), " ");
  INFO(near);
  CHECK(std::regex_search(
      near, std::regex(R"(journal near its size limit: 1\.[0-9] MiB of \[journal\] max_size 1\.[0-9] MiB \(9[0-9]%\))")));
}
