// Proves `gapless ingest` refuses a line the door refuses with exit code and reason, and journals nothing of its batch.
//
// `gapless ingest` as an operator runs it: the built binary (GAPLESS_BIN, else
// this build's) on a file holding a line the door refuses. The exit code,
// what stderr says, and that nothing of the refused line's batch is journaled.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::test::CommandResult;
using gapless::test::run_gapless;
using gapless::test::TempDir;

namespace {

struct IngestFixture {
  // `messages_table`: a [messages] table for the configuration, or "" for the defaults.
  explicit IngestFixture(const std::string& messages_table = "") {
    std::ofstream config(config_path);
    config << "[journal]\npath = " << nlohmann::json(journal_path).dump() << "\n"
           << "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << messages_table;
  }

  CommandResult ingest(const std::string& lines) const {
    std::ofstream(input_path) << lines;
    return run_gapless({"ingest", "--config", config_path, input_path}, dir.file("stderr"));
  }

  int64_t pending() const {
    auto journal = gapless::journal::Journal::open(journal_path, {"local"});
    int64_t total = 0;
    for (const auto& status : journal->status())
      for (const auto& destination : status.destinations) total += destination.pending;
    return total;
  }

  TempDir dir{"ingest-command-test"};
  std::string journal_path = dir.file("journal.db");
  std::string config_path = dir.file("gapless.toml");
  std::string input_path = dir.file("queue.jsonl");
};

const std::string kGoodLine = R"({"header":{"destination":"/topic/perfsonar.raw.x"},"body":"good"})" "\n";

}  // namespace

TEST_CASE("gapless ingest exits 1 on an empty header name, naming file, line and rule on stderr", "[ingest][command]") {
  IngestFixture f;
  const CommandResult result =
      f.ingest(kGoodLine + R"({"header":{"destination":"/topic/perfsonar.raw.x","":"v"},"body":"a"})" "\n");
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Contains(f.input_path + ":2: message refused: a header has an empty name"));
  CHECK_THAT(result.err, Contains("rule R3"));
  CHECK_THAT(result.err, Contains("nothing of lines 1-2 was journaled"));
  CHECK_THAT(result.err, Contains("mend or remove line 2"));
  CHECK(f.pending() == 0);  // line 1 shared the refused line's batch
}

TEST_CASE("gapless ingest refuses expires by default, and journals it when [messages] allows it", "[ingest][command]") {
  const std::string lines = R"({"header":{"destination":"/topic/t","expires":"0"},"body":"e"})" "\n";
  {
    IngestFixture f;
    const CommandResult result = f.ingest(lines);
    INFO("stderr: " << result.err);
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err, Contains(":1: message refused: header \"expires\" is refused") && Contains("rule R5"));
    CHECK(f.pending() == 0);
  }
  IngestFixture allowing("[messages]\nrefused_headers = []\n");
  const CommandResult result = allowing.ingest(lines);
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Contains("1 journaled"));
  CHECK(allowing.pending() == 1);
}
