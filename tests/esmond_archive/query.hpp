// Query-string handling shared by the listing and the data endpoints: time
// filters (docs/esmond.md 1.2), limit/offset (docs/esmond.md 1.3) and the absolute URLs that
// Django REST framework puts in Link headers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gapless::test::esmond {

// Query parameters in request order; a repeated name keeps every value.
using Params = std::multimap<std::string, std::string>;

// A 400 answer: esmond's ParseError, rendered as {"detail": "..."}.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Django's QueryDict.get: the last value given for `name`.
std::optional<std::string> last_value(const Params& params, const std::string& name);

// Python int(): optional surrounding blanks, optional sign, decimal digits.
std::optional<int64_t> parse_python_int(std::string_view text);

struct TimeFilter {
  int64_t begin = 0;
  std::optional<int64_t> end;  // nullopt: open end
  bool has_filters = false;
};

// api_v2.py handle_time_filters: `time` wins; start+end ignores range;
// start+range; end+range; start only (open); end only (from 0); range only
// (from now - range, open). Throws BadRequest with esmond's texts.
TimeFilter parse_time_filter(const Params& params, int64_t now);

// DRF LimitOffsetPagination with esmond's default_limit 1500 (docs/esmond.md 1.3).
struct Page {
  static constexpr int64_t default_limit = 1500;
  int64_t limit = default_limit;  // what the page holds
  int64_t offset = 0;
  bool limit_sent = false;  // a positive `limit` was in the query
};
Page parse_page(const Params& params);

// DRF replace_query_param / remove_query_param on the request's absolute URL:
// the query is re-encoded with its names sorted.
std::string url_with(const std::string& absolute_path, const Params& params,
                     const std::map<std::string, std::optional<std::string>>& changes);

// DRF's pagination links for a page of `count` items, as
// {next, previous} (either may be empty).
struct Links {
  std::string next;
  std::string previous;
};
Links page_links(const std::string& absolute_path, const Params& params, const Page& page, int64_t count);

// `<next>; rel="next", <prev>; rel="prev"` or empty (PSPaginator).
std::string link_header(const Links& links);

std::string form_encode(std::string_view text);

}  // namespace gapless::test::esmond
