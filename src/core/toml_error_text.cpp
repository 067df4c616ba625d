#include "core/toml_error_text.hpp"

#include <regex>
#include <sstream>

namespace gapless {

std::string toml_error_without_values(std::string_view error) {
  // " 4 | passcode = ..." (a quoted line) and "   |     ^--- here" (its marker).
  static const std::regex quoted(R"(^(\s*\d+ \| )(.*)$)");
  static const std::regex marker(R"(^(\s*\| )\s*[\^~]+-*\s*(.*)$)");
  static const std::regex table_header(R"(^\s*\[\[?[A-Za-z0-9_.\- ]+\]\]?\s*$)");
  std::istringstream lines{std::string(error)};
  std::string out;
  std::smatch match;
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_match(line, match, quoted)) {
      const std::string text = match[2];
      const size_t equals = text.find('=');
      if (std::regex_match(text, table_header))
        line = match[1].str() + text;
      else if (equals != std::string::npos && text.find_first_of("\"'") > equals)
        line = match[1].str() + text.substr(0, equals + 1) + " ...";
      else
        line = match[1].str() + "...";
    } else if (std::regex_match(line, match, marker)) {
      line = match[1].str() + match[2].str();
    }
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace gapless
