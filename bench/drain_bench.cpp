// drain-bench: how fast does `gapless run` drain its journal into ActiveMQ,
// compared with the fastest a sender can go with the same STOMP pattern on the
// same broker, in the same run?
//
//   drain-bench [--messages N] [--runs R] [--transaction-size T] [--window W]
//               [--rss-messages M] [--rss-seconds S] [--dir DIR] [--keep]
//               [--baseline-send-per-frame]
//
// Set-up: one local ActiveMQ (tests/harness TestBroker: Debian's 5.17.2,
// kahaDB with its defaults) for the whole run, and one live NON-durable STOMP
// subscriber (ack:auto) on the topic that counts what arrives. With only a
// non-durable subscriber the broker stores nothing and dispatches without
// fsync; with a durable one it would fsync every COMMIT and the benchmark
// would measure the disk, not the sender (docs/stomp-activemq.md 2.9b).
//
// The two contenders, alternated (gapless, baseline, gapless, ...), R runs each
// after one baseline warm-up that is not counted (the broker's JIT warms up):
//   gapless   `gapless run --until-drained` as a child process on a fresh
//             journal of N 1 KiB messages (written before the clock starts).
//             Timed from spawn to exit, so process start-up and the journal's
//             open (including its quick_check of every page) are included;
//             the start-up and the drain phase are also shown apart, from the
//             timestamps of gapless's own log. CPU (user + system) and peak RSS
//             come from wait4().
//   baseline  a minimal sender written here on a plain POSIX socket with
//             hand-built frames (not gapless's stomp module), same pattern:
//             transactions of T SENDs, each SEND persistent:true with
//             content-length and its own receipt, the COMMIT (with a receipt)
//             sent once every SEND receipt of its transaction arrived, at most
//             W transactions in flight. Messages come from memory: it measures
//             what the broker accepts with this protocol pattern. Timed from
//             TCP connect to the DISCONNECT receipt; CPU of its own thread.
// Both send the same bytes per message: destination, transaction, receipt,
// persistent, a 32-hex-digit gapless-id, content-length and the same body.
// Every run is verified: the subscriber must receive exactly N messages.
//
// Then, separately: peak RSS of `gapless run` with M messages pending (a
// journal of M 1 KiB messages; once the daemon is connected it drains for S
// seconds, then SIGTERM; peak RSS is wait4()'s ru_maxrss, start-up included).
// M = 0 skips it.
//
// --baseline-send-per-frame is a diagnostic, not the target's baseline: the
// baseline then writes every frame with its own send() call, as gapless did
// until its Connection coalesced output (2026-11-25), to tell what that costs.
//
// --broker rabbitmq runs the same against a private RabbitMQ node
// (tests/harness RabbitNode: Debian's 3.10.8 with its STOMP plugin), where
// gapless uses no transactions (src/sender/sender.cpp, "RabbitMQ"): the
// baseline then follows that pattern, pipelined SENDs with persistent:true
// and a receipt each (publisher confirms), at most W groups of T SENDs
// unanswered, a message done when its own RECEIPT arrives. Target there:
// >= 0.9 x baseline (issue 15).
//
// Targets (from the issue): gapless median rate >= 0.8 x baseline median rate;
// peak RSS < 64 MiB with 1 M messages pending. The verdicts are printed; the
// exit status is 0 whenever the measurements themselves succeeded, 1 when a run
// failed (e.g. messages missing), 2 for bad usage.
#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "common.hpp"
#include "harness/broker.hpp"
#include "harness/process.hpp"
#include "harness/rabbitmq_node.hpp"
#include "harness/stomp_helpers.hpp"
#include "journal/journal.hpp"
#include "stomp/connection.hpp"

namespace {

namespace fs = std::filesystem;
using gapless::bench::Clock;
using gapless::bench::Child;
using gapless::bench::ChildResult;
using gapless::bench::describe_status;
using gapless::bench::make_work_dir;
using WallClock = std::chrono::system_clock;
using std::chrono::milliseconds;
using gapless::Error;

constexpr size_t kBodySize = 1024;
const char* const kSink = "bench";
const char* const kDestination = "/topic/test.drain-bench";  // user collector writes test.>, reader reads it
const char* const kWriterLogin = "collector";
const char* const kWriterPasscode = "collector-secret";
constexpr size_t kAppendBatch = 5000;  // messages per journal transaction while preparing (untimed)
constexpr double kRateTarget = 0.8;    // gapless / baseline, median rates (ActiveMQ)
constexpr double kRabbitRateTarget = 0.9;  // the same on RabbitMQ (issue 15)
constexpr double kRssTargetMiB = 64;
// A broker that says nothing for this long has failed the run (gapless's own
// receipt_timeout is 5 min; the baseline gives up sooner).
constexpr milliseconds kReceiptTimeout{60'000};
// How long the peak-RSS run may take to open (and check) its big journal.
constexpr milliseconds kRssStartupLimit{600'000};

// ---- options --------------------------------------------------------------

struct Options {
  int64_t messages = 100'000;
  int64_t runs = 5;
  int64_t transaction_size = 500;  // gapless's defaults (etc/gapless.example.toml)
  int64_t window = 4;
  int64_t rss_messages = 1'000'000;
  int64_t rss_seconds = 10;
  fs::path dir;  // empty: a fresh directory under the system's temporary directory
  bool keep = false;
  // Diagnostic, not the baseline of the target: the baseline writes each frame
  // with its own send() call, as gapless once did, to see what that costs.
  bool baseline_send_per_frame = false;
  bool rabbitmq = false;  // --broker rabbitmq
};

// The options, as CLI11 parses them (as src/cli does); --help lists them.
void add_options(CLI::App& app, Options& options) {
  app.add_option("--messages", options.messages, "1 KiB messages per run")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--runs", options.runs, "Measured runs of each sender, alternated")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--transaction-size", options.transaction_size, "SENDs per transaction, both senders")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--window", options.window, "Transactions in flight, both senders")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rss-messages", options.rss_messages, "Messages pending for the peak-RSS measurement (0 skips it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--rss-seconds", options.rss_seconds, "How long the daemon runs for it before SIGTERM")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--dir", options.dir,
                 "Work directory for journals, configs and logs (default: a fresh temporary directory, removed at "
                 "the end)");
  app.add_flag("--keep", options.keep, "Keep the work directory (journals are large)");
  app.add_option_function<std::string>(
         "--broker", [&options](const std::string& broker) { options.rabbitmq = broker == "rabbitmq"; },
         "activemq (default: transactions) or rabbitmq (a receipt per SEND, no transactions)")
      ->check(CLI::IsMember({"activemq", "rabbitmq"}));
  app.add_flag("--baseline-send-per-frame", options.baseline_send_per_frame,
               "Diagnostic: the baseline writes every frame with its own send() call, as gapless once did (the "
               "target compares against the baseline without this option)");
  app.footer(
      "Environment: GAPLESS_BIN (the gapless binary; default: this build tree's src/gapless), "
      "GAPLESS_BROKER_JAVA_OPTS (extra JVM options for the broker).");
}

