// libcurl's process-wide set-up, done once for every module that makes HTTP
// requests with it (the esmond client, the http sink): curl_global_init is
// not thread-safe, and with CURLOPT_NOSIGNAL libcurl no longer ignores
// SIGPIPE itself, so a TLS write to a peer that hung up could still raise it.
// gapless has no use for SIGPIPE (src/stomp does the same), unless the
// program chose its own handler.
#pragma once

namespace gapless {

// Safe to call from any thread, any number of times; throws gapless::Error
// when libcurl cannot initialise (and again on the next call).
void initialise_curl_once();

}  // namespace gapless
