// Which gapless this is: the release version (meson.build's project version)
// and the source revision it was built from (`git describe` at build time,
// "unknown" when built outside a git tree). `gapless --version`, `gapless
// status` and its metrics show both, so a report names the exact code.
#pragma once

#include <string>
#include <string_view>

namespace gapless {

const char* build_version();
const char* build_revision();
// "gapless 0.1.0 (revision f37a84e1a2b3)", for --version and logs;
// `program` names the executable ("gapless-replay").
std::string build_description(std::string_view program = "gapless");

}  // namespace gapless
