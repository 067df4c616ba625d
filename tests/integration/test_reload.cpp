// Proves SIGHUP reloads a running daemon's sinks while messages flow (the added one gets new messages, the others lose nothing), refuses a bad file naming the key while delivery goes on, and that the removed sink shows orphaned until `gapless retire-sink`; a sink whose broker changed keeps its pending rows and delivers them to the new one, and an archive added by a reload is polled (the collector restarted).
//
// Issue 12, Service: SIGHUP and retire-sink, with the real ActiveMQ the
// harness starts. Three sinks take turns on the one broker ("test" all
// along, "old" removed by the reload, "new" added by it); each sink's
// delivery state is read from the journal (`gapless status --json`).
//   build/tests/integration/integration-tests '[reload]'
#include <signal.h>

#include <httplib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "esmond_archive/esmond_archive.hpp"
#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/process.hpp"
#include "harness/workspace.hpp"
#include "support/eventually.hpp"
#include "support/polled_archive.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using gapless::test::eventually;
using gapless::test::messages_on;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;

namespace {

// A [[sink]] table to the broker at `uri`.
std::string sink_table(const std::string& uri, const std::string& name, const std::string& extra = "") {
  return "[[sink]]\nname = \"" + name + "\"\nbrokers = [\"" + uri +
         "\"]\nlogin = \"collector\"\npasscode = \"collector-secret\"\nreconnect_min = \"100ms\"\n"
         "reconnect_max = \"1s\"\n" + extra;
}
// A [[sink]] table to the test broker.
std::string sink_table(const TestBroker& broker, const std::string& name, const std::string& extra = "") {
  return sink_table(broker.stomp_uri(), name, extra);
}

// {pending, delivered, parked} of `sink` on `destination`; zeros when status lists neither.
std::array<int64_t, 3> counts_of(const nlohmann::json& status, const std::string& sink, const std::string& destination) {
  for (const auto& s : status.at("sinks"))
    if (s.at("sink") == sink)
      for (const auto& d : s.at("destinations"))
        if (d.at("destination") == destination)
          return {d.at("pending").get<int64_t>(), d.at("delivered").get<int64_t>(), d.at("parked").get<int64_t>()};
  return {0, 0, 0};
}

const nlohmann::json* sink_in(const nlohmann::json& status, const std::string& sink) {
  for (const auto& s : status.at("sinks"))
    if (s.at("sink") == sink) return &s;
  return nullptr;
}

// The archive's entry in `gapless status --json`, or an empty object.
nlohmann::json archive_in(const nlohmann::json& status, const std::string& archive) {
  for (const auto& a : status.at("archives"))
    if (a.at("archive") == archive) return a;
  return nlohmann::json::object();
}

}  // namespace

