// One datapoint of an esmond series, as the archive sent it, and the digest
// that identifies its value.
//
// A value is kept as its canonical text: the compact JSON that
// nlohmann::json::dump() writes for the value as parsed. Object keys sorted
// (byte order; of two equal keys the later wins), no spaces, integers as
// decimal digits, floats as the shortest text that reads back to the same
// double and always with a decimal point or exponent (7016320000.0, never
// 7016320000), strings with nlohmann's escapes. That text is what goes into
// the message body (so a float stays a float for consumers) and what the
// digest hashes (so the same value is recognised whatever spacing or key order
// the archive used). The digest and every gapless-id built from it depend on
// this text: it must never change.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace simdjson::dom {
class element;
}

namespace gapless::osg {

struct Datapoint {
  int64_t ts = 0;
  std::string value;   // canonical text (above)
  std::string digest;  // datapoint_digest of `value`: 32 hex digits

  Datapoint() = default;
  // From a parsed value: dumps it and digests the text.
  Datapoint(int64_t ts, const nlohmann::json& value);
  // From text already canonical (canonical_text below): digests it.
  static Datapoint from_canonical_text(int64_t ts, std::string text);
};

// 32 hex digits identifying one datapoint value as the archive sent it: the
// collector compares these to de-duplicate re-read datapoints and to detect
// corrected ones; the content part of a message's gapless-id is built from
// them. NEVER CHANGE THE DERIVATION: stored digests and existing ids would
// stop matching.
std::string datapoint_digest(const nlohmann::json& value);
std::string datapoint_digest_of_text(std::string_view canonical_text);

// The canonical text of a value parsed by simdjson, byte for byte what
// nlohmann::json::parse(text).dump() gives for the same JSON. The collector
// parses data pages with simdjson (several times faster than building a
// nlohmann DOM of every page) and must still produce the same text, digests
// and ids as before; tests/unit/test_osg.cpp checks the two agree.
// Throws gapless::Error for an element type it does not know (a newer simdjson).
std::string canonical_text(simdjson::dom::element value);

}  // namespace gapless::osg
