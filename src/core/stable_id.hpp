// Stable message identities (`gapless-id`). An id is a pure function of the
// parts it is derived from, the same on every machine, every run and every
// resend, so consumers can de-duplicate (OSG's 2020 tape replay failed here:
// Python's hash() changes between runs). Never change the derivation of an
// existing scheme: add a new scheme tag instead.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace gapless {

// 32 lowercase hex digits: the first 128 bits of SHA-256 over the scheme tag
// and the parts, each preceded by its length so that ("ab","c") != ("a","bc").
std::string stable_id(std::string_view scheme, std::initializer_list<std::string_view> parts);

}  // namespace gapless
