// An esmond test archive for the daemon under test to poll: its options (a
// history that ends now) and the [[archive]] and [collector] tables that
// point a harness Workspace at it.
#pragma once

#include <cstdint>
#include <string>

#include "core/clock.hpp"
#include "esmond_archive/esmond_archive.hpp"

namespace gapless::test {

constexpr int64_t kHour = 3600;

// `extra`: more keys of the [[archive]] table, TOML lines.
inline std::string archive_table(const EsmondArchive& archive, const std::string& extra = "",
                                 const std::string& lookback = "3d", const std::string& name = "test-archive") {
  return "[[archive]]\nname = \"" + name + "\"\nurl = \"" + archive.base_url() +
         "\"\npoll_interval = \"1s\"\nlookback = \"" + lookback + "\"\nsummaries = false\n" + extra +
         "[collector]\nretry_min = \"1s\"\nretry_max = \"2s\"\n";
}

inline EsmondArchive::Options archive_options(int series, int64_t history) {
  EsmondArchive::Options options;
  options.series = series;
  options.now = gapless::unix_now_ms() / 1000;
  options.start = *options.now - history;
  return options;
}

}  // namespace gapless::test
