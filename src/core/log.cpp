#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

#include "core/error.hpp"

namespace gapless {

namespace {

spdlog::level::level_enum parse_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  // from_str answers "off" for anything it does not know.
  if (parsed == spdlog::level::off && level != "off")
    throw Error("log level: unknown level \"" + std::string(level) +
                "\" (expected trace, debug, info, warn, error or off)");
  return parsed;
}

}  // namespace

bool known_log_level(std::string_view level) {
  return level == "off" || spdlog::level::from_str(std::string(level)) != spdlog::level::off;
}

void set_log_level(std::string_view level) { spdlog::default_logger()->set_level(parse_level(level)); }

void setup_logging(std::string_view level) {
  const auto parsed = parse_level(level);
  spdlog::drop("gapless");  // set-up may run twice (tests)
  auto logger = spdlog::stderr_logger_mt("gapless");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace gapless
