// The daemon's open fault episodes as `gapless status --json` shows them, for
// tests that watch a journal fault begin and end.
#pragma once

#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace gapless::test {

// (component, kind) of each open episode.
inline std::set<std::pair<std::string, std::string>> open_faults(const nlohmann::json& status) {
  std::set<std::pair<std::string, std::string>> faults;
  for (const nlohmann::json& fault : status.at("daemon").at("faults"))
    faults.emplace(fault.at("component").get<std::string>(), fault.at("kind").get<std::string>());
  return faults;
}

}  // namespace gapless::test