// Every option spelled out, so that the line reproduces this run even when
// the defaults change.
std::string reproduce_command(const char* argv0, const Options& options) {
  std::string command;
  for (const char* variable : {"GAPLESS_BIN", "GAPLESS_BROKER_JAVA_OPTS"})
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0')
      command += std::string(variable) + "='" + value + "' ";
  command += argv0;
  command += " --messages " + std::to_string(options.messages);
  command += " --runs " + std::to_string(options.runs);
  command += " --transaction-size " + std::to_string(options.transaction_size);
  command += " --window " + std::to_string(options.window);
  command += " --rss-messages " + std::to_string(options.rss_messages);
  command += " --rss-seconds " + std::to_string(options.rss_seconds);
  if (!options.dir.empty()) command += " --dir " + options.dir.string();
  if (options.keep) command += " --keep";
  if (options.baseline_send_per_frame) command += " --baseline-send-per-frame";
  if (options.rabbitmq) command += " --broker rabbitmq";
  return command;
}

// ---- small helpers ----------------------------------------------------------

using gapless::bench::cpu_seconds;
using gapless::bench::load_average;
using gapless::bench::machine_description;
using gapless::bench::median;
using gapless::bench::process_cpu_seconds;
using gapless::bench::seconds_between;
using gapless::bench::tail_of;
using gapless::bench::timeval_seconds;
using gapless::bench::utc_now_text;

// ---- the messages ---------------------------------------------------------

// The same 1 KiB printable body for every message of both senders (a fixed
// pseudo-random pattern, so nothing along the way can shortcut it).
std::string make_body() {
  std::string body(kBodySize, ' ');
  uint32_t state = 2463534242u;
  for (char& c : body) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    c = static_cast<char>('a' + state % 26);
  }
  return body;
}

// As long as gapless's stable ids (32 hex digits), so both senders put the
// same number of bytes on the wire.
std::string message_id(int64_t index) {
  char text[40];
  std::snprintf(text, sizeof text, "%032" PRIx64, static_cast<uint64_t>(index));
  return text;
}

// ---- the live subscriber ----------------------------------------------------

// One non-durable STOMP subscription (ack:auto) that counts and discards. It
// is what makes the broker dispatch (2.9b), and the witness that every run
// delivered all of its messages.
class CountingSubscriber {
 public:
  CountingSubscriber(const std::string& broker_uri, gapless::stomp::ConnectOptions options)
      : connection_(gapless::test::connect_stomp(broker_uri, std::move(options))) {
    gapless::stomp::Frame subscribe{"SUBSCRIBE",
                                    {{"id", "drain-bench"},
                                     {"destination", kDestination},
                                     {"ack", "auto"},
                                     {"receipt", "drain-bench-subscribed"}},
                                    {}};
    const gapless::stomp::Frame reply = gapless::test::send_and_await(*connection_, subscribe);
    if (reply.command != "RECEIPT") throw Error("the subscriber's SUBSCRIBE was refused: " + reply.body);
    thread_ = std::thread([this] { run(); });
  }

  ~CountingSubscriber() {
    stop_ = true;
    thread_.join();
    connection_->disconnect(milliseconds(2000));
  }

  CountingSubscriber(const CountingSubscriber&) = delete;
  CountingSubscriber& operator=(const CountingSubscriber&) = delete;

  int64_t count() const { return count_; }
  const std::string& server() const { return connection_->server(); }

