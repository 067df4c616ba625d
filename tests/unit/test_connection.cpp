// Proves the STOMP client does what the protocol asks of it with every byte a peer sends, good or bad.
//
// The client's behaviour against a tiny STOMP peer on 127.0.0.1 that runs a
// script per test. The peer is not a broker model: each test scripts exactly
// the bytes it needs and checks what our side did with them.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "stomp/connection.hpp"

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using Clock = std::chrono::steady_clock;
using Catch::Contains;
using gapless::stomp::BrokerUri;
using gapless::stomp::Connection;
using gapless::stomp::ConnectionError;
using gapless::stomp::ConnectOptions;
using gapless::stomp::Frame;
using gapless::stomp::Parser;

// The peer's end of one accepted connection, plain or TLS. Every read is
// bounded, so a client bug fails the test instead of hanging it.
class PeerLink {
 public:
  PeerLink(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

  Frame read_frame(std::chrono::milliseconds timeout = 2s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto frame = parser_.next()) return *frame;
      std::string bytes = read_some(deadline);
      if (bytes.empty()) throw std::runtime_error(eof_ ? "client closed before a whole frame" : "no frame from client");
      parser_.feed(bytes);
    }
  }

  // Everything that arrives until `deadline` (or EOF), unparsed.
  std::string read_raw_until(Clock::time_point deadline) {
    std::string all;
    while (Clock::now() < deadline) {
      std::string bytes = read_some(deadline);
      if (bytes.empty()) break;
      all += bytes;
    }
    return all;
  }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const long n = ssl_ ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                          : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("peer write failed");
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  void write_frame(const Frame& frame) {
    std::string bytes;
    encode(frame, bytes);
    write(bytes);
  }

  // Discards input until the client closes; false if it did not in time.
  bool wait_for_close(std::chrono::milliseconds timeout = 2s) {
    read_raw_until(Clock::now() + timeout);
    return eof_;
  }

 private:
  // Some bytes; empty at EOF or when the deadline passes.
  std::string read_some(Clock::time_point deadline) {
    if (eof_) return {};
    if (!ssl_ || SSL_pending(ssl_) == 0) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd entry{fd_, POLLIN, 0};
      if (::poll(&entry, 1, static_cast<int>(std::max<long long>(wait.count(), 0))) <= 0) return {};
    }
    std::array<char, 65536> buffer{};
    const long n = ssl_ ? SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()))
                        : ::recv(fd_, buffer.data(), buffer.size(), 0);
    if (n <= 0) {
      eof_ = true;
      return {};
    }
    return std::string(buffer.data(), static_cast<size_t>(n));
  }

  int fd_;
  SSL* ssl_;
  Parser parser_;
  bool eof_ = false;
};

// A listening socket on 127.0.0.1 and a thread that accepts one client and
// runs `script` on it. Results are read by the test after finish().
class TestPeer {
 public:
  using Script = std::function<void(PeerLink&)>;

