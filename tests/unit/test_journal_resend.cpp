// Proves a resend window finds what ingest appended by its time and filters, never a collected message.

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "replay/backfill.hpp"
#include "support/journal_fixtures.hpp"
#include "support/temp_dir.hpp"

using gapless::journal::Headers;
using gapless::journal::Journal;
using gapless::journal::SeriesKey;
using namespace gapless::test;

TEST_CASE("a resend window finds appended messages by their first integer ts_start header, else by journal time",
          "[journal][resend]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  journal->append({
      with_headers("first-second", {{"ts_start", "1000"}}),
      with_headers("last-second", {{"event-type", "throughput"}, {"ts_start", "1999"}}),
      with_headers("at-to", {{"ts_start", "2000"}}),  // --to is exclusive
      with_headers("before", {{"ts_start", "999"}}),
      with_headers("leading-zeros", {{"ts_start", "0001500"}}),
      with_headers("second-is-integer", {{"ts_start", "soon"}, {"ts_start", "1500"}}),
      with_headers("first-of-two", {{"ts_start", "5000"}, {"ts_start", "1500"}}),
      // No integer ts_start: found by when they were journaled.
      with_headers("none", {{"event-type", "throughput"}}),
      with_headers("fraction", {{"ts_start", "1500.5"}}),
      with_headers("negative", {{"ts_start", "-1500"}}),
      with_headers("empty", {{"ts_start", ""}}),
      with_headers("19-digits", {{"ts_start", "1000000000000001500"}}),
      with_headers("named-otherwise", {{"ts_start_ms", "1500"}, {"x", "ts_start"}}),
  });

  CHECK(journal->appended_messages(window(1000, 2000)) ==
        ids_of(*journal, {"first-second", "last-second", "leading-zeros", "second-is-integer"}));
  CHECK(journal->appended_messages(window(5000, 5001)) == ids_of(*journal, {"first-of-two"}));
  CHECK(journal->appended_messages(window(2000, 2001)) == ids_of(*journal, {"at-to"}));

  // One batch, one journal time: [from * 1000, to * 1000) in milliseconds.
  const int64_t second = journaled_second(*journal, "none");
  CHECK(journal->appended_messages(window(second, second + 1)) ==
        ids_of(*journal, {"none", "fraction", "negative", "empty", "19-digits", "named-otherwise"}));
  CHECK(journal->appended_messages(window(second - 60, second)).empty());
  CHECK(journal->appended_messages(window(second + 1, second + 60)).empty());
}

TEST_CASE("collected messages are found by their datapoints only, never as appended ones, whatever their headers",
          "[journal][resend]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  const auto series = journal->register_series(SeriesKey{kArchiveUrl, "key1", "throughput", "", 0}, "{}");
  // Headers as an ingested OSG message carries them too.
  const Headers osg = {{"event-type", "throughput"}, {"input-source", "a.example"}, {"org_metadata_key", "key1"}};
  Headers in_window = osg, out_of_window = osg;
  in_window.emplace_back("ts_start", "1500");
  out_of_window.emplace_back("ts_start", "5000");
  journal->record_collected(collected_read(series.id,
                                           {with_headers("collected-header-in-window", in_window),
                                            with_headers("collected-data-in-window", out_of_window),
                                            with_headers("collected-without-ts_start", osg)},
                                           {5000, 1500, 3000}));
  journal->append({with_headers("appended", in_window)});

  CHECK(journal->appended_messages(window(1000, 2000)) == ids_of(*journal, {"appended"}));
  gapless::replay::Selection filtered;
  filtered.from = 1000;
  filtered.to = 2000;
  filtered.event_types = {"throughput"};
  filtered.source_host = "a.example";
  CHECK(journal->appended_messages(gapless::replay::ingested_selection(filtered, {})) ==
        ids_of(*journal, {"appended"}));
  CHECK(journal->appended_messages(window(5000, 5001)).empty());
  const int64_t second = journaled_second(*journal, "collected-without-ts_start");
  CHECK(journal->appended_messages(window(second - 60, second + 60)).empty());

  CHECK(journal->messages_of_series({series.id}, 1000, 2000) == ids_of(*journal, {"collected-data-in-window"}));
  CHECK(journal->messages_of_series({series.id}, 0, 10'000).size() == 3);  // never the appended one
  CHECK(count_rows(*journal, "SELECT count(*) FROM appended_message") == 1);
}

TEST_CASE("a resend's destination, event-type and host filters select appended messages by destination and headers",
          "[journal][resend]") {
  TempDir dir;
  auto journal = Journal::open(dir.file("j.db"), {"cern"});
  journal->append({
      with_headers("raw", {{"ts_start", "1500"}, {"input-source", "a.example"}, {"input-destination", "b.example"}},
                   "/topic/perfsonar.raw.throughput"),
      with_headers("summary", {{"ts_start", "1500"}, {"input-source", "b.example"}, {"input-destination", "a.example"}},
                   "/topic/perfsonar.summary.throughput"),
      with_headers("by-header",
                   {{"event-type", "packet-loss-rate"}, {"ts_start", "1500"}, {"input-source", "a.example"}},
                   "/topic/osg.mirror"),
      with_headers("longer-name", {{"ts_start", "1500"}, {"event-type", "throughput-subintervals"}},
                   "/topic/perfsonar.raw.throughput-subintervals"),
      with_headers("names-as-values", {{"ts_start", "1500"}, {"x", "input-source"}, {"y", "a.example"}},
                   "/topic/other"),
  });
  // The filters as resend states them for the journal (replay::ingested_selection).
  struct S : gapless::replay::Selection {
    std::vector<std::string> destinations;
  };
  const auto selected = [&](auto filter) {
    S selection;
    selection.from = 1000;
    selection.to = 2000;
    filter(selection);
    return journal->appended_messages(gapless::replay::ingested_selection(selection, selection.destinations));
  };

  CHECK(selected([](S&) {}).size() == 5);
  CHECK(selected([](S& s) { s.destinations = {"/topic/perfsonar.summary.throughput", "/topic/osg.mirror"}; }) ==
        ids_of(*journal, {"summary", "by-header"}));
  CHECK(selected([](S& s) { s.event_types = {"throughput"}; }) == ids_of(*journal, {"raw", "summary"}));
  CHECK(selected([](S& s) { s.event_types = {"packet-loss-rate"}; }) == ids_of(*journal, {"by-header"}));
  CHECK(selected([](S& s) { s.event_types = {"throughput", "packet-loss-rate"}; }) ==
        ids_of(*journal, {"raw", "summary", "by-header"}));
  CHECK(selected([](S& s) { s.event_types = {"throughput-subintervals"}; }) == ids_of(*journal, {"longer-name"}));
  CHECK(selected([](S& s) { s.source_host = "a.example"; }) == ids_of(*journal, {"raw", "by-header"}));
  CHECK(selected([](S& s) { s.destination_host = "a.example"; }) == ids_of(*journal, {"summary"}));
  CHECK(selected([](S& s) {
          s.source_host = "a.example";
          s.event_types = {"throughput"};
        }) == ids_of(*journal, {"raw"}));
  CHECK(selected([](S& s) {
          s.destinations = {"/topic/perfsonar.raw.throughput", "/topic/perfsonar.summary.throughput"};
          s.destination_host = "b.example";
        }) == ids_of(*journal, {"raw"}));
  CHECK(selected([](S& s) { s.source_host = "c.example"; }).empty());
  CHECK(selected([](S& s) { s.destinations = {"/topic/perfsonar.raw.packet-loss-rate"}; }).empty());
}
