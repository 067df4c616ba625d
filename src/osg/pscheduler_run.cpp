#include "osg/pscheduler_run.hpp"

#include <algorithm>
#include <cctype>

#include "core/timestamp.hpp"

namespace gapless::osg {

namespace {

using nlohmann::json;

// What a 400 says: the field, what it should be, and what the archiver
// sends, so that whoever wrote a transform can mend it.
[[noreturn]] void refuse(const std::string& field, const std::string& expected) {
  throw RunError(field, "not a pScheduler run: \"" + field + "\" " + expected);
}

const char* type_name(const json& value) {
  return value.is_null() ? "null" : value.type_name();
}

const json& member(const json& object, const std::string& path, const char* key, json::value_t type,
                   const char* expected) {
  const auto it = object.find(key);
  if (it == object.end()) refuse(path, "is missing (expected " + std::string(expected) + ")");
  if (it->type() != type) refuse(path, "is " + std::string(type_name(*it)) + " (expected " + expected + ")");
  return *it;
}

// An optional member: nullptr when absent or null (the archiver writes null
// for an absent reference), else it must have `type`.
const json* optional_member(const json& object, const std::string& path, const char* key, json::value_t type,
                            const char* expected) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  if (it->type() != type) refuse(path, "is " + std::string(type_name(*it)) + " (expected " + expected + ")");
  return &*it;
}

// pScheduler's test types are lower-case words with dashes ("latencybg",
// "s3-throughput"); the name becomes a destination segment, so anything else
// (a dot would add a topic level, a slash a path segment) is refused rather
// than escaped.
bool is_test_type(const std::string& type) {
  if (type.empty() || type.size() > 64) return false;
  const auto first = static_cast<unsigned char>(type.front());
  if (!std::islower(first) && !std::isdigit(first)) return false;
  return std::all_of(type.begin(), type.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::islower(u) || std::isdigit(u) || c == '-' || c == '_';
  });
}

// pScheduler writes times with datetime.isoformat(): an offset, and
// microseconds when the time has any. elmond reads pscheduler.start_time with
// dateutil and truncates to whole seconds, so the fraction is dropped here.
int64_t run_time(const std::string& text, const std::string& field) {
  std::string whole = text;
  const size_t dot = whole.find('.', 10);
  if (dot != std::string::npos) {
    size_t end = dot + 1;
    while (end < whole.size() && std::isdigit(static_cast<unsigned char>(whole[end]))) ++end;
    if (end == dot + 1) refuse(field, "is \"" + text + "\" (expected an ISO 8601 date-time)");
    whole.erase(dot, end - dot);
  }
  if (whole.size() < 19 || whole[10] != 'T') refuse(field, "is \"" + text + "\" (expected an ISO 8601 date-time)");
  try {
    return parse_timestamp(whole, field);
  } catch (const Error&) {
    refuse(field, "is \"" + text + "\" (expected an ISO 8601 date-time such as 2019-09-10T14:55:35Z)");
  }
}

// "https://ps1.example.net/pscheduler/tasks/..." -> "ps1.example.net";
// "https://[2001:db8::1]:443/..." -> "2001:db8::1".
std::string host_of(const std::string& href) {
  const size_t scheme = href.find("://");
  if (scheme == std::string::npos) return "";
  const size_t start = scheme + 3;
  const size_t end = href.find_first_of("/?#", start);
  std::string authority = href.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    return close == std::string::npos ? "" : authority.substr(1, close - 1);
  }
  if (const size_t colon = authority.find(':'); colon != std::string::npos) authority.erase(colon);
  return authority;
}

std::string last_segment(const std::string& href) {
  std::string path = href.substr(0, href.find_first_of("?#"));
  while (!path.empty() && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(slash + 1);
}

}  // namespace

Run parse_run(std::string_view body) {
  Run run;
  try {
    run.document = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond a double ("1e511")
    throw RunError("body", std::string("not a pScheduler run: the body is not JSON (") + e.what() + ")");
  }
  const json& doc = run.document;
  if (!doc.is_object()) refuse("body", std::string("is ") + type_name(doc) + " (expected the run as a JSON object)");

  using T = json::value_t;
  const json* task = optional_member(doc, "task", "task", T::object, "an object");
  const json* run_detail = optional_member(doc, "run", "run", T::object, "an object");
  if (run_detail) {
    if (const json* href = optional_member(*run_detail, "run.href", "href", T::string, "a URL"))
      run.run_href = href->get<std::string>();
  }
  std::string task_href;
  if (task) {
    if (const json* href = optional_member(*task, "task.href", "href", T::string, "a URL"))
      task_href = href->get<std::string>();
  }

  if (const json* id = optional_member(doc, "id", "id", T::string, "the run's UUID as a string")) {
    run.id = id->get<std::string>();
    if (run.id.empty()) refuse("id", "is empty (expected the run's UUID)");
  } else {
    run.id = last_segment(run.run_href);
    if (run.id.empty()) refuse("id", "is missing (expected the run's UUID, or a run.href ending in it)");
  }

  const json& test = member(doc, "test", "test", T::object, "an object with type and spec");
  run.test_type = member(test, "test.type", "type", T::string, "the test type as a string").get<std::string>();
  if (!is_test_type(run.test_type))
    refuse("test.type", "is \"" + run.test_type +
                            "\" (expected a pScheduler test type: lower-case letters, digits and dashes)");
  member(test, "test.spec", "spec", T::object, "the test's specification as an object");

  const json& tool = member(doc, "tool", "tool", T::object, "an object with the tool's name");
  run.tool = member(tool, "tool.name", "name", T::string, "the tool's name as a string").get<std::string>();
  if (run.tool.empty()) refuse("tool.name", "is empty (expected the tool's name)");

  const json& schedule = member(doc, "schedule", "schedule", T::object, "an object with start and duration");
  run.start_ts = run_time(
      member(schedule, "schedule.start", "start", T::string, "an ISO 8601 date-time").get<std::string>(),
      "schedule.start");
  // elmond's time axis is the run's start-time as Logstash copies it; the
  // archiver writes the same instant in schedule.start, but a transform may
  // have changed one of them.
  if (run_detail) {
    if (const json* start = optional_member(*run_detail, "run.start-time", "start-time", T::string,
                                            "an ISO 8601 date-time"))
      run.start_ts = run_time(start->get<std::string>(), "run.start-time");
  }

  if (const json* participants = optional_member(doc, "participants", "participants", T::array,
                                                 "a list of host names")) {
    for (size_t i = 0; i < participants->size(); ++i)
      if (!(*participants)[i].is_string())
        refuse("participants[" + std::to_string(i) + "]",
               "is " + std::string(type_name((*participants)[i])) + " (expected a host name)");
  }

  const json& result = member(doc, "result", "result", T::object, "the test's result as an object");
  run.succeeded = member(result, "result.succeeded", "succeeded", T::boolean, "true or false").get<bool>();

  run.host = host_of(run.run_href);
  if (run.host.empty()) run.host = host_of(task_href);
  return run;
}

std::string run_destination(const Run& run) {
  if (!is_test_type(run.test_type))
    refuse("test.type", "is \"" + run.test_type + "\" (expected a pScheduler test type)");
  return "/pscheduler/run/" + run.test_type;
}

}  // namespace gapless::osg