  explicit TestPeer(Script script, SSL_CTX* tls = nullptr) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("test peer cannot listen");
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, script = std::move(script), tls] { run(script, tls); });
  }

  ~TestPeer() {
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  BrokerUri uri(bool tls = false, std::string host = "127.0.0.1") const { return BrokerUri{tls, host, port_}; }

  // Waits for the script; returns what went wrong in it, empty if nothing.
  std::string finish() {
    if (thread_.joinable()) thread_.join();
    return error_;
  }
  const std::string& tls_failure() const { return tls_failure_; }
  const std::string& client_subject() const { return client_subject_; }

 private:
  void run(const Script& script, SSL_CTX* tls) {
    pollfd entry{listen_fd_, POLLIN, 0};
    if (::poll(&entry, 1, 5000) <= 0) {
      error_ = "no client connected";
      return;
    }
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      error_ = "accept failed";
      return;
    }
    const timeval limit{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    SSL* ssl = tls ? SSL_new(tls) : nullptr;
    if (ssl) {
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) {
        tls_failure_ = "TLS accept failed: " + std::to_string(ERR_get_error());
        ERR_clear_error();
        SSL_free(ssl);
        ::close(fd);
        return;
      }
      if (X509* cert = SSL_get1_peer_certificate(ssl)) {
        std::array<char, 256> name{};
        X509_NAME_oneline(X509_get_subject_name(cert), name.data(), name.size());
        client_subject_ = name.data();
        X509_free(cert);
      }
    }
    try {
      PeerLink link(fd, ssl);
      script(link);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    SSL_free(ssl);
    ::close(fd);
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string error_;
  std::string tls_failure_;
  std::string client_subject_;
};

ConnectOptions quick_options() {
  ConnectOptions options;
  options.connect_timeout = 2s;
  options.heartbeat = 0ms;
  return options;
}

Frame connected_frame(std::optional<std::string> heart_beat = "0,0") {
  Frame frame{"CONNECTED", {{"version", "1.2"}, {"server", "TestPeer/1.0"}, {"session", "session-7"}}, {}};
  if (heart_beat) frame.add("heart-beat", *heart_beat);
  return frame;
}

// The start of most scripts: read CONNECT, answer CONNECTED.
Frame accept_connect(PeerLink& link, std::optional<std::string> heart_beat = "0,0") {
  Frame connect = link.read_frame();
  link.write_frame(connected_frame(heart_beat));
  return connect;
}

std::string open_error(const BrokerUri& uri, const ConnectOptions& options) {
  try {
    Connection::open(uri, options);
  } catch (const ConnectionError& e) {
    return e.what();
  }
  return "no error";
}

std::string poll_error(Connection& connection, std::chrono::milliseconds timeout) {
  try {
    auto frame = connection.poll(timeout);
    return frame ? "got " + frame->command : "timed out";
  } catch (const ConnectionError& e) {
    return e.what();
  }
}

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

std::string header_or(const Frame& frame, std::string_view name, std::string fallback = "(none)") {
  const std::string* value = frame.header(name);
  return value ? *value : fallback;
}

}  // namespace

TEST_CASE("open sends CONNECT with version, host, heart-beat and credentials", "[stomp][connection]") {
  Frame connect;
  TestPeer peer([&](PeerLink& link) {
    connect = accept_connect(link);
    link.wait_for_close();
  });
  ConnectOptions options = quick_options();
  options.login = "writer";
  options.passcode = "s3cret";
  options.client_id = "collector-1";
  options.heartbeat = 1500ms;
  auto connection = Connection::open(peer.uri(), options);
  CHECK(connection->server() == "TestPeer/1.0");
  CHECK(connection->session() == "session-7");
  CHECK(connection->uri().str() == peer.uri().str());
  connection.reset();
  REQUIRE(peer.finish().empty());

  CHECK(connect.command == "CONNECT");
  CHECK(header_or(connect, "accept-version") == "1.2");
  CHECK(header_or(connect, "host") == "127.0.0.1");
  CHECK(header_or(connect, "heart-beat") == "1500,1500");
  CHECK(header_or(connect, "login") == "writer");
  CHECK(header_or(connect, "passcode") == "s3cret");
  CHECK(header_or(connect, "client-id") == "collector-1");
}

TEST_CASE("CONNECT names the virtual host and leaves out empty credentials", "[stomp][connection]") {
  Frame connect;
  TestPeer peer([&](PeerLink& link) {
    connect = accept_connect(link);
    link.wait_for_close();
  });
  ConnectOptions options = quick_options();
  options.virtual_host = "vhost-a";
  Connection::open(peer.uri(), options).reset();
  REQUIRE(peer.finish().empty());
  CHECK(header_or(connect, "host") == "vhost-a");
  CHECK(header_or(connect, "heart-beat") == "0,0");
  CHECK(connect.header("login") == nullptr);
  CHECK(connect.header("passcode") == nullptr);
  CHECK(connect.header("client-id") == nullptr);
}

TEST_CASE("heart-beat intervals are negotiated as in spec 1.6", "[stomp][connection]") {
  struct Case {
    std::chrono::milliseconds ours;
    std::optional<std::string> theirs;
    std::chrono::milliseconds send;
    std::chrono::milliseconds receive;
  };
  const Case cases[] = {
      {300ms, "500,100", 300ms, 500ms},  // each direction runs at the slower side's rate
      {300ms, "0,300", 300ms, 0ms},      // the broker cannot send beats
      {300ms, "100,0", 0ms, 300ms},      // the broker does not want beats
      {300ms, std::nullopt, 0ms, 0ms},   // no header means 0,0
      {0ms, "500,500", 0ms, 0ms},        // we offer none
  };
  for (const Case& c : cases) {
    INFO("ours " << c.ours.count() << " theirs " << c.theirs.value_or("(none)"));
    TestPeer peer([&](PeerLink& link) {
      accept_connect(link, c.theirs);
      link.wait_for_close();
    });
    ConnectOptions options = quick_options();
    options.heartbeat = c.ours;
    auto connection = Connection::open(peer.uri(), options);
    CHECK(connection->send_heartbeat_interval() == c.send);
    CHECK(connection->receive_heartbeat_interval() == c.receive);
    connection.reset();
    CHECK(peer.finish().empty());
  }
}