TEST_CASE("SIGHUP: a sink added and one removed while messages flow, a bad file refused, the removed one retired",
          "[reload]") {
  TestBroker broker;
  // The daemon's endpoint too: after the reload, /v1/status must answer with the reloaded sinks.
  const uint16_t port = gapless::test::free_tcp_ports(1)[0];
  const std::string http = "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n";
  Workspace workspace(broker, "", sink_table(broker, "old") + http);
  Process daemon = workspace.start_daemon();
  // Both sinks registered by the daemon before anything is journaled.
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: start") != std::string::npos; }));
  const std::string first = "/topic/test.reload.first";
  const std::string second = "/topic/test.reload.second";
  const std::string third = "/topic/test.reload.third";

  workspace.journal_messages(messages_on({"test.reload.first"}, 200));
  REQUIRE(eventually(60s, [&] {
    const auto status = workspace.status();
    return counts_of(status, "test", first)[1] == 200 && counts_of(status, "old", first)[1] == 200;
  }));

  // The reload, with a backlog being journaled before and after it.
  workspace.write_config(broker.stomp_uri(), "", sink_table(broker, "new") + http);
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      auto batch = messages_on({"test.reload.second"}, 300);
      workspace.journal_messages({batch.begin() + i * 30, batch.begin() + (i + 1) * 30});
      std::this_thread::sleep_for(50ms);
    }
  });
  std::this_thread::sleep_for(150ms);
  daemon.signal(SIGHUP);
  producer.join();
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: reloaded") != std::string::npos; }));
  CHECK_THAT(workspace.daemon_log(), Contains("sinks_added=[new] sinks_removed=[old] sinks_changed=[]"));
  workspace.journal_messages(messages_on({"test.reload.third"}, 100));

  REQUIRE(eventually(60s, [&] {
    const auto status = workspace.status();
    return counts_of(status, "test", second)[1] == 300 && counts_of(status, "test", third)[1] == 100 &&
           counts_of(status, "new", third)[1] == 100;
  }));
  auto status = workspace.status();
  // "new": messages journaled from the reload on, nothing older; all delivered.
  CHECK(counts_of(status, "new", first) == std::array<int64_t, 3>{0, 0, 0});
  CHECK(counts_of(status, "new", second)[0] == 0);
  CHECK(counts_of(status, "new", second)[1] < 300);  // the batches journaled before the SIGHUP are not its
  // "old": what it had is delivered; what came after waits for it, kept, not lost.
  CHECK(counts_of(status, "old", first) == std::array<int64_t, 3>{0, 200, 0});
  CHECK(counts_of(status, "old", third) == std::array<int64_t, 3>{100, 0, 0});
  const auto old_second = counts_of(status, "old", second);
  CHECK(old_second[0] + old_second[1] == 300);
  // The endpoint serves the configuration in force: "new" configured, "old" orphaned.
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10s);
  const auto served = client.Get("/v1/status");
  REQUIRE(served);
  REQUIRE(served->status == 200);
  const nlohmann::json served_status = nlohmann::json::parse(served->body);
  REQUIRE(sink_in(served_status, "new") != nullptr);
  REQUIRE(sink_in(served_status, "old") != nullptr);
  CHECK(sink_in(served_status, "new")->value("configured", true));
  CHECK_FALSE(sink_in(served_status, "old")->value("configured", true));

  // A bad file: refused, the key named in the log, delivery goes on with the running configuration.
  workspace.write_config(broker.stomp_uri(), "", sink_table(broker, "new", "window = \"four\"\n") + http);
  daemon.signal(SIGHUP);
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("reload refused") != std::string::npos; }));
  CHECK_THAT(workspace.daemon_log(), Contains("sink[1].window"));
  // The file fixed again (no SIGHUP: the daemon runs the good one all along),
  // so that `gapless status` can read it.
  workspace.write_config(broker.stomp_uri(), "", sink_table(broker, "new") + http);
  workspace.journal_messages(messages_on({"test.reload.fourth"}, 50));
  CHECK(eventually(60s, [&] {
    const auto now = workspace.status();
    return counts_of(now, "test", "/topic/test.reload.fourth")[1] == 50 && counts_of(now, "new", "/topic/test.reload.fourth")[1] == 50;
  }));
  REQUIRE(daemon.running());

  // Status shows "old" orphaned.
  status = workspace.status();
  REQUIRE(sink_in(status, "old") != nullptr);
  CHECK((*sink_in(status, "old"))["configured"] == false);
  CHECK((*sink_in(status, "new"))["configured"] == true);
  const auto text = workspace.command({"status"});
  CHECK_THAT(text.out, Contains("sink old is orphaned"));

  const auto refused = workspace.command({"retire-sink", "--sink", "new", "--reason", "wrong sink"});
  CHECK(refused.status.code == 2);
  const auto retired = workspace.command({"retire-sink", "--sink", "old", "--reason", "the old broker is gone"});
  INFO(retired.err);
  CHECK(retired.ok());
  CHECK_THAT(retired.out, Contains("sink old retired"));
  status = workspace.status();
  CHECK(sink_in(status, "old") == nullptr);
  workspace.journal_messages(messages_on({"test.reload.fifth"}, 10));
  CHECK(eventually(30s, [&] { return counts_of(workspace.status(), "new", "/topic/test.reload.fifth")[1] == 10; }));

  const auto stopped = daemon.terminate(30s);
  CHECK(stopped.exited_normally());
  CHECK(stopped.code == 0);
}

