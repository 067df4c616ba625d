// Proves a stomp+ssl broker whose certificate expired, or names another host, is refused with the reason in the log, before CONNECT.
//
// The refusal is gapless's own (its OpenSSL client verifies the chain, the
// dates and the host), so the peer here is a bare TLS listener, not ActiveMQ
// with another keystore: it presents the certificate, records whether the
// handshake completed and every byte it then received, and never answers.
// The same listener with the valid broker certificate receives the CONNECT
// frame: the control that shows a refusal is the certificate's doing. One
// case with the real ActiveMQ, restarted with the expired certificate in its
// keystore, shows the same refusal against the broker itself.
//   build/tests/integration/integration-tests '[tls-refusals]'
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "harness/broker.hpp"
#include "harness/numbered_messages.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/tls_material.hpp"
#include "harness/workspace.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using gapless::test::eventually;
using gapless::test::Process;
using gapless::test::Workspace;

namespace {

// A TLS server on 127.0.0.1 that serves one connection at a time: the
// handshake, then whatever the client sends until it closes or 1 s of silence.
class TlsListener {
 public:
  TlsListener(const std::filesystem::path& cert, const std::filesystem::path& key) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_ != nullptr);
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 8) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsListener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsListener(const TlsListener&) = delete;
  TlsListener& operator=(const TlsListener&) = delete;

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  int handshakes() const { return handshakes_; }
  std::string received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd waiting{fd_, POLLIN, 0};
      if (::poll(&waiting, 1, 100) != 1) continue;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++connections_;
      const timeval second{1, 0};
      ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, client);
      if (SSL_accept(ssl) == 1) {
        ++handshakes_;
        char buffer[4096];
        int n = 0;
        while (!stop_ && (n = SSL_read(ssl, buffer, sizeof buffer)) > 0) {
          std::lock_guard lock(mutex_);
          received_.append(buffer, static_cast<size_t>(n));
        }
      }
      SSL_free(ssl);
      ::close(client);
    }
  }

  SSL_CTX* ctx_ = nullptr;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> handshakes_{0};
  mutable std::mutex mutex_;
  std::string received_;
};

struct Refusal {
  const char* what;
  const char* host;  // in the broker URI
  bool expired;      // else: the certificate for other.example
  const char* reason;
};

}  // namespace

TEST_CASE("stomp+ssl: an expired broker certificate, or one for another host, is refused with the reason logged and "
          "nothing sent",
          "[tls-refusals]") {
  gapless::test::TempDir dir("tls-refusals");
  const auto tls = gapless::test::generate_tls_material(dir.path());
  const auto refused = gapless::test::generate_refused_server_certificates(tls);
  const std::string keys = "ca_file = \"" + tls.ca_cert.string() + "\"\nconnect_timeout = \"2s\"\n";

  // X509_verify_cert_error_string's words, which the daemon's log carries.
  const Refusal refusal = GENERATE(Refusal{"expired", "127.0.0.1", true, "certificate has expired"},
                                   Refusal{"another host, by IP", "127.0.0.1", false, "IP address mismatch"},
                                   Refusal{"another host, by name", "localhost", false, "hostname mismatch"});
  INFO("refusal: " << refusal.what);
  {
    TlsListener broker(refusal.expired ? refused.expired_cert : refused.other_host_cert,
                       refusal.expired ? refused.expired_key : refused.other_host_key);
    Workspace workspace("stomp+ssl://" + std::string(refusal.host) + ":" + std::to_string(broker.port()), keys);
    workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.throughput"}, 20));
    Process daemon = workspace.start_daemon();
    const bool logged = eventually(15s, [&] {
      return workspace.daemon_log().find(refusal.reason) != std::string::npos && broker.connections() >= 2;
    });
    // `gapless status` shows the running daemon's open fault with the same
    // words, once the daemon has rewritten its health file.
    std::string status;
    const bool shown = eventually(10s, [&] {
      const auto faults = workspace.status()["daemon"]["faults"];
      status = faults.dump();
      for (const auto& fault : faults)
        if (fault["component"] == "sender sink=test" &&
            fault["last_error"].get<std::string>().find(refusal.reason) != std::string::npos)
          return true;
      return false;
    });
    daemon.terminate();
    INFO(workspace.daemon_log());
    CHECK(logged);
    INFO(status);
    CHECK(shown);
    CHECK_THAT(workspace.daemon_log(), Catch::Contains("sender: connect failed sink=test"));
    CHECK(broker.connections() >= 2);  // it keeps trying, and keeps refusing
    CHECK(broker.handshakes() == 0);
    CHECK(broker.received().empty());  // no CONNECT: the passcode never left
    CHECK(workspace.counts("/topic/perfsonar.raw.throughput") == std::array<int64_t, 3>{20, 0, 0});
  }
}

TEST_CASE("stomp+ssl refusals control: the same listener with the valid certificate receives the CONNECT frame",
          "[tls-refusals]") {
  gapless::test::TempDir dir("tls-refusals-control");
  const auto tls = gapless::test::generate_tls_material(dir.path());
  const std::string keys = "ca_file = \"" + tls.ca_cert.string() + "\"\nconnect_timeout = \"2s\"\n";
  TlsListener broker(tls.broker_cert, tls.broker_key);
  Workspace workspace("stomp+ssl://127.0.0.1:" + std::to_string(broker.port()), keys);
  workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.throughput"}, 20));
  Process daemon = workspace.start_daemon();
  const bool connected =
      eventually(15s, [&] { return broker.received().find("login:collector") != std::string::npos; });
  daemon.terminate();
  INFO(workspace.daemon_log());
  CHECK(connected);
  CHECK(broker.handshakes() >= 1);
  CHECK(broker.received().rfind("CONNECT\n", 0) == 0);
}

TEST_CASE("stomp+ssl: the real ActiveMQ, restarted with an expired certificate in its keystore, is refused; nothing "
          "reaches it",
          "[tls-refusals]") {
  gapless::test::TestBroker broker({.ssl = true});
  const auto& tls = broker.tls();
  gapless::test::StompRecorder recorder(broker.stomp_uri());
  recorder.start_and_wait_subscribed();
  const std::string keys = "ca_file = \"" + tls.ca_cert.string() + "\"\ncert_file = \"" + tls.client_cert.string() +
                           "\"\nkey_file = \"" + tls.client_key.string() + "\"\nconnect_timeout = \"5s\"\n";
  Workspace workspace(broker.ssl_uri(), keys);

  // The control: with its own certificate the broker takes the first 20.
  workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.throughput"}, 20));
  workspace.run_until_drained(60s);
  REQUIRE(recorder.wait_for_distinct("gapless-id", 20, 30s));

  const auto refused = gapless::test::generate_refused_server_certificates(tls);
  gapless::test::write_broker_keystore(tls, refused.expired_cert, refused.expired_key);
  broker.restart();
  REQUIRE(recorder.wait_subscriptions(2, 30s));  // it reconnects by itself, over plain STOMP
  workspace.journal_messages(gapless::test::messages_on({"perfsonar.raw.packet-loss"}, 20));
  Process daemon = workspace.start_daemon();
  const bool logged = eventually(20s, [&] {
    return workspace.daemon_log().find("certificate verification: certificate has expired") != std::string::npos;
  });
  daemon.terminate();
  INFO(workspace.daemon_log());
  CHECK(logged);
  CHECK(recorder.count() == 20);  // the first 20 only
  CHECK(workspace.counts("/topic/perfsonar.raw.packet-loss") == std::array<int64_t, 3>{20, 0, 0});
}
