#include "stomp/connection.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <limits>
#include <mutex>
#include <system_error>

#include "stomp/error_text.hpp"

namespace gapless::stomp {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Slack on top of twice the broker's heart-beat interval before we call it
// dead: ActiveMQ's beats come up to 2x late by design (docs/stomp-activemq.md 2.7),
// and the second on top absorbs scheduling and GC pauses on either side.
constexpr milliseconds kSilenceMargin{1000};

constexpr size_t kReadChunk = 64 * 1024;
// Bounds one read burst so that frames already parsed reach the caller even
// while the broker keeps streaming.
constexpr size_t kMaxReadPerWakeup = 1024 * 1024;
constexpr size_t kMaxTlsWrite = 1024 * 1024;
// The longest single poll(); the loop recomputes its deadlines after it.
constexpr milliseconds kMaxPollWait{60'000};

const std::string kDisconnectReceipt = "gapless-disconnect";

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

std::string errno_text(int error) { return std::system_category().message(error); }

// The broker went away; ActiveMQ resets rather than closes when it drops a
// connection with unread input.
bool is_reset(int error) { return error == ECONNRESET || error == EPIPE; }

long long count_ms(Clock::duration duration) {
  return std::chrono::duration_cast<milliseconds>(duration).count();
}

// Drains OpenSSL's thread-local error queue into one line.
std::string openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!text.empty()) text += "; ";
    text += buffer.data();
  }
  return text;
}

bool is_ip_literal(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

// now + timeout without overflowing for "wait forever" values.
Clock::time_point deadline_after(milliseconds timeout) {
  const auto now = Clock::now();
  if (timeout <= milliseconds::zero()) return now;
  if (timeout >= std::chrono::duration_cast<milliseconds>(Clock::time_point::max() - now)) return Clock::time_point::max();
  return now + timeout;
}

int poll_wait_ms(Clock::time_point now, Clock::time_point wake) {
  if (wake <= now) return 0;
  auto wait = std::chrono::ceil<milliseconds>(wake - now);
  return static_cast<int>(std::min(wait, kMaxPollWait).count());
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE when the
// broker has gone; Linux has no per-socket SO_NOSIGPIPE. A daemon has no use
// for SIGPIPE, so it is ignored process-wide, once, unless the program set a
// handler of its own. Plain TCP writes also pass MSG_NOSIGNAL.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
  });
}

// A broker echoing credentials back in an ERROR must not leak them into logs.
std::string redact(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

struct HeartBeat {
  milliseconds can_send{0};
  milliseconds wants{0};
};

// "<x>,<y>" in ms; a missing header means "0,0" (spec 1.6).
std::optional<HeartBeat> parse_heart_beat(const std::string* header) {
  if (!header) return HeartBeat{};
  const std::string& text = *header;
  const size_t comma = text.find(',');
  if (comma == std::string::npos) return std::nullopt;
  auto number = [](std::string_view part) -> std::optional<milliseconds> {
    uint32_t value = 0;  // 32 bits of ms (49 days) keeps the deadline arithmetic far from overflow
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size()) return std::nullopt;
    return milliseconds(value);
  };
  auto x = number(std::string_view(text).substr(0, comma));
  auto y = number(std::string_view(text).substr(comma + 1));
  if (!x || !y) return std::nullopt;
  return HeartBeat{*x, *y};
}

// What we offer in CONNECT, in both directions. Capped so that the deadline
// arithmetic (2x plus margin) cannot overflow whatever the configuration says.
milliseconds offered_heart_beat(const ConnectOptions& options) {
  return std::clamp(options.heartbeat, milliseconds::zero(), milliseconds(std::numeric_limits<int32_t>::max()));
}

// Spec 1.6: beats flow only if the sender can send and the receiver wants
// them, at the slower of the two rates.
milliseconds negotiate(milliseconds sender_can, milliseconds receiver_wants) {
  if (sender_can <= milliseconds::zero() || receiver_wants <= milliseconds::zero()) return milliseconds::zero();
  return std::max(sender_can, receiver_wants);
}

}  // namespace

