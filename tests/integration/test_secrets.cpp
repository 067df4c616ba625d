// Proves the passcode, the HTTP passwords and tokens and the private key never appear in any output: logs at trace, status, metrics, answers, errors, the journal.
//
// One daemon, logging at trace, with a known unique string for each secret
// and every path where one could leak exercised at once: a STOMP sink whose
// CONNECT the broker refuses (wrong passcode), a sink delivering over TLS
// with a client key and a passcode file, a sink the broker answers with an
// ERROR (a denied topic, parked with the broker's words), an http sink whose
// endpoint refuses its Basic password, an https archive with an expired
// certificate, the daemon's endpoint (/v1/status, /metrics, /healthz, a
// resend with a wrong token) and the push endpoint (a wrong token, a bad
// run). Then `gapless status` in its three forms, a SIGHUP reload of a file
// broken on a secret's line, and configurations that fail to load with a
// secret on the offending line or in a URL. Every byte gapless wrote
// (stdout, stderr, the journal and its companions, the health file, HTTP
// answers) is searched for every secret, and for the Basic header that
// encodes one.
//   build/tests/integration/integration-tests '[secrets]'
#include <catch2/catch.hpp>

#include <httplib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/broker.hpp"
#include "harness/logstash_standin.hpp"
#include "harness/process.hpp"
#include "harness/tls_material.hpp"
#include "harness/workspace.hpp"
#include "support/eventually.hpp"
#include "support/temp_dir.hpp"

using namespace std::chrono_literals;
using gapless::test::eventually;
using gapless::test::LogstashStandin;
using gapless::test::Process;
using gapless::test::TestBroker;
using gapless::test::Workspace;
using nlohmann::json;

namespace {

// Unique enough that a hit can only be the secret itself.
constexpr const char* kWrongPasscode = "sEcr3t-wrong-passcode-7c1e";
constexpr const char* kPasscodeFile = "sEcr3t-passcode-file-94ad";
constexpr const char* kSinkPassword = "sEcr3t-http-sink-password-3b27";
constexpr const char* kEndpointToken = "sEcr3t-endpoint-token-e5d0";
constexpr const char* kPushToken = "sEcr3t-push-token-18f6";
constexpr const char* kSinkHeader = "sEcr3t-http-sink-header-c40b";  // an API key sent as a header

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// The lines of a PEM key between its BEGIN and END lines.
std::vector<std::string> pem_body_lines(const std::filesystem::path& key) {
  std::istringstream in(read_all(key));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.rfind("-----", 0) != 0) lines.push_back(line);
  return lines;
}

