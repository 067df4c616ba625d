// Where a series' data is read: the URL its archive's own listing gives
// (`base-uri`, a summary's `uri`), and how that archive pages
// (docs/esmond.md 2). esmond lists ".../<key>/<event-type>/base" and
// ".../<plural>/<window>"; elmond, perfSONAR 5's esmond-compatible reader,
// lists ".../<key>/<event-type>/base/0" and has no ".../base" route, caps
// `limit` at 10000 (400 above it) and may answer a page shorter than `limit`
// before its data ends. Following the listing reads both; where the listing
// gives nothing usable, the esmond URL is built (data_path), as before.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "esmond/client.hpp"

namespace gapless::esmond {

enum class ArchiveFlavour { esmond, elmond };

struct DataLocation {
  std::string path;  // relative to the archive's base URL, e.g. "<key>/<event-type>/base/0"
  ArchiveFlavour flavour = ArchiveFlavour::esmond;
};

// The location of `series` from its metadata object as the archive lists it.
// The listed URI counts only as "<key>/<event-type>/" followed by one or two
// plain segments (letters, digits, '-', '_'), whatever prefix the archive
// puts before it (a proxy, elmond's PROXY_PATH): a listing cannot steer a
// request to another series, host or query. An archive whose base-uri ends
// in "/base/0" is elmond.
DataLocation locate_data(const nlohmann::json& metadata, const SeriesPath& series);

// The largest `limit` the archive answers (elmond: 10000); esmond has none.
int max_page_size(ArchiveFlavour flavour);

// Whether a page with fewer points than its `limit` means the archive has no
// more in the range. esmond: yes. elmond: no, it applies `limit` to the runs'
// documents and then drops those that lack the event type's field; only an
// empty page ends its data.
bool short_page_ends_data(ArchiveFlavour flavour);

}  // namespace gapless::esmond
