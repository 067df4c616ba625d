// Fuzzes the reading of an esmond metadata listing page (esmond/pages.hpp
// read_listing_page). Catches: a crash, or an exception other than PageError
// (the collector would stop polling the archive instead of reporting it); an
// object both used and rejected, or neither (one bad object must be reported
// and must not hide the others); a usable object without the fields the
// collector then reads unchecked, or still carrying esmond's pagination keys.
#include <cstddef>
#include <cstdint>
#include <string>

#include "esmond/pages.hpp"
#include "fuzz_check.hpp"
#include "osg/listing_keys.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  gapless::esmond::ListingPage page;
  try {
    page = gapless::esmond::read_listing_page(body, 1000);
  } catch (const gapless::esmond::PageError&) {
    return 0;
  }
  FUZZ_CHECK(page.objects.size() + page.rejected.size() == page.size, "an object is both used and rejected, or neither");
  FUZZ_CHECK(page.size == 0 || page.count_total >= 0, "a negative metadata-count-total was accepted");
  for (const nlohmann::json& object : page.objects) {
    FUZZ_CHECK(object.is_object(), "a usable object is not an object");
    FUZZ_CHECK(object.contains("metadata-key") && object["metadata-key"].is_string() &&
                   !object["metadata-key"].get_ref<const std::string&>().empty(),
               "a usable object has no metadata-key");
    for (const auto& key : gapless::osg::kPaginationKeys)
      FUZZ_CHECK(!object.contains(std::string(key)), "a usable object still carries a pagination key");
    for (const nlohmann::json& event_type : object.at("event-types")) {
      FUZZ_CHECK(event_type.at("event-type").is_string(), "a usable object's event-type is not a string");
      for (const nlohmann::json& summary : event_type.at("summaries")) {
        FUZZ_CHECK(summary.at("summary-type").is_string(), "a usable object's summary-type is not a string");
        FUZZ_CHECK(summary.contains("summary-window"), "a usable object's summary has no window");
      }
    }
  }
  return 0;
}
