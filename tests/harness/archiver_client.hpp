// A client that sends runs exactly as pScheduler's http archiver does
// (docs/perfsonar5.md 1.3 and 1.7): libcurl, one run per request as the
// POSTFIELDS body with CUSTOMREQUEST PUT (or a POST), the headers the stock
// archive specification makes it send (`x-ps-observer`, `content-type:
// application/json` AND `Content-Type: application/json`, `Accept: */*`, a
// PycURL User-Agent, the archive's Authorization), the 30 s whole-transfer
// timeout, TLS unverified (verify-ssl's default), libcurl's own `Expect:
// 100-continue` on a body over 1 MiB, and a pool of workers each keeping
// its connection alive (the archiver daemon's 25 plugin processes).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gapless::test {

struct ArchiverOptions {
  std::string url;                // e.g. http://127.0.0.1:PORT/logstash
  std::string op = "put";         // the archive spec's `op`: "put" or "post"
  std::string observer = "192.0.2.10";  // x-ps-observer; "" = none
  std::string authorization;      // the whole Authorization value ("Basic ...", "Bearer ..."); "" = none
  int workers = 25;
  std::chrono::milliseconds stagger{0};  // worker i starts i x stagger after the first (processes started apart)
  std::chrono::seconds timeout{30};
};

struct ArchiveAttempt {
  long status = 0;      // HTTP status; 0 when there was no answer (error says why)
  std::string body;     // the answer's body
  std::string headers;  // the answer's header lines, as received
  std::string error;    // libcurl's error, as the archiver reports "Failed to put result"
  std::chrono::milliseconds latency{0};
};

struct ArchiveRun {
  std::vector<ArchiveAttempt> attempts;  // one per body, in the order of the bodies
  int64_t connections = 0;               // connections libcurl opened, over every worker
};

// Sends each body once (no retry, as without a retry-policy), spread over
// the workers, and returns when every one was answered or failed.
ArchiveRun archive_runs(const std::vector<std::string>& bodies, const ArchiverOptions& options);

// "Basic " + base64(login:password), as an archive spec's _headers carries it.
std::string basic_authorization(const std::string& login, const std::string& password);

}  // namespace gapless::test
