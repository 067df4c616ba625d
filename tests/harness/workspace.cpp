#include "harness/workspace.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace gapless::test {

Workspace::Workspace(const TestBroker& broker, std::string sink_keys, std::string tables)
    : Workspace(broker.stomp_uri(), std::move(sink_keys), std::move(tables)) {}

Workspace::Workspace(const std::string& broker_uri, std::string sink_keys, std::string tables)
    : dir_(std::filesystem::temp_directory_path() /
           ("gapless-workspace-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  write_config(broker_uri, sink_keys, tables);
}

Workspace::~Workspace() {
  std::error_code ignored;
  if (!std::getenv("GAPLESS_KEEP_BROKER")) std::filesystem::remove_all(dir_, ignored);
}

void Workspace::write_config(const std::string& broker_uri, const std::string& sink_keys, const std::string& tables) {
  std::ofstream(config_path()) << "[journal]\npath = \"" << journal_path() << "\"\n"
                               << "[[sink]]\nname = \"test\"\nbrokers = [\"" << broker_uri << "\"]\n"
                               << "login = \"collector\"\npasscode = \"collector-secret\"\n"
                               << "reconnect_min = \"100ms\"\nreconnect_max = \"1s\"\nheartbeat = \"2s\"\n"
                               << sink_keys << "\n"
                               << tables << "\n";
}

RunResult Workspace::command(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  std::vector<std::string> full = {gapless_binary().string(), args.at(0), "--config", config_path()};
  full.insert(full.end(), args.begin() + 1, args.end());
  return run(full, timeout);
}

RunResult Workspace::replay(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  std::vector<std::string> full = {gapless_replay_binary().string(), args.at(0), "--config", config_path()};
  full.insert(full.end(), args.begin() + 1, args.end());
  return run(full, timeout);
}

Process Workspace::start_daemon(std::vector<std::string> extra) {
  std::vector<std::string> args = {gapless_binary().string(), "run", "--config", config_path()};
  args.insert(args.end(), extra.begin(), extra.end());
  return Process::spawn({.args = args,
                         .out = Output::to_file(dir_ / "daemon.out"),
                         .err = Output::to_file(dir_ / "daemon.err")});
}

std::string Workspace::daemon_log() const {
  std::ifstream in(dir_ / "daemon.err");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Workspace::run_until_drained(std::chrono::milliseconds timeout) {
  const RunResult result = command({"run", "--until-drained"}, timeout);
  if (!result.ok()) throw std::runtime_error("gapless run --until-drained failed:\n" + result.err);
}

nlohmann::json Workspace::status() {
  const RunResult result = command({"status", "--json"});
  if (!result.ok()) throw std::runtime_error("gapless status failed:\n" + result.err);
  return nlohmann::json::parse(result.out);
}

std::map<std::string, std::array<int64_t, 3>> Workspace::counts() {
  std::map<std::string, std::array<int64_t, 3>> out;
  last_status_ = status();
  for (const auto& sink : last_status_["sinks"]) {
    if (sink["sink"] != "test") continue;
    for (const auto& destination : sink["destinations"])
      out[destination["destination"].get<std::string>()] = {destination["pending"].get<int64_t>(),
                                                            destination["delivered"].get<int64_t>(),
                                                            destination["parked"].get<int64_t>()};
  }
  return out;
}

std::array<int64_t, 3> Workspace::counts(const std::string& destination) {
  auto all = counts();
  auto it = all.find(destination);
  if (it == all.end()) throw std::runtime_error("no status for " + destination + " in " + last_status_.dump(2));
  return it->second;
}

void Workspace::journal_messages(const std::vector<journal::NewMessage>& messages) {
  auto journal = journal::Journal::open(journal_path(), {"test"});
  for (size_t start = 0; start < messages.size(); start += 10'000) {
    std::vector<journal::NewMessage> batch(messages.begin() + static_cast<long>(start),
                                           messages.begin() + static_cast<long>(std::min(messages.size(), start + 10'000)));
    journal->append(batch);
  }
}

std::set<std::string> Workspace::delivered_ids() const {
  SQLite::Database db(journal_path(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(10'000);
  SQLite::Statement query(db,
                          "SELECT m.gapless_id FROM delivery d JOIN message m ON m.id = d.message_id "
                          "JOIN sink s ON s.id = d.sink_id WHERE s.name = 'test' AND d.state = 1");
  std::set<std::string> ids;
  while (query.executeStep()) ids.insert(query.getColumn(0).getString());
  return ids;
}

std::set<std::string> gapless_ids_of(const std::vector<journal::NewMessage>& messages) {
  std::set<std::string> ids;
  for (const auto& message : messages) ids.insert(message.gapless_id);
  return ids;
}

}  // namespace gapless::test
