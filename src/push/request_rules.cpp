#include "push/request_rules.hpp"

#include <algorithm>
#include <chrono>

namespace gapless::push {

RequestRules::RequestRules(const PushConfig& config, Credentials credentials)
    : config_(config), credentials_(std::move(credentials)) {}

std::optional<Answer> RequestRules::before_body(std::string_view method, std::string_view path,
                                                std::optional<uint64_t> content_length,
                                                std::string_view authorization) const {
  if (std::find(config_.paths.begin(), config_.paths.end(), path) == config_.paths.end()) {
    std::string paths;
    for (const std::string& accepted : config_.paths) paths += (paths.empty() ? "" : ", ") + accepted;
    return Answer{404, "no such path: " + std::string(path) + " (runs are taken at " + paths + ")\n", {}};
  }
  if (method != "PUT" && method != "POST")
    return Answer{405, "method " + std::string(method) + " not allowed: send the run by PUT or POST\n",
                  {{"Allow", "PUT, POST"}}};
  if (!credentials_.accepts(authorization))
    return Answer{401,
                  authorization.empty() ? "unauthorized: this endpoint asks for credentials (Authorization header)\n"
                                        : "unauthorized: wrong credentials\n",
                  {{"WWW-Authenticate", credentials_.challenge()}}};
  if (content_length && *content_length > static_cast<uint64_t>(config_.max_body_size)) return too_large();
  return std::nullopt;
}

Answer RequestRules::too_large() const {
  return {413, "run too large: the body is over push.max_body_size (" + std::to_string(config_.max_body_size) +
                   " bytes)\n",
          {}};
}

Answer RequestRules::not_a_run(std::string_view field, std::string_view why) const {
  return {400, std::string(why) + "\n", {{"X-Gapless-Field", std::string(field)}}};
}

Answer RequestRules::no_sink_takes(std::string_view why) const {
  return {500, "not journaled: " + std::string(why) + " (the gapless configuration's [[sink]] accept lists)\n", {}};
}

Answer RequestRules::unavailable(std::string_view why) const {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(config_.retry_after).count();
  return {503, "not journaled, try again later: " + std::string(why) + "\n",
          {{"Retry-After", std::to_string(std::max<int64_t>(1, seconds))}}};
}

Answer RequestRules::journaled(std::string_view run_id, bool duplicate) const {
  return {200, std::string(duplicate ? "already journaled: run " : "journaled: run ") + std::string(run_id) + "\n", {}};
}

}  // namespace gapless::push
