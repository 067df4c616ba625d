// gapless-replay resend (replay::resend) on what `gapless ingest` journaled:
// an ingest-only site, with no [[archive]], resends the delivered messages of
// a window; a site with both resends collected and ingested messages, each
// once, and --archive leaves the ingested ones out.
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "ingest/ingest.hpp"
#include "journal/journal.hpp"
#include "replay/backfill.hpp"
#include "support/journal_sql.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::journal::Journal;

namespace {

const std::string kArchiveUrl = "https://psds.example.org/esmond/perfsonar/archive/";
constexpr int64_t kFrom = 1473700000;  // 2016-09-12T17:06:40Z
constexpr int64_t kTo = 1473710000;

gapless::Config ingest_only_config(const gapless::test::TempDir& dir) {
  gapless::Config config = gapless::default_config();  // one sink, "local"; no archive
  config.journal.path = dir.file("j.db");
  config.origin = "the test's configuration";
  return config;
}

// A directory-queue line as rsv-perfsonar wrote it (ts_start an int).
std::string osg_line(const std::string& gapless_id, const std::string& ts_start,
                     const std::string& event_type = "throughput") {
  return R"({"header": {"gapless-id": ")" + gapless_id + R"(", "destination": "/topic/perfsonar.raw.)" + event_type +
         R"(", "event-type": ")" + event_type + R"(", "input-source": "a.example", "ts_start": )" + ts_start +
         R"(}, "body": "{\"datapoints\": {}}"})";
}

void ingest(Journal& journal, const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  std::istringstream input(text);
  REQUIRE(gapless::ingest::ingest_stream(input, "test", journal, 100, gapless::default_config()).appended == static_cast<int64_t>(lines.size()));
}

void deliver_all_but(Journal& journal, const std::string& sink, const std::set<std::string>& kept_pending) {
  std::vector<int64_t> ids;
  for (const auto& message : journal.claim(sink, 1000, {}))
    if (kept_pending.count(message.gapless_id) == 0) ids.push_back(message.id);
  journal.mark_delivered(sink, ids);
}

struct Row {
  int state = -1;
  int priority = -1;
  std::optional<int64_t> resend_request;
  bool operator==(const Row& other) const {
    return state == other.state && priority == other.priority && resend_request == other.resend_request;
  }
};

std::ostream& operator<<(std::ostream& out, const Row& row) {
  return out << "{state " << row.state << ", priority " << row.priority << ", request "
             << (row.resend_request ? std::to_string(*row.resend_request) : "none") << "}";
}

// Each message's delivery row for `sink`, by gapless-id.
std::map<std::string, Row> deliveries(Journal& journal, const std::string& sink) {
  gapless::test::JournalSql sql(journal.path());
  SQLite::Statement query(sql.database(),
                          "SELECT message.gapless_id, delivery.state, delivery.priority, delivery.resend_request_id "
                          "FROM delivery JOIN message ON message.id = delivery.message_id "
                          "JOIN sink ON sink.id = delivery.sink_id WHERE sink.name = ?1");
  query.bind(1, sink);
  std::map<std::string, Row> rows;
  while (query.executeStep()) {
    Row row{query.getColumn(1).getInt(), query.getColumn(2).getInt(), std::nullopt};
    if (!query.isColumnNull(3)) row.resend_request = query.getColumn(3).getInt64();
    rows[query.getColumn(0).getString()] = row;
  }
  return rows;
}

constexpr int kPending = 0;
constexpr int kDelivered = 1;
constexpr int kLive = 0;
constexpr int kResend = 2;

gapless::replay::Selection window() {
  gapless::replay::Selection selection;
  selection.from = kFrom;
  selection.to = kTo;
  return selection;
}

}  // namespace

