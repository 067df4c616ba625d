// One STOMP 1.2 connection over TCP or TLS (OpenSSL).
//
// The socket is non-blocking and the connection never blocks longer than the
// caller allows: frames to send go to an outgoing buffer that `poll()` flushes
// while it also reads, so a broker that stops reading (producer flow control)
// can never deadlock us against its own writes of receipts, and a frozen broker
// cannot hold up a shutdown. `send()` only queues: a transaction of hundreds
// of frames then leaves in a few large writes instead of one syscall (and one
// wake-up of the broker) per frame.
//
// Heart-beats (spec 1.6): we offer `heartbeat` in both directions; we send an
// EOL when nothing was written for half the negotiated interval, and declare
// the broker dead after twice its negotiated interval plus a margin of silence
// (ActiveMQ's own beats jitter up to 2x, docs/stomp-activemq.md 2.7).
//
// TLS: the server certificate and host name are verified against `ca_file`
// (or the system store) unless verification is explicitly switched off; a
// client certificate and key are presented when given.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "stomp/frame.hpp"
#include "stomp/uri.hpp"

namespace gapless::stomp {

// Anything that ends the connection: refused, TLS failure, EOF, heart-beat
// silence, protocol error, ERROR in reply to CONNECT. The message names the broker.
class ConnectionError : public Error {
 public:
  using Error::Error;
};

struct ConnectOptions {
  std::string login;
  std::string passcode;  // never logged
  std::string virtual_host;  // empty: the URI's host
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify_peer = true;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds heartbeat{10'000};  // 0: no heart-beats
  std::string client_id;  // ActiveMQ `client-id` (durable subscriptions); empty: none
  Limits limits;
};

class Connection {
 public:
  // TCP (+TLS handshake) and CONNECT -> CONNECTED within connect_timeout.
  static std::unique_ptr<Connection> open(const BrokerUri& uri, const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues the frame; nothing is written until flush() or poll(). Throws
  // ProtocolError for a frame that cannot be encoded (nothing is queued then),
  // ConnectionError after disconnect().
  void send(const Frame& frame);

  // Writes as much of the queued output as the socket takes now, without
  // waiting; poll() writes the rest. A failed write surfaces from the next
  // poll(), after any frames the broker sent before it went away. Throws
  // ConnectionError after disconnect().
  void flush();

  // Flushes queued output, sends heart-beats when due, reads; returns the next
  // frame from the broker (never a heart-beat) or nothing when `timeout`
  // passes first. Throws ConnectionError when the broker closed, went silent
  // past its heart-beat, or sent bytes that are not STOMP.
  std::optional<Frame> poll(std::chrono::milliseconds timeout);

  // Bytes queued but not yet written to the socket.
  size_t pending_output() const;

  // DISCONNECT with a receipt, wait for it at most `timeout`, close. Never throws.
  void disconnect(std::chrono::milliseconds timeout);

  const BrokerUri& uri() const;
  const std::string& server() const;   // CONNECTED `server`
  const std::string& session() const;  // CONNECTED `session`
  std::chrono::milliseconds send_heartbeat_interval() const;     // negotiated, 0 = none
  std::chrono::milliseconds receive_heartbeat_interval() const;  // negotiated, 0 = none

 private:
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gapless::stomp