std::string base64(const std::string& text) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(text[i]) << 16) | (static_cast<unsigned char>(text[i + 1]) << 8) |
                       static_cast<unsigned char>(text[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
  }
  if (i < text.size()) {
    unsigned v = static_cast<unsigned char>(text[i]) << 16;
    if (i + 1 < text.size()) v |= static_cast<unsigned char>(text[i + 1]) << 8;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < text.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// An https archive with no series, presenting the given certificate;
// stopped and joined however the test ends.
class HttpsArchive {
 public:
  HttpsArchive(const std::filesystem::path& cert, const std::filesystem::path& key)
      : server_(cert.c_str(), key.c_str()) {
    REQUIRE(server_.is_valid());
    server_.Get(".*", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("[]", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpsArchive() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::SSLServer server_;
  int port_ = 0;
  std::thread thread_;
};

// Everything gapless wrote, by where it was read from.
struct Outputs {
  std::vector<std::pair<std::string, std::string>> texts;
  void add(std::string where, std::string text) { texts.emplace_back(std::move(where), std::move(text)); }
  void add(const std::string& where, const httplib::Result& result) {
    REQUIRE(result);
    std::string text = std::to_string(result->status) + "\n";
    for (const auto& [name, value] : result->headers) text += name + ": " + value + "\n";
    add(where, text + result->body);
  }
};

}  // namespace

TEST_CASE("no secret appears in logs at trace, status, metrics, HTTP answers, errors or the journal", "[secrets]") {
  TestBroker broker({.deny_topics = {"perfsonar.raw.denied"}, .ssl = true});
  const auto& tls = broker.tls();
  const auto refused = gapless::test::generate_refused_server_certificates(tls);
  gapless::test::TempDir secrets("secrets");  // apart from the workspace, whose every file is searched
  write(secrets.path() / "passcode", std::string(kPasscodeFile) + "\n");
  write(secrets.path() / "sink-password", std::string(kSinkPassword) + "\n");
  write(secrets.path() / "endpoint-token", std::string(kEndpointToken) + "\n");
  write(secrets.path() / "push-token", std::string(kPushToken) + "\n");

  // The http sink's endpoint wants another password: every request is refused 401.
  LogstashStandin::Options refusing;
  refusing.login = "perfsonar";
  refusing.password = "the-password-it-expects";
  LogstashStandin logstash(refusing);
  // An archive whose certificate expired: every poll fails in the handshake.
  HttpsArchive archive(refused.expired_cert, refused.expired_key);
  const int archive_port = archive.port();

  const auto ports = gapless::test::free_tcp_ports(2);
  const std::string q = "\"";
  const std::string tables =
      "[[sink]]\nname = \"refused\"\nbrokers = [\"" + broker.stomp_uri() + "\"]\nlogin = \"collector\"\n" +
      "passcode = \"" + kWrongPasscode + "\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n" +
      "[[sink]]\nname = \"tls\"\nbrokers = [\"" + broker.ssl_uri() + "\"]\nlogin = \"collector\"\n" +
      "passcode_file = " + q + (secrets.path() / "passcode").string() + q + "\nca_file = " + q +
      tls.ca_cert.string() + q + "\ncert_file = " + q + tls.client_cert.string() + q + "\nkey_file = " + q +
      tls.client_key.string() + q + "\n" +
      "[[sink]]\nname = \"http\"\nprotocol = \"http\"\nurl = \"" + logstash.url() + "\"\n" +
      "accept = [\"/topic/perfsonar.raw.throughput\", \"/pscheduler/>\"]\nheaders = { x-api-key = \"" +
      kSinkHeader + "\" }\nlogin = \"perfsonar\"\npassword_file = " +
      q + (secrets.path() / "sink-password").string() + q + "\ntimeout = \"2s\"\n" +
      "[[archive]]\nname = \"expired\"\nurl = \"https://127.0.0.1:" + std::to_string(archive_port) +
      "/esmond/perfsonar/archive/\"\nca_file = " + q + tls.ca_cert.string() + q + "\n" +
      "[http]\nlisten = \"127.0.0.1:" + std::to_string(ports[0]) + "\"\ntoken_file = " + q +
      (secrets.path() / "endpoint-token").string() + q + "\n" +
      "[push]\nlisten = \"127.0.0.1:" + std::to_string(ports[1]) + "\"\ntoken_file = " + q +
      (secrets.path() / "push-token").string() + q + "\n";
  Workspace workspace(broker, "", tables);
  Outputs outputs;

  // Through `gapless ingest`, so that every sink taking them has them pending.
  {
    std::ofstream lines(workspace.dir() / "messages.jsonl");
    for (int i = 0; i < 10; ++i)
      for (const std::string topic : {"perfsonar.raw.throughput", "perfsonar.raw.denied"})
        lines << json{{"header", {{"destination", "/topic/" + topic}}}, {"body", "{\"n\":" + std::to_string(i) + "}"}}
                     .dump()
              << "\n";
  }
  auto ingest = workspace.command({"ingest", (workspace.dir() / "messages.jsonl").string()});
  outputs.add("gapless ingest", ingest.out + ingest.err);
  REQUIRE(ingest.ok());

  Process daemon = workspace.start_daemon({"--log-level", "trace"});
  // Delivered over TLS, the denied topic parked with the broker's ERROR, the
  // refused CONNECT and the refused password logged, the archive failed.
  const bool happened = eventually(60s, [&] {
    REQUIRE(daemon.running());
    const json status = workspace.status();
    bool tls_delivered = false;
    bool denied_parked = false;
    for (const auto& sink : status["sinks"])
      for (const auto& destination : sink["destinations"]) {
        if (sink["sink"] == "tls" && destination["destination"] == "/topic/perfsonar.raw.throughput")
          tls_delivered = destination["delivered"] == 10;
        if (sink["sink"] == "test" && destination["destination"] == "/topic/perfsonar.raw.denied")
          denied_parked = destination["parked"].get<int64_t>() > 0;
      }
    const std::string log = workspace.daemon_log();
    return tls_delivered && denied_parked && logstash.request_count() >= 2 &&
           log.find("sender: connect failed sink=refused") != std::string::npos &&
           log.find("certificate has expired") != std::string::npos;
  });

  // The health file is read while the daemon runs: its open faults (the
  // refused CONNECT, the failing archive) carry their error texts.
  std::string health;
  CHECK(eventually(15s, [&] {
    health = read_all(workspace.journal_path() + ".health");
    return health.find("gapless-health 1") != std::string::npos && health.find("sink=refused") != std::string::npos;
  }));
  outputs.add("the health file", health);
  // Trace really is on: the drain's debug lines are there to search.
  CHECK_THAT(workspace.daemon_log(), Catch::Contains("debug sender: delivered sink=tls"));

  httplib::Client endpoint("127.0.0.1", ports[0]);
  for (const std::string path : {"/v1/status", "/metrics", "/healthz"}) outputs.add("GET " + path, endpoint.Get(path));
  const std::string window = R"({"from":"2020-01-01T00:00:00Z","to":"2020-01-02T00:00:00Z","reason":"test"})";
  outputs.add("POST /v1/resend, wrong token",
              endpoint.Post("/v1/resend", {{"Authorization", "Bearer wrong"}}, window, "application/json"));
  httplib::Client push("127.0.0.1", ports[1]);
  outputs.add("push, wrong token",
              push.Put("/logstash", {{"Authorization", "Bearer wrong"}}, "{}", "application/json"));
  outputs.add("push, no token", push.Put("/logstash", "{}", "application/json"));
  outputs.add("push, a bad run",
              push.Put("/logstash", {{"Authorization", std::string("Bearer ") + kPushToken}}, "{}", "application/json"));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status"}, {"status", "--json"}, {"status", "--prometheus"}}) {
    auto result = workspace.command(args);
    outputs.add("gapless " + args.back(), result.out + result.err);
  }
  // A reload (SIGHUP) of a file that is no longer valid TOML, a secret on the
  // offending line: refused, in the log and in systemd's status line.
  std::ofstream(workspace.config_path(), std::ios::app) << "passcode_typo = \"" << kWrongPasscode << "\n";
  daemon.signal(SIGHUP);
  CHECK(eventually(10s, [&] { return workspace.daemon_log().find("reload refused") != std::string::npos; }));
  daemon.terminate();
  {
    INFO(workspace.daemon_log());
    REQUIRE(happened);
  }

  // Configurations refused with a secret on or near the offending line.
  const std::vector<std::pair<std::string, std::string>> bad_configs = {
      {"unterminated passcode", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\npasscode = \"" +
                                    std::string(kWrongPasscode) + "\n"},
      {"text after the passcode", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\npasscode = \"" +
                                      std::string(kWrongPasscode) + "\" x\n"},
      {"passcode and passcode_file", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\npasscode = \"" +
                                         std::string(kWrongPasscode) + "\"\npasscode_file = \"" +
                                         (secrets.path() / "passcode").string() + "\"\n"},
      {"passcode of the wrong type", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\npasscode = [\"" +
                                         std::string(kWrongPasscode) + "\"]\n"},
      {"a password in an http sink's URL", "[[sink]]\nname = \"h\"\nprotocol = \"http\"\nurl = \"https://perfsonar:" +
                                               std::string(kSinkPassword) + "@127.0.0.1:9/logstash\"\n"},
      {"a password in an archive's URL", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n[[archive]]\n"
                                          "name = \"a\"\nurl = \"https://ps:" + std::string(kSinkPassword) +
                                          "@127.0.0.1:9/esmond/perfsonar/archive/\"\n"},
      {"a password in push.archive_url", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\n[push]\n"
                                          "listen = \"127.0.0.1:9\"\narchive_url = \"https://ps:" +
                                          std::string(kSinkPassword) + "@127.0.0.1:9/esmond/perfsonar/archive/\"\n"},
      {"a duplicate key", "[[sink]]\nname = \"s\"\nbrokers = [\"stomp://127.0.0.1:1\"]\npasscode = \"" +
                              std::string(kWrongPasscode) + "\"\npasscode = \"" + kWrongPasscode + "\"\n"},
  };
  for (const auto& [what, text] : bad_configs) {
    const auto path = secrets.path() / "bad.toml";
    write(path, text);
    auto result = gapless::test::run({gapless::test::gapless_binary().string(), "status", "--config", path.string()});
    INFO(what << ": " << result.err);
    CHECK_FALSE(result.ok());
    CHECK_FALSE(result.err.empty());
    outputs.add("bad config, " + what, result.out + result.err);
  }

  // Every file gapless wrote into the workspace (the configuration aside):
  // its log and output, the journal, its WAL and the health file.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(workspace.dir())) {
    if (!entry.is_regular_file() || entry.path().filename() == "gapless.toml") continue;
    outputs.add(entry.path().filename().string(), read_all(entry.path()));
  }
  REQUIRE(outputs.texts.size() > 15);

  std::vector<std::string> forbidden = {kWrongPasscode, kPasscodeFile, kSinkPassword, kEndpointToken, kPushToken,
                                        kSinkHeader, base64(std::string("perfsonar:") + kSinkPassword)};
  for (const std::string& line : pem_body_lines(tls.client_key)) forbidden.push_back(line);
  // The broker's own passcode is a secret too.
  forbidden.push_back("collector-secret");
  for (const auto& [where, text] : outputs.texts)
    for (const std::string& secret : forbidden) {
      INFO(where << " holds a secret: " << secret);
      CHECK(text.find(secret) == std::string::npos);
    }
}
