#include "esmond/data_location.hpp"

#include <limits>
#include <optional>
#include <string_view>

namespace gapless::esmond {

namespace {

bool plain_segment(std::string_view segment, bool dots) {
  if (segment.empty() || segment == "." || segment == "..") return false;
  for (const char c : segment) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || (dots && c == '.');
    if (!ok) return false;
  }
  return true;
}

// What follows "/<key>/<event-type>/" in a listed URI, when it is one or two
// plain segments: "base", "base/0", "averages/86400".
std::optional<std::string> listed_tail(const nlohmann::json& uri, const std::string& key,
                                       const std::string& event_type) {
  if (!uri.is_string()) return std::nullopt;
  const std::string& text = uri.get_ref<const std::string&>();
  if (text.empty() || text.front() != '/') return std::nullopt;  // a path on the archive's host, nothing else
  const std::string needle = "/" + key + "/" + event_type + "/";
  const size_t at = text.rfind(needle);
  if (at == std::string::npos) return std::nullopt;
  const std::string tail = text.substr(at + needle.size());
  const size_t slash = tail.find('/');
  if (!plain_segment(std::string_view(tail).substr(0, slash), false)) return std::nullopt;
  if (slash != std::string::npos && !plain_segment(std::string_view(tail).substr(slash + 1), false))
    return std::nullopt;
  return tail;
}

std::optional<int64_t> window_of(const nlohmann::json& window) {
  if (window.is_number_unsigned()) return static_cast<int64_t>(window.get<uint64_t>());
  if (window.is_number_integer()) return window.get<int64_t>();
  if (window.is_string()) {
    const std::string& text = window.get_ref<const std::string&>();
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    return std::stoll(text);
  }
  return std::nullopt;
}

}  // namespace

DataLocation locate_data(const nlohmann::json& metadata, const SeriesPath& series) {
  DataLocation location{data_path(series), ArchiveFlavour::esmond};
  // The key and event type must be plain for the listed URI to be matched
  // literally; anything else keeps the built (percent-encoded) path.
  if (!metadata.is_object() || !plain_segment(series.metadata_key, true) || !plain_segment(series.event_type, true))
    return location;
  const auto event_types = metadata.find("event-types");
  if (event_types == metadata.end() || !event_types->is_array()) return location;
  for (const nlohmann::json& event : *event_types) {
    if (!event.is_object() || event.value("event-type", nlohmann::json()) != series.event_type) continue;
    const std::string prefix = series.metadata_key + "/" + series.event_type + "/";
    const std::optional<std::string> base = listed_tail(event.value("base-uri", nlohmann::json()),
                                                        series.metadata_key, series.event_type);
    if (base == "base/0") location.flavour = ArchiveFlavour::elmond;
    const bool summary = !series.summary_type.empty() && series.summary_type != "base";
    if (!summary) {
      if (base) location.path = prefix + *base;
      return location;
    }
    const auto summaries = event.find("summaries");
    if (summaries == event.end() || !summaries->is_array()) return location;
    for (const nlohmann::json& listed : *summaries) {
      if (!listed.is_object() || listed.value("summary-type", nlohmann::json()) != series.summary_type) continue;
      if (window_of(listed.value("summary-window", nlohmann::json())) != series.summary_window) continue;
      if (const std::optional<std::string> tail =
              listed_tail(listed.value("uri", nlohmann::json()), series.metadata_key, series.event_type))
        location.path = prefix + *tail;
      return location;
    }
    return location;
  }
  return location;
}

int max_page_size(ArchiveFlavour flavour) {
  return flavour == ArchiveFlavour::elmond ? 10000 : std::numeric_limits<int>::max();
}

bool short_page_ends_data(ArchiveFlavour flavour) { return flavour == ArchiveFlavour::esmond; }

}  // namespace gapless::esmond
