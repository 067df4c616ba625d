// Runs pushed to a daemon's [push] endpoint as pScheduler's http archiver
// pushes them (harness/archiver_client.hpp), for the integration tests that
// check what was answered against what was journaled: numbered throughput
// runs, each with its own id and start (so its own OSG point), the [push]
// table with a sink that takes the runs themselves, and the journal's
// pushed runs.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/archiver_client.hpp"
#include "harness/process.hpp"
#include "harness/workspace.hpp"
#include "support/eventually.hpp"

namespace gapless::test {

inline constexpr int64_t kFirstPushedStart = 1'760'000'000;  // 2025-10-09

// A throughput run as the archiver sends it, made the `index`th of a host's
// runs: its own id and start kFirstPushedStart + 60 x index.
inline std::string run_body(int index, size_t padding = 0) {
  static const nlohmann::json sample = [] {
    std::ifstream in(std::string(GAPLESS_SOURCE_DIR) + "/tests/data/pscheduler/throughput-tcp.json");
    return nlohmann::json::parse(in);
  }();
  nlohmann::json run = sample;
  char id[64];
  std::snprintf(id, sizeof id, "0000%04x-4cd0-429c-8937-cdcef742cc82", index);
  const std::string href = run["run"]["href"].get<std::string>();
  run["id"] = id;
  run["run"]["href"] = href.substr(0, href.rfind('/') + 1) + id;
  const std::time_t start = kFirstPushedStart + 60 * index;
  char iso[32];
  std::strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&start));
  run["schedule"]["start"] = iso;
  run["run"]["start-time"] = iso;
  if (padding > 0) run["reference"] = {{"padding", std::string(padding, 'x')}};
  return run.dump();
}

inline std::vector<std::string> run_bodies(int first, int count, size_t padding = 0) {
  std::vector<std::string> bodies;
  for (int i = first; i < first + count; ++i) bodies.push_back(run_body(i, padding));
  return bodies;
}

inline std::string run_id_of(const std::string& body) { return nlohmann::json::parse(body)["id"].get<std::string>(); }

// [push] on `port`, plus an http sink that takes the runs themselves
// (pointing at a port nothing listens on: the runs stay pending, visible).
inline std::string push_tables(uint16_t port, const std::string& push_keys = "") {
  return "[[sink]]\nname = \"logstash\"\nprotocol = \"http\"\nurl = \"http://127.0.0.1:9/logstash\"\n"
         "[push]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n" + push_keys;
}

inline ArchiverOptions archiver(uint16_t port, const std::string& path = "/logstash") {
  ArchiverOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(port) + path;
  return options;
}

// Waits until the endpoint answers (the daemon is up); its log is the workspace's.
inline void wait_listening(uint16_t port, Process& daemon, const Workspace& workspace) {
  ArchiverOptions probe = archiver(port, "/not-a-path");
  probe.workers = 1;
  probe.timeout = std::chrono::seconds(2);
  const bool up = eventually(std::chrono::seconds(30), [&] {
    REQUIRE(daemon.running());
    return archive_runs({"{}"}, probe).attempts[0].status == 404;
  });
  INFO(workspace.daemon_log());
  REQUIRE(up);
}

// The gapless-ids of the runs journaled as pushed (for the http sink), one a row.
inline constexpr const char* kJournaledRunsSql =
    "SELECT gapless_id FROM message JOIN destination ON destination.id = message.destination_id "
    "WHERE destination.name LIKE '/pscheduler/run/%'";

}  // namespace gapless::test
