// Proves `gapless ingest` refuses a line the door refuses with exit code and reason, and journals nothing of its batch; and stops a long run where it reaches [journal] max_size.
//
// `gapless ingest` as an operator runs it: the built binary (GAPLESS_BIN, else
// this build's) on a file holding a line the door refuses. The exit code,
// what stderr says, and that nothing of the refused line's batch is journaled.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "support/gapless_command.hpp"
#include "support/temp_dir.hpp"

using Catch::Matchers::Contains;
using gapless::test::CommandResult;
using gapless::test::run_gapless;
using gapless::test::TempDir;

namespace {

struct IngestFixture {
  // `messages_table`: a [messages] table for the configuration, or "" for the
  // defaults; `journal_keys`: more [journal] keys.
  explicit IngestFixture(const std::string& messages_table = "", const std::string& journal_keys = "") {
    std::ofstream config(config_path);
    config << "[journal]\npath = " << nlohmann::json(journal_path).dump() << "\n" << journal_keys
           << "[[sink]]\nname = \"local\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n"
           << messages_table;
  }

  CommandResult ingest(const std::string& lines, const std::vector<std::string>& options = {}) const {
    std::ofstream(input_path) << lines;
    std::vector<std::string> args = {"ingest", "--config", config_path};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(input_path);
    return run_gapless(args, dir.file("stderr"));
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

TEST_CASE("gapless ingest that reaches max_size during a long run stops before its next batch, exits 1 and keeps "
          "the batches before", "[ingest][command][size-limit]") {
  // 2000 lines of about 2 KB, 4 MB in all, in batches of 100 (200 KB) against a limit of 1 MiB.
  IngestFixture f("", "max_size = 1048576\n");
  std::string lines;
  for (int i = 0; i < 2000; ++i)
    lines += R"({"header":{"destination":"/topic/perfsonar.raw.x"},"body":")" + std::to_string(i) +
             std::string(2000, 'x') + "\"}\n";

  const CommandResult result = f.ingest(lines, {"--batch", "100"});

  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  CHECK(result.exit_code == 1);
  const int64_t journaled = f.pending();
  CHECK(journaled > 0);  // it started below the limit
  CHECK(journaled < 1000);  // a limit checked only before the first batch journals all 2000
  CHECK(journaled % 100 == 0);  // whole batches
  CHECK_THAT(result.err, Contains("[journal] max_size (1048576)"));
  CHECK_THAT(result.err, Contains(": stopped before line " + std::to_string(journaled + 1) + ": lines 1-" +
                                  std::to_string(journaled) + " were journaled (" + std::to_string(journaled) +
                                  " new messages; they stay)"));

  const CommandResult again = f.ingest(lines, {"--batch", "100"});
  INFO("again: " << again.err);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Contains("ingest: nothing was journaled") && Contains("[journal] max_size (1048576)"));
  CHECK(f.pending() == journaled);
}
