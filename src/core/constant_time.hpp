// Comparing a secret a client presents (a bearer token, Basic credentials)
// with the configured one in a time that does not depend on where they first
// differ, so that the answer's timing never tells how much of a guess was
// right. Shared by the daemon's endpoint (http) and the push endpoint (push).
#pragma once

#include <string_view>

namespace gapless {

// Every byte of `secret` is read whatever `presented` holds; an empty secret
// equals nothing.
bool equal_in_constant_time(std::string_view presented, std::string_view secret);

}  // namespace gapless
