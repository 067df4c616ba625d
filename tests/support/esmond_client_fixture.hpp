// What the esmond client's tests share (tests/collector): a test archive on
// a fixed clock, a client with short timeouts, and the first series of a kind.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "esmond/client.hpp"
#include "esmond_archive/esmond_archive.hpp"

namespace gapless::test::esmond_client {

constexpr int64_t t0 = 1'700'000'000;  // the archive's simulated "now"
constexpr int64_t hour = 3600;
constexpr int64_t day = 86400;
inline const std::string archive_name = "psds-test";

inline gapless::test::EsmondArchive::Options options(int series = 8) {
  gapless::test::EsmondArchive::Options o;
  o.series = series;
  o.now = t0;
  o.start = t0 - 7 * day;
  return o;
}

inline gapless::esmond::ClientOptions quick(std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  gapless::esmond::ClientOptions o;
  o.timeout = timeout;
  o.connect_timeout = std::chrono::milliseconds(2'000);
  return o;
}

inline const gapless::test::esmond::Series& first_of(const gapless::test::EsmondArchive& archive,
                                                    gapless::test::esmond::SeriesKind kind) {
  for (const auto& s : archive.series())
    if (s.kind == kind) return s;
  FAIL("no series of that kind");
  throw;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace gapless::test::esmond_client
