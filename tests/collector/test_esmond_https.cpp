// Proves an https archive is read only with a certificate the configured CA verifies; anything else is a TLS connect failure.
//
// An https archive: the client verifies the archive's certificate chain and
// host name against the configured CA file (ArchiveConfig::ca_file), and a
// certificate it cannot verify is a connect failure naming TLS, never data.
// The server is cpp-httplib's SSLServer with the throw-away TLS material of
// the integration tests (a certificate for 127.0.0.1 and localhost).

#include <catch2/catch.hpp>

#include <httplib.h>

#include <string>
#include <thread>

#include "esmond/client.hpp"
#include "harness/tls_material.hpp"
#include "support/temp_dir.hpp"

using gapless::esmond::Client;
using gapless::esmond::ClientOptions;
using gapless::esmond::FailureKind;
using gapless::esmond::FetchError;
using gapless::esmond::SeriesPath;

namespace {

// One page of throughput data for any GET, over TLS on a free loopback port.
class HttpsArchive {
 public:
  explicit HttpsArchive(const gapless::test::TlsMaterial& tls)
      : server_(tls.broker_cert.c_str(), tls.broker_key.c_str()) {
    REQUIRE(server_.is_valid());
    server_.Get(".*", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(R"([{"ts":100,"val":7016320000.0},{"ts":160,"val":6.5e9}])", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    // Bound and listening already: a connection waits in the backlog until
    // the accept loop runs.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpsArchive() {
    server_.stop();
    thread_.join();
  }
  std::string base_url(const std::string& host) const {
    return "https://" + host + ":" + std::to_string(port_) + "/esmond/perfsonar/archive/";
  }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
};

ClientOptions trusting(const std::filesystem::path& ca_file) {
  ClientOptions options;
  options.timeout = std::chrono::seconds(10);
  options.connect_timeout = std::chrono::seconds(5);
  options.ca_file = ca_file.string();
  return options;
}

}  // namespace

TEST_CASE("https archives: the certificate is verified against the configured CA", "[esmond-client]") {
  gapless::test::TempDir dir("https-archive");
  const gapless::test::TlsMaterial tls = gapless::test::generate_tls_material(dir.path());
  HttpsArchive archive(tls);
  const SeriesPath path{"abc", "throughput", "", 0};

  SECTION("a certificate from the configured CA, for the host asked, is accepted") {
    for (const std::string host : {"127.0.0.1", "localhost"}) {
      Client client("tls-archive", archive.base_url(host), trusting(tls.ca_cert));
      const auto points = client.fetch_data(path, 100, 200, 10);
      REQUIRE(points.size() == 2);
      CHECK(points[0].value == "7016320000.0");
    }
  }

  SECTION("a certificate from another CA is refused as a TLS failure, and no data is read") {
    Client client("tls-archive", archive.base_url("127.0.0.1"), trusting(tls.other_ca_cert));
    try {
      client.fetch_data(path, 100, 200, 10);
      FAIL("an unverifiable certificate was accepted");
    } catch (const FetchError& e) {
      CHECK(e.kind() == FailureKind::connect);
      CHECK_THAT(e.what(), Catch::Contains("TLS handshake or certificate verification failed") &&
                               Catch::Contains("archive tls-archive"));
    }
  }
}