TEST_CASE("a CONNECTED that is not STOMP 1.2 or has a bad heart-beat is refused", "[stomp][connection]") {
  SECTION("version") {
    TestPeer peer([&](PeerLink& link) {
      link.read_frame();
      link.write_frame(Frame{"CONNECTED", {{"version", "1.1"}}, {}});
      link.wait_for_close();
    });
    CHECK_THAT(open_error(peer.uri(), quick_options()), Contains("does not speak STOMP 1.2"));
  }
  SECTION("heart-beat") {
    TestPeer peer([&](PeerLink& link) {
      accept_connect(link, "abc");
      link.wait_for_close();
    });
    CHECK_THAT(open_error(peer.uri(), quick_options()), Contains("invalid heart-beat header in CONNECTED: \"abc\""));
  }
  SECTION("another frame") {
    TestPeer peer([&](PeerLink& link) {
      link.read_frame();
      link.write_frame(Frame{"RECEIPT", {{"receipt-id", "1"}}, {}});
      link.wait_for_close();
    });
    CHECK_THAT(open_error(peer.uri(), quick_options()), Contains("expected CONNECTED, got RECEIPT"));
  }
}

TEST_CASE("ERROR in reply to CONNECT is a ConnectionError with the broker's words", "[stomp][connection]") {
  ConnectOptions options = quick_options();
  options.login = "writer";
  options.passcode = "s3cret-pw";

  SECTION("message and body") {
    TestPeer peer([&](PeerLink& link) {
      link.read_frame();
      link.write_frame(Frame{"ERROR",
                             {{"message", "Authentication failed: User name [writer] or password is invalid."}},
                             "java.lang.SecurityException: User name [writer] or password is invalid.\n\tat Foo\n"});
      link.wait_for_close();
    });
    const std::string message = open_error(peer.uri(), options);
    CHECK_THAT(message, Contains("broker " + peer.uri().str()));
    CHECK_THAT(message, Contains("refused CONNECT: Authentication failed: User name [writer] or password is invalid."));
    CHECK_THAT(message, Contains("java.lang.SecurityException"));
    CHECK_THAT(message, !Contains("s3cret-pw"));
  }
  SECTION("an echoed passcode is redacted") {
    TestPeer peer([&](PeerLink& link) {
      link.read_frame();
      link.write_frame(Frame{"ERROR", {{"message", "bad password s3cret-pw"}}, {}});
      link.wait_for_close();
    });
    const std::string message = open_error(peer.uri(), options);
    CHECK_THAT(message, Contains("bad password ***"));
    CHECK_THAT(message, !Contains("s3cret-pw"));
  }
}

TEST_CASE("EOF before CONNECTED says so", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) { link.read_frame(); });
  const std::string message = open_error(peer.uri(), quick_options());
  CHECK_THAT(message, Contains("broker closed the connection before CONNECTED"));
  CHECK_THAT(message, Contains(peer.uri().str()));
  CHECK(peer.finish().empty());
}

TEST_CASE("open gives up when the broker accepts but never answers", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) {
    link.read_frame();
    link.wait_for_close(3s);
  });
  ConnectOptions options = quick_options();
  options.connect_timeout = 300ms;
  const auto start = Clock::now();
  const std::string message = open_error(peer.uri(), options);
  const auto elapsed = since(start);
  CHECK_THAT(message, Contains("timed out after 300 ms waiting for CONNECTED"));
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 1500ms);
  CHECK(peer.finish().empty());
}

