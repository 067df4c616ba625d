// Which answer the push endpoint gives to which request, decided without
// sockets (the endpoint only carries the answer out). pScheduler's http
// archiver counts 200-299 as archived and anything else as a failure it
// retries only under a retry-policy (docs/perfsonar5.md 1.4), so a 2xx is
// given only for a run whose transaction committed, and every refusal says
// why in its text (the archiver logs "Failed to put result: <code>: <body>").
//
// The checks, in order, each on what is known at that point:
//   before the body (also the answer to `Expect: 100-continue`, so a refused
//   upload is never sent):
//     404 a path not in [push] paths;
//     405 a method other than PUT or POST (with Allow);
//     401 credentials missing or wrong (with WWW-Authenticate);
//     413 a Content-Length over [push] max_body_size;
//   the body:
//     400 not a pScheduler run: the text names the field (osg::RunError);
//     500 no configured sink takes anything the run becomes;
//   the commit:
//     503 with Retry-After: the journal at [journal] max_size, a journal
//         fault (full disk, busy, I/O), or the commit queue full;
//     200 journaled (201 is not used: the archiver reads no body), also for
//         a run journaled before (a retry after a lost answer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "push/credentials.hpp"

namespace gapless::push {

struct Answer {
  int status = 200;
  std::string text;  // the body, text/plain; ends with a newline
  std::vector<std::pair<std::string, std::string>> headers;
};

class RequestRules {
 public:
  RequestRules(const PushConfig& config, Credentials credentials);

  // The checks before the body; nothing: read it. `content_length` is
  // nothing when the request has none (chunked), checked then as it is read.
  std::optional<Answer> before_body(std::string_view method, std::string_view path,
                                    std::optional<uint64_t> content_length, std::string_view authorization) const;

  // A body over max_body_size that had no Content-Length to refuse it by.
  Answer too_large() const;
  // A body that is not a run: `field` and the sentence naming it (osg::RunError).
  Answer not_a_run(std::string_view field, std::string_view why) const;
  // Nothing the run becomes has a sink to take it (the door's refusal).
  Answer no_sink_takes(std::string_view why) const;
  // The journal took nothing now: at max_size, a fault, or the queue full.
  Answer unavailable(std::string_view why) const;
  // The run's transaction committed (`duplicate`: it was journaled before).
  Answer journaled(std::string_view run_id, bool duplicate) const;

 private:
  PushConfig config_;
  Credentials credentials_;
};

}  // namespace gapless::push