struct Connection::Impl {
  Impl(const BrokerUri& broker_uri, const Limits& limits)
      : uri(broker_uri), broker(broker_uri.str()), parser(limits) {}
  ~Impl() { close(); }

  ConnectionError error(const std::string& what) const { return ConnectionError("broker " + broker + ": " + what); }
  void require_open() const {
    if (fd < 0) throw error("connection is closed");
  }

  // --- opening
  void connect_tcp(Clock::time_point deadline, milliseconds timeout);
  enum class ConnectOutcome { connected, failed, timed_out };
  ConnectOutcome connect_socket(const addrinfo& address, Clock::time_point deadline, std::string& why);
  void start_tls(const ConnectOptions& options, Clock::time_point deadline, milliseconds timeout);
  void make_tls_context(const ConnectOptions& options);
  std::string handshake_failure(int ssl_error, int saved_errno);
  void exchange_connect(const ConnectOptions& options, Clock::time_point deadline);
  void accept_connected(const Frame& connected_frame, const ConnectOptions& options);
  bool wait_for(short events, Clock::time_point deadline);

  // --- running
  std::optional<Frame> poll_until(Clock::time_point deadline);
  std::optional<Frame> next_parsed_frame();
  bool wait_for_socket(Clock::time_point now, Clock::time_point wake);
  Clock::time_point next_timer() const;
  milliseconds silence_limit() const { return 2 * receive_interval + kSilenceMargin; }
  void send_heart_beat_if_due(Clock::time_point now);
  void throw_if_broker_silent(Clock::time_point now);
  void queue(const Frame& frame);
  void flush();
  size_t write_some(const char* data, size_t size);
  size_t read_available();
  size_t read_some(char* data, size_t size);
  void note_closed(const std::string& how = "");
  void note_failure(const std::string& what);
  ConnectionError failed() const;
  size_t pending_output() const { return out.size() - out_offset; }
  void close();

  BrokerUri uri;
  std::string broker;  // uri.str(), named in every error and log line
  int fd = -1;
  std::unique_ptr<SSL_CTX, SslCtxFree> ssl_ctx;
  std::unique_ptr<SSL, SslFree> ssl;
  Parser parser;
  std::string out;  // encoded frames not yet written; the prefix up to out_offset is done
  size_t out_offset = 0;
  // Why the connection is dead. Reported only after the frames read before
  // it: a broker that sends ERROR and closes must have its ERROR seen.
  std::optional<std::string> failure;
  std::string failure_detail;  // e.g. "Connection reset by peer"
  bool broker_closed = false;  // EOF or reset, as opposed to a local or protocol error
  bool connected = false;  // CONNECTED received
  // Non-blocking TLS: a read may need the socket writable and a write may
  // need it readable (handshake messages, key updates).
  bool read_wants_write = false;
  bool write_wants_read = false;
  Clock::time_point last_read;
  Clock::time_point last_write;
  milliseconds send_interval{0};
  milliseconds receive_interval{0};
  std::string server;
  std::string session;
  std::array<char, kReadChunk> read_buffer{};
};

// ----------------------------------------------------------------- opening