TEST_CASE("SIGHUP without --config: nothing to read again, said in the log, the daemon goes on", "[reload]") {
  gapless::test::TempDir dir("reload-defaults");  // the embedded defaults' journal is in the working directory
  const std::filesystem::path log_path = dir.path() / "daemon.err";
  Process daemon = Process::spawn({.args = {gapless::test::gapless_binary().string(), "run"},
                                   .working_dir = dir.path(),
                                   .out = gapless::test::Output::discard(),
                                   .err = gapless::test::Output::to_file(log_path)});
  const auto log = [&] {
    std::ifstream in(log_path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  REQUIRE(eventually(30s, [&] { return log().find("daemon: start") != std::string::npos; }));
  daemon.signal(SIGHUP);
  CHECK(eventually(10s, [&] { return log().find("no configuration file to read again") != std::string::npos; }));
  CHECK(daemon.running());
  CHECK(daemon.terminate(30s).code == 0);
}

TEST_CASE("SIGHUP: a sink whose broker changed keeps its pending rows and delivers them to the new broker; an "
          "archive added by the reload is polled beside the one already there",
          "[reload]") {
  TestBroker broker;
  gapless::test::EsmondArchive first(gapless::test::archive_options(1, gapless::test::kHour));
  gapless::test::EsmondArchive second(gapless::test::archive_options(1, gapless::test::kHour));
  first.start();
  second.start();
  // "moved" first points at a port nobody listens on: its rows wait, pending.
  const std::string nowhere = "stomp://127.0.0.1:" + std::to_string(gapless::test::free_tcp_ports(1)[0]);
  const std::string first_archive = gapless::test::archive_table(first, "", "3d", "first-archive");
  const std::string second_archive = "[[archive]]\nname = \"second-archive\"\nurl = \"" + second.base_url() +
                                     "\"\npoll_interval = \"1s\"\nlookback = \"3d\"\nsummaries = false\n";
  Workspace workspace(broker, "", sink_table(nowhere, "moved") + first_archive);
  Process daemon = workspace.start_daemon();
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: start") != std::string::npos; }));
  const std::string destination = "/topic/test.reload.moved";
  workspace.journal_messages(messages_on({"test.reload.moved"}, 50));
  REQUIRE(eventually(60s, [&] {
    const auto status = workspace.status();
    return counts_of(status, "test", destination)[1] == 50 &&
           archive_in(status, "first-archive").value("points_journaled_total", 0) > 0;
  }));
  auto status = workspace.status();
  CHECK(counts_of(status, "moved", destination) == std::array<int64_t, 3>{50, 0, 0});
  CHECK(archive_in(status, "second-archive").empty());
  const int64_t first_polls = archive_in(status, "first-archive").value("polls_total", int64_t{0});

  // The reload: "moved" now points at the test broker, and a second archive comes.
  workspace.write_config(broker.stomp_uri(), "", sink_table(broker, "moved") + first_archive + second_archive);
  daemon.signal(SIGHUP);
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: reloaded") != std::string::npos; }));
  INFO(workspace.daemon_log());
  CHECK_THAT(workspace.daemon_log(), Contains("sinks_added=[] sinks_removed=[] sinks_changed=[moved] "
                                              "archives_added=[second-archive] archives_removed=[] "
                                              "archives_changed=[] restart_collector=true"));
  // The rows "moved" held before the reload, delivered by its new sender to the new broker.
  CHECK(eventually(60s, [&] {
    status = workspace.status();
    return counts_of(status, "moved", destination) == std::array<int64_t, 3>{0, 50, 0} &&
           archive_in(status, "second-archive").value("points_journaled_total", 0) > 0 &&
           archive_in(status, "first-archive").value("polls_total", int64_t{0}) > first_polls + 1;
  }));
  INFO(status.dump(2));
  CHECK(counts_of(status, "moved", destination) == std::array<int64_t, 3>{0, 50, 0});
  CHECK(archive_in(status, "second-archive").value("points_journaled_total", 0) > 0);
  CHECK(archive_in(status, "first-archive").value("polls_total", int64_t{0}) > first_polls + 1);
  CHECK_THAT(workspace.daemon_log(), Contains("daemon: collector started by the reload archives=2"));
  CHECK(daemon.terminate(30s).code == 0);
}

TEST_CASE("SIGHUP: a sink's changed accept list applies to the messages journaled after the reload; rows journaled "
          "before stay",
          "[reload][accept]") {
  TestBroker broker;
  Workspace workspace(broker);
  Process daemon = workspace.start_daemon();
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: start") != std::string::npos; }));
  workspace.journal_messages(messages_on({"test.hup.before"}, 20));
  REQUIRE(eventually(60s, [&] { return counts_of(workspace.status(), "test", "/topic/test.hup.before")[1] == 20; }));

  // "test" now takes only .a, an added "b" only .b.
  workspace.write_config(broker.stomp_uri(), "accept = [\"/topic/test.hup.a.>\"]",
                         sink_table(broker, "b", "accept = [\"/topic/test.hup.b.>\"]\n"));
  daemon.signal(SIGHUP);
  REQUIRE(eventually(30s, [&] { return workspace.daemon_log().find("daemon: reloaded") != std::string::npos; }));
  CHECK_THAT(workspace.daemon_log(), Contains("sinks_added=[b] sinks_removed=[] sinks_changed=[test]"));
  CHECK_THAT(workspace.daemon_log(), Contains("sink accept list changed"));
  workspace.journal_messages(messages_on({"test.hup.a.x", "test.hup.b.x"}, 15));

  REQUIRE(eventually(60s, [&] {
    const auto status = workspace.status();
    return counts_of(status, "test", "/topic/test.hup.a.x")[1] == 15 && counts_of(status, "b", "/topic/test.hup.b.x")[1] == 15;
  }));
  const auto status = workspace.status();
  CHECK(counts_of(status, "test", "/topic/test.hup.b.x") == std::array<int64_t, 3>{0, 0, 0});  // no row: not taken
  CHECK(counts_of(status, "b", "/topic/test.hup.a.x") == std::array<int64_t, 3>{0, 0, 0});
  CHECK(counts_of(status, "test", "/topic/test.hup.before") == std::array<int64_t, 3>{0, 20, 0});  // kept as they were
  CHECK((*sink_in(status, "test"))["accept"] == nlohmann::json::array({"/topic/test.hup.a.>"}));

  const auto stopped = daemon.terminate(30s);
  CHECK(stopped.exited_normally());
}
