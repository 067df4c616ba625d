// The gap rule is documented once, at the top of gaps.hpp.

#include "replay/gaps.hpp"

#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/timestamp.hpp"
#include "core/error.hpp"
#include "esmond/time_interval.hpp"

namespace gapless::replay {
namespace {

using Json = nlohmann::json;

constexpr int64_t kDay = 86400;

// docs/esmond.md 1.4: the event types whose base data esmond expires after 180
// days; every other base series keeps the catch-all 365.
const std::set<std::string, std::less<>> kShortRetention = {
    "histogram-owdelay", "histogram-rtt",      "histogram-ttl",   "packet-loss-rate",    "packet-count-sent",
    "packet-count-lost", "packet-duplicates", "packet-reorders", "time-error-estimates"};

// Metadata comes from the archive; a report must still list a series whose
// metadata is unreadable, so it is read leniently (as an empty object).
// find_gaps warns, once per series; the picture's labels read it again quietly.
Json parse_metadata(const journal::Series& series, bool warn = true) {
  Json metadata = Json::parse(series.metadata, nullptr, false);
  if (metadata.is_discarded() || !metadata.is_object()) {
    if (warn && !series.metadata.empty())
      spdlog::warn("gaps: series {} ({} {}) has metadata that is not a JSON object; its time-interval and "
                   "hosts are ignored",
                   series.id, series.key.metadata_key, series.key.event_type);
    return Json::object();
  }
  return metadata;
}

std::string metadata_text(const Json& metadata, const char* name) {
  const auto it = metadata.find(name);
  if (it == metadata.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::optional<int64_t> median_interval(const std::vector<int64_t>& ts) {
  if (ts.size() < 3) return std::nullopt;
  std::vector<int64_t> intervals;
  intervals.reserve(ts.size() - 1);
  for (size_t i = 1; i < ts.size(); ++i) intervals.push_back(ts[i] - ts[i - 1]);
  // The lower median: a real interval, never a half second.
  const auto middle = intervals.begin() + static_cast<std::ptrdiff_t>((intervals.size() - 1) / 2);
  std::nth_element(intervals.begin(), middle, intervals.end());
  return *middle;
}

std::string format_length(int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string text;
  const std::array<std::pair<int64_t, const char*>, 4> units{{{kDay, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}}};
  for (const auto& [size, name] : units) {
    if (seconds >= size) {
      text += std::to_string(seconds / size) + name;
      seconds %= size;
    }
  }
  return text;
}

std::string cadence_text(const SeriesGaps& series) {
  if (!series.cadence) return "unknown";
  return format_length(*series.cadence) + " (" + series.cadence_source + ")";
}

std::string pad(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string series_label(const journal::Series& series) {
  const Json metadata = parse_metadata(series, false);
  std::string label = series.key.metadata_key.substr(0, 8) + " " + series.key.event_type;
  const std::string source = metadata_text(metadata, "input-source");
  const std::string destination = metadata_text(metadata, "input-destination");
  if (!source.empty() || !destination.empty())
    label += " " + (source.empty() ? "?" : source) + " -> " + (destination.empty() ? "?" : destination);
  return label;
}

std::string retention_note(const journal::Series& series) {
  return "older than the archive's " + std::to_string(retention_seconds(series.key) / kDay) + "-day retention";
}

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::vector<std::pair<int64_t, int64_t>> uncovered(int64_t from, int64_t to,
                                                   const std::vector<journal::CoveredRange>& covered) {
  std::vector<std::pair<int64_t, int64_t>> pieces;
  int64_t start = from;
  for (const journal::CoveredRange& range : covered) {
    if (range.ts_to <= start) continue;
    if (range.ts_from >= to) break;
    if (range.ts_from > start) pieces.emplace_back(start, range.ts_from);
    start = std::max(start, range.ts_to);
    if (start >= to) return pieces;
  }
  if (start < to) pieces.emplace_back(start, to);
  return pieces;
}

int64_t retention_seconds(const journal::SeriesKey& series) {
  if (series.summary_type.empty()) return (kShortRetention.count(series.event_type) ? 180 : 365) * kDay;
  return (series.summary_window == kDay ? 1825 : 365) * kDay;
}

std::vector<SeriesGaps> find_gaps(journal::Journal& journal, const std::string& archive_url, int64_t from,
                                  int64_t to, int64_t now, const GapOptions& options) {
  const std::string where = "gaps of archive " + archive_url + " over [" + format_timestamp(from) + ", " +
                            format_timestamp(to) + ")";
  if (to <= from) throw Error(where + ": the window is empty; --from must be before --to");
  if (!std::isfinite(options.cadence_multiple) || options.cadence_multiple <= 0)
    throw Error(where + ": the cadence multiple must be a positive number, not " +
                std::to_string(options.cadence_multiple));

  std::vector<SeriesGaps> all;
  for (journal::Series& series : journal.series_of_archive(archive_url)) {
    if (!series.key.summary_type.empty()) continue;
    SeriesGaps result;
    result.series = std::move(series);
    const journal::Series& s = result.series;

    std::vector<int64_t> ts;
    for (const auto& [point_ts, digest] : journal.datapoint_digests(s.id, from, to - 1)) ts.push_back(point_ts);
    result.datapoints = static_cast<int64_t>(ts.size());

    result.coverage = journal.coverage(s.id, from, to);
    for (journal::CoveredRange& range : result.coverage) {
      range.ts_from = std::max(range.ts_from, from);
      range.ts_to = std::min(range.ts_to, to);
    }

    if (const auto interval = esmond::time_interval(parse_metadata(s))) {
      result.cadence = interval;
      result.cadence_source = "time-interval";
    } else if (const auto median = median_interval(ts)) {
      result.cadence = median;
      result.cadence_source = "median";
    } else {
      result.cadence_source = "unknown";
      all.push_back(std::move(result));
      continue;
    }

    const int64_t tolerance =
        std::max<int64_t>(1, std::llround(options.cadence_multiple * static_cast<double>(*result.cadence)));
    const int64_t due_until = std::min(to, now - tolerance);  // not yet due after it
    const int64_t retained_from = now - retention_seconds(s.key);

    // The empty stretches of [from, due_until): between `from`, the
    // datapoints and the end, the datapoints themselves excluded.
    std::vector<std::pair<int64_t, int64_t>> pieces;
    int64_t start = from;
    const auto empty_until = [&](int64_t end) {
      end = std::min(end, due_until);
      if (end - start < tolerance) return;
      for (const auto& piece : uncovered(start, end, result.coverage)) pieces.push_back(piece);
    };
    for (const int64_t point : ts) {
      empty_until(point);
      start = point + 1;
    }
    empty_until(due_until);

    for (const auto& [x, y] : pieces) {
      if (y - x < tolerance) continue;
      if (x < retained_from) result.gaps.push_back({x, std::min(y, retained_from), true});
      if (y > retained_from) result.gaps.push_back({std::max(x, retained_from), y, false});
    }
    all.push_back(std::move(result));
  }
  return all;
}

std::string gaps_table(const std::vector<SeriesGaps>& all) {
  const std::array<std::string, 6> header{"series", "cadence", "from", "to", "length", ""};
  std::vector<std::array<std::string, 6>> rows;
  std::vector<const SeriesGaps*> unknown;
  size_t gap_count = 0;
  size_t unrecoverable = 0;
  for (const SeriesGaps& series : all) {
    if (!series.cadence) unknown.push_back(&series);
    for (const Gap& gap : series.gaps) {
      ++gap_count;
      if (gap.unrecoverable) ++unrecoverable;
      rows.push_back({series.series.key.metadata_key + "/" + series.series.key.event_type, cadence_text(series),
                      format_timestamp(gap.from), format_timestamp(gap.to), format_length(gap.to - gap.from),
                      gap.unrecoverable ? "UNRECOVERABLE (" + retention_note(series.series) + ")" : ""});
    }
  }

  std::ostringstream out;
  if (rows.empty()) {
    out << "no gaps in " << all.size() << " series\n";
  } else {
    std::array<size_t, 6> width{};
    for (size_t c = 0; c < width.size(); ++c) {
      width[c] = header[c].size();
      for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
    }
    const auto line = [&](const std::array<std::string, 6>& cells) {
      std::string text;
      for (size_t c = 0; c < cells.size(); ++c) text += (c ? "  " : "") + pad(cells[c], width[c]);
      while (!text.empty() && text.back() == ' ') text.pop_back();
      out << text << "\n";
    };
    line(header);
    for (const auto& row : rows) line(row);
    out << gap_count << " gap(s) in " << all.size() << " series";
    if (unrecoverable) out << ", " << unrecoverable << " unrecoverable (the archive no longer holds them)";
    out << "\n";
  }
  if (!unknown.empty()) {
    out << "cadence unknown (no time-interval in the metadata and fewer than 3 datapoints), not checked:\n";
    for (const SeriesGaps* series : unknown)
      out << "  " << series->series.key.metadata_key << "/" << series->series.key.event_type << " ("
          << series->datapoints << " datapoint(s))\n";
  }
  return out.str();
}

std::string gaps_svg(const std::vector<SeriesGaps>& all, int64_t from, int64_t to) {
  if (to <= from) throw Error("gaps picture over [" + format_timestamp(from) + ", " + format_timestamp(to) + "): empty window");
  constexpr double kWidth = 1400;
  constexpr double kPlotX = 480;
  constexpr size_t kLabelChars = 72;  // about what fits left of the plot at 12px
  constexpr double kPlotWidth = kWidth - kPlotX - 50;
  constexpr double kTop = 60;
  constexpr double kRow = 24;
  constexpr double kBar = 16;
  const double rows_height = kRow * static_cast<double>(std::max<size_t>(all.size(), 1));
  const double height = kTop + rows_height + 70;
  const double span = static_cast<double>(to - from);
  const auto x_of = [&](int64_t t) {
    return kPlotX + static_cast<double>(std::clamp(t, from, to) - from) * kPlotWidth / span;
  };
  // Tiny gaps stay visible: a window of seconds in a year-long picture.
  const auto rect = [&](std::ostringstream& out, int64_t a, int64_t b, double y, const std::string& fill,
                        const std::string& title, double min_width) {
    const double x = x_of(a);
    const double w = std::max(x_of(b) - x, min_width);
    out << "<rect x=\"" << number(x) << "\" y=\"" << number(y) << "\" width=\"" << number(w) << "\" height=\""
        << number(kBar) << "\" fill=\"" << fill << "\"><title>" << xml_escape(title) << "</title></rect>\n";
  };

  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << number(kWidth) << "\" height=\"" << number(height)
      << "\" viewBox=\"0 0 " << number(kWidth) << " " << number(height)
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<defs><pattern id=\"unrecoverable\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" "
         "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#7f0000\"/>"
         "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#aaaaaa\" stroke-width=\"3\"/></pattern></defs>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">gapless: journal gaps " << format_timestamp(from)
      << " to " << format_timestamp(to) << "</text>\n";

  // Axis: the coarsest round step that still gives a handful of ticks.
  const std::array<int64_t, 16> steps{60,        300,       900,        1800,      3600,      3 * 3600,
                                      6 * 3600,  12 * 3600, kDay,       2 * kDay,  7 * kDay,  14 * kDay,
                                      30 * kDay, 90 * kDay, 180 * kDay, 365 * kDay};
  int64_t step = steps.back();
  for (const int64_t candidate : steps)
    if ((to - from) / candidate <= 8) {
      step = candidate;
      break;
    }
  const double axis_y = kTop - 8;
  out << "<line x1=\"" << number(kPlotX) << "\" y1=\"" << number(axis_y) << "\" x2=\"" << number(kPlotX + kPlotWidth)
      << "\" y2=\"" << number(axis_y) << "\" stroke=\"black\"/>\n";
  for (int64_t t = -floor_div(-from, step) * step; t < to; t += step) {
    const double x = x_of(t);
    const std::string stamp = format_timestamp(t);  // 2016-08-23T14:00:00Z
    const std::string label = step >= kDay ? stamp.substr(0, 10) : stamp.substr(0, 10) + " " + stamp.substr(11, 5);
    out << "<line x1=\"" << number(x) << "\" y1=\"" << number(axis_y - 4) << "\" x2=\"" << number(x) << "\" y2=\""
        << number(kTop + rows_height) << "\" stroke=\"#cccccc\"/>\n"
        << "<text x=\"" << number(x) << "\" y=\"" << number(axis_y - 8) << "\" text-anchor=\"middle\">" << label
        << "</text>\n";
  }

  for (size_t i = 0; i < all.size(); ++i) {
    const SeriesGaps& series = all[i];
    const journal::Series& s = series.series;
    const double y = kTop + kRow * static_cast<double>(i) + (kRow - kBar) / 2;
    std::string label = series_label(s);
    if (!series.cadence) label += " (cadence unknown)";
    if (label.size() > kLabelChars) label = label.substr(0, kLabelChars - 3) + "...";
    out << "<g class=\"series\">\n"
        << "<text x=\"10\" y=\"" << number(y + kBar - 4) << "\"" << (series.cadence ? "" : " fill=\"#777777\"") << ">"
        << xml_escape(label) << "<title>" << xml_escape(s.key.metadata_key + " " + s.key.event_type) << ", cadence "
        << xml_escape(cadence_text(series)) << ", " << series.datapoints << " datapoint(s)</title></text>\n";
    rect(out, from, to, y, "#e6e6e6", "no coverage recorded", 0);
    for (const journal::CoveredRange& range : series.coverage)
      rect(out, range.ts_from, range.ts_to, y, "#2ca02c",
           "covered " + format_timestamp(range.ts_from) + " to " + format_timestamp(range.ts_to) + " (" +
               std::to_string(range.points) + " point(s) read)",
           1);
    for (const Gap& gap : series.gaps)
      rect(out, gap.from, gap.to, y, gap.unrecoverable ? "url(#unrecoverable)" : "#d62728",
           std::string(gap.unrecoverable ? "unrecoverable gap " : "gap ") + format_timestamp(gap.from) + " to " +
               format_timestamp(gap.to) + " (" + format_length(gap.to - gap.from) + ")" +
               (gap.unrecoverable ? ", " + retention_note(s) : ""),
           1.5);
    out << "</g>\n";
  }
  if (all.empty())
    out << "<text x=\"" << number(kPlotX) << "\" y=\"" << number(kTop + kBar) << "\">no series</text>\n";

  const double legend_y = kTop + rows_height + 30;
  double legend_x = 10;
  for (const auto& [fill, text] : std::array<std::pair<const char*, const char*>, 4>{{
           {"#2ca02c", "covered (archive read, datapoints journaled)"},
           {"#d62728", "gap"},
           {"url(#unrecoverable)", "unrecoverable gap (past the archive's retention)"},
           {"#e6e6e6", "no coverage, within tolerance or not yet due"}}}) {
    out << "<rect x=\"" << number(legend_x) << "\" y=\"" << number(legend_y - 11) << "\" width=\"14\" height=\"14\" "
        << "fill=\"" << fill << "\"/><text x=\"" << number(legend_x + 20) << "\" y=\"" << number(legend_y) << "\">"
        << xml_escape(text) << "</text>\n";
    legend_x += 40 + 6.5 * static_cast<double>(std::string_view(text).size());
  }
  out << "</svg>\n";
  return out.str();
}

}  // namespace gapless::replay
