// Proves an https archive whose certificate expired, or names another host, is a connect failure with the reason in its health, and the other archives are still polled.
//
// Four archives polled by the daemon's scheduler into one journal, all
// verified against the test CA: two https archives presenting a certificate
// that CA signed but every client must refuse (expired in 2021; valid for
// other.example only), one https archive with the valid certificate (the
// control: the same server, refused only for its certificate), and the
// plain-HTTP test archive with data. The refused servers' handlers must never
// run: a request that reached them would mean the certificate was accepted.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "collector/collector.hpp"
#include "harness/tls_material.hpp"
#include "support/collector_fixture.hpp"

namespace {

using gapless::ArchiveConfig;
using gapless::journal::Journal;
using gapless::test::collector_poll::allowed_event_types;
using gapless::test::collector_poll::Fixture;

// An https archive with no series: an empty listing for any GET, counted.
class EmptyHttpsArchive {
 public:
  EmptyHttpsArchive(const std::filesystem::path& cert, const std::filesystem::path& key)
      : server_(cert.c_str(), key.c_str()) {
    REQUIRE(server_.is_valid());
    server_.Get(".*", [this](const httplib::Request&, httplib::Response& response) {
      ++requests_;
      response.set_content("[]", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~EmptyHttpsArchive() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/esmond/perfsonar/archive/"; }
  int requests() const { return requests_; }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("an https archive with an expired certificate, or one for another host, fails to connect with the reason "
          "in its health; the other archives are polled",
          "[collector]") {
  Fixture healthy(2);
  const auto tls = gapless::test::generate_tls_material(healthy.dir.path() / "tls");
  const auto refused = gapless::test::generate_refused_server_certificates(tls);
  EmptyHttpsArchive expired(refused.expired_cert, refused.expired_key);
  EmptyHttpsArchive other_host(refused.other_host_cert, refused.other_host_key);
  EmptyHttpsArchive trusted(tls.broker_cert, tls.broker_key);

  gapless::Config config;
  config.journal.path = healthy.dir.file("shared.db");
  gapless::SinkConfig sink;
  sink.name = "local";
  sink.brokers = {"stomp://127.0.0.1:1"};
  config.sinks.push_back(sink);
  config.collector.max_concurrent_requests = 4;
  const std::map<std::string, std::string> urls = {{"expired", expired.url()},
                                                   {"other-host", other_host.url()},
                                                   {"trusted", trusted.url()},
                                                   {"healthy", healthy.archive->base_url()}};
  for (const auto& [name, url] : urls) {
    ArchiveConfig archive = healthy.config;
    archive.name = name;
    archive.url = url;
    archive.ca_file = tls.ca_cert.string();
    archive.http_timeout = std::chrono::seconds(5);
    archive.poll_interval = std::chrono::seconds(60);
    config.archives.push_back(archive);
  }

  std::atomic<bool> stop{false};
  gapless::collector::Collector collector(config, stop);
  std::thread running([&] { collector.run(); });
  auto journal = Journal::open(config.journal.path, {"local"});
  std::map<std::string, gapless::journal::ArchiveHealth> health;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    health.clear();
    for (const auto& archive : journal->archive_health()) health[archive.name] = archive;
    if (health.size() == urls.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  running.join();
  REQUIRE(health.size() == urls.size());

  // Refused, as a connect failure, with curl's words for the reason.
  const std::map<std::string, std::string> reasons = {
      {"expired", "certificate has expired"},
      {"other-host", "no alternative certificate subject name matches target host name"}};
  for (const auto& [name, reason] : reasons) {
    INFO(name << ": " << health[name].last_error);
    CHECK(health[name].failures.count("connect") == 1);
    CHECK(health[name].consecutive_failed_polls >= 1);
    CHECK_FALSE(health[name].last_success_ms.has_value());
    CHECK_THAT(health[name].last_error, Catch::Contains("TLS handshake or certificate verification failed") &&
                                            Catch::Contains(reason) && Catch::Contains("archive " + name));
    CHECK(journal->series_of_archive(urls.at(name)).empty());
  }
  CHECK(expired.requests() == 0);
  CHECK(other_host.requests() == 0);

  // The control: the same server with the valid certificate was read.
  INFO("trusted: " << health["trusted"].last_error);
  CHECK(trusted.requests() >= 1);
  CHECK(health["trusted"].failures.count("connect") == 0);

  // The plain archive was journaled in full beside them.
  CHECK(health["healthy"].last_success_ms.has_value());
  CHECK(health["healthy"].failures.empty());
  const auto series = journal->series_of_archive(healthy.archive->base_url());
  CHECK(series.size() == allowed_event_types(*healthy.archive, healthy.config));
  for (const auto& s : series) CHECK(journal->datapoint_digests(s.id, INT64_MIN, INT64_MAX) == healthy.served(s));
}