TEST_CASE("a refused TCP connection names the broker", "[stomp][connection]") {
  // A port that was free a moment ago: nothing listens on it.
  const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  ::close(probe);
  const BrokerUri uri{false, "127.0.0.1", ntohs(address.sin_port)};
  const std::string message = open_error(uri, quick_options());
  CHECK_THAT(message, Contains("broker " + uri.str() + ": cannot connect"));
  CHECK_THAT(message, Contains("refused"));
}

TEST_CASE("a broker silent beyond its heart-beat window is declared dead", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link, "200,200");
    link.wait_for_close(4s);
  });
  ConnectOptions options = quick_options();
  options.heartbeat = 200ms;
  auto connection = Connection::open(peer.uri(), options);
  REQUIRE(connection->receive_heartbeat_interval() == 200ms);
  const auto start = Clock::now();
  const std::string message = poll_error(*connection, 3s);
  const auto elapsed = since(start);
  // Dead after 2 x 200 ms + 1 s of silence.
  CHECK_THAT(message, Contains("no data from broker for 14") && Contains("heart-beat interval 200 ms"));
  CHECK(elapsed >= 1200ms);
  CHECK(elapsed < 2200ms);
  CHECK_THAT(poll_error(*connection, 0ms), Contains("no data from broker"));
  connection.reset();
  CHECK(peer.finish().empty());
}

TEST_CASE("heart-beats flow both ways while the connection is idle", "[stomp][connection]") {
  size_t beats_received = 0;
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link, "200,200");
    const auto end = Clock::now() + 1200ms;
    std::string received;
    while (Clock::now() < end) {
      link.write("\n");
      received += link.read_raw_until(std::min(end, Clock::now() + 100ms));
    }
    beats_received = static_cast<size_t>(std::count(received.begin(), received.end(), '\n'));
    link.wait_for_close();
  });
  ConnectOptions options = quick_options();
  options.heartbeat = 200ms;
  auto connection = Connection::open(peer.uri(), options);
  REQUIRE(connection->send_heartbeat_interval() == 200ms);
  // 1.6 s is past the 1.4 s silence limit: only the peer's beats keep us alive.
  const auto until = Clock::now() + 1600ms;
  while (Clock::now() < until) REQUIRE_FALSE(connection->poll(100ms));
  connection.reset();
  REQUIRE(peer.finish().empty());
  // We beat every 100 ms (half the interval) over the peer's 1.2 s.
  CHECK(beats_received >= 6);
  CHECK(beats_received <= 16);
}

TEST_CASE("EOF after CONNECTED is a ConnectionError", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) { accept_connect(link); });
  auto connection = Connection::open(peer.uri(), quick_options());
  const std::string message = poll_error(*connection, 2s);
  CHECK(message == "broker " + peer.uri().str() + ": broker closed the connection");
  CHECK(peer.finish().empty());
}

TEST_CASE("frames the broker sent before closing are returned before the EOF", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) {
    link.read_frame();
    // One write and a close: open() is likely to read CONNECTED, ERROR and the
    // EOF in one go, and must still call it an EOF after CONNECTED.
    std::string bytes;
    encode(connected_frame(), bytes);
    encode(Frame{"ERROR", {{"message", "bye: now"}}, {}}, bytes);
    link.write(bytes);
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  REQUIRE(peer.finish().empty());
  auto error = connection->poll(2s);
  REQUIRE(error);
  CHECK(error->command == "ERROR");
  CHECK(header_or(*error, "message") == "bye: now");
  CHECK(poll_error(*connection, 2s) == "broker " + peer.uri().str() + ": broker closed the connection");
}

TEST_CASE("a frame split across many tiny writes is returned whole", "[stomp][connection]") {
  std::string bytes;
  encode(Frame{"MESSAGE", {{"destination", "/topic/a"}, {"message-id", "ID:1"}}, std::string("he\0lo", 5)}, bytes);
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link);
    for (char c : bytes) {
      link.write(std::string_view(&c, 1));
      std::this_thread::sleep_for(1ms);
    }
    link.wait_for_close();
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  auto frame = connection->poll(3s);
  REQUIRE(frame);
  CHECK(frame->command == "MESSAGE");
  CHECK(header_or(*frame, "message-id") == "ID:1");
  CHECK(frame->body == std::string("he\0lo", 5));
  connection.reset();
  CHECK(peer.finish().empty());
}

