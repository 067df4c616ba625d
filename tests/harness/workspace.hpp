// A journal, a configuration pointing at a test broker, and the commands a
// user would run against them (`gapless run`, `status`, `ingest`...), for the
// integration tests. Failures throw std::runtime_error with the command's
// stderr, which Catch2 reports as the test's failure.
#pragma once

#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "journal/journal.hpp"

namespace gapless::test {

class Workspace {
 public:
  // `sink_keys`: more keys of the one [[sink]] (named "test"), TOML lines.
  // `tables`: more top-level tables after it ([[archive]], [collector]).
  explicit Workspace(const TestBroker& broker, std::string sink_keys = "", std::string tables = "");
  // The same against any STOMP broker URI (e.g. a RabbitNode's).
  explicit Workspace(const std::string& broker_uri, std::string sink_keys = "", std::string tables = "");
  ~Workspace();  // removes the directory unless GAPLESS_KEEP_BROKER is set
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  void write_config(const std::string& broker_uri, const std::string& sink_keys, const std::string& tables = "");

  std::string config_path() const { return (dir_ / "gapless.toml").string(); }
  std::string journal_path() const { return (dir_ / "journal.db").string(); }
  const std::filesystem::path& dir() const { return dir_; }

  // `gapless <args[0]> --config F <args[1..]>`.
  RunResult command(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // `gapless-replay <args[0]> --config F <args[1..]>`.
  RunResult replay(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(300));
  // `gapless run --config F <extra>`, logs in dir()/daemon.{out,err}.
  Process start_daemon(std::vector<std::string> extra = {});
  std::string daemon_log() const;
  // `gapless run --until-drained`; throws unless it exits 0.
  void run_until_drained(std::chrono::milliseconds timeout = std::chrono::seconds(300));

  nlohmann::json status();  // `gapless status --json`
  // Sink "test": destination -> {pending, delivered, parked}.
  std::map<std::string, std::array<int64_t, 3>> counts();
  std::array<int64_t, 3> counts(const std::string& destination);  // throws if the destination is unknown

  // Journals messages through the library (fast for large backlogs).
  void journal_messages(const std::vector<journal::NewMessage>& messages);
  // gapless-ids delivered to sink "test", read from the journal file beside a running daemon.
  std::set<std::string> delivered_ids() const;

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  nlohmann::json last_status_;
};

// The gapless-ids of messages, as a set to compare with what a subscriber got.
std::set<std::string> gapless_ids_of(const std::vector<journal::NewMessage>& messages);

}  // namespace gapless::test
