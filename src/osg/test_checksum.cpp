#include "osg/test_checksum.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/hex.hpp"

namespace gapless::osg {

namespace {

using nlohmann::json;

// UTF-16 code units of a UTF-8 key: Ruby sorts the keys by
// k.encode(UTF_16), i.e. by code units, which differs from byte order only
// for characters beyond U+FFFF against U+E000..U+FFFF.
std::u16string utf16_of(const std::string& text) {
  std::u16string out;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    char32_t code = byte;
    size_t length = 1;
    if (byte >= 0xF0) code = byte & 0x07, length = 4;
    else if (byte >= 0xE0) code = byte & 0x0F, length = 3;
    else if (byte >= 0xC0) code = byte & 0x1F, length = 2;
    for (size_t k = 1; k < length && i + k < text.size(); ++k)
      code = (code << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    i += length;
    if (code >= 0x10000) {
      code -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (code >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (code & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(code));
    }
  }
  return out;
}

// Ruby's JSON generator: '"', '\\' and control characters escaped (\b \f \n
// \r \t, else \u00XX), everything else, '/' and non-ASCII included, as is.
void append_string(const std::string& text, std::string& out) {
  out += '"';
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// to_json_c14n's numbers: "%.15E", trailing zeros of the fraction dropped,
// the exponent folded into the digits for -7 < exp < 21.
void append_number(double number, std::string& out) {
  if (std::isnan(number) || std::isinf(number)) throw Error("test checksum: a number that is not finite");
  if (number == 0) {
    out += '0';
    return;
  }
  std::string sign;
  if (number < 0) number = -number, sign = "-";
  char native[64];
  std::snprintf(native, sizeof native, "%.15E", number);
  const std::string text(native);
  const size_t e = text.find('E');
  const std::string decimal = text.substr(0, e);
  int exponent = std::stoi(text.substr(e + 1));
  const size_t dot = decimal.find('.');
  std::string integral = decimal.substr(0, dot);
  std::string fractional = dot == std::string::npos ? "" : decimal.substr(dot + 1);
  while (!fractional.empty() && fractional.back() == '0') fractional.pop_back();
  std::string exponential = exponent > 0 ? "+" + std::to_string(exponent) : std::to_string(exponent);
  bool has_exponent = true;
  if (exponent > 0 && exponent < 21) {
    while (exponent > 0) {
      integral += fractional.empty() ? '0' : fractional.front();
      if (!fractional.empty()) fractional.erase(0, 1);
      --exponent;
    }
    has_exponent = false;
  } else if (exponent == 0) {
    has_exponent = false;
  } else if (exponent < 0 && exponent > -7) {
    fractional = std::string(static_cast<size_t>(-exponent - 1), '0') + integral + fractional;
    integral = "0";
    has_exponent = false;
  }
  out += sign + integral;
  if (!fractional.empty()) out += "." + fractional;
  if (has_exponent) out += "e" + exponential;
}

void append_canonical(const json& value, std::string& out) {
  switch (value.type()) {
    case json::value_t::object: {
      std::vector<std::pair<std::u16string, const std::string*>> keys;
      for (auto it = value.begin(); it != value.end(); ++it) keys.emplace_back(utf16_of(it.key()), &it.key());
      std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) out += ',';
        append_string(*keys[i].second, out);
        out += ':';
        append_canonical(value.at(*keys[i].second), out);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      for (size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ',';
        append_canonical(value[i], out);
      }
      out += ']';
      return;
    }
    case json::value_t::string: append_string(value.get_ref<const std::string&>(), out); return;
    case json::value_t::number_integer: append_number(static_cast<double>(value.get<int64_t>()), out); return;
    case json::value_t::number_unsigned: append_number(static_cast<double>(value.get<uint64_t>()), out); return;
    case json::value_t::number_float: append_number(value.get<double>(), out); return;
    case json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; return;
    default: out += "null"; return;
  }
}

std::string sha256_hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw Error("test checksum: SHA-256 failed");
  return hex_of(std::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace

std::string logstash_canonical_json(const json& value) {
  std::string out;
  append_canonical(value, out);
  return out;
}

std::string logstash_test_checksum(const json& test, const std::string& tool, const json& observer_ip) {
  json normalized = json::object();
  normalized["test"] = test;
  normalized["observer_ip"] = observer_ip;
  normalized["tool"] = tool;
  return sha256_hex(logstash_canonical_json(normalized));
}

}  // namespace gapless::osg
