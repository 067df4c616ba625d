// The daemon's HTTP endpoint ([http] listen; off when empty): GET /metrics
// (metrics.hpp), GET /healthz (health.hpp), GET /v1/status (the JSON of
// `gapless status --json`), POST /v1/resend (resend_request.hpp), over TLS
// when [http] cert_file and key_file are set.
//
// It serves on threads of its own (cpp-httplib's pool), and nothing it meets
// reaches delivery: a handler that throws answers 500, a server that fails
// is logged. Every request opens its own journal connection (one per thread,
// journal/journal.hpp) without the integrity check, and only reads, except
// a resend, which is the operator's act `gapless-replay resend` is, recorded
// in the request table alike. A resend runs on a thread of its own, one at a
// time: the request is answered with its result when it ends within a few
// seconds, else 202 while it goes on (gapless-replay requests shows it), so a
// big resend never holds a thread that /metrics needs.
#pragma once

#include <memory>

#include "core/config.hpp"
#include "http/daemon_snapshot.hpp"

namespace gapless::http {

class Endpoint {
 public:
  // Binds [http] listen and starts serving. Throws gapless::Error naming
  // http.listen when the address cannot be bound, http.cert_file when TLS
  // cannot be set up. `snapshot` is called on each request, from the
  // endpoint's threads.
  Endpoint(const Config& config, SnapshotSource snapshot);
  ~Endpoint();  // stop()
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  // Stops listening, asks a running resend to stop (what it queued stays
  // queued), and joins every thread.
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gapless::http