// Name resolution is not bounded by connect_timeout: getaddrinfo blocks and
// follows the resolver's own timeouts (resolv.conf).
void Connection::Impl::connect_tcp(Clock::time_point deadline, milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(uri.port);
  if (int rc = getaddrinfo(uri.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw error("cannot resolve " + uri.host + ": " + (rc == EAI_SYSTEM ? errno_text(errno) : gai_strerror(rc)));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);

  // Addresses are tried in turn within the one deadline; a first address that
  // swallows SYNs uses it up (no "happy eyeballs": brokers rarely have two).
  std::string failures;
  for (const addrinfo* address = found; address; address = address->ai_next) {
    std::array<char, NI_MAXHOST> host{};
    getnameinfo(address->ai_addr, address->ai_addrlen, host.data(), host.size(), nullptr, 0, NI_NUMERICHOST);
    const std::string name = host.data();
    std::string why;
    fd = ::socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) {
      why = errno_text(errno);
    } else {
      switch (connect_socket(*address, deadline, why)) {
        case ConnectOutcome::connected:
          spdlog::debug("stomp: tcp connected broker={} address={}", broker, name);
          return;
        case ConnectOutcome::timed_out:
          throw error("timed out after " + std::to_string(timeout.count()) + " ms connecting to " + name);
        case ConnectOutcome::failed:
          ::close(fd);
          fd = -1;
      }
    }
    failures += (failures.empty() ? "" : "; ") + name + ": " + why;
  }
  throw error("cannot connect: " + failures);
}

Connection::Impl::ConnectOutcome Connection::Impl::connect_socket(const addrinfo& address,
                                                                  Clock::time_point deadline, std::string& why) {
  // Frames are written whole and then we wait for a receipt; Nagle's
  // algorithm would hold back the tail of each frame for a delayed ACK.
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  // A non-blocking connect that is interrupted keeps going in the background,
  // just like one in progress.
  if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return ConnectOutcome::connected;
  if (errno != EINPROGRESS && errno != EINTR) {
    why = errno_text(errno);
    return ConnectOutcome::failed;
  }
  if (!wait_for(POLLOUT, deadline)) return ConnectOutcome::timed_out;
  int result = 0;
  socklen_t length = sizeof result;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &result, &length) != 0) result = errno;
  if (result == 0) return ConnectOutcome::connected;
  why = errno_text(result);
  return ConnectOutcome::failed;
}

// Waits until the socket is ready for `events`; false when the deadline passed first.
bool Connection::Impl::wait_for(short events, Clock::time_point deadline) {
  for (;;) {
    pollfd entry{fd, events, 0};
    const int rc = ::poll(&entry, 1, poll_wait_ms(Clock::now(), deadline));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) throw error("poll failed: " + errno_text(errno));
    if (Clock::now() >= deadline) return false;
  }
}

// Done before the TCP connect: unreadable certificates are a configuration
// problem, not a broker one, and should not cost a connection attempt.
void Connection::Impl::make_tls_context(const ConnectOptions& options) {
  ERR_clear_error();
  ssl_ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!ssl_ctx) throw error("cannot create a TLS context: " + openssl_errors());
  SSL_CTX* ctx = ssl_ctx.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Our output buffer is compacted and appended to between retries of one
  // SSL_write, so the retry may see the same bytes at another address.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // An encrypted key must fail to load, not prompt on a terminal nobody watches.
  SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });

  if (options.verify_peer) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const bool loaded = options.ca_file.empty()
                            ? SSL_CTX_set_default_verify_paths(ctx) == 1
                            : SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) == 1;
    if (!loaded)
      throw error("cannot load CA certificates from " +
                  (options.ca_file.empty() ? std::string("the system default paths") : options.ca_file) + ": " +
                  openssl_errors());
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    spdlog::warn("stomp: TLS peer verification disabled broker={}", broker);
  }

  if (options.cert_file.empty()) {
    if (!options.key_file.empty()) throw error("key_file " + options.key_file + " given without cert_file");
    return;
  }
  // The key may live in the certificate's PEM file. Loading it after the
  // certificate makes OpenSSL check that the two belong together.
  const std::string& key_file = options.key_file.empty() ? options.cert_file : options.key_file;
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1)
    throw error("cannot load client certificate " + options.cert_file + ": " + openssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw error("cannot load client key " + key_file + " for certificate " + options.cert_file + ": " +
                openssl_errors());
}