TEST_CASE("frames that arrive together are returned one per poll", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link);
    link.write("RECEIPT\nreceipt-id:1\n\n\0\nRECEIPT\nreceipt-id:2\n\n\0\n\nRECEIPT\nreceipt-id:3\n\n\0\n"s);
    link.wait_for_close();
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  for (const char* id : {"1", "2", "3"}) {
    auto frame = connection->poll(2s);
    REQUIRE(frame);
    CHECK(header_or(*frame, "receipt-id") == id);
  }
  CHECK_FALSE(connection->poll(100ms));
  connection.reset();
  CHECK(peer.finish().empty());
}

TEST_CASE("send queues what the socket does not take and poll flushes it", "[stomp][connection]") {
  const std::string body(16 * 1024 * 1024, 'b');
  bool body_intact = false;
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link);
    std::this_thread::sleep_for(200ms);  // not reading yet: the client must buffer
    Frame send = link.read_frame(5s);
    body_intact = send.body == body;
    link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(send, "receipt")}}, {}});
    link.wait_for_close();
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  connection->send(Frame{"SEND", {{"destination", "/queue/big"}, {"receipt", "big-1"}}, body});
  CHECK(connection->pending_output() > 0);
  auto receipt = connection->poll(5s);
  REQUIRE(receipt);
  CHECK(receipt->command == "RECEIPT");
  CHECK(header_or(*receipt, "receipt-id") == "big-1");
  CHECK(connection->pending_output() == 0);
  connection.reset();
  REQUIRE(peer.finish().empty());
  CHECK(body_intact);
}

TEST_CASE("bytes that are not STOMP end the connection with the reason", "[stomp][connection]") {
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link);
    link.write("MESSAGE\nbad:\\x\n\n\0"s);
    link.wait_for_close();
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  CHECK_THAT(poll_error(*connection, 2s), Contains("broker sent invalid STOMP") && Contains("undefined escape \\x"));
  connection.reset();
  CHECK(peer.finish().empty());
}

TEST_CASE("disconnect sends DISCONNECT and waits for its RECEIPT", "[stomp][connection]") {
  Frame disconnect;
  bool closed_after_receipt = false;
  TestPeer peer([&](PeerLink& link) {
    accept_connect(link);
    disconnect = link.read_frame();
    std::this_thread::sleep_for(300ms);
    link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(disconnect, "receipt")}}, {}});
    closed_after_receipt = link.wait_for_close();
  });
  auto connection = Connection::open(peer.uri(), quick_options());
  const auto start = Clock::now();
  connection->disconnect(2s);
  const auto elapsed = since(start);
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 1500ms);
  CHECK_THAT(poll_error(*connection, 0ms), Contains("connection is closed"));
  CHECK_THROWS_AS(connection->send(Frame{"BEGIN", {{"transaction", "t"}}, {}}), ConnectionError);
  connection->disconnect(1s);  // a second call is harmless
  REQUIRE(peer.finish().empty());
  CHECK(disconnect.command == "DISCONNECT");
  CHECK(disconnect.header("receipt") != nullptr);
  CHECK(closed_after_receipt);
}

TEST_CASE("disconnect gives up after its timeout and never throws", "[stomp][connection]") {
  SECTION("no RECEIPT") {
    TestPeer peer([&](PeerLink& link) {
      accept_connect(link);
      link.read_frame();
      link.wait_for_close(3s);
    });
    auto connection = Connection::open(peer.uri(), quick_options());
    const auto start = Clock::now();
    CHECK_NOTHROW(connection->disconnect(300ms));
    const auto elapsed = since(start);
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 1500ms);
    CHECK(peer.finish().empty());
  }
  SECTION("broker already gone") {
    TestPeer peer([&](PeerLink& link) { accept_connect(link); });
    auto connection = Connection::open(peer.uri(), quick_options());
    REQUIRE(peer.finish().empty());
    const auto start = Clock::now();
    CHECK_NOTHROW(connection->disconnect(2s));
    CHECK(since(start) < 1000ms);
  }
}

// ------------------------------------------------------------------ TLS

