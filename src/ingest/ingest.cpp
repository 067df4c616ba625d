#include "ingest/ingest.hpp"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <optional>
#include <set>
#include <vector>

#include "core/destination_filter.hpp"
#include "core/error.hpp"
#include "core/stable_id.hpp"
#include "osg/message_time.hpp"
#include "stomp/message_rules.hpp"

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
  } catch (const json::parse_error& e) {
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

IngestResult ingest_stream(std::istream& input, std::string_view source_name, journal::Journal& journal,
                           size_t batch_size, const Config& config, const BeforeBatch& before_batch) {
  IngestResult result;
  std::vector<journal::NewMessage> batch;
  int64_t line_number = 0;
  int64_t batch_first_line = 1;
  auto flush = [&] {
    if (batch.empty()) return;
    try {
      if (before_batch) before_batch();
    } catch (const AtSizeLimit& e) {
      const std::string before = batch_first_line == 1
                                     ? std::string("nothing was journaled")
                                     : "lines 1-" + std::to_string(batch_first_line - 1) + " were journaled (" +
                                           std::to_string(result.appended) + " new messages; they stay)";
      throw AtSizeLimit("ingest: " + std::string(source_name) + ": stopped before line " +
                        std::to_string(batch_first_line) + ": " + before + ", nothing from line " +
                        std::to_string(batch_first_line) + " on: " + e.what() +
                        " (what is already journaled is skipped)");
    }
    journal::AppendResult appended = journal.append(batch);
    result.appended += appended.appended;
    result.duplicates += appended.duplicates;
    batch.clear();
  };

  std::string line;
  while (std::getline(input, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      batch.push_back(parse_message_at_the_door(line, config));
    } catch (const Error& e) {
      throw Error(std::string(source_name) + ":" + std::to_string(line_number) + ": " + e.what() +
                  "; nothing of lines " + std::to_string(batch_first_line) + "-" + std::to_string(line_number) +
                  " was journaled (" + std::to_string(result.appended) +
                  " messages before them were); mend or remove line " + std::to_string(line_number) +
                  " and run the same command again: only what is missing is added");
    }
    ++result.lines;
    if (batch.size() >= batch_size) {
      flush();
      batch_first_line = line_number + 1;
    }
  }
  if (input.bad()) throw Error(std::string(source_name) + ": read error after line " + std::to_string(line_number));
  flush();
  spdlog::info("ingest: done source={} lines={} appended={} duplicates={}", source_name, result.lines,
               result.appended, result.duplicates);
  return result;
}

}  // namespace gapless::ingest