void Connection::Impl::start_tls(const ConnectOptions& options, Clock::time_point deadline, milliseconds timeout) {
  ssl.reset(SSL_new(ssl_ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) throw error("cannot set up TLS: " + openssl_errors());

  const bool ip_literal = is_ip_literal(uri.host);
  if (options.verify_peer) {
    const int named = ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), uri.host.c_str())
                                 : SSL_set1_host(ssl.get(), uri.host.c_str());
    if (named != 1) throw error("cannot set the TLS host name to check: " + openssl_errors());
  }
  // SNI carries DNS names only (RFC 6066 section 3).
  if (!ip_literal && SSL_set_tlsext_host_name(ssl.get(), uri.host.c_str()) != 1)
    throw error("cannot set the TLS server name: " + openssl_errors());

  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int rc = SSL_connect(ssl.get());
    const int saved_errno = errno;
    if (rc == 1) break;
    const int ssl_error = SSL_get_error(ssl.get(), rc);
    short events = 0;
    if (ssl_error == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (ssl_error == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      throw error("TLS handshake failed: " + handshake_failure(ssl_error, saved_errno));
    }
    if (!wait_for(events, deadline))
      throw error("timed out after " + std::to_string(timeout.count()) + " ms in the TLS handshake");
  }
  spdlog::debug("stomp: tls established broker={} protocol={} cipher={}", broker, SSL_get_version(ssl.get()),
                SSL_get_cipher_name(ssl.get()));
}

std::string Connection::Impl::handshake_failure(int ssl_error, int saved_errno) {
  std::string text = openssl_errors();
  const long verify = SSL_get_verify_result(ssl.get());
  if (verify != X509_V_OK)
    text += std::string(text.empty() ? "" : "; ") + "certificate verification: " + X509_verify_cert_error_string(verify);
  if (!text.empty()) return text;
  if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) return errno_text(saved_errno);
  return "the broker closed the connection during the handshake";
}

void Connection::Impl::exchange_connect(const ConnectOptions& options, Clock::time_point deadline) {
  const std::string beat = std::to_string(offered_heart_beat(options).count());
  Frame connect{"CONNECT", {}, {}};
  connect.add("accept-version", "1.2")
      .add("host", options.virtual_host.empty() ? uri.host : options.virtual_host)
      .add("heart-beat", beat + "," + beat);
  if (!options.login.empty()) connect.add("login", options.login);
  if (!options.passcode.empty()) connect.add("passcode", options.passcode);
  if (!options.client_id.empty()) connect.add("client-id", options.client_id);
  try {
    queue(connect);
  } catch (const ProtocolError& e) {
    throw error(std::string("cannot send CONNECT: ") + e.what());  // names the header, never its value
  }
  flush();

  auto reply = poll_until(deadline);
  if (!reply)
    throw error("timed out after " + std::to_string(options.connect_timeout.count()) + " ms waiting for CONNECTED");
  if (reply->command == "ERROR") {
    // Redacted before it is cleaned: cleaning could change an echoed passcode's spelling.
    Frame refusal = std::move(*reply);
    for (auto& [name, value] : refusal.headers) value = redact(std::move(value), options.passcode);
    refusal.body = redact(std::move(refusal.body), options.passcode);
    throw error("refused CONNECT: " + error_text_with_body(refusal));
  }
  if (reply->command != "CONNECTED") throw error("expected CONNECTED, got " + reply->command);
  accept_connected(*reply, options);
}

