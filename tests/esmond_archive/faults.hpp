// Faults the archive injects on request, so the collector's handling of a bad
// archive can be tested: HTTP errors, stalls, dropped connections, redirects,
// HTML, broken or incomplete JSON. A fault is scoped to every request or to
// requests whose target contains a string (a metadata key, a path piece), and
// fires on the next N of them or until cleared.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gapless::test {

enum class FaultKind {
  http_error,     // answer `status` (default 500; 503 etc.) with an HTML error page
  slow,           // wait `delay_ms` before answering (combines with one other fault)
  close,          // close the connection without any response
  short_body,     // send headers and half the body, then close (Content-Length says more)
  redirect,       // answer `status` (default 302) with Location: `location`
  html,           // 200 text/html: DRF's browsable API page instead of JSON
  truncated,      // 200 application/json, body cut in half (Content-Length matches)
  malformed,      // 200 application/json, body is not JSON
  missing_field,  // one element lacks `field` (data: "val"; metadata: "metadata-key")
  wrong_type,     // one element has `field` with the wrong JSON type (data: "ts" as a string)
};

std::string_view fault_kind_name(FaultKind kind);
std::optional<FaultKind> fault_kind_from_name(std::string_view name);

struct Fault {
  FaultKind kind = FaultKind::http_error;
  // Empty: every archive request. Otherwise the fault fires on requests whose
  // target (path and query) contains `match`; a metadata key scopes it to one
  // series. missing_field/wrong_type scoped to a key also hit the listing,
  // and there change only that key's metadata object.
  std::string match;
  int count = -1;        // fire on the next `count` matching requests; -1: until cleared
  int status = 0;        // http_error (default 500), redirect (default 302)
  int delay_ms = 1000;   // slow
  std::string location;  // redirect target; default: the same target under /moved/
  std::string field;     // missing_field / wrong_type; empty: the defaults above

  // Fault::of(FaultKind::http_error).matching(key).times(2).with_status(503)
  static Fault of(FaultKind kind) {
    Fault fault;
    fault.kind = kind;
    return fault;
  }
  Fault& matching(std::string target_part) { match = std::move(target_part); return *this; }
  Fault& times(int requests) { count = requests; return *this; }
  Fault& with_status(int code) { status = code; return *this; }
  Fault& with_delay_ms(int milliseconds) { delay_ms = milliseconds; return *this; }
  Fault& to(std::string url) { location = std::move(url); return *this; }
  Fault& on_field(std::string name) { field = std::move(name); return *this; }
};

class FaultTable {
 public:
  int add(Fault fault);
  bool remove(int id);
  void clear();
  int fired(int id) const;  // how many requests the fault has hit so far
  nlohmann::json describe() const;

  struct Selection {
    int delay_ms = 0;             // total of the matching slow faults
    std::optional<Fault> action;  // the first matching fault of any other kind
  };
  // Picks the faults for one request and counts them as fired.
  // `listed_keys`: the metadata keys in the response (for key-scoped field
  // faults on the listing).
  Selection take(std::string_view target, const std::vector<std::string>& listed_keys);

 private:
  struct Entry {
    Fault fault;
    int fired = 0;
  };
  mutable std::mutex mutex_;
  std::map<int, Entry> entries_;  // by id: insertion order
  int next_id_ = 1;
};

// Body rewrites, pure functions of the well-formed JSON body.
std::string truncate_json(const std::string& body);
std::string malform_json(const std::string& body);
std::string drop_field(const std::string& body, const Fault& fault);
std::string retype_field(const std::string& body, const Fault& fault);
// What DRF's BrowsableAPIRenderer sends a browser (docs/esmond.md 1.2 `format=json`).
std::string browsable_api_page(std::string_view target, const std::string& json_body);
// A server's HTML error page (Django/Apache style).
std::string error_page(int status);
std::string_view status_text(int status);

}  // namespace gapless::test
