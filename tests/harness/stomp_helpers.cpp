#include "harness/stomp_helpers.hpp"

#include "core/error.hpp"
#include "stomp/uri.hpp"

namespace gapless::test {

std::unique_ptr<stomp::Connection> connect_stomp(const std::string& uri, stomp::ConnectOptions options) {
  return stomp::Connection::open(stomp::BrokerUri::parse(uri), options);
}

std::unique_ptr<stomp::Connection> connect_stomp(const std::string& uri, const std::string& login,
                                                 const std::string& passcode) {
  stomp::ConnectOptions options;
  options.login = login;
  options.passcode = passcode;
  options.connect_timeout = std::chrono::seconds(10);
  return connect_stomp(uri, options);
}

stomp::Frame make_send(const std::string& destination, std::string body, const std::string& receipt,
                       std::vector<std::pair<std::string, std::string>> extra_headers, bool persistent) {
  stomp::Frame frame{"SEND", {}, std::move(body)};
  frame.add("destination", destination);
  frame.add("receipt", receipt);
  frame.add("content-length", std::to_string(frame.body.size()));
  if (persistent) frame.add("persistent", "true");
  for (auto& [name, value] : extra_headers) frame.add(std::move(name), std::move(value));
  return frame;
}

stomp::Frame await_reply(stomp::Connection& connection, const std::string& receipt_id,
                         std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) break;
    auto frame = connection.poll(left);
    if (!frame) continue;
    if (frame->command != "RECEIPT" && frame->command != "ERROR") continue;
    const std::string* id = frame->header("receipt-id");
    if (id != nullptr && *id == receipt_id) return std::move(*frame);
  }
  throw Error("no RECEIPT or ERROR for receipt " + receipt_id + " from " + connection.uri().str() + " within " +
              std::to_string(timeout.count()) + " ms");
}

stomp::Frame send_and_await(stomp::Connection& connection, const stomp::Frame& frame,
                            std::chrono::milliseconds timeout) {
  const std::string* receipt = frame.header("receipt");
  if (receipt == nullptr) throw Error("send_and_await: the " + frame.command + " frame has no receipt header");
  std::string receipt_id = *receipt;
  connection.send(frame);
  return await_reply(connection, receipt_id, timeout);
}

}  // namespace gapless::test
