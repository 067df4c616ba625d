#include "esmond/time_interval.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

namespace gapless::esmond {

std::optional<int64_t> time_interval(const nlohmann::json& metadata) {
  if (!metadata.is_object()) return std::nullopt;
  const auto it = metadata.find("time-interval");
  if (it == metadata.end()) return std::nullopt;
  double seconds = 0;
  if (it->is_number()) {
    seconds = it->get<double>();
  } else if (it->is_string()) {
    const std::string text = it->get<std::string>();
    char* end = nullptr;
    seconds = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(seconds) || seconds < 0.5 || seconds > 1e12) return std::nullopt;
  return std::llround(seconds);
}

}  // namespace gapless::esmond
