#include "faults.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace gapless::test {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<FaultKind, std::string_view>, 10> kind_names{{
    {FaultKind::http_error, "http_error"},
    {FaultKind::slow, "slow"},
    {FaultKind::close, "close"},
    {FaultKind::short_body, "short_body"},
    {FaultKind::redirect, "redirect"},
    {FaultKind::html, "html"},
    {FaultKind::truncated, "truncated"},
    {FaultKind::malformed, "malformed"},
    {FaultKind::missing_field, "missing_field"},
    {FaultKind::wrong_type, "wrong_type"},
}};

bool is_field_fault(FaultKind kind) { return kind == FaultKind::missing_field || kind == FaultKind::wrong_type; }

bool matches(const Fault& fault, std::string_view target, const std::vector<std::string>& listed_keys) {
  if (fault.match.empty() || target.find(fault.match) != std::string_view::npos) return true;
  return is_field_fault(fault.kind) &&
         std::find(listed_keys.begin(), listed_keys.end(), fault.match) != listed_keys.end();
}

// The element a field fault changes: in an array, the object of the metadata
// key the fault is scoped to, else the middle element (so that a client that
// keeps the good half of a page is caught); otherwise the body itself.
json* target_element(json& body, const Fault& fault) {
  if (!body.is_array()) return body.is_object() ? &body : nullptr;
  if (body.empty()) return nullptr;
  for (json& element : body)
    if (!fault.match.empty() && element.is_object() && element.value("metadata-key", "") == fault.match)
      return &element;
  return &body[body.size() / 2];
}

// Defaults: a datapoint loses its "val" / gets "ts" as a string; a metadata
// object loses its "metadata-key" / gets "event-types" as a string.
std::string field_for(const json& element, const Fault& fault) {
  if (!fault.field.empty()) return fault.field;
  const bool missing = fault.kind == FaultKind::missing_field;
  if (element.contains("metadata-key")) return missing ? "metadata-key" : "event-types";
  if (element.contains("ts")) return missing ? "val" : "ts";
  return element.empty() ? "" : element.begin().key();
}

json wrong_type_of(const json& value) {
  if (value.is_string()) {
    try {
      return std::stoll(value.get<std::string>());
    } catch (const std::exception&) {
      return 0;
    }
  }
  return value.dump();  // numbers, objects, arrays, null -> their text as a string
}

template <typename Change>
std::string rewrite_element(const std::string& body, const Fault& fault, Change change) {
  json parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return body;
  json* element = target_element(parsed, fault);
  if (element == nullptr || !element->is_object()) return body;
  change(*element, field_for(*element, fault));
  return parsed.dump();
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view fault_kind_name(FaultKind kind) {
  for (const auto& [k, name] : kind_names)
    if (k == kind) return name;
  return "";
}

std::optional<FaultKind> fault_kind_from_name(std::string_view name) {
  for (const auto& [kind, n] : kind_names)
    if (n == name) return kind;
  return std::nullopt;
}

int FaultTable::add(Fault fault) {
  std::lock_guard lock(mutex_);
  entries_[next_id_] = Entry{std::move(fault), 0};
  return next_id_++;
}

bool FaultTable::remove(int id) {
  std::lock_guard lock(mutex_);
  return entries_.erase(id) > 0;
}

void FaultTable::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

int FaultTable::fired(int id) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(id);
  return it == entries_.end() ? 0 : it->second.fired;
}

json FaultTable::describe() const {
  std::lock_guard lock(mutex_);
  json list = json::array();
  for (const auto& [id, entry] : entries_) {
    const Fault& f = entry.fault;
    list.push_back({{"id", id},
                    {"kind", fault_kind_name(f.kind)},
                    {"match", f.match},
                    {"count", f.count},
                    {"status", f.status},
                    {"delay_ms", f.delay_ms},
                    {"location", f.location},
                    {"field", f.field},
                    {"fired", entry.fired}});
  }
  return list;
}

FaultTable::Selection FaultTable::take(std::string_view target, const std::vector<std::string>& listed_keys) {
  std::lock_guard lock(mutex_);
  Selection selection;
  for (auto& [id, entry] : entries_) {
    Fault& f = entry.fault;
    if (f.count == 0 || !matches(f, target, listed_keys)) continue;
    if (f.kind == FaultKind::slow) {
      selection.delay_ms += f.delay_ms;
    } else if (!selection.action) {
      selection.action = f;
    } else {
      continue;  // one non-slow fault per request; the others wait their turn
    }
    ++entry.fired;
    if (f.count > 0) --f.count;
  }
  return selection;
}

std::string truncate_json(const std::string& body) { return body.substr(0, body.size() / 2); }

// A stray comma right after the opening bracket: invalid for every JSON parser.
std::string malform_json(const std::string& body) {
  if (body.empty()) return ",";
  return body.substr(0, 1) + "," + body.substr(1);
}

std::string drop_field(const std::string& body, const Fault& fault) {
  return rewrite_element(body, fault, [](json& element, const std::string& field) { element.erase(field); });
}

std::string retype_field(const std::string& body, const Fault& fault) {
  return rewrite_element(body, fault, [](json& element, const std::string& field) {
    if (element.contains(field)) element[field] = wrong_type_of(element[field]);
  });
}

std::string browsable_api_page(std::string_view target, const std::string& json_body) {
  return "<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv=\"Content-Type\" content=\"text/html; "
         "charset=utf-8\"/>\n    <meta name=\"robots\" content=\"NONE,NOARCHIVE\" />\n"
         "    <title>Django REST framework</title>\n  </head>\n  <body class=\"\">\n"
         "    <div class=\"wrapper\">\n      <div class=\"navbar navbar-static-top navbar-inverse\">"
         "<a class='navbar-brand' rel=\"nofollow\" href='http://www.django-rest-framework.org'>Django REST "
         "framework</a></div>\n      <div class=\"content-main\">\n        <div class=\"page-header\"><h1>Archive "
         "List</h1></div>\n        <div class=\"request-info\"><pre class=\"prettyprint\"><b>GET</b> " +
         html_escape(target) +
         "</pre></div>\n        <div class=\"response-info\"><pre class=\"prettyprint\"><span "
         "class=\"meta nocode\"><b>HTTP 200 OK</b>\n<b>Allow:</b> <span class=\"lit\">GET, POST, HEAD, "
         "OPTIONS</span>\n<b>Content-Type:</b> <span class=\"lit\">application/json</span>\n<b>Vary:</b> <span "
         "class=\"lit\">Accept</span>\n\n</span>" +
         html_escape(json_body) + "</pre></div>\n      </div>\n    </div>\n  </body>\n</html>\n";
}

std::string_view status_text(int status) {
  switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

std::string error_page(int status) {
  const std::string title = std::to_string(status) + " " + std::string(status_text(status));
  return "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>" + title +
         "</title>\n</head><body>\n<h1>" + std::string(status_text(status)) +
         "</h1>\n<p>The server encountered an error and could not complete your request.</p>\n<hr>\n"
         "<address>Apache/2.4.6 (CentOS) Server at localhost Port 80</address>\n</body></html>\n";
}

}  // namespace gapless::test