  // True once `total` messages arrived since the start; false at timeout or
  // when the subscription died (failure() says why).
  bool wait_for(int64_t total, milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (count_ < total) {
      if (failed_ || Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  std::string failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void run() {
    try {
      while (!stop_) {
        std::optional<gapless::stomp::Frame> frame = connection_->poll(milliseconds(100));
        if (!frame) continue;
        if (frame->command == "MESSAGE") {
          ++count_;
        } else if (frame->command == "ERROR") {
          fail("broker ERROR to the subscriber: " + frame->body);
          return;
        }
      }
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

  void fail(const std::string& why) {
    std::lock_guard lock(mutex_);
    failure_ = why;
    failed_ = true;
  }

  std::unique_ptr<gapless::stomp::Connection> connection_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> count_{0};
  std::atomic<bool> failed_{false};
  mutable std::mutex mutex_;
  std::string failure_;
};

// ---- the baseline sender ----------------------------------------------------

struct Pattern {
  int64_t transaction_size = 0;
  int64_t window = 0;
};

// A frame as the broker sent it; only what the baseline looks at.
struct RawFrame {
  std::string command;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  const std::string* header(std::string_view name) const {
    for (const auto& [key, value] : headers)
      if (key == name) return &value;
    return nullptr;
  }
};

// STOMP 1.2 header unescaping (\c \n \r \\): the broker escapes the receipt-ids
// we sent, which contain ':'.
std::string unescape(std::string_view raw) {
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\' || i + 1 == raw.size()) {
      text += raw[i];
      continue;
    }
    switch (raw[++i]) {
      case 'c': text += ':'; break;
      case 'n': text += '\n'; break;
      case 'r': text += '\r'; break;
      default: text += raw[i];
    }
  }
  return text;
}

// The baseline: the least a sender must do to follow gapless's pattern, on a
// non-blocking POSIX socket with one poll() loop. Frames are built by hand
// into one outgoing buffer; the reader understands just enough STOMP for
// CONNECTED, RECEIPT and ERROR (LF line ends, as ActiveMQ writes them). It
// reads while it writes, like gapless, so the broker can never block on
// receipts we do not read. Any ERROR fails the run: on this broker there is
// nothing to refuse, so an ERROR means the measurement is not valid.
class RawStompSender {
 public:
  RawStompSender(uint16_t port, bool write_each_frame) : write_each_frame_(write_each_frame) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw Error(std::string("baseline: socket: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
      throw Error("baseline: connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    const int on = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  // as gapless's connection does
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }

  ~RawStompSender() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawStompSender(const RawStompSender&) = delete;
  RawStompSender& operator=(const RawStompSender&) = delete;

  // `host`: RabbitMQ's virtual host ("/"); ActiveMQ only logs it.
  void connect(const std::string& login, const std::string& passcode, const std::string& host = "127.0.0.1") {
    append_frame_start("CONNECT");
    out_ += "accept-version:1.2\nhost:" + host + "\nheart-beat:0,0\nlogin:" + login + "\npasscode:" + passcode +
            "\n\n";
    end_frame();
    for (;;) {
      for (const RawFrame& frame : exchange()) {
        if (frame.command == "CONNECTED") return;
        throw Error("baseline: CONNECT answered with " + frame.command + ": " + describe(frame));
      }
    }
  }

  // Sends `count` messages and returns when the last COMMIT receipt arrived.
  void send_all(int64_t count, const Pattern& pattern, const std::string& body) {
    struct InFlight {
      int64_t number;
      int64_t size;
      int64_t awaiting;  // SEND receipts still to come
    };
    std::deque<InFlight> in_flight;
    int64_t queued = 0, committed = 0, next_number = 1;
    while (committed < count) {
      while (static_cast<int64_t>(in_flight.size()) < pattern.window && queued < count) {
        const int64_t size = std::min(pattern.transaction_size, count - queued);
        queue_transaction(next_number, queued, size, body);
        in_flight.push_back({next_number++, size, size});
        queued += size;
      }
      for (const RawFrame& frame : exchange()) {
        if (frame.command != "RECEIPT") throw Error("baseline: unexpected " + frame.command + ": " + describe(frame));
        const std::string* receipt = frame.header("receipt-id");
        const size_t colon = receipt ? receipt->find(':') : std::string::npos;
        if (colon == std::string::npos) throw Error("baseline: RECEIPT without a receipt-id we sent");
        const int64_t number = std::stoll(receipt->substr(0, colon));
        auto transaction = std::find_if(in_flight.begin(), in_flight.end(),
                                        [&](const InFlight& t) { return t.number == number; });
        if (transaction == in_flight.end()) throw Error("baseline: RECEIPT for nothing in flight: " + *receipt);
        if (receipt->compare(colon + 1, std::string::npos, "commit") == 0) {
          committed += transaction->size;
          in_flight.erase(transaction);
        } else if (--transaction->awaiting == 0) {
          // Every SEND of the transaction confirmed: only now COMMIT, as gapless does.
          const std::string id = std::to_string(number);
          append_frame_start("COMMIT");
          out_ += "transaction:" + id + "\nreceipt:" + id + "\\ccommit\n\n";
          end_frame();
        }
      }
    }
  }

  // RabbitMQ's pattern, as gapless follows it there: no transactions; groups
  // of transaction_size SENDs, at most `window` groups with an unanswered
  // SEND; each SEND persistent:true with its own receipt; a message is done
  // when its own RECEIPT arrives, in whatever order.
  void send_all_confirmed(int64_t count, const Pattern& pattern, const std::string& body) {
    std::map<int64_t, int64_t> awaiting;  // group -> SENDs unanswered
    int64_t queued = 0, confirmed = 0, next_group = 1;
    while (confirmed < count) {
      while (static_cast<int64_t>(awaiting.size()) < pattern.window && queued < count) {
        const int64_t size = std::min(pattern.transaction_size, count - queued);
        queue_sends(next_group, queued, size, body, false);
        awaiting[next_group++] = size;
        queued += size;
      }
      for (const RawFrame& frame : exchange()) {
        if (frame.command != "RECEIPT") throw Error("baseline: unexpected " + frame.command + ": " + describe(frame));
        const std::string* receipt = frame.header("receipt-id");
        const size_t colon = receipt ? receipt->find(':') : std::string::npos;
        if (colon == std::string::npos) throw Error("baseline: RECEIPT without a receipt-id we sent");
        auto group = awaiting.find(std::stoll(receipt->substr(0, colon)));
        if (group == awaiting.end()) throw Error("baseline: RECEIPT for nothing in flight: " + *receipt);
        ++confirmed;
        if (--group->second == 0) awaiting.erase(group);
      }
    }
  }

  void disconnect() {
    append_frame_start("DISCONNECT");
    out_ += "receipt:drain-bench-bye\n\n";
    end_frame();
    for (;;)
      for (const RawFrame& frame : exchange())
        if (frame.command == "RECEIPT") return;
  }

 private:
  void append_frame_start(const char* command) {
    out_ += command;
    out_ += '\n';
  }

  // The baseline proper leaves frames in the buffer for exchange() to write
  // in as few send() calls as the socket takes. The diagnostic variant writes
  // every frame at once with its own send() call, as gapless's
  // Connection::send did before it only queued.
  void end_frame() {
    out_ += '\0';
    if (write_each_frame_) write_some();
  }

  // BEGIN, then one SEND per message with the headers gapless sends, in its
  // order; content-length last, as gapless's encoder adds it. ':' in the
  // receipt is escaped (\c) as STOMP 1.2 wants and gapless does.
  void queue_transaction(int64_t number, int64_t first_message, int64_t size, const std::string& body) {
    const std::string id = std::to_string(number);
    append_frame_start("BEGIN");
    out_ += "transaction:" + id + "\n\n";
    end_frame();
    queue_sends(number, first_message, size, body, true);
  }

  // The SENDs of one group, in a transaction or not.
  void queue_sends(int64_t number, int64_t first_message, int64_t size, const std::string& body, bool transactional) {
    const std::string id = std::to_string(number);
    for (int64_t i = 0; i < size; ++i) {
      append_frame_start("SEND");
      out_ += "destination:";
      out_ += kDestination;
      if (transactional) out_ += "\ntransaction:" + id;
      out_ += "\nreceipt:" + id + "\\c" + std::to_string(i) +
              "\npersistent:true\ngapless-id:" + message_id(first_message + i) +
              "\ncontent-length:" + std::to_string(body.size()) + "\n\n";
      out_ += body;
      end_frame();
    }
  }

  // Writes what the socket takes, waits (at most kReceiptTimeout) until the
  // broker answers or the socket takes more, reads everything available and
  // returns the complete frames (possibly none).
  std::vector<RawFrame> exchange() {
    write_some();
    pollfd watched{fd_, static_cast<short>(POLLIN | (out_sent_ < out_.size() ? POLLOUT : 0)), 0};
    const int ready = ::poll(&watched, 1, static_cast<int>(kReceiptTimeout.count()));
    if (ready < 0 && errno != EINTR) throw Error(std::string("baseline: poll: ") + std::strerror(errno));
    if (ready == 0) throw Error("baseline: the broker said nothing for " + std::to_string(kReceiptTimeout.count()) + " ms");
    if (watched.revents & POLLOUT) write_some();
    if (watched.revents & (POLLIN | POLLHUP | POLLERR)) read_available();
    std::vector<RawFrame> frames;
    while (std::optional<RawFrame> frame = take_frame()) frames.push_back(std::move(*frame));
    // The frames that came before the close first: an ERROR says why.
    if (closed_ && frames.empty()) throw Error("baseline: the broker closed the connection");
    return frames;
  }

  void write_some() {
    while (out_sent_ < out_.size()) {
      const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        throw Error(std::string("baseline: send: ") + std::strerror(errno));
      }
      out_sent_ += static_cast<size_t>(n);
    }
    if (out_sent_ == out_.size()) {
      out_.clear();
      out_sent_ = 0;
    } else if (out_sent_ > (1u << 20)) {  // keep the buffer from growing without bound
      out_.erase(0, out_sent_);
      out_sent_ = 0;
    }
  }

  void read_available() {
    char chunk[64 * 1024];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        in_.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) {
        closed_ = true;
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno != EINTR) throw Error(std::string("baseline: recv: ") + std::strerror(errno));
    }
  }

  std::optional<RawFrame> take_frame() {
    while (in_parsed_ < in_.size() && (in_[in_parsed_] == '\n' || in_[in_parsed_] == '\r')) ++in_parsed_;  // heart-beats
    const size_t head_end = in_.find("\n\n", in_parsed_);
    if (head_end == std::string::npos) return compact(std::nullopt);
    RawFrame frame;
    std::string_view head(in_.data() + in_parsed_, head_end - in_parsed_);
    for (bool first = true; !head.empty(); first = false) {
      const size_t line_end = std::min(head.find('\n'), head.size());
      std::string_view line = head.substr(0, line_end);
      head.remove_prefix(std::min(line_end + 1, head.size()));
      if (first) {
        frame.command = line;
        continue;
      }
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) throw Error("baseline: header line without ':' from the broker");
      frame.headers.emplace_back(unescape(line.substr(0, colon)), unescape(line.substr(colon + 1)));
    }
    const size_t body_start = head_end + 2;
    size_t body_end;
    if (const std::string* length = frame.header("content-length")) {
      body_end = body_start + std::stoul(*length);
      if (in_.size() <= body_end) return compact(std::nullopt);
    } else {
      body_end = in_.find('\0', body_start);
      if (body_end == std::string::npos) return compact(std::nullopt);
    }
    frame.body = in_.substr(body_start, body_end - body_start);
    in_parsed_ = body_end + 1;
    return frame;
  }

  // Drops the frames already returned once nothing complete is left.
  std::optional<RawFrame> compact(std::optional<RawFrame> none) {
    in_.erase(0, in_parsed_);
    in_parsed_ = 0;
    return none;
  }

  static std::string describe(const RawFrame& frame) {
    const std::string* message = frame.header("message");
    return message ? *message : frame.body.substr(0, frame.body.find('\n'));
  }

  const bool write_each_frame_;
  int fd_ = -1;
  std::string out_;
  size_t out_sent_ = 0;
  std::string in_;
  size_t in_parsed_ = 0;
  bool closed_ = false;  // EOF seen; reported once the frames before it are handled
};

// ---- gapless as a child process ---------------------------------------------

// A fresh journal holding `count` messages for the one sink, appended through
// the real Journal API (each batch fsynced, as producers do). Not timed.
void prepare_journal(const fs::path& path, int64_t count, const std::string& body) {
  auto journal = gapless::journal::Journal::open(path.string(), {kSink});
  std::vector<gapless::journal::NewMessage> batch;
  batch.reserve(kAppendBatch);
  int64_t appended = 0;
  for (int64_t i = 0; i < count; ++i) {
    gapless::journal::NewMessage message;
    message.gapless_id = message_id(i);
    message.destination = kDestination;
    message.body = body;
    batch.push_back(std::move(message));
    if (batch.size() == kAppendBatch || i + 1 == count) {
      appended += journal->append(batch).appended;
      batch.clear();
    }
  }
  if (appended != count)
    throw Error("preparing " + path.string() + ": appended " + std::to_string(appended) + " of " +
                std::to_string(count));
}

void write_config(const fs::path& config, const fs::path& journal, const std::string& broker_uri, bool rabbitmq,
                  const Options& options) {
  std::ofstream out(config);
  out << "# written by drain-bench\n"
      << "log_level = \"info\"\n"
      << "[journal]\n"
      << "path = \"" << journal.string() << "\"\n"
      << "[[sink]]\n"
      << "name = \"" << kSink << "\"\n"
      << "brokers = [\"" << broker_uri << "\"]\n"
      << "login = \"" << kWriterLogin << "\"\n"
      << "passcode = \"" << kWriterPasscode << "\"\n"
      << "transaction_size = " << options.transaction_size << "\n"
      << "window = " << options.window << "\n";
  if (rabbitmq) out << "broker = \"rabbitmq\"\n";  // virtual host "/", no transactions
  if (!out.flush()) throw Error("cannot write " + config.string());
}

// What gapless's log says about one run: when it was ready (journal opened and
// checked: "daemon: start"), when the sender was connected, when it stopped
// (after its DISCONNECT), and anything at warn level or above.
struct GaplessLog {
  std::optional<WallClock::time_point> daemon_started, sender_connected, sender_stopped;
  int warnings = 0;
  std::string first_warning;
};

std::optional<WallClock::time_point> parse_log_time(const std::string& line) {
  // spdlog pattern of src/core/log.cpp: "2025-01-31T12:34:56.789Z level message"
  std::tm parts{};
  int milliseconds_part = 0;
  if (std::sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &parts.tm_year, &parts.tm_mon, &parts.tm_mday,
                  &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &milliseconds_part) != 7)
    return std::nullopt;
  parts.tm_year -= 1900;
  parts.tm_mon -= 1;
  return WallClock::from_time_t(timegm(&parts)) + milliseconds(milliseconds_part);
}

