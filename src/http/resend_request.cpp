#include "http/resend_request.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/constant_time.hpp"
#include "core/timestamp.hpp"

namespace gapless::http {

namespace {

using nlohmann::json;

std::string text_of(const json& value, const std::string& field) {
  if (!value.is_string()) throw BadField(field, "expected a string");
  return value.get<std::string>();
}

std::vector<std::string> texts_of(const json& value, const std::string& field) {
  if (value.is_string()) return {value.get<std::string>()};
  if (!value.is_array()) throw BadField(field, "expected a string or an array of strings");
  std::vector<std::string> texts;
  for (const json& item : value) texts.push_back(text_of(item, field));
  return texts;
}

// ISO 8601 (a string) or unix seconds (a number or a string), as --from and --to.
int64_t time_of(const json& value, const std::string& field) {
  try {
    if (value.is_number_integer()) return value.get<int64_t>();
    if (value.is_string()) return parse_timestamp(value.get<std::string>(), field);
  } catch (const BadField&) {
    throw;
  } catch (const Error& e) {
    throw BadField(field, e.what());
  }
  throw BadField(field, "expected an ISO 8601 time or unix seconds");
}

}  // namespace

ResendRequest parse_resend_request(std::string_view body, const Config& config) {
  const json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object())
    throw BadField("body", "expected a JSON object such as {\"from\": \"2016-08-23\", \"to\": \"2016-08-24\"}");
  ResendRequest out;
  bool from_given = false, to_given = false;
  for (const auto& [field, value] : request.items()) {
    if (field == "from") {
      out.selection.from = time_of(value, field);
      from_given = true;
    } else if (field == "to") {
      out.selection.to = time_of(value, field);
      to_given = true;
    } else if (field == "sink") {
      out.sink = text_of(value, field);
    } else if (field == "destination") {
      out.destinations = texts_of(value, field);
    } else if (field == "event-type") {
      out.selection.event_types = texts_of(value, field);
    } else if (field == "archive") {
      out.selection.archives = texts_of(value, field);
    } else if (field == "source-host") {
      out.selection.source_host = text_of(value, field);
    } else if (field == "destination-host") {
      out.selection.destination_host = text_of(value, field);
    } else if (field == "rate") {
      if (!value.is_number() || value.get<double>() <= 0) throw BadField(field, "expected a positive number");
      out.rate = value.get<double>();
    } else if (field == "reason") {
      out.reason = text_of(value, field);
    } else if (field == "dry-run") {
      if (!value.is_boolean()) throw BadField(field, "expected true or false");
      out.dry_run = value.get<bool>();
    } else {
      throw BadField(field, "unknown field (the fields are the options of gapless-replay resend: from, to, sink, "
                            "destination, event-type, archive, source-host, destination-host, rate, reason, "
                            "dry-run)");
    }
  }
  if (!from_given) throw BadField("from", "required");
  if (!to_given) throw BadField("to", "required");
  try {  // the command's checks, the body's field names
    out.sink = replay::checked_resend_sink(config, out.selection, out.sink, "");
  } catch (const replay::BadArgument& refused) {
    throw BadField(refused);
  }
  return out;
}

std::string read_token(const std::string& token_file) {
  std::ifstream file(token_file);
  std::string line;
  if (!file || !std::getline(file, line)) throw Error("http.token_file: cannot read " + token_file);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) throw Error("http.token_file: the first line of " + token_file + " is empty");
  return line;
}

bool authorized(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.substr(0, kScheme.size()) != kScheme || token.empty()) return false;
  return equal_in_constant_time(header.substr(kScheme.size()), token);
}

}  // namespace gapless::http
