// Who may push: [push] login with password_file (HTTP Basic), or token_file
// (a bearer token), or nobody asked. pScheduler's http archiver can send any
// header but no client certificate (docs/perfsonar5.md 1.3), so the
// archive specification carries `Authorization` in its `_headers`.
#pragma once

#include <string>
#include <string_view>

#include "core/config.hpp"

namespace gapless::push {

class Credentials {
 public:
  // Reads the secret's file (its first line). Throws gapless::Error naming
  // push.password_file or push.token_file when it cannot be read or is empty.
  static Credentials load(const PushConfig& config);
  // For tests: Basic with `login` and `password`, or (login empty) a bearer token.
  static Credentials basic(std::string login, std::string password);
  static Credentials bearer(std::string token);
  static Credentials none() { return {}; }

  bool required() const { return !scheme_.empty(); }
  // The request's Authorization header against the secret: the scheme's name
  // in any case, the credentials compared in constant time.
  bool accepts(std::string_view authorization) const;
  // The WWW-Authenticate of a 401: `Basic realm="gapless push"` or `Bearer`.
  std::string challenge() const;

 private:
  std::string scheme_;    // "Basic", "Bearer", or "" (none asked)
  std::string expected_;  // base64 of login:password, or the token
};

}  // namespace gapless::push
