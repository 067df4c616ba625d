// Fuzzes the reading of an esmond data page (esmond/pages.hpp): the fast
// simdjson reading and the exact nlohmann one, on what an archive could
// answer. Catches: a crash, or an exception other than PageError from the
// exact reading (the collector would stop polling the archive instead of
// reporting the page); the fast reading returning points where the exact one
// refuses the page, or other points, canonical texts or digests than it
// (the two must agree byte for byte: digests and gapless-ids are built from
// them); points out of the time range or not strictly ascending.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "esmond/pages.hpp"
#include "fuzz_check.hpp"

namespace {

// A range the test archive's timestamps (and small fuzzed ones) fall across.
constexpr int64_t kTimeStart = 10;
constexpr int64_t kTimeEnd = 2'000'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static simdjson::dom::parser parser;  // reused between pages, as the client does
  const std::string body(reinterpret_cast<const char*>(data), size);
  // Half the inputs without an end: the collector's reads of a running series.
  const std::optional<int64_t> time_end = size % 2 == 0 ? std::optional<int64_t>(kTimeEnd) : std::nullopt;

  const auto fast = gapless::esmond::read_plain_data_page(parser, body, kTimeStart, time_end);
  std::vector<gapless::osg::Datapoint> exact;
  try {
    exact = gapless::esmond::read_data_page(body, kTimeStart, time_end);
  } catch (const gapless::esmond::PageError&) {
    FUZZ_CHECK(!fast, "the fast reading returned points from a page the exact reading refuses");
    return 0;
  }
  for (size_t i = 0; i < exact.size(); ++i) {
    FUZZ_CHECK(exact[i].ts >= kTimeStart && (!time_end || exact[i].ts < *time_end), "a point outside the range");
    FUZZ_CHECK(i == 0 || exact[i - 1].ts < exact[i].ts, "points not strictly ascending");
  }
  if (!fast) return 0;  // not a plain page: the exact reading decides alone
  FUZZ_CHECK(fast->size() == exact.size(), "the two readings give different numbers of points");
  for (size_t i = 0; i < exact.size(); ++i) {
    FUZZ_CHECK((*fast)[i].ts == exact[i].ts, "the two readings give different timestamps");
    if ((*fast)[i].value != exact[i].value)
      std::fprintf(stderr, "fast %s\nexact %s\n", (*fast)[i].value.c_str(), exact[i].value.c_str());
    FUZZ_CHECK((*fast)[i].value == exact[i].value, "the two readings give different canonical texts");
    FUZZ_CHECK((*fast)[i].digest == exact[i].digest, "the two readings give different digests");
  }
  return 0;
}
