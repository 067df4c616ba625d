// The metadata key perfSONAR 5 gives a test: Logstash's
// pscheduler.test_checksum, which elmond serves as `metadata-key`
// (docs/perfsonar5.md, "From a run to OSG's messages", says what of it is a
// reading). SHA-256, in hex, of the canonical JSON of
//   {"observer_ip": <meta.observer.ip>, "test": <the run's test>, "tool": <tool.name>}
// written by the pipeline's own canonical form (to_json_c14n): object keys
// sorted by their UTF-16 code units, no spaces, strings as Ruby's to_json
// writes them, numbers in the ECMAScript style from 16 significant digits
// ("%.15E"): 1 not 1.0, 0.5, 1e+21, 1.5e-7.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace gapless::osg {

// The canonical text the checksum hashes, for tests and for docs.
std::string logstash_canonical_json(const nlohmann::json& value);

// SHA-256 of the canonical {"observer_ip", "test", "tool"} object, lower-case hex.
std::string logstash_test_checksum(const nlohmann::json& test, const std::string& tool,
                                   const nlohmann::json& observer_ip);

}  // namespace gapless::osg