TEST_CASE("resend without any [[archive]] queues the delivered ingested messages of the window again",
          "[replay][resend]") {
  gapless::test::TempDir dir("resend-test");
  const gapless::Config config = ingest_only_config(dir);
  REQUIRE(config.archives.empty());
  {
    auto journal = Journal::open(config.journal.path, {"local"});
    ingest(*journal, {osg_line("in-window", std::to_string(kFrom)), osg_line("in-window-too", "\"1473705000\""),
                      osg_line("in-window-pending", std::to_string(kFrom + 10)),
                      osg_line("at-to", std::to_string(kTo)), osg_line("before", std::to_string(kFrom - 1))});
    deliver_all_but(*journal, "local", {"in-window-pending"});
  }
  auto journal = Journal::open(config.journal.path, {"local"});
  const auto before = deliveries(*journal, "local");
  std::atomic<bool> stop{false};

  const auto dry = gapless::replay::resend(config, window(), "local", {}, 0, "", true, stop, nullptr);
  CHECK_FALSE(dry.request_id.has_value());
  CHECK(dry.series == 0);
  CHECK(dry.ingested == 3);
  CHECK(dry.messages == 3);
  CHECK(deliveries(*journal, "local") == before);
  CHECK(journal->requests().empty());

  const auto result = gapless::replay::resend(config, window(), "local", {}, 0, "the dashboard lost it", false,
                                              stop, nullptr);
  REQUIRE(result.request_id.has_value());
  CHECK(result.ingested == 3);
  CHECK(result.messages == 2);  // the pending one is sent anyway
  const Row resent{kPending, kResend, *result.request_id};
  const Row delivered{kDelivered, kLive, std::nullopt};
  const auto after = deliveries(*journal, "local");
  CHECK(after.at("in-window") == resent);
  CHECK(after.at("in-window-too") == resent);
  CHECK(after.at("in-window-pending") == Row{kPending, kLive, std::nullopt});
  CHECK(after.at("at-to") == delivered);
  CHECK(after.at("before") == delivered);
  for (const auto& message : journal->claim("local", 10, {}))
    if (message.gapless_id != "in-window-pending") CHECK(message.resend_request_id == result.request_id);

  const auto requests = journal->requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].kind == "resend");
  CHECK(requests[0].state == "done");
  CHECK(requests[0].messages == 2);
  CHECK(requests[0].note == "the dashboard lost it");

  // An unknown archive is refused before anything changes, saying what is configured.
  gapless::replay::Selection named = window();
  named.archives = {"psds"};
  CHECK_THROWS_WITH(gapless::replay::resend(config, named, "local", {}, 0, "", false, stop, nullptr),
                    Contains("unknown archive \"psds\"") && Contains(": none)"));
  CHECK(journal->requests().size() == 1);
  CHECK(deliveries(*journal, "local") == after);
}

TEST_CASE("resend selects collected messages by their datapoints and ingested ones by ts_start, each once; "
          "--archive leaves the ingested ones out",
          "[replay][resend]") {
  gapless::test::TempDir dir("resend-test");
  gapless::Config config = ingest_only_config(dir);
  gapless::ArchiveConfig archive;
  archive.name = "psds";
  archive.url = kArchiveUrl;
  config.archives.push_back(archive);
  {
    auto journal = Journal::open(config.journal.path, {"local"});
    // "shared" is ingested first, then a collector read journals the same
    // gapless-id: its datapoint names the ingested message (journal invariant 2).
    ingest(*journal, {osg_line("ingested", std::to_string(kFrom + 100)),
                      osg_line("shared", std::to_string(kFrom + 200)),
                      osg_line("ingested-other-type", std::to_string(kFrom + 300), "packet-loss-rate")});
    const auto series =
        journal->register_series({kArchiveUrl, "key1", "throughput", "", 0}, R"({"input-source": "a.example"})");
    gapless::journal::Collected collected;
    collected.series_id = series.id;
    for (const auto& [id, ts_start] : std::vector<std::pair<std::string, std::string>>{
             {"collected", std::to_string(kFrom - 500)},            // its datapoint is in the window
             {"collected-header-only", std::to_string(kFrom + 400)},  // its datapoint is not
             {"shared", std::to_string(kFrom + 200)}}) {
      gapless::journal::NewMessage message;
      message.gapless_id = id;
      message.destination = "/topic/perfsonar.raw.throughput";
      message.headers = {{"event-type", "throughput"}, {"org_metadata_key", "key1"}, {"ts_start", ts_start}};
      message.body = "{}";
      collected.messages.push_back(message);
    }
    collected.datapoints = {{kFrom + 50, std::string(32, 'a'), 0},
                            {kTo + 50, std::string(32, 'b'), 1},
                            {kFrom + 200, std::string(32, 'c'), 2}};
    journal->record_collected(collected);
    deliver_all_but(*journal, "local", {});
  }
  std::atomic<bool> stop{false};

  const auto both = gapless::replay::resend(config, window(), "local", {}, 0, "", true, stop, nullptr);
  CHECK(both.series == 1);
  CHECK(both.ingested == 3);
  CHECK(both.messages == 4);  // collected, shared (once), ingested, ingested-other-type

  gapless::replay::Selection throughput = window();
  throughput.event_types = {"throughput"};
  CHECK(gapless::replay::resend(config, throughput, "local", {}, 0, "", true, stop, nullptr).messages == 3);

  gapless::replay::Selection named = window();
  named.archives = {"psds"};
  const auto collected_only = gapless::replay::resend(config, named, "local", {}, 0, "", true, stop, nullptr);
  CHECK(collected_only.ingested == 0);
  CHECK(collected_only.messages == 2);  // collected, shared: by their datapoints

  const auto result = gapless::replay::resend(config, window(), "local", {}, 0, "", false, stop, nullptr);
  REQUIRE(result.request_id.has_value());
  CHECK(result.messages == 4);
  auto journal = Journal::open(config.journal.path, {"local"});
  const auto rows = deliveries(*journal, "local");
  const Row resent{kPending, kResend, *result.request_id};
  for (const char* id : {"collected", "shared", "ingested", "ingested-other-type"}) {
    INFO(id);
    CHECK(rows.at(id) == resent);
  }
  CHECK(rows.at("collected-header-only") == Row{kDelivered, kLive, std::nullopt});
}
