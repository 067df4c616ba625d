// gapless-replay: backfill outage windows, resend on request, show gaps.
// Not implemented yet (issue 4): it refuses every command with a clear message
// rather than pretending to work.
#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"gapless-replay: backfill, resend and gap report (not implemented yet)"};
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  std::cerr << "gapless-replay: not implemented yet (see issue 4)\n";
  return 2;
}
