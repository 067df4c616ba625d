#include "esmond/pages.hpp"

#include <simdjson.h>

#include <cctype>
#include <limits>
#include <utility>

#include "osg/listing_keys.hpp"

namespace gapless::esmond {

using nlohmann::json;

namespace {

constexpr size_t kExcerptBytes = 200;

// `body` parsed by nlohmann, or PageError(malformed) saying where it breaks.
json parse_json(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse error".
    std::string_view message = e.what();
    if (const size_t at = message.find("] "); at != std::string_view::npos) message.remove_prefix(at + 2);
    throw PageError(FailureKind::malformed, "not valid JSON (" + std::to_string(body.size()) +
                                                " bytes, error at byte " + std::to_string(e.byte) +
                                                "): " + std::string(message));
  } catch (const json::out_of_range& e) {
    // A number beyond a double ("1e511") is refused with out_of_range, not parse_error.
    std::string_view message = e.what();
    if (const size_t at = message.find("] "); at != std::string_view::npos) message.remove_prefix(at + 2);
    throw PageError(FailureKind::malformed,
                    "not valid JSON (" + std::to_string(body.size()) + " bytes): " + std::string(message));
  }
}

// Checks one metadata object of a listing (the fields the collector relies
// on, docs/esmond.md 1.5). Returns a problem, or "" when it is usable.
std::string metadata_problem(const json& object) {
  if (!object.is_object()) return "is " + type_of(object) + ", not an object";
  const auto key = object.find("metadata-key");
  if (key == object.end()) return "has no \"metadata-key\"";
  if (!key->is_string() || key->get_ref<const std::string&>().empty())
    return "\"metadata-key\" is " + (key->is_string() ? std::string("empty") : type_of(*key)) +
           ", not a non-empty string";
  const auto event_types = object.find("event-types");
  if (event_types == object.end()) return "has no \"event-types\"";
  if (!event_types->is_array()) return "\"event-types\" is " + type_of(*event_types) + ", not an array";
  for (size_t i = 0; i < event_types->size(); ++i) {
    const json& et = (*event_types)[i];
    const std::string where = "\"event-types\"[" + std::to_string(i) + "]";
    if (!et.is_object()) return where + " is " + type_of(et) + ", not an object";
    const auto name = et.find("event-type");
    if (name == et.end()) return where + " has no \"event-type\"";
    if (!name->is_string()) return where + ".\"event-type\" is " + type_of(*name) + ", not a string";
    const auto summaries = et.find("summaries");
    if (summaries == et.end()) return where + " has no \"summaries\"";
    if (!summaries->is_array()) return where + ".\"summaries\" is " + type_of(*summaries) + ", not an array";
    for (size_t j = 0; j < summaries->size(); ++j) {
      const json& s = (*summaries)[j];
      const std::string at = where + ".\"summaries\"[" + std::to_string(j) + "]";
      if (!s.is_object()) return at + " is " + type_of(s) + ", not an object";
      const auto type = s.find("summary-type");
      if (type == s.end()) return at + " has no \"summary-type\"";
      if (!type->is_string()) return at + ".\"summary-type\" is " + type_of(*type) + ", not a string";
      const auto window = s.find("summary-window");
      if (window == s.end()) return at + " has no \"summary-window\"";
      // esmond sends the window as a string ("86400", docs/esmond.md 1.5); accept an
      // integer too, but it must be one: it becomes part of a data URL.
      bool whole = false;
      if (window->is_string()) {
        const std::string& text = window->get_ref<const std::string&>();
        whole = !text.empty() && text.size() <= 18 &&
                text.find_first_not_of("0123456789") == std::string::npos;
      } else if (window->is_number_unsigned()) {
        whole = window->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      } else if (window->is_number_integer()) {
        whole = window->get<int64_t>() >= 0;
      }
      if (!whole)
        return at + ".\"summary-window\" is " + window->dump() + ", not a whole number of seconds";
    }
  }
  return "";
}

}  // namespace

