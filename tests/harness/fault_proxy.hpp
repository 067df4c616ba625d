// A TCP proxy between gapless and the test broker that a test can make
// misbehave at any moment, as a network does: add latency, stall, cut a
// connection in the middle of a frame, or lose the connection right after a
// COMMIT reached the broker but before its RECEIPT came back.
//
//   gapless::test::FaultProxy proxy(broker.stomp_port());
//   workspace.write_config(proxy.stomp_uri(), ...);    // gapless talks to the proxy
//   proxy.cut_in_frame(FaultProxy::to_broker, "SEND", 40);
//
// Each accepted connection gets its own connection to 127.0.0.1:<target
// port>; bytes are passed on unchanged. The proxy follows each direction's
// STOMP frames with the project's own parser (stomp::Parser), only to know
// where frames begin and end and to see COMMIT and RECEIPT: it never
// rewrites one. One thread and poll(); a test thread gives the orders.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gapless::test {

class FaultProxy {
 public:
  enum Direction { to_broker = 1, to_client = 2, both = 3 };

  struct Counters {
    size_t connections = 0;   // accepted from clients so far
    size_t cuts = 0;          // cut_in_frame faults that fired
    size_t commit_drops = 0;  // drop_after_commit faults that fired
    // When each connection was accepted, and when the last one-shot fault fired:
    // a test measures how long the client took to come back after a fault.
    std::vector<std::chrono::steady_clock::time_point> accepted{};
    std::chrono::steady_clock::time_point last_fired{};
  };

  // Listens on a free loopback port at once. Throws gapless::Error.
  explicit FaultProxy(uint16_t target_port);
  ~FaultProxy();  // closes every connection
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port() const;
  std::string stomp_uri() const;  // "stomp://127.0.0.1:PORT"

  // Bytes read from now on in `direction` are passed on `latency` later, on
  // every connection, open or future. Zero: at once again.
  void delay(Direction direction, std::chrono::milliseconds latency);
  // The connections open now stop passing bytes in `direction`. They stop
  // reading too, so TCP pushes back on the writer, and stay open, as a
  // connection whose path died without a FIN or RST. Connections accepted
  // later flow: the client recovers only by noticing and reconnecting.
  void stall(Direction direction);
  // One shot: the next `command` frame (any frame when empty) to start in
  // `direction`, on any connection, has its first `bytes` passed on, then
  // both sides are closed. While armed, only whole frames are passed on in
  // that direction (a frame is held until it is complete), so the cut can
  // land exactly inside the one chosen.
  void cut_in_frame(Direction direction, std::string command, size_t bytes);
  // One shot: the next COMMIT that asks for a receipt reaches the broker;
  // everything the broker sends on that connection after it is held back,
  // and once the broker's RECEIPT for the COMMIT arrives (the transaction
  // is committed) both sides are closed, so the client never learns it.
  void drop_after_commit();

  Counters counters() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace gapless::test
