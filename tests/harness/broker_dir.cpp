#include "harness/broker_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/error.hpp"

namespace gapless::test {

namespace fs = std::filesystem;

fs::path make_broker_dir(const std::string& kind, const std::string& owner) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path base = (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
  std::string pattern = (base / ("gapless-" + kind + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw Error(owner + ": cannot create a directory like " + pattern + ": " +
                std::error_code(errno, std::generic_category()).message());
  }
  return pattern;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace gapless::test
