// What an http sink does with a message before its request, and what each
// answer (or the lack of one) means, with no socket: the rules HttpSender
// (http_sender.hpp) follows, unit-tested alone (tests/unit/test_http_answer_rules.cpp).
//
// The answers, and why (docs/perfsonar5.md, "Forwarding to Logstash"):
//   2xx                       delivered: the only answer that marks a row delivered
//                             (journal invariant 5); pScheduler's own archiver
//                             counts only 200-299 as success.
//   429, 5xx, 408, 425;       retry: the row stays pending and the sink backs
//   no answer (refused        off, for ever. A backlogged Logstash answers 429,
//   connection, reset,        a stopped one behind Apache's proxy 502 or 503; a
//   timeout)                  hung one answers nothing.
//   401, 403, 404, 3xx,       the SINK is wrong (credentials, URL, a redirect to
//   any other 4xx, a status   follow by changing the configuration, a
//   outside 100-599; a TLS    certificate that does not verify): the whole sink
//   certificate that does     pauses and retries with backoff; nothing is
//   not verify                parked, nothing lost, and an alarm is raised. A
//                             4xx we cannot attribute to one message belongs
//                             here: pausing loses nothing, parking every
//                             message one by one would hide a configuration
//                             fault behind a heap of parked rows.
//   400, 413, 422             the MESSAGE is refused: it is parked alone, the
//                             status and the answer's body (cleaned as a
//                             broker's error text is) as the reason; the others
//                             flow. retry-parked and discard apply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gapless::sender {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// What came back for one request.
struct HttpAnswer {
  enum class Failure {
    none,          // an HTTP answer came: `status`
    unreachable,   // no answer: DNS, connection refused or reset, TLS handshake broken off
    timed_out,     // the sink's `timeout` passed first
    tls_rejected,  // the server's certificate does not verify, or ours is refused: configuration
  };
  Failure failure = Failure::none;
  long status = 0;
  std::string body;      // what was read of the answer's body
  std::string location;  // a redirect's Location
  std::string error;     // libcurl's words when `failure` is not none
};

enum class HttpVerdict { delivered, retry, sink_rejected, message_refused };

struct HttpJudgement {
  HttpVerdict verdict = HttpVerdict::retry;
  // Cleaned and bounded (stomp/error_text.hpp): for the log and the fault
  // episode, or, for a refused message, its parked reason. Names the URL
  // and the status.
  std::string reason;
};

HttpJudgement judge_answer(const HttpAnswer& answer, std::string_view url);

// The headers of a message's request: its own journaled headers (as the
// producer received them, e.g. x-ps-observer and content-type from
// pScheduler), then the sink's configured ones, which win on a name clash
// (names compared ignoring case), then `gapless-id` (and `gapless-resend`
// for a resent message), which win over both. Headers that would change how
// the request is framed or routed (content-length, transfer-encoding, host,
// connection, expect, ...) are dropped from the message's: libcurl writes them.
HttpHeaders request_headers(const HttpHeaders& message_headers, const HttpHeaders& configured,
                            std::string_view gapless_id, std::optional<int64_t> resend_request_id);

// Why a message cannot be sent to this sink at all (parked alone, never
// sent), or nothing: a body above max_message_size, or a header that is not
// a valid HTTP header (a name that is not a token, a value with a line break
// or another control character).
std::optional<std::string> request_refusal(const HttpHeaders& headers, size_t body_bytes, int64_t max_message_size);

}  // namespace gapless::sender
