// One answer of the test archive before faults apply to it: shared by the
// esmond routes (esmond_archive.cpp) and the elmond ones (elmond.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "esmond_archive.hpp"

namespace gapless::test {

struct EsmondArchive::Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";  // exactly; the esmond client checks it (docs/esmond.md 1.2)
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> listed_keys;  // metadata keys in the body
  uint64_t points = 0;                   // datapoints in the body

  static Reply of_json(const nlohmann::json& value, int status = 200) {
    Reply reply;
    reply.status = status;
    reply.body = value.dump();
    return reply;
  }
};

}  // namespace gapless::test