namespace {

// A throwaway CA, server certificates (one for 127.0.0.1/localhost, one for
// another name), a client certificate and an unrelated CA, made once per run
// with the openssl command.
class TestPki {
 public:
  TestPki() {
    char pattern[] = "/tmp/gapless-stomp-pki-XXXXXX";
    if (!mkdtemp(pattern)) return;
    dir_ = pattern;
    std::ofstream(dir_ / "pki.cnf") << "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n"
                                       "[ca]\nbasicConstraints = critical,CA:TRUE\n"
                                       "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
                                       "[server]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
                                       "subjectAltName = IP:127.0.0.1,DNS:localhost\n"
                                       "[elsewhere]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
                                       "subjectAltName = DNS:elsewhere.invalid\n"
                                       "[client]\nbasicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n";
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script =
        "cd '" + dir_.string() + "' && " +
        "openssl req -x509 -config pki.cnf -extensions ca" + key +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=gapless-test-ca && " +
        "openssl req -x509 -config pki.cnf -extensions ca" + key +
        " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=gapless-other-ca && " +
        issue("server", "127.0.0.1", key) + " && " + issue("elsewhere", "elsewhere.invalid", key) + " && " +
        issue("client", "gapless-test-client", key);
    ok_ = std::system(("(" + script + ") > '" + dir_.string() + "/openssl.log' 2>&1").c_str()) == 0;
  }
  ~TestPki() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  static std::string issue(const std::string& name, const std::string& common_name, const std::string& key) {
    return "openssl req -new -config pki.cnf" + key + " -keyout " + name + ".key -out " + name + ".csr -subj /CN=" +
           common_name + " && openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -set_serial " +
           std::to_string(std::hash<std::string>{}(name) % 100000 + 2) + " -days 2 -extfile pki.cnf -extensions " +
           name + " -out " + name + ".pem";
  }

  std::filesystem::path dir_;
  bool ok_ = false;
};

const TestPki& pki() {
  static TestPki instance;
  return instance;
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using ServerContext = std::unique_ptr<SSL_CTX, SslCtxFree>;

ServerContext server_context(const std::string& name, bool require_client_cert = false) {
  const TestPki& keys = pki();
  ServerContext ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx);
  REQUIRE(SSL_CTX_use_certificate_chain_file(ctx.get(), keys.path(name + ".pem").c_str()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), keys.path(name + ".key").c_str(), SSL_FILETYPE_PEM) == 1);
  if (require_client_cert) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    REQUIRE(SSL_CTX_load_verify_locations(ctx.get(), keys.path("ca.pem").c_str(), nullptr) == 1);
  }
  return ctx;
}

// CONNECT, CONNECTED, then answer DISCONNECT with its RECEIPT.
void connect_then_disconnect(PeerLink& link) {
  accept_connect(link);
  Frame disconnect = link.read_frame();
  link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(disconnect, "receipt")}}, {}});
  link.wait_for_close();
}

}  // namespace