void Connection::Impl::accept_connected(const Frame& reply, const ConnectOptions& options) {
  const std::string* version = reply.header("version");
  if (!version || *version != "1.2")
    throw error("broker does not speak STOMP 1.2 (CONNECTED version: " + (version ? *version : "none") + ")");
  const std::string* heart_beat = reply.header("heart-beat");
  auto theirs = parse_heart_beat(heart_beat);
  if (!theirs) throw error("invalid heart-beat header in CONNECTED: \"" + *heart_beat + "\"");
  send_interval = negotiate(offered_heart_beat(options), theirs->wants);
  receive_interval = negotiate(theirs->can_send, offered_heart_beat(options));
  if (const std::string* name = reply.header("server")) server = *name;
  if (const std::string* id = reply.header("session")) session = *id;
  connected = true;
  last_read = Clock::now();
  spdlog::info("stomp: connected broker={} server={} session={} heartbeat_send_ms={} heartbeat_receive_ms={}", broker,
               server.empty() ? "-" : server, session.empty() ? "-" : session, send_interval.count(),
               receive_interval.count());
}

// ----------------------------------------------------------------- running

std::optional<Frame> Connection::Impl::poll_until(Clock::time_point deadline) {
  require_open();
  bool waited = false;
  for (;;) {
    if (auto frame = next_parsed_frame()) return frame;
    if (failure) {
      // After a failed write, what the broker said before closing (an ERROR)
      // may still be unread. TLS allows no more I/O after a fatal error.
      if (!ssl && read_available() > 0) continue;
      throw failed();
    }
    const auto now = Clock::now();
    if (waited && now >= deadline) return std::nullopt;
    send_heart_beat_if_due(now);
    flush();
    if (failure) continue;
    // Decrypted bytes already inside OpenSSL are invisible to poll().
    if (ssl && SSL_pending(ssl.get()) > 0) {
      read_available();
      continue;
    }
    waited = true;
    if (wait_for_socket(now, std::min(deadline, next_timer()))) {
      read_available();
      continue;
    }
    // poll() found nothing to read: only now is silence evidence of a dead
    // broker (the caller may simply not have polled for a while).
    const auto after = Clock::now();
    throw_if_broker_silent(after);
    if (after >= deadline) return std::nullopt;
  }
}

std::optional<Frame> Connection::Impl::next_parsed_frame() {
  try {
    return parser.next();
  } catch (const ProtocolError& e) {
    note_failure(std::string("broker sent invalid STOMP: ") + e.what());
    throw failed();
  }
}

// One poll() until `wake`; true when the socket should be read.
bool Connection::Impl::wait_for_socket(Clock::time_point now, Clock::time_point wake) {
  short events = POLLIN;
  if ((pending_output() > 0 && !write_wants_read) || read_wants_write) events |= POLLOUT;
  pollfd entry{fd, events, 0};
  const int rc = ::poll(&entry, 1, poll_wait_ms(now, wake));
  if (rc < 0) {
    if (errno != EINTR) note_failure("poll failed: " + errno_text(errno));
    return failure.has_value();
  }
  if (rc == 0) return false;
  const bool readable = entry.revents & (POLLIN | POLLHUP | POLLERR);
  return readable || (read_wants_write && (entry.revents & POLLOUT));
}

Clock::time_point Connection::Impl::next_timer() const {
  auto timer = Clock::time_point::max();
  if (send_interval > milliseconds::zero() && pending_output() == 0)
    timer = last_write + std::max(send_interval / 2, milliseconds(1));
  if (receive_interval > milliseconds::zero())
    timer = std::min(timer, last_read + silence_limit() + milliseconds(1));
  return timer;
}

// Beating at half the negotiated interval keeps us inside the broker's
// strict check (ActiveMQ's default grace multiplier is 1.0) despite delays.
void Connection::Impl::send_heart_beat_if_due(Clock::time_point now) {
  if (send_interval <= milliseconds::zero() || pending_output() > 0) return;
  if (now - last_write >= std::max(send_interval / 2, milliseconds(1))) out += '\n';
}

void Connection::Impl::throw_if_broker_silent(Clock::time_point now) {
  if (receive_interval <= milliseconds::zero() || now - last_read <= silence_limit()) return;
  note_failure("no data from broker for " + std::to_string(count_ms(now - last_read)) + " ms, heart-beat interval " +
               std::to_string(receive_interval.count()) + " ms");
  throw failed();
}

