// The two kinds of page an esmond archive answers with, read from the body
// alone (no I/O, so that they can be tested and fuzzed without a server):
// a listing page of metadata objects (docs/esmond.md 1.5) and a page of a
// series' data. The client (client.hpp) fetches the bodies, pages through
// them and names the archive and URL in every error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "esmond/client.hpp"
#include "osg/datapoint.hpp"

namespace simdjson::dom {
class parser;
}

namespace gapless::esmond {

// What is wrong with a page; the client adds the archive and URL (FetchError).
class PageError : public gapless::Error {
 public:
  PageError(FailureKind kind, const std::string& problem) : gapless::Error(problem), kind_(kind) {}
  FailureKind kind() const { return kind_; }

 private:
  FailureKind kind_;  // malformed (not JSON) or invalid (JSON, but not a page)
};

struct ListingPage {
  size_t size = 0;          // objects on the page, usable or not; 0 ends the listing
  int64_t count_total = 0;  // the first object's "metadata-count-total"
  // The usable objects, in page order, without esmond's pagination keys.
  std::vector<nlohmann::json> objects;
  // Each object left out: "metadata object [metadata-key K ]at listing index N: problem".
  std::vector<std::string> rejected;
};

// One page of the metadata listing whose first object is at listing index
// `offset`. Each object is validated ("metadata-key", "event-types" with
// "event-type" and "summaries" of "summary-type" and "summary-window", a
// string or an integer); a bad one is described in `rejected`, so that it
// cannot hide the others. Throws PageError when the body is not JSON, not an
// array, or a non-empty page's first object lacks an integer
// "metadata-count-total" (paging relies on it).
ListingPage read_listing_page(const std::string& body, int64_t offset);

// The fast reading of a data page: simdjson's DOM, each value straight to its
// canonical text (osg/datapoint.hpp). It reads only pages that are entirely
// plain: valid JSON, every element an object with an integer "ts" and a
// "val", ts strictly ascending inside [time_start, time_end). For anything
// else (invalid JSON, a bad element, a number simdjson reads differently from
// nlohmann) it returns nothing, and read_data_page decides: it yields the
// same points or the error that names the problem, so the rules and the
// messages live in one place. `parser` keeps its buffers between pages.
std::optional<std::vector<osg::Datapoint>> read_plain_data_page(simdjson::dom::parser& parser, const std::string& body,
                                                                int64_t time_start, std::optional<int64_t> time_end);

// The exact reading of a data page: nlohmann's DOM, every rule checked with
// its message. Elements must be objects with an integer "ts" and a "val"; ts
// strictly ascending and inside [time_start, time_end): otherwise PageError
// naming the element index and the field.
std::vector<osg::Datapoint> read_data_page(const std::string& body, int64_t time_start,
                                           std::optional<int64_t> time_end);

// "an integer", "a string": what a JSON value was, for messages.
std::string type_of(const nlohmann::json& value);

// ASCII case-insensitive prefix test (URL schemes, media types, HTML tags).
bool starts_with_nocase(std::string_view text, std::string_view prefix);

// A body quoted in an error message: one line, markup dropped when `html`
// (error pages are HTML), at most about 200 bytes, never cut inside a UTF-8
// sequence.
std::string excerpt(std::string_view body, bool html);

}  // namespace gapless::esmond
