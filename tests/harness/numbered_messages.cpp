#include "harness/numbered_messages.hpp"

#include "ingest/ingest.hpp"

namespace gapless::test {

journal::NewMessage numbered_message(const std::string& topic, int index, size_t body_size) {
  journal::NewMessage message;
  message.destination = "/topic/" + topic;
  message.body = "{\"index\":" + std::to_string(index) + ",\"pad\":\"";
  message.body.append(body_size > message.body.size() + 2 ? body_size - message.body.size() - 2 : 0, 'x');
  message.body += "\"}";
  message.gapless_id = ingest::derive_gapless_id(message.destination, message.body);
  message.headers = {{"event-type", topic}, {"index", std::to_string(index)}};
  return message;
}

std::vector<journal::NewMessage> messages_on(const std::vector<std::string>& topics, int per_topic,
                                             size_t body_size) {
  std::vector<journal::NewMessage> out;
  for (int i = 0; i < per_topic; ++i)
    for (const std::string& topic : topics) out.push_back(numbered_message(topic, i, body_size));
  return out;
}

}  // namespace gapless::test