void Connection::Impl::queue(const Frame& frame) {
  if (out_offset > 0 && out_offset >= out.size() / 2) {
    out.erase(0, out_offset);
    out_offset = 0;
  }
  encode(frame, out);
}

// Writes what the socket takes now. Failures are recorded, not thrown: the
// next poll reports them once the frames already received are handed out.
void Connection::Impl::flush() {
  while (!failure && pending_output() > 0) {
    const size_t written = write_some(out.data() + out_offset, pending_output());
    if (written == 0) break;
    out_offset += written;
    last_write = Clock::now();
  }
  if (out_offset == out.size()) {
    out.clear();
    out_offset = 0;
  }
}

// Bytes written, 0 when the socket is full or the connection failed.
size_t Connection::Impl::write_some(const char* data, size_t size) {
  if (!ssl) {
    for (;;) {
      const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (is_reset(errno)) {
        note_closed(errno_text(errno));
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        note_failure("write to broker failed: " + errno_text(errno));
      }
      return 0;
    }
  }
  write_wants_read = false;
  ERR_clear_error();
  errno = 0;
  const int n = SSL_write(ssl.get(), data, static_cast<int>(std::min(size, kMaxTlsWrite)));
  const int saved_errno = errno;
  if (n > 0) return static_cast<size_t>(n);
  switch (SSL_get_error(ssl.get(), n)) {
    case SSL_ERROR_WANT_WRITE:
      break;
    case SSL_ERROR_WANT_READ:
      write_wants_read = true;
      break;
    case SSL_ERROR_ZERO_RETURN:
      note_closed();
      break;
    case SSL_ERROR_SYSCALL:
      if (is_reset(saved_errno)) {
        note_closed(errno_text(saved_errno));
      } else {
        note_failure("TLS write failed: " + (saved_errno != 0 ? errno_text(saved_errno) : openssl_errors()));
      }
      break;
    default:
      note_failure("TLS write failed: " + openssl_errors());
  }
  return 0;
}

// Reads what the socket has now into the parser; returns the byte count.
size_t Connection::Impl::read_available() {
  size_t total = 0;
  while (total < kMaxReadPerWakeup) {
    const size_t n = read_some(read_buffer.data(), read_buffer.size());
    if (n == 0) break;
    parser.feed(std::string_view(read_buffer.data(), n));
    total += n;
  }
  if (total > 0) last_read = Clock::now();
  return total;
}

// Bytes read, 0 when nothing is available or the connection ended.
size_t Connection::Impl::read_some(char* data, size_t size) {
  if (!ssl) {
    for (;;) {
      const ssize_t n = ::recv(fd, data, size, 0);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) {
        note_closed();
      } else if (errno == EINTR) {
        continue;
      } else if (is_reset(errno)) {
        note_closed(errno_text(errno));
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        note_failure("read from broker failed: " + errno_text(errno));
      }
      return 0;
    }
  }
  read_wants_write = false;
  ERR_clear_error();
  errno = 0;
  const int n = SSL_read(ssl.get(), data, static_cast<int>(size));
  const int saved_errno = errno;
  if (n > 0) return static_cast<size_t>(n);
  switch (SSL_get_error(ssl.get(), n)) {
    case SSL_ERROR_WANT_READ:
      break;
    case SSL_ERROR_WANT_WRITE:
      read_wants_write = true;
      break;
    case SSL_ERROR_ZERO_RETURN:
      note_closed();
      break;
    case SSL_ERROR_SYSCALL:
      if (saved_errno == 0 || is_reset(saved_errno)) {
        note_closed(saved_errno == 0 ? "" : errno_text(saved_errno));
      } else {
        note_failure("TLS read failed: " + errno_text(saved_errno));
      }
      break;
    default:
      // OpenSSL 3 reports a TCP close without close_notify this way; brokers do that routinely.
      if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        note_closed();
      } else {
        note_failure("TLS read failed: " + openssl_errors());
      }
  }
  return 0;
}

