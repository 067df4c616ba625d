#include "osg/datapoint.hpp"

#include <simdjson.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/stable_id.hpp"

namespace gapless::osg {

namespace {

// datapoint_digest of a canonical text. NEVER CHANGE (see the header).
std::string digest_of(std::string_view canonical) { return stable_id("osg-point/v1", {canonical}); }

// nlohmann writes a string as-is between quotes unless it holds a quote, a
// backslash or a control character (it validates UTF-8, as simdjson did when
// parsing). Those rare strings take nlohmann's own escaping, so the two can
// never differ.
void append_string(std::string_view text, std::string& out) {
  const bool plain = std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
  });
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += nlohmann::json(std::string(text)).dump();
  }
}

void append_canonical(simdjson::dom::element value, std::string& out) {
  using simdjson::dom::element_type;
  switch (value.type()) {
    case element_type::ARRAY: {
      simdjson::dom::array items;
      if (value.get_array().get(items) != simdjson::SUCCESS) break;
      out += '[';
      bool first = true;
      for (simdjson::dom::element item : items) {
        if (!first) out += ',';
        first = false;
        append_canonical(item, out);
      }
      out += ']';
      return;
    }
    case element_type::OBJECT: {
      // nlohmann keeps an object in a std::map: keys in byte order, and of two
      // equal keys the value parsed last.
      simdjson::dom::object object;
      if (value.get_object().get(object) != simdjson::SUCCESS) break;
      std::vector<std::pair<std::string_view, simdjson::dom::element>> fields;
      for (simdjson::dom::key_value_pair field : object)
        fields.emplace_back(field.key, field.value);
      std::stable_sort(fields.begin(), fields.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (size_t i = 0; i < fields.size(); ++i) {
        if (i + 1 < fields.size() && fields[i + 1].first == fields[i].first) continue;  // a later one wins
        if (!first) out += ',';
        first = false;
        append_string(fields[i].first, out);
        out += ':';
        append_canonical(fields[i].second, out);
      }
      out += '}';
      return;
    }
    case element_type::INT64: out += std::to_string(value.get_int64().value_unsafe()); return;
    case element_type::UINT64: out += std::to_string(value.get_uint64().value_unsafe()); return;
    case element_type::DOUBLE: {
      // Both parsers round to the nearest double; nlohmann then writes it.
      out += nlohmann::json(value.get_double().value_unsafe()).dump();
      return;
    }
    case element_type::STRING: append_string(value.get_string().value_unsafe(), out); return;
    case element_type::BOOL: out += value.get_bool().value_unsafe() ? "true" : "false"; return;
    case element_type::NULL_VALUE: out += "null"; return;
  }
  throw Error("canonical_text: a JSON element of an unknown type");
}

}  // namespace

Datapoint::Datapoint(int64_t ts, const nlohmann::json& value) : ts(ts) {
  try {
    this->value = value.dump();
  } catch (const nlohmann::json::exception& e) {
    // dump() refuses strings that are not valid UTF-8.
    throw Error("datapoint at ts " + std::to_string(ts) + ": " + e.what());
  }
  digest = digest_of(this->value);
}

Datapoint Datapoint::from_canonical_text(int64_t ts, std::string text) {
  Datapoint point;
  point.ts = ts;
  point.digest = digest_of(text);
  point.value = std::move(text);
  return point;
}

std::string datapoint_digest(const nlohmann::json& value) {
  try {
    return digest_of(value.dump());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("datapoint_digest: ") + e.what());
  }
}

std::string datapoint_digest_of_text(std::string_view canonical_text) { return digest_of(canonical_text); }

std::string canonical_text(simdjson::dom::element value) {
  std::string text;
  append_canonical(value, text);
  return text;
}

}  // namespace gapless::osg
