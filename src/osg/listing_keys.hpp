// The keys esmond's PSMetadataPaginator adds to the first metadata object of
// a listing page (docs/esmond.md 1.3): they describe the page, not the test.
// The esmond client pages by the first and drops all three, and what keeps
// metadata (the collector's series table, the OSG message's meta) leaves them
// out as well. Kept here, below esmond, so that the message builder can use
// the same list.
#pragma once

#include <algorithm>
#include <array>
#include <string_view>

namespace gapless::osg {

inline constexpr std::string_view kCountTotalKey = "metadata-count-total";
inline constexpr std::array<std::string_view, 3> kPaginationKeys = {kCountTotalKey, "metadata-previous-page",
                                                                    "metadata-next-page"};

inline bool is_pagination_key(std::string_view key) {
  return std::find(kPaginationKeys.begin(), kPaginationKeys.end(), key) != kPaginationKeys.end();
}

}  // namespace gapless::osg
