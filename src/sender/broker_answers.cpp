#include "sender/broker_answers.hpp"

#include <charconv>
#include <string_view>

#include "stomp/error_text.hpp"

namespace gapless::sender {

std::string send_receipt_id(int64_t group, size_t index) {
  return std::to_string(group) + ":" + std::to_string(index);
}

std::string commit_receipt_id(int64_t group) { return std::to_string(group) + ":commit"; }

std::optional<ParsedReceipt> parse_receipt(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  ParsedReceipt parsed;
  const char* end = text.data() + colon;
  auto [rest, error] = std::from_chars(text.data(), end, parsed.group);
  if (error != std::errc() || rest != end) return std::nullopt;
  const std::string_view tail = std::string_view(text).substr(colon + 1);
  if (tail == "commit") return parsed;
  size_t index = 0;
  auto [tail_end, tail_error] = std::from_chars(tail.data(), tail.data() + tail.size(), index);
  if (tail.empty() || tail_error != std::errc() || tail_end != tail.data() + tail.size()) return std::nullopt;
  parsed.send = index;
  return parsed;
}

Refusal classify(const std::string& words) {
  if (words.find("not authorized to write to") != std::string::npos ||
      words.find("not authorized to create") != std::string::npos ||
      words.find("ACCESS_REFUSED") != std::string::npos || words.find("access_refused") != std::string::npos ||
      words.find("is not a valid destination") != std::string::npos)
    return Refusal::destination;
  // ActiveMQ's producer flow control: "Usage Manager Memory Limit reached",
  // "... Wait Timeout", store and temp usage alike.
  if (words.find("Usage Manager") != std::string::npos) return Refusal::flow_control;
  if (words == "Processing error") return Refusal::follow_on;
  return Refusal::message;
}

const char* error_kind(const stomp::Frame& error) {
  switch (classify(stomp::error_text(error))) {
    case Refusal::destination: return "not-authorized";
    case Refusal::flow_control: return "flow-control";
    case Refusal::follow_on:
    case Refusal::message: return "refused";
  }
  return "refused";
}

bool words_name(const std::string& words, const std::string& destination) {
  if (destination.empty()) return false;
  if (words.find("'" + destination + "'") != std::string::npos) return true;
  constexpr std::string_view kTopic = "/topic/";
  if (destination.rfind(kTopic, 0) == 0)
    return words.find("topic '" + destination.substr(kTopic.size()) + "' in exchange 'amq.topic'") !=
           std::string::npos;
  constexpr std::string_view kExchange = "/exchange/";
  if (destination.rfind(kExchange, 0) == 0) {
    const std::string rest = destination.substr(kExchange.size());
    const std::string exchange = rest.substr(0, rest.find('/'));
    return words.find("exchange '" + exchange + "'") != std::string::npos;
  }
  return false;
}

}  // namespace gapless::sender
