// POST /v1/resend: the body of a resend request and who may make one.
//
// The body is a JSON object whose fields are the options of
// `gapless-replay resend` without their dashes' prefix: "from" and "to"
// (ISO 8601 or unix seconds; required), "sink", "destination",
// "event-type", "archive" (a string or an array of them), "source-host",
// "destination-host", "rate", "reason", "dry-run". It is checked as the
// command checks its options, before anything is opened or changed; a bad
// field is refused naming it (BadField, answered 400).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "replay/backfill.hpp"

namespace gapless::http {

struct ResendRequest {
  replay::Selection selection;
  std::string sink;
  std::vector<std::string> destinations;
  double rate = 0;
  std::string reason;
  bool dry_run = false;
};

class BadField : public Error {
 public:
  BadField(const std::string& field, const std::string& problem) : Error(field + ": " + problem), field_(field) {}
  // One of replay's argument checks, whose option is the field.
  explicit BadField(const replay::BadArgument& refused) : Error(refused.what()), field_(refused.option()) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

ResendRequest parse_resend_request(std::string_view body, const Config& config);

// The bearer token: the first line of [http] token_file, without its line
// end. Throws gapless::Error naming the file when it cannot be read or the
// line is empty.
std::string read_token(const std::string& token_file);

// `Authorization: Bearer <token>` against the token, in a time that does not
// depend on where they first differ.
bool authorized(std::string_view authorization_header, std::string_view token);

}  // namespace gapless::http
