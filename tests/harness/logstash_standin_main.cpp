// logstash-standin: a LogstashStandin (logstash_standin.hpp) as a program,
// for shell demos (scripts/quickstart): serves until SIGTERM or SIGINT,
// printing one line per request received.
//   logstash-standin [--port N] [--answer ok|busy|down|unauthorized|hang]
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "harness/logstash_standin.hpp"

namespace {

volatile sig_atomic_t stop_asked = 0;
void on_stop(int) { stop_asked = 1; }

int usage() {
  std::fprintf(stderr, "usage: logstash-standin [--port N] [--answer ok|busy|down|unauthorized|hang]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gapless::test::LogstashStandin::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    if (arg == "--port") {
      options.port = static_cast<uint16_t>(std::stoi(argv[++i]));
    } else if (arg == "--answer") {
      const auto answer = gapless::test::LogstashStandin::parse_answer(argv[++i]);
      if (!answer) return usage();
      options.answer = *answer;
    } else {
      return usage();
    }
  }
  ::signal(SIGTERM, on_stop);
  ::signal(SIGINT, on_stop);
  gapless::test::LogstashStandin standin(options);
  std::printf("logstash-standin: listening on %s\n", standin.url("/").c_str());
  std::fflush(stdout);
  size_t shown = 0;
  while (stop_asked == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto requests = standin.requests();
    for (; shown < requests.size(); ++shown)
      std::printf("logstash-standin: %s %s %zu bytes gapless-id=%s answered %d\n", requests[shown].method.c_str(),
                  requests[shown].path.c_str(), requests[shown].body.size(),
                  requests[shown].header("gapless-id").value_or("-").c_str(), requests[shown].status);
    std::fflush(stdout);
  }
  return 0;
}
