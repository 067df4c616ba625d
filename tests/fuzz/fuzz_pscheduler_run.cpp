// Fuzzes the reading of a run pScheduler's http archiver pushes (osg/
// pscheduler_run.hpp: parse_run, then what the push endpoint does with an
// accepted run: esmond_points, test_checksum, run_destination). Catches: a
// crash, or an exception other than RunError (the endpoint answers RunError
// with a 400 naming the field; anything else is a 500 the archiver retries
// for ever); a point outside the archive it was asked for, or without a digest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "osg/pscheduler_run.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kArchive = "https://ps.example/esmond/perfsonar/archive/";
  try {
    const gapless::osg::Run run = gapless::osg::parse_run(body);
    FUZZ_CHECK(!gapless::osg::run_destination(run).empty(), "an accepted run has no destination");
    const std::string checksum = gapless::osg::test_checksum(run, "observer.example");
    for (const gapless::osg::RunPoint& point : gapless::osg::esmond_points(run, kArchive, "observer.example")) {
      FUZZ_CHECK(point.series.archive_url == kArchive, "a point outside the archive it was asked for");
      FUZZ_CHECK(point.series.metadata_key == checksum, "a point under another metadata key than the test's");
      FUZZ_CHECK(point.point.digest.size() == 32, "a point without its digest");
    }
  } catch (const gapless::osg::RunError&) {
  }
  return 0;
}
