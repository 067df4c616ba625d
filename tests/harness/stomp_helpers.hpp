// Raw STOMP for tests that talk to the broker directly (as a producer, or to
// check what the broker says), over gapless's own stomp::Connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "stomp/connection.hpp"
#include "stomp/frame.hpp"

namespace gapless::test {

// CONNECT to `uri` ("stomp://..." or "stomp+ssl://...") with `options`
// (login, passcode, certificates...); throws stomp::ConnectionError.
std::unique_ptr<stomp::Connection> connect_stomp(const std::string& uri, stomp::ConnectOptions options);
// CONNECT as login/passcode with default options otherwise.
std::unique_ptr<stomp::Connection> connect_stomp(const std::string& uri, const std::string& login,
                                                 const std::string& passcode);

// A SEND with a `receipt` header and content-length (so a body with NULs
// survives and the broker makes it a BytesMessage); `persistent:true` unless
// told otherwise. Extra headers are added after those.
stomp::Frame make_send(const std::string& destination, std::string body, const std::string& receipt,
                       std::vector<std::pair<std::string, std::string>> extra_headers = {},
                       bool persistent = true);

// Polls until the broker answers the frame that carried `receipt_id`: the
// RECEIPT, or an ERROR with that receipt-id. Other frames are dropped.
// Throws gapless::Error after `timeout`.
stomp::Frame await_reply(stomp::Connection& connection, const std::string& receipt_id,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Sends `frame` (which must carry a receipt header) and waits for its reply.
stomp::Frame send_and_await(stomp::Connection& connection, const stomp::Frame& frame,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace gapless::test
