// Writes a journal with the Journal code of one past schema version
// (FIXTURE_VERSION), compiled from that commit's src/journal and src/core.
// Every row is written through that version's public API. Built and run by
// make_fixtures.sh, not by meson.
#include <cstdio>
#include <string>
#include <vector>

#include "journal/journal.hpp"

using namespace gapless::journal;

namespace {

const std::string kArchive = "https://psds.example.org/esmond/perfsonar/archive/";
constexpr int64_t kT0 = 1473700000;  // 2016-09-12T17:06:40Z

NewMessage ingested(const std::string& id, const std::string& event_type, std::optional<int64_t> ts_start) {
  NewMessage m;
  m.gapless_id = id;
  m.destination = event_type.front() == '/' ? event_type : "/topic/perfsonar.raw." + event_type;
  m.headers = {{"event-type", event_type.front() == '/' ? "refused" : event_type},
               {"input-source", "a.example.org"},
               {"input-destination", "b.example.org"}};
  if (ts_start) m.headers.push_back({"ts_start", std::to_string(*ts_start)});
  m.body = "{\"datapoints\": {\"" + std::to_string(ts_start.value_or(kT0)) + "\": 1}}";
  return m;
}

std::vector<int64_t> ids_of(Journal& journal, const std::string& sink, const std::vector<std::string>& gapless_ids) {
  std::vector<int64_t> ids;
  for (const Message& m : journal.claim(sink, 1000, {}))
    for (const auto& wanted : gapless_ids)
      if (m.gapless_id == wanted) ids.push_back(m.id);
  return ids;
}

#if FIXTURE_VERSION >= 2
// One read of a series: one message per two datapoints, as the collector
// split them, covering [from, to).
Collected read_of(const Series& series, const std::string& prefix, std::vector<int64_t> points, int64_t from,
                  int64_t to, Priority priority, std::optional<int64_t> request, bool move_cursor) {
  Collected c;
  c.series_id = series.id;
  for (size_t i = 0; i < points.size(); ++i) {
    if (i % 2 == 0) {
      NewMessage m;
      m.gapless_id = prefix + "-" + std::to_string(points[i]);
      m.destination = series.key.summary_type.empty()
                          ? "/topic/perfsonar.raw." + series.key.event_type
                          : "/topic/perfsonar.summary." + series.key.event_type;
      m.headers = {{"event-type", series.key.event_type},
                   {"input-source", "a.example.org"},
                   {"input-destination", "b.example.org"},
                   {"ts_start", std::to_string(points[i])},
                   {"metadata-key", series.key.metadata_key}};
      m.body = "{\"datapoints\": {}}";
      m.priority = priority;
      m.request_id = request;
      c.messages.push_back(m);
    }
    char digest[40];
    std::snprintf(digest, sizeof digest, "%032llx", static_cast<unsigned long long>(points[i] * 7919));
    c.datapoints.push_back({points[i], digest, c.messages.size() - 1});
  }
  c.read_from = from;
  c.read_to = to;
  c.points_read = static_cast<int64_t>(points.size());
  if (move_cursor) c.cursor_ts = to;
  return c;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fixture JOURNAL\n");
    return 2;
  }
  auto journal = Journal::open(argv[1], {"cern", "desy"});
  Journal& j = *journal;

  // What gapless ingest journals: two topics, with and without ts_start.
  std::vector<NewMessage> batch;
  for (int i = 0; i < 6; ++i) batch.push_back(ingested("t-" + std::to_string(i), "throughput", kT0 + 60 * i));
  for (int i = 0; i < 4; ++i)
    batch.push_back(ingested("l-" + std::to_string(i), "packet-loss-rate", i < 2 ? std::optional<int64_t>(kT0 + 30 * i)
                                                                                   : std::nullopt));
  for (int i = 0; i < 2; ++i) batch.push_back(ingested("r-" + std::to_string(i), "/topic/refused", kT0));
  j.append(batch);
  j.append({ingested("t-0", "throughput", kT0)});  // a duplicate: nothing added

  // Delivered: cern four throughput and two loss messages, desy two.
  j.mark_delivered("cern", ids_of(j, "cern", {"t-0", "t-1", "t-2", "t-3", "l-0", "l-1"}));
  j.mark_delivered("desy", ids_of(j, "desy", {"t-0", "t-1"}));

