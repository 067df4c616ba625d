// The one error type of gapless. Every throw site names what it was working on
// (which config key, which broker, which journal row), so the message alone
// tells an operator where to look.
#pragma once

#include <stdexcept>
#include <string>

namespace gapless {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace gapless