// `how`: the socket error that told us, if it was not a plain EOF.
void Connection::Impl::note_closed(const std::string& how) {
  if (failure) return;
  failure = "broker closed the connection";
  broker_closed = true;
  failure_detail = how;
}

// The first failure is the cause; later ones are its consequences.
void Connection::Impl::note_failure(const std::string& what) {
  if (!failure) failure = what;
}

// Worded when reported, not when noted: frames read before the failure are
// handed out first, so "before CONNECTED" is only known at this point.
ConnectionError Connection::Impl::failed() const {
  std::string text = *failure;
  std::string note = failure_detail;
  if (!connected) {
    text += " before CONNECTED";
    if (broker_closed && uri.tls)
      note += (note.empty() ? "" : "; ") + std::string("over TLS this usually means it refused our client certificate");
  }
  if (!note.empty()) text += " (" + note + ")";
  return error(text);
}

// Never blocks: no close_notify here, the socket may be stuck or gone.
void Connection::Impl::close() {
  ssl.reset();
  ssl_ctx.reset();
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// ----------------------------------------------------------------- public

std::unique_ptr<Connection> Connection::open(const BrokerUri& uri, const ConnectOptions& options) {
  ignore_sigpipe();
  auto impl = std::make_unique<Impl>(uri, options.limits);
  const auto deadline = deadline_after(options.connect_timeout);
  spdlog::debug("stomp: connecting broker={} login={}", impl->broker, options.login.empty() ? "-" : options.login);
  if (uri.tls) impl->make_tls_context(options);
  impl->connect_tcp(deadline, options.connect_timeout);
  impl->last_write = Clock::now();
  if (uri.tls) impl->start_tls(options, deadline, options.connect_timeout);
  impl->exchange_connect(options, deadline);
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Connection::~Connection() = default;

void Connection::send(const Frame& frame) {
  impl_->require_open();
  impl_->queue(frame);
}

void Connection::flush() {
  impl_->require_open();
  impl_->flush();
}

std::optional<Frame> Connection::poll(std::chrono::milliseconds timeout) {
  return impl_->poll_until(deadline_after(timeout));
}

size_t Connection::pending_output() const { return impl_->pending_output(); }

void Connection::disconnect(std::chrono::milliseconds timeout) {
  Impl& c = *impl_;
  if (c.fd < 0) return;
  bool receipted = false;
  try {
    Frame frame{"DISCONNECT", {{"receipt", kDisconnectReceipt}}, {}};
    c.queue(frame);
    c.flush();
    const auto deadline = deadline_after(timeout);
    while (auto reply = c.poll_until(deadline)) {
      const std::string* id = reply->header("receipt-id");
      if (reply->command == "RECEIPT" && id && *id == kDisconnectReceipt) {
        receipted = true;
        break;
      }
      spdlog::debug("stomp: dropped frame after DISCONNECT broker={} command={}", c.broker, reply->command);
    }
  } catch (const std::exception& e) {
    spdlog::debug("stomp: disconnect cut short broker={} reason={}", c.broker, e.what());
  } catch (...) {
  }
  // Best effort close_notify; on a non-blocking socket this never waits.
  if (receipted && c.ssl) {
    ERR_clear_error();
    SSL_shutdown(c.ssl.get());
    ERR_clear_error();
  }
  c.close();
  spdlog::info("stomp: disconnected broker={} receipt={}", c.broker, receipted ? "yes" : "no");
}

const BrokerUri& Connection::uri() const { return impl_->uri; }
const std::string& Connection::server() const { return impl_->server; }
const std::string& Connection::session() const { return impl_->session; }
std::chrono::milliseconds Connection::send_heartbeat_interval() const { return impl_->send_interval; }
std::chrono::milliseconds Connection::receive_heartbeat_interval() const { return impl_->receive_interval; }

}  // namespace gapless::stomp