  // cern's broker refuses /topic/refused: parked, and a later one arrives parked.
  j.park_destination("cern", "/topic/refused", "not authorized to write to /topic/refused", kT0 * 1000);
  j.append({ingested("r-2", "/topic/refused", kT0 + 120)});

  // desy: two messages parked alone, an operator's retry-parked (recorded),
  // then one of them parked again.
  for (const int64_t id : ids_of(j, "desy", {"l-2", "l-3"}))
    j.park_message("desy", id, "the message exceeds max_message_size (4194304 bytes)");
  j.retry_parked("desy", "/topic/perfsonar.raw.packet-loss-rate", true);
  for (const int64_t id : ids_of(j, "desy", {"l-3"}))
    j.park_message("desy", id, "the message exceeds max_message_size (4194304 bytes)");

#if FIXTURE_VERSION >= 2
  // The collector: two series, live reads with cursor and coverage, then a
  // backfill (request, priority backfill) behind the cursor.
  const Series raw = j.register_series({kArchive, "aaaa1111", "throughput", "", 0},
                                       R"({"metadata-key": "aaaa1111", "source": "a.example.org"})");
  const Series summary = j.register_series({kArchive, "aaaa1111", "packet-loss-rate", "aggregation", 3600},
                                           R"({"metadata-key": "aaaa1111", "source": "a.example.org"})");
  j.record_collected(read_of(raw, "c-raw", {kT0, kT0 + 60, kT0 + 120, kT0 + 180}, kT0, kT0 + 240,
                             Priority::live, std::nullopt, true));
  j.record_collected(read_of(summary, "c-sum", {kT0, kT0 + 3600}, kT0, kT0 + 7200, Priority::live, std::nullopt,
                             true));
  const int64_t backfill = j.begin_request("backfill", R"({"archive": "psds", "from": 1473696400, "to": 1473700000})");
  j.record_collected(read_of(raw, "c-bf", {kT0 - 3600, kT0 - 3540}, kT0 - 3600, kT0, Priority::backfill, backfill,
                             false));
  j.update_request(backfill, "done", 1);
  j.mark_delivered("cern", ids_of(j, "cern", {"c-raw-" + std::to_string(kT0)}));
  j.mark_delivered("desy", ids_of(j, "desy", {"c-raw-" + std::to_string(kT0), "c-sum-" + std::to_string(kT0)}));

  // A consumer's resend: one of cern's delivered messages is pending again.
  const int64_t resend = j.begin_request("resend", R"({"sink": "cern", "from": 1473700000, "to": 1473700060})");
  j.update_request(resend, "done", j.queue_resend("cern", {1}, resend));
#endif

#if FIXTURE_VERSION >= 3
  // The collector's polls of the archive: one failed, then one good.
  ArchivePoll failed;
  failed.archive_url = kArchive;
  failed.name = "psds";
  failed.polled_ms = kT0 * 1000;
  failed.failures = {{"timeout", 2}, {"http-status", 1}};
  failed.last_error = "GET " + kArchive + "?time-range=3600: timed out after 30 s";
  j.record_poll(failed);
  ArchivePoll good;
  good.archive_url = kArchive;
  good.name = "psds";
  good.polled_ms = kT0 * 1000 + 60'000;
  good.complete = true;
  good.points_journaled = 6;
  j.record_poll(good);
#endif

#if FIXTURE_VERSION >= 5
  // An ingested message with the window time its producer gave (version 5:
  // the producer computes it, no view reads ts_start).
  NewMessage timed = ingested("w-0", "throughput", kT0 + 600);
  timed.window_ts = kT0 + 300;
  j.append({timed});
#endif

#if FIXTURE_VERSION >= 6
  // A sink removed from the configuration and retired by an operator: its
  // pending row removed on record, none for later messages.
  auto with_old = Journal::open(argv[1], {"cern", "desy", "old"});
  with_old->append({ingested("o-0", "throughput", kT0 + 900)});
  with_old->retire_sink("old", "decommissioned");
  with_old->append({ingested("o-1", "throughput", kT0 + 960)});
#endif
  return 0;
}
