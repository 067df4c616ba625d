#include "ingest/ingest.hpp"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <set>

#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "core/stable_id.hpp"
#include "osg/message_time.hpp"
#include "stomp/message_rules.hpp"

// The message form's parser and the door (ingest.hpp): kept apart from
// ingest_stream so that it builds without the journal (tests/fuzz).
namespace gapless::ingest {

namespace {

using nlohmann::json;

std::string decode_base64(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::unique_ptr<EVP_ENCODE_CTX, decltype(&EVP_ENCODE_CTX_free)> context(EVP_ENCODE_CTX_new(),
                                                                        EVP_ENCODE_CTX_free);
  EVP_DecodeInit(context.get());
  int written = 0;
  int final_written = 0;
  auto* output = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_DecodeUpdate(context.get(), output, &written, reinterpret_cast<const unsigned char*>(text.data()),
                       static_cast<int>(text.size())) < 0 ||
      EVP_DecodeFinal(context.get(), output + written, &final_written) != 1)
    throw Error("body is not valid base64");
  out.resize(static_cast<size_t>(written + final_written));
  return out;
}

// A byte string serialised as JSON: each character stands for one byte.
std::string latin1_bytes(const std::string& utf8) {
  std::string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto byte = static_cast<unsigned char>(utf8[i]);
    if (byte < 0x80) {
      out += static_cast<char>(byte);
    } else if ((byte == 0xC2 || byte == 0xC3) && i + 1 < utf8.size()) {
      out += static_cast<char>(((byte & 0x03) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F));
    } else {
      throw Error("body has a character above U+00FF but is neither text nor utf8-encoded");
    }
  }
  return out;
}

std::string header_value(const std::string& name, const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  throw Error("header \"" + name + "\" must be a string or a number, not " + std::string(value.type_name()));
}

// Headers whose value the sender sets itself on every SEND.
bool sender_owned(const std::string& name) {
  static const std::set<std::string> owned = {"content-length", "receipt", "transaction", "persistent"};
  return owned.count(name) != 0;
}

std::string body_bytes(const json& message) {
  std::set<std::string> encodings;
  if (auto it = message.find("encoding"); it != message.end()) {
    if (!it->is_string()) throw Error("\"encoding\" must be a string");
    std::string list = it->get<std::string>();
    for (size_t start = 0; start <= list.size();) {
      size_t plus = list.find('+', start);
      if (plus == std::string::npos) plus = list.size();
      std::string name = list.substr(start, plus - start);
      if (name != "base64" && name != "utf8")
        throw Error("unsupported encoding \"" + name + "\" (only base64 and utf8 are accepted)");
      encodings.insert(name);
      start = plus + 1;
    }
  }
  bool text = false;
  if (auto it = message.find("text"); it != message.end()) {
    if (!it->is_boolean()) throw Error("\"text\" must be true or false");
    text = it->get<bool>();
  }
  std::string body;
  if (auto it = message.find("body"); it != message.end()) {
    if (!it->is_string()) throw Error("\"body\" must be a string");
    body = it->get<std::string>();
  }
  if (encodings.count("base64")) return decode_base64(body);
  if (text || encodings.count("utf8")) return body;
  return latin1_bytes(body);
}

// The door for a parsed line: the frame rules (stomp/message_rules.hpp) on
// every header the SEND will carry besides the sender's own, the gapless-id
// among them; then a sink must take its destination (core/destination_filter.hpp).
void check_at_the_door(const journal::NewMessage& message, const Config& config) {
  stomp::HeaderList headers = message.headers;
  headers.emplace_back("gapless-id", message.gapless_id);
  if (std::optional<std::string> refusal =
          stomp::journal_refusal(message.destination, headers, config.messages.refused_headers))
    throw Error("message refused: " + *refusal);
  if (const DestinationTakers takers = destination_takers(config.sinks, message.destination); !takers.taken())
    throw Error("message refused: " + takers.refusal);
}

}  // namespace

std::string derive_gapless_id(std::string_view destination, std::string_view body) {
  return stable_id("ingest/v1", {destination, body});
}

journal::NewMessage parse_message_line(std::string_view line) {
  json message;
  try {
    message = json::parse(line);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond a double ("1e511")
    throw Error(std::string("not valid JSON: ") + e.what());
  }
  if (!message.is_object()) throw Error("expected a JSON object with \"header\" and \"body\"");
  for (const auto& [key, value] : message.items())
    if (key != "header" && key != "body" && key != "text" && key != "encoding")
      throw Error("unknown field \"" + key + "\" (expected header, body, text, encoding)");

  journal::NewMessage out;
  auto header = message.find("header");
  if (header == message.end() || !header->is_object()) throw Error("\"header\" object is missing");
  for (const auto& [name, value] : header->items()) {
    std::string text = header_value(name, value);
    if (name == "destination")
      out.destination = text;
    else if (name == "gapless-id")
      out.gapless_id = text;
    else if (!sender_owned(name))
      out.headers.emplace_back(name, text);
  }
  if (out.destination.empty()) throw Error("header \"destination\" is missing or empty");
  out.body = body_bytes(message);
  if (out.gapless_id.empty()) out.gapless_id = derive_gapless_id(out.destination, out.body);
  out.window_ts = osg::message_time(out.headers);  // what a resend window finds it by
  return out;
}

journal::NewMessage parse_message_at_the_door(std::string_view text, const Config& config) {
  journal::NewMessage message = parse_message_line(text);
  check_at_the_door(message, config);
  return message;
}

}  // namespace gapless::ingest