GaplessLog read_gapless_log(const fs::path& log) {
  GaplessLog result;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const auto when = parse_log_time(line);
    if (!when) continue;
    if (line.find(" daemon: start ") != std::string::npos && !result.daemon_started) result.daemon_started = when;
    if (line.find(" sender: connected ") != std::string::npos && !result.sender_connected)
      result.sender_connected = when;
    if (line.find(" sender: stopped ") != std::string::npos) result.sender_stopped = when;
    if (line.find("Z warning ") != std::string::npos || line.find("Z error ") != std::string::npos ||
        line.find("Z critical ") != std::string::npos) {
      if (result.warnings++ == 0) result.first_warning = line;
    }
  }
  return result;
}

double wall_seconds_between(WallClock::time_point from, WallClock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// ---- one run of each ------------------------------------------------------------

enum class Contender { gapless, baseline };

struct Measurement {
  Contender contender = Contender::gapless;
  int64_t messages = 0;
  double wall_s = 0;                    // gapless: spawn to exit; baseline: connect to DISCONNECT receipt
  std::optional<double> startup_s;      // gapless: spawn to "daemon: start" (journal opened and checked)
  std::optional<double> drain_s;        // CONNECTED to DISCONNECT receipt (gapless: from its log)
  double cpu_s = 0;                     // the sender's own user + system CPU
  double broker_cpu_s = 0;              // the broker JVM's, until the subscriber had everything
  std::optional<double> peak_rss_mib;   // gapless only (ru_maxrss)

  double rate() const { return static_cast<double>(messages) / wall_s; }
  std::optional<double> drain_rate() const {
    if (!drain_s || *drain_s <= 0) return std::nullopt;
    return static_cast<double>(messages) / *drain_s;
  }
  double cpu_us_per_message() const { return cpu_s * 1e6 / static_cast<double>(messages); }
  double broker_cpu_us_per_message() const { return broker_cpu_s * 1e6 / static_cast<double>(messages); }
};

// The broker of the run, ActiveMQ or RabbitMQ, as the bench uses it.
class BenchBroker {
 public:
  explicit BenchBroker(bool rabbitmq) {
    if (rabbitmq)
      rabbit_ = std::make_unique<gapless::test::RabbitNode>();
    else
      activemq_ = std::make_unique<gapless::test::TestBroker>();
  }
  bool rabbitmq() const { return rabbit_ != nullptr; }
  std::string stomp_uri() const { return rabbit_ ? rabbit_->stomp_uri() : activemq_->stomp_uri(); }
  uint16_t stomp_port() const { return rabbit_ ? rabbit_->stomp_port() : activemq_->stomp_port(); }
  std::optional<pid_t> pid() const { return rabbit_ ? rabbit_->pid() : activemq_->pid(); }
  std::string log() const { return rabbit_ ? rabbit_->log() : activemq_->log(); }
  const fs::path& dir() const { return rabbit_ ? rabbit_->dir() : activemq_->dir(); }
  milliseconds last_start_duration() const {
    return rabbit_ ? rabbit_->last_start_duration() : activemq_->last_start_duration();
  }
  // The `host` header: RabbitMQ's virtual host; ActiveMQ only logs it.
  std::string virtual_host() const { return rabbit_ ? gapless::test::RabbitNode::kVirtualHost : "127.0.0.1"; }
  gapless::stomp::ConnectOptions reader_options() const {
    if (rabbit_) return rabbit_->connect_options("reader", "reader-secret");
    gapless::stomp::ConnectOptions options;
    options.login = "reader";
    options.passcode = "reader-secret";
    options.connect_timeout = std::chrono::seconds(10);
    return options;
  }

 private:
  std::unique_ptr<gapless::test::TestBroker> activemq_;
  std::unique_ptr<gapless::test::RabbitNode> rabbit_;
};

class Bench {
 public:
  Bench(const Options& options, const fs::path& work_dir)
      : options_(options), work_dir_(work_dir), body_(make_body()), gapless_(gapless::test::gapless_binary()) {
    if (!fs::exists(gapless_))
      throw Error("no gapless binary at " + gapless_.string() + " (build src/gapless, or set GAPLESS_BIN)");
    std::printf("starting the broker ...\n");
    broker_ = std::make_unique<BenchBroker>(options_.rabbitmq);
    subscriber_ = std::make_unique<CountingSubscriber>(broker_->stomp_uri(), broker_->reader_options());
    std::printf("broker: %s, %s (dir %s), started in %.1f s; live subscriber: reader, non-durable, ack:auto, %s\n",
                subscriber_->server().c_str(), broker_->stomp_uri().c_str(), broker_->dir().c_str(),
                static_cast<double>(broker_->last_start_duration().count()) / 1000.0, kDestination);
  }

  const fs::path& gapless_binary() const { return gapless_; }

  std::string broker_log_tail(size_t lines) const {
    std::string text;
    try {
      text = broker_->log();
    } catch (const std::exception& e) {
      return std::string("    (unreadable: ") + e.what() + ")\n";
    }
    size_t start = text.size();
    for (size_t seen = 0; start > 0 && seen <= lines; --start)
      if (text[start - 1] == '\n') ++seen;
    return text.substr(start);
  }

  Measurement run_gapless(int64_t run) {
    const fs::path run_dir = work_dir_ / ("gapless-run-" + std::to_string(run));
    fs::create_directories(run_dir);
    const fs::path journal = run_dir / "journal.db", config = run_dir / "gapless.toml",
                   log = run_dir / "gapless.log";
    const auto prepare_start = Clock::now();
    prepare_journal(journal, options_.messages, body_);
    write_config(config, journal, broker_->stomp_uri(), broker_->rabbitmq(), options_);
    const double prepare_s = seconds_between(prepare_start, Clock::now());

    Measurement m;
    m.contender = Contender::gapless;
    m.messages = options_.messages;
    const int64_t received_before = subscriber_->count();
    const double broker_cpu_before = broker_cpu();
    const auto spawned_wall = WallClock::now();
    const auto spawned = Clock::now();
    Child child({gapless_.string(), "run", "--until-drained", "--config", config.string()}, log);
    const auto result = child.wait(run_timeout(options_.messages));
    if (!result)
      throw Error("gapless run did not finish within " + std::to_string(run_timeout(options_.messages).count()) +
                  " ms; its log " + log.string() + " ends with:\n" + tail_of(log, 15));
    if (!WIFEXITED(result->wait_status) || WEXITSTATUS(result->wait_status) != 0)
      throw Error("gapless run ended with " + describe_status(result->wait_status) + "; its log " + log.string() +
                  " ends with:\n" + tail_of(log, 15));
    m.wall_s = seconds_between(spawned, result->ended);
    m.cpu_s = timeval_seconds(result->usage.ru_utime) + timeval_seconds(result->usage.ru_stime);
    m.peak_rss_mib = static_cast<double>(result->usage.ru_maxrss) / 1024.0;  // KiB on Linux
    const GaplessLog parsed = read_gapless_log(log);
    if (parsed.daemon_started) m.startup_s = wall_seconds_between(spawned_wall, *parsed.daemon_started);
    if (parsed.sender_connected && parsed.sender_stopped)
      m.drain_s = wall_seconds_between(*parsed.sender_connected, *parsed.sender_stopped);
    verify_received(received_before, m, "gapless run " + std::to_string(run) + " (log " + log.string() + ")");
    m.broker_cpu_s = broker_cpu() - broker_cpu_before;
    print_run(std::to_string(run), m);
    std::printf("    (journal of %" PRId64 " prepared in %.1f s, not timed)\n", options_.messages, prepare_s);
    if (parsed.warnings > 0) std::printf("    gapless logged %d warning(s), first: %s\n", parsed.warnings, parsed.first_warning.c_str());
    if (!options_.keep) fs::remove_all(run_dir);
    return m;
  }

  Measurement run_baseline(const std::string& label) {
    Measurement m;
    m.contender = Contender::baseline;
    m.messages = options_.messages;
    const int64_t received_before = subscriber_->count();
    const double broker_cpu_before = broker_cpu();
    const double cpu_before = cpu_seconds(RUSAGE_THREAD);
    const auto start = Clock::now();
    {
      RawStompSender sender(broker_->stomp_port(), options_.baseline_send_per_frame);
      sender.connect(kWriterLogin, kWriterPasscode, broker_->virtual_host());
      const auto connected = Clock::now();
      if (broker_->rabbitmq())
        sender.send_all_confirmed(options_.messages, {options_.transaction_size, options_.window}, body_);
      else
        sender.send_all(options_.messages, {options_.transaction_size, options_.window}, body_);
      sender.disconnect();
      m.drain_s = seconds_between(connected, Clock::now());
    }
    m.wall_s = seconds_between(start, Clock::now());
    m.cpu_s = cpu_seconds(RUSAGE_THREAD) - cpu_before;
    verify_received(received_before, m, "baseline run " + label);
    m.broker_cpu_s = broker_cpu() - broker_cpu_before;
    print_run(label, m);
    return m;
  }

  // Peak RSS of the daemon with `rss_messages` pending. Its start-up (the
  // journal's quick_check reads every page: many seconds on a journal this
  // size) is waited out first, and reported; then it drains for rss_seconds,
  // gets SIGTERM and must exit 0 on its own. (SIGTERM during the start-up
  // would simply kill it: the daemon blocks signals only once the journal is
  // open.)
  void measure_rss() {
    const fs::path run_dir = work_dir_ / "rss-run";
    fs::create_directories(run_dir);
    const fs::path journal = run_dir / "journal.db", config = run_dir / "gapless.toml",
                   log = run_dir / "gapless.log";
    std::printf("\n## peak RSS with %" PRId64 " messages pending\n", options_.rss_messages);
    const auto prepare_start = Clock::now();
    prepare_journal(journal, options_.rss_messages, body_);
    write_config(config, journal, broker_->stomp_uri(), broker_->rabbitmq(), options_);
    std::error_code ignored;
    std::printf("journal of %" PRId64 " x 1 KiB prepared in %.1f s (%.0f MiB on disk), not timed\n",
                options_.rss_messages, seconds_between(prepare_start, Clock::now()),
                static_cast<double>(fs::file_size(journal, ignored)) / (1024.0 * 1024.0));

    const auto spawned_wall = WallClock::now();
    Child child({gapless_.string(), "run", "--config", config.string()}, log);
    const auto spawned = Clock::now();
    double hwm_mib = 0;  // VmHWM sampled while it runs, as a cross-check of ru_maxrss
    auto sample = [&](const char* phase) {
      if (child.wait(milliseconds(200)))
        throw Error(std::string("gapless run exited ") + phase + "; log " + log.string() + ":\n" + tail_of(log, 15));
      try {
        hwm_mib = std::max(hwm_mib, static_cast<double>(gapless::test::read_memory_usage(child.pid()).hwm_kib) / 1024.0);
      } catch (const Error&) {
        // it just exited; wait() reports it on the next round
      }
    };
    while (!read_gapless_log(log).sender_connected) {
      sample("during its start-up");
      if (Clock::now() - spawned > kRssStartupLimit)
        throw Error("gapless run was not connected " + std::to_string(kRssStartupLimit.count()) +
                    " ms after its start; log " + log.string() + ":\n" + tail_of(log, 15));
    }
    const auto connected = Clock::now();
    const double hwm_at_start_mib = hwm_mib;
    std::printf("start-up (spawn to \"sender: connected\" in its log; journal open and quick_check): %.1f s\n",
                wall_seconds_between(spawned_wall, *read_gapless_log(log).sender_connected));
    const int64_t received_before = subscriber_->count();
    while (seconds_between(connected, Clock::now()) < static_cast<double>(options_.rss_seconds)) sample("while draining");
    const int64_t delivered_in_window = subscriber_->count() - received_before;
    const auto terminated = Clock::now();
    ::kill(child.pid(), SIGTERM);
    const auto result = child.wait(milliseconds(60'000));
    if (!result) throw Error("gapless run did not stop within 60 s of SIGTERM; log " + log.string());
    const double ru_maxrss_mib = static_cast<double>(result->usage.ru_maxrss) / 1024.0;
    const GaplessLog parsed = read_gapless_log(log);
    std::printf("drained for %" PRId64 " s: %" PRId64 " messages reached the subscriber (%.0f msg/s); then SIGTERM: %s, "
                "%.2f s later\n",
                options_.rss_seconds, delivered_in_window,
                static_cast<double>(delivered_in_window) / static_cast<double>(options_.rss_seconds),
                describe_status(result->wait_status).c_str(), seconds_between(terminated, result->ended));
    std::printf("peak RSS (wait4 ru_maxrss): %.1f MiB (VmHWM sampled: %.1f MiB at the end of start-up, %.1f MiB "
                "before SIGTERM); target < %.0f MiB: %s\n",
                ru_maxrss_mib, hwm_at_start_mib, hwm_mib, kRssTargetMiB,
                ru_maxrss_mib < kRssTargetMiB ? "PASS" : "FAIL");
    if (parsed.warnings > 0) std::printf("gapless logged %d warning(s), first: %s\n", parsed.warnings, parsed.first_warning.c_str());
    if (!WIFEXITED(result->wait_status) || WEXITSTATUS(result->wait_status) != 0)
      throw Error("gapless run ended with " + describe_status(result->wait_status) + " after SIGTERM; log " + log.string());
    if (!options_.keep) fs::remove_all(run_dir);
  }

 private:
  // Generous: a run that takes this long has a problem worth stopping for.
  static milliseconds run_timeout(int64_t messages) { return milliseconds(120'000 + messages); }

  double broker_cpu() const {
    const std::optional<pid_t> pid = broker_->pid();
    if (!pid) throw Error("the broker is not running");
    return process_cpu_seconds(*pid);
  }

  // Every run must deliver exactly its messages to the live subscriber; fewer
  // (lost, parked) or more (duplicates) makes the run invalid.
  void verify_received(int64_t before, const Measurement& m, const std::string& what) {
    const int64_t expected = before + m.messages;
    if (!subscriber_->wait_for(expected, milliseconds(60'000)))
      throw Error(what + ": the subscriber received " + std::to_string(subscriber_->count() - before) + " of " +
                  std::to_string(m.messages) + " messages" +
                  (subscriber_->failure().empty() ? "" : " (" + subscriber_->failure() + ")"));
    std::this_thread::sleep_for(milliseconds(200));  // would a duplicate still arrive?
    if (subscriber_->count() != expected)
      throw Error(what + ": the subscriber received " + std::to_string(subscriber_->count() - before) +
                  " messages for " + std::to_string(m.messages) + " sent");
  }

  static void print_run(const std::string& label, const Measurement& m) {
    const bool is_gapless = m.contender == Contender::gapless;
    std::printf("run %-8s %-8s %8.0f msg/s  (%" PRId64 " in %6.2f s", label.c_str(), is_gapless ? "gapless" : "baseline",
                m.rate(), m.messages, m.wall_s);
    if (m.startup_s) std::printf("; start-up %.2f s", *m.startup_s);
    if (auto drain = m.drain_rate()) std::printf("; drain phase %.2f s = %.0f msg/s", *m.drain_s, *drain);
    std::printf(")  CPU %.1f us/msg  broker CPU %.1f us/msg", m.cpu_us_per_message(), m.broker_cpu_us_per_message());
    if (m.peak_rss_mib) std::printf("  peak RSS %.1f MiB", *m.peak_rss_mib);
    std::printf("  received %" PRId64 "/%" PRId64 "\n", m.messages, m.messages);
  }

  const Options& options_;
  fs::path work_dir_;
  std::string body_;
  fs::path gapless_;
  std::unique_ptr<BenchBroker> broker_;
  std::unique_ptr<CountingSubscriber> subscriber_;
};

// ---- the summary ------------------------------------------------------------

struct Summary {
  double median_rate = 0, min_rate = 0, max_rate = 0;
  std::optional<double> median_drain_rate;
  double median_cpu_us = 0, median_broker_cpu_us = 0;
  std::optional<double> max_rss_mib;
};

Summary summarize(const std::vector<Measurement>& runs) {
  std::vector<double> rates, drain_rates, cpu, broker_cpu;
  Summary summary;
  for (const Measurement& m : runs) {
    rates.push_back(m.rate());
    if (auto drain = m.drain_rate()) drain_rates.push_back(*drain);
    cpu.push_back(m.cpu_us_per_message());
    broker_cpu.push_back(m.broker_cpu_us_per_message());
    if (m.peak_rss_mib) summary.max_rss_mib = std::max(summary.max_rss_mib.value_or(0), *m.peak_rss_mib);
  }
  summary.median_rate = median(rates);
  summary.min_rate = *std::min_element(rates.begin(), rates.end());
  summary.max_rate = *std::max_element(rates.begin(), rates.end());
  if (drain_rates.size() == runs.size()) summary.median_drain_rate = median(drain_rates);
  summary.median_cpu_us = median(cpu);
  summary.median_broker_cpu_us = median(broker_cpu);
  return summary;
}

void print_summary_row(const char* name, const Summary& s) {
  char drain[32] = "-", rss[32] = "-";
  if (s.median_drain_rate) std::snprintf(drain, sizeof drain, "%.0f", *s.median_drain_rate);
  if (s.max_rss_mib) std::snprintf(rss, sizeof rss, "%.1f MiB", *s.max_rss_mib);
  std::printf("| %-9s | %8.0f | %6.0f – %-6.0f | %5.1f %% | %8s | %6.1f | %6.1f | %9s |\n", name, s.median_rate,
              s.min_rate, s.max_rate, 100.0 * (s.max_rate - s.min_rate) / s.median_rate, drain, s.median_cpu_us,
              s.median_broker_cpu_us, rss);
}

void print_summary(const Options& options, const std::vector<Measurement>& gapless_runs,
                   const std::vector<Measurement>& baseline_runs) {
  const Summary g = summarize(gapless_runs), b = summarize(baseline_runs);
  std::printf("\n## summary: %" PRId64 " runs each, %" PRId64 " x 1 KiB messages per run, transaction_size %" PRId64
              ", window %" PRId64 ", %s\n\n",
              options.runs, options.messages, options.transaction_size, options.window,
              options.rabbitmq ? "RabbitMQ (a receipt per SEND, no transactions)" : "ActiveMQ (transactions)");
  std::printf("| sender    | median msg/s | min – max msg/s | spread | drain-phase median msg/s | sender CPU us/msg | broker CPU us/msg | peak RSS |\n");
  std::printf("|-----------|---------:|-----------------|--------:|---------:|-------:|-------:|----------:|\n");
  print_summary_row("gapless", g);
  print_summary_row(options.baseline_send_per_frame ? "baseline*" : "baseline", b);
  if (options.baseline_send_per_frame)
    std::printf("\n* DIAGNOSTIC baseline variant: one send() call per frame, as gapless writes. Not the target's baseline.\n");
  std::printf("\n(medians; spread = (max - min) / median; gapless's rate is spawn to exit, start-up and journal\n"
              " open included; drain phase = CONNECTED to DISCONNECT receipt; peak RSS = the largest of the runs)\n");

  std::string pairs;
  for (size_t i = 0; i < gapless_runs.size() && i < baseline_runs.size(); ++i) {
    char ratio[16];
    std::snprintf(ratio, sizeof ratio, "%s%.2f", i ? " " : "", gapless_runs[i].rate() / baseline_runs[i].rate());
    pairs += ratio;
  }
  const double ratio = g.median_rate / b.median_rate;
  const double target = options.rabbitmq ? kRabbitRateTarget : kRateTarget;
  std::printf("\nratio gapless / baseline (median rates): %.2f; target >= %.1f: %s\n", ratio, target,
              ratio >= target ? "PASS" : "FAIL");
  std::printf("per-pair ratios (run i of each): %s\n", pairs.c_str());
  if (g.median_drain_rate && b.median_drain_rate)
    std::printf("drain phase only (start-up excluded): %.2f\n", *g.median_drain_rate / *b.median_drain_rate);
}

int run_bench(const Options& options, const char* argv0) {
  std::printf("# drain-bench %s\n", utc_now_text().c_str());
  std::printf("reproduce: %s\n", reproduce_command(argv0, options).c_str());
  std::printf("machine: %s\n", machine_description().c_str());
  std::printf("load average (1, 5, 15 min) at start: %s\n", load_average().c_str());

  const fs::path work_dir = make_work_dir(options.dir, "drain-bench");
  std::printf("work directory: %s%s\n", work_dir.c_str(), options.keep ? " (kept)" : "");
  int exit_code = 0;
  try {
    Bench bench(options, work_dir);
    std::printf("gapless: %s\n", bench.gapless_binary().c_str());
    std::printf("baseline: %s\n\n", options.baseline_send_per_frame
                                          ? "DIAGNOSTIC variant, one send() call per frame (as gapless)"
                                          : "frames buffered, written in as few send() calls as the socket takes");

    try {
      bench.run_baseline("warm-up");  // lets the broker's JIT warm up; not counted
      std::vector<Measurement> gapless_runs, baseline_runs;
      for (int64_t run = 1; run <= options.runs; ++run) {
        gapless_runs.push_back(bench.run_gapless(run));
        baseline_runs.push_back(bench.run_baseline(std::to_string(run)));
      }
      print_summary(options, gapless_runs, baseline_runs);
      std::printf("load average (1, 5, 15 min) after the runs: %s\n", load_average().c_str());
      if (options.rss_messages > 0) bench.measure_rss();
    } catch (const std::exception& e) {
      // The broker's side of the story, before it is stopped and its directory goes.
      throw Error(std::string(e.what()) + "\nthe broker's log ends with:\n" + bench.broker_log_tail(30));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "drain-bench: %s\n", e.what());
    exit_code = 1;
  }
  std::error_code ignored;
  if (options.keep) return exit_code;
  if (exit_code == 0) {
    if (options.dir.empty()) fs::remove_all(work_dir, ignored);
    return exit_code;
  }
  // A failed run's logs and configs are what explains it; its journals are
  // just large.
  std::vector<fs::path> journals;
  for (const auto& entry : fs::recursive_directory_iterator(work_dir, ignored))
    if (entry.path().filename().string().rfind("journal.db", 0) == 0) journals.push_back(entry.path());
  for (const fs::path& journal : journals) fs::remove(journal, ignored);
  if (options.dir.empty() && fs::is_empty(work_dir, ignored)) {
    fs::remove(work_dir, ignored);
  } else {
    std::fprintf(stderr, "drain-bench: logs and configs kept in %s (journals removed)\n", work_dir.c_str());
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also through a pipe
  spdlog::set_level(spdlog::level::warn);    // the journal's info lines while preparing are noise here
  CLI::App app{"drain-bench: gapless run draining N 1 KiB messages to a local ActiveMQ, against a minimal "
               "raw-socket sender (bench/README.md)"};
  Options options;
  add_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help exits 0, bad usage 2
  }
  return run_bench(options, argv[0]);
}