TEST_CASE("TLS verifies the broker and presents our certificate", "[stomp][connection][tls]") {
  const TestPki& keys = pki();
  if (!keys.ok()) {
    WARN("openssl command failed or missing; TLS tests skipped");
    return;
  }
  ConnectOptions options = quick_options();
  options.ca_file = keys.path("ca.pem");

  SECTION("verified connection to an IP address, frames larger than a TLS record both ways") {
    const std::string big(200'000, 'm');
    std::string received_body;
    auto ctx = server_context("server");
    TestPeer peer(
        [&](PeerLink& link) {
          accept_connect(link);
          link.write_frame(Frame{"MESSAGE", {{"destination", "/topic/t"}, {"message-id", "1"}}, big});
          Frame send = link.read_frame();
          received_body = send.body;
          link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(send, "receipt")}}, {}});
          Frame disconnect = link.read_frame();
          link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(disconnect, "receipt")}}, {}});
          link.wait_for_close();
        },
        ctx.get());
    auto connection = Connection::open(peer.uri(true), options);
    auto message = connection->poll(2s);
    REQUIRE(message);
    CHECK(message->body == big);
    connection->send(Frame{"SEND", {{"destination", "/queue/q"}, {"receipt", "r1"}}, big + "!"});
    auto receipt = connection->poll(2s);
    REQUIRE(receipt);
    CHECK(header_or(*receipt, "receipt-id") == "r1");
    connection->disconnect(2s);
    REQUIRE(peer.finish().empty());
    CHECK(received_body == big + "!");
  }

  SECTION("frames queued behind a slow reader go out whole over TLS") {
    const std::string body(8 * 1024 * 1024, 't');
    bool intact = false;
    auto ctx = server_context("server");
    TestPeer peer(
        [&](PeerLink& link) {
          accept_connect(link);
          std::this_thread::sleep_for(200ms);
          Frame first = link.read_frame(5s);
          Frame second = link.read_frame(5s);
          intact = first.body == body && second.body == "small";
          link.write_frame(Frame{"RECEIPT", {{"receipt-id", header_or(second, "receipt")}}, {}});
          link.wait_for_close();
        },
        ctx.get());
    auto connection = Connection::open(peer.uri(true), options);
    connection->send(Frame{"SEND", {{"destination", "/queue/q"}}, body});
    CHECK(connection->pending_output() > 0);
    // Queued while an SSL_write is waiting to be retried on the same bytes.
    connection->send(Frame{"SEND", {{"destination", "/queue/q"}, {"receipt", "r2"}}, "small"});
    auto receipt = connection->poll(5s);
    REQUIRE(receipt);
    CHECK(header_or(*receipt, "receipt-id") == "r2");
    connection.reset();
    REQUIRE(peer.finish().empty());
    CHECK(intact);
  }

  SECTION("a DNS name is checked against the certificate") {
    auto ctx = server_context("server");
    TestPeer peer(connect_then_disconnect, ctx.get());
    auto connection = Connection::open(peer.uri(true, "localhost"), options);
    connection->disconnect(2s);
    CHECK(peer.finish().empty());
  }

  SECTION("a certificate from another CA is refused") {
    auto ctx = server_context("server");
    TestPeer peer(connect_then_disconnect, ctx.get());
    options.ca_file = keys.path("other-ca.pem");
    const std::string message = open_error(peer.uri(true), options);
    CHECK_THAT(message, Contains("TLS handshake failed") && Contains("certificate verify failed"));
    CHECK_THAT(message, Contains("broker " + peer.uri(true).str()));
  }

  SECTION("a certificate for another host name is refused") {
    auto ctx = server_context("elsewhere");
    TestPeer peer(connect_then_disconnect, ctx.get());
    const std::string message = open_error(peer.uri(true), options);
    CHECK_THAT(message, Contains("certificate verify failed") && Contains("mismatch"));
  }

  SECTION("verification can be switched off") {
    auto ctx = server_context("elsewhere");
    TestPeer peer(connect_then_disconnect, ctx.get());
    options.ca_file = keys.path("other-ca.pem");
    options.verify_peer = false;
    auto connection = Connection::open(peer.uri(true), options);
    connection->disconnect(2s);
    CHECK(peer.finish().empty());
  }

  SECTION("the client certificate is presented when configured") {
    auto ctx = server_context("server", true);
    TestPeer peer(connect_then_disconnect, ctx.get());
    options.cert_file = keys.path("client.pem");
    options.key_file = keys.path("client.key");
    auto connection = Connection::open(peer.uri(true), options);
    connection->disconnect(2s);
    REQUIRE(peer.finish().empty());
    CHECK_THAT(peer.client_subject(), Contains("CN=gapless-test-client"));
  }

  SECTION("a broker that requires a client certificate refuses us without one") {
    auto ctx = server_context("server", true);
    TestPeer peer(connect_then_disconnect, ctx.get());
    const std::string message = open_error(peer.uri(true), options);
    CHECK_THAT(message, Contains("broker " + peer.uri(true).str()));
    // TLS 1.3 finishes the client's handshake before the server checks the
    // certificate, so the refusal shows up while waiting for CONNECTED.
    CHECK_THAT(message, Contains("before CONNECTED") || Contains("TLS handshake failed"));
    peer.finish();
    CHECK_FALSE(peer.tls_failure().empty());
  }

  SECTION("unreadable TLS files are reported before any connection attempt") {
    const BrokerUri nowhere{true, "127.0.0.1", 1};
    options.cert_file = keys.path("missing.pem");
    CHECK_THAT(open_error(nowhere, options), Contains("cannot load client certificate " + options.cert_file));
    options.cert_file = keys.path("client.pem");
    options.key_file = keys.path("server.key");
    CHECK_THAT(open_error(nowhere, options), Contains("cannot load client key") && Contains("key values mismatch"));
    options = quick_options();
    options.ca_file = keys.path("missing-ca.pem");
    CHECK_THAT(open_error(nowhere, options), Contains("cannot load CA certificates from " + options.ca_file));
  }
}
