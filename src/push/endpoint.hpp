// The endpoint pScheduler's http archiver sends its runs to ([push] listen;
// docs/perfsonar5.md): one run per PUT or POST on an accepted path, answered
// 200 only once the transaction holding it committed (group_commit.hpp);
// every other answer is request_rules.hpp's. cpp-httplib serves it on a pool
// of [push] threads (a connection holds a thread while it is kept alive, so
// `threads` is the connections served at once; pScheduler keeps up to 25 per
// host), over TLS when cert_file and key_file are set. `Expect:
// 100-continue` (libcurl's, for bodies over 1 MiB) is answered 100, or the
// refusal, before the body is sent.
#pragma once

#include <functional>
#include <memory>

#include "core/config.hpp"
#include "push/counters.hpp"

namespace gapless::push {

class Endpoint {
 public:
  // Binds [push] listen and starts serving. Throws gapless::Error naming
  // push.listen (cannot bind, or no sink takes anything a push becomes),
  // push.cert_file / push.key_file (TLS), push.password_file /
  // push.token_file (the secret cannot be read).
  // `in_force`, when given, is the configuration a reload put in force,
  // asked on each request: the sinks (and their accept lists) a run's forms
  // are built for follow it; [push] and [journal] themselves need a restart.
  explicit Endpoint(const Config& config, std::function<std::shared_ptr<const Config>()> in_force = {});
  ~Endpoint();  // stop()
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Stops listening, answers the requests in flight (their runs committed
  // or refused), then stops the committer. Nothing 2xx'ed is left unjournaled.
  void stop();
  int port() const;
  CountersSnapshot counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gapless::push