std::string type_of(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a float";
  if (value.is_null()) return "null";
  const std::string name = value.type_name();
  return (name == "array" || name == "object" ? "an " : "a ") + name;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string excerpt(std::string_view body, bool html) {
  if (html) {  // the <head> only repeats the status in <title>
    for (size_t at = body.find('<'); at != std::string_view::npos; at = body.find('<', at + 1))
      if (starts_with_nocase(body.substr(at), "<body")) {
        body.remove_prefix(at);
        break;
      }
  }
  std::string text;
  bool in_tag = false, space = false;
  for (const char c : body) {
    if (html && c == '<') in_tag = true;
    if (in_tag) {
      if (c == '>') in_tag = false, space = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !text.empty()) text += ' ';
    space = false;
    text += c;
    if (text.size() > kExcerptBytes) break;
  }
  if (text.size() <= kExcerptBytes) return text;
  size_t cut = kExcerptBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

// ---------------------------------------------------------------- metadata

ListingPage read_listing_page(const std::string& body, int64_t offset) {
  json page = parse_json(body);
  if (!page.is_array())
    throw PageError(FailureKind::invalid, "expected a JSON array of metadata objects, got " + type_of(page));
  ListingPage out;
  out.size = page.size();
  for (size_t i = 0; i < page.size(); ++i) {
    json& object = page[i];
    const int64_t index = offset + static_cast<int64_t>(i);
    if (i == 0) {
      const auto total = object.is_object() ? object.find(osg::kCountTotalKey) : object.end();
      if (!object.is_object() || total == object.end() || !total->is_number_integer() || total->get<int64_t>() < 0)
        throw PageError(FailureKind::invalid,
                        "metadata object at listing index " + std::to_string(index) +
                            " carries no integer \"metadata-count-total\" (esmond >= 2.0 puts it on the "
                            "first object of a page, and paging relies on it)");
      out.count_total = total->get<int64_t>();
    }
    // One unusable object must not hide the others: it is reported and
    // left out, the rest of the listing is used.
    if (const std::string problem = metadata_problem(object); !problem.empty()) {
      const auto key = object.is_object() ? object.find("metadata-key") : object.end();
      const bool named = key != object.end() && key->is_string() && !key->get_ref<const std::string&>().empty();
      out.rejected.push_back("metadata object " + (named ? "metadata-key " + key->get<std::string>() + " " : "") +
                             "at listing index " + std::to_string(index) + ": " + problem);
      continue;
    }
    for (const std::string_view name : osg::kPaginationKeys) object.erase(std::string(name));
    out.objects.push_back(std::move(object));
  }
  return out;
}

// ---------------------------------------------------------------- data

std::optional<std::vector<osg::Datapoint>> read_plain_data_page(simdjson::dom::parser& parser, const std::string& body,
                                                                int64_t time_start, std::optional<int64_t> time_end) {
  simdjson::dom::element page;
  if (parser.parse(body).get(page) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array elements;
  if (page.get_array().get(elements) != simdjson::SUCCESS) return std::nullopt;
  std::vector<osg::Datapoint> points;
  points.reserve(elements.size());
  try {
    for (simdjson::dom::element element : elements) {
      simdjson::dom::object fields;
      if (element.get_object().get(fields) != simdjson::SUCCESS) return std::nullopt;
      // Of two equal keys nlohmann keeps the later: so does this loop.
      std::optional<simdjson::dom::element> ts_field;
      std::optional<simdjson::dom::element> val;
      for (simdjson::dom::key_value_pair field : fields) {
        if (field.key == "ts") ts_field = field.value;
        else if (field.key == "val") val = field.value;
      }
      if (!ts_field || !val || ts_field->type() != simdjson::dom::element_type::INT64) return std::nullopt;
      const int64_t ts = ts_field->get_int64().value_unsafe();
      if ((!points.empty() && ts <= points.back().ts) || ts < time_start || (time_end && ts >= *time_end))
        return std::nullopt;
      points.push_back(osg::Datapoint::from_canonical_text(ts, osg::canonical_text(*val)));
    }
  } catch (const gapless::Error&) {
    return std::nullopt;  // an element type canonical_text does not know: the exact reading decides
  }
  return points;
}

std::vector<osg::Datapoint> read_data_page(const std::string& body, int64_t time_start,
                                           std::optional<int64_t> time_end) {
  json page = parse_json(body);
  const auto bad = [](size_t index, const std::string& problem) {
    return PageError(FailureKind::invalid,
                     "datapoint " + std::to_string(index) + " " + problem + " (nothing of this page is used)");
  };
  if (!page.is_array())
    throw PageError(FailureKind::invalid, "expected a JSON array of datapoints, got " + type_of(page) + ": " +
                                              excerpt(page.dump(), false));
  std::vector<osg::Datapoint> points;
  points.reserve(page.size());
  for (size_t i = 0; i < page.size(); ++i) {
    json& element = page[i];
    if (!element.is_object()) throw bad(i, "is " + type_of(element) + ", not an object");
    const auto ts_field = element.find("ts");
    if (ts_field == element.end()) throw bad(i, "has no \"ts\"");
    if (!ts_field->is_number_integer() ||
        (ts_field->is_number_unsigned() &&
         ts_field->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      throw bad(i, "\"ts\" is " + ts_field->dump() + " (" + type_of(*ts_field) + "), not an integer");
    const int64_t ts = ts_field->get<int64_t>();
    const auto val = element.find("val");
    if (val == element.end()) throw bad(i, "(ts " + std::to_string(ts) + ") has no \"val\"");
    if (!points.empty() && ts <= points.back().ts)
      throw bad(i, "\"ts\" " + std::to_string(ts) + " does not follow " + std::to_string(points.back().ts) +
                       ": not strictly ascending");
    if (ts < time_start) throw bad(i, "\"ts\" " + std::to_string(ts) + " is before time-start");
    if (time_end && ts >= *time_end) throw bad(i, "\"ts\" " + std::to_string(ts) + " is after time-end");
    try {
      points.emplace_back(ts, *val);
    } catch (const gapless::Error& e) {
      throw bad(i, std::string("has a value that cannot be written as JSON: ") + e.what());
    }
  }
  return points;
}

}  // namespace gapless::esmond
