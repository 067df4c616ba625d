#include "harness/fault_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "stomp/frame.hpp"

namespace gapless::test {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A reader that does not keep up (a stalled or delayed path) is not read
// further past this much held in the proxy: TCP pushes back instead.
constexpr size_t kMaxBuffered = 4 * 1024 * 1024;
// A broker that never answers a dropped COMMIT does not keep its connection open for ever.
constexpr milliseconds kCommitReceiptWait{10'000};

// One direction of one proxied connection.
struct Pipe {
  explicit Pipe(FaultProxy::Direction d) : direction(d) {}

  FaultProxy::Direction direction;
  stomp::Parser parser;
  bool parse_failed = false;  // not STOMP after all: bytes are passed on as they are
  uint64_t read_total = 0;    // stream offset: bytes read from the source
  uint64_t emitted = 0;       // bytes of them handed on (queue, then out)
  std::string unsent;         // bytes [emitted, read_total)
  uint64_t last_end = 0;      // where the last whole frame ended
  bool in_frame = false;
  uint64_t frame_start = 0;   // of the frame being read, while in_frame
  std::deque<std::pair<Clock::time_point, std::string>> queue;  // waiting out their latency
  std::string out;            // due, to be written
  size_t out_offset = 0;
  bool stalled = false;
  bool held = false;          // read (to watch frames) but not passed on
  bool source_closed = false;
  std::optional<uint64_t> cut_at;  // close the connection once this much was passed on

  size_t buffered() const {
    size_t queued = 0;
    for (const auto& entry : queue) queued += entry.second.size();
    return unsent.size() + queued + (out.size() - out_offset);
  }
  bool drained() const { return queue.empty() && out_offset == out.size(); }
};

struct Link {
  int client = -1;
  int broker = -1;
  Pipe up{FaultProxy::to_broker};
  Pipe down{FaultProxy::to_client};
  std::optional<std::string> awaited_receipt;  // the dropped COMMIT's receipt
  Clock::time_point commit_passed{};
  bool dead = false;
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

}  // namespace

struct FaultProxy::State {
  struct Cut {
    int direction;
    std::string command;
    size_t bytes;
  };

  uint16_t target_port = 0;
  uint16_t port = 0;
  int listen_fd = -1;
  int wake_fd = -1;
  std::thread thread;

  mutable std::mutex mutex;  // everything below; the thread holds it except while in poll()
  bool stop = false;
  std::list<Link> links;
  milliseconds latency[2]{};  // to_broker, to_client
  std::optional<Cut> cut;
  bool drop_armed = false;
  Counters counters;

  void run();
  void accept_clients();
  void read_from(Link& link, Pipe& pipe, int fd);
  void hang_up(Link& link, Pipe& pipe);
  void watch_frames(Link& link, Pipe& pipe, size_t new_bytes);
  void pass_on(Pipe& pipe, Clock::time_point now);
  void write_to(Link& link, Pipe& pipe, int fd);
  void close_link(Link& link);
  milliseconds& latency_of(const Pipe& pipe) { return latency[pipe.direction == to_broker ? 0 : 1]; }
  bool cut_armed_for(const Pipe& pipe) const { return cut && (cut->direction & pipe.direction); }
  void wake() const {
    const uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(wake_fd, &one, sizeof one);
  }
};

FaultProxy::FaultProxy(uint16_t target_port) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.target_port = target_port;
  s.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s.listen_fd < 0) throw Error(std::string("fault proxy: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(s.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address = loopback(0);
  if (::bind(s.listen_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(s.listen_fd, 16) != 0) {
    const std::string why = std::strerror(errno);
    ::close(s.listen_fd);
    throw Error("fault proxy: cannot listen on 127.0.0.1: " + why);
  }
  socklen_t length = sizeof address;
  ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  s.port = ntohs(address.sin_port);
  s.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  s.thread = std::thread([&s] { s.run(); });
}

FaultProxy::~FaultProxy() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake();
  state_->thread.join();
  for (Link& link : state_->links) state_->close_link(link);
  ::close(state_->listen_fd);
  ::close(state_->wake_fd);
}

uint16_t FaultProxy::port() const { return state_->port; }

std::string FaultProxy::stomp_uri() const { return "stomp://127.0.0.1:" + std::to_string(state_->port); }

void FaultProxy::delay(Direction direction, milliseconds latency) {
  std::lock_guard lock(state_->mutex);
  if (direction & to_broker) state_->latency[0] = latency;
  if (direction & to_client) state_->latency[1] = latency;
  state_->wake();
}

void FaultProxy::stall(Direction direction) {
  std::lock_guard lock(state_->mutex);
  for (Link& link : state_->links) {
    if (direction & to_broker) link.up.stalled = true;
    if (direction & to_client) link.down.stalled = true;
  }
  state_->wake();
}

void FaultProxy::cut_in_frame(Direction direction, std::string command, size_t bytes) {
  std::lock_guard lock(state_->mutex);
  state_->cut = State::Cut{direction, std::move(command), bytes};
  state_->wake();
}

void FaultProxy::drop_after_commit() {
  std::lock_guard lock(state_->mutex);
  state_->drop_armed = true;
  state_->wake();
}

FaultProxy::Counters FaultProxy::counters() const {
  std::lock_guard lock(state_->mutex);
  return state_->counters;
}

void FaultProxy::State::run() {
  std::vector<pollfd> fds;
  std::vector<std::pair<Link*, bool>> owners;  // per entry of fds past the first two: link, is the client side
  for (;;) {
    int timeout_ms = -1;
    {
      std::lock_guard lock(mutex);
      if (stop) return;
      fds.assign({{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}});
      owners.clear();
      const auto now = Clock::now();
      auto next_timer = Clock::time_point::max();
      for (Link& link : links) {
        // A side is read unless its direction is stalled (then only its hang-up is watched).
        auto events = [](const Pipe& source, const Pipe& sink) {
          short e = 0;
          if (source.stalled) e |= POLLRDHUP;
          else if (!source.source_closed && source.buffered() < kMaxBuffered) e |= POLLIN;
          if (!sink.stalled && sink.out_offset < sink.out.size()) e |= POLLOUT;
          return e;
        };
        fds.push_back({link.client, events(link.up, link.down), 0});
        owners.emplace_back(&link, true);
        if (link.broker >= 0) {
          fds.push_back({link.broker, events(link.down, link.up), 0});
          owners.emplace_back(&link, false);
        }
        for (const Pipe* pipe : {&link.up, &link.down})
          if (!pipe->queue.empty() && !pipe->stalled) next_timer = std::min(next_timer, pipe->queue.front().first);
        if (link.awaited_receipt) next_timer = std::min(next_timer, link.commit_passed + kCommitReceiptWait);
      }
      if (next_timer != Clock::time_point::max())
        timeout_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::ceil<milliseconds>(next_timer - now).count()));
    }
    ::poll(fds.data(), fds.size(), timeout_ms);

    std::lock_guard lock(mutex);
    if (stop) return;
    uint64_t ignored;
    if (fds[1].revents & POLLIN) {
      [[maybe_unused]] auto n = ::read(wake_fd, &ignored, sizeof ignored);
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      auto [link, client_side] = owners[i - 2];
      if (link->dead || fds[i].revents == 0) continue;
      Pipe& source = client_side ? link->up : link->down;
      // A stall ordered while we were in poll() finds POLLIN here: not read, and not a hang-up.
      if (source.stalled) {
        if (fds[i].revents & (POLLHUP | POLLERR | POLLRDHUP)) hang_up(*link, source);
      } else if (fds[i].revents & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) {
        read_from(*link, source, fds[i].fd);
      }
    }
    const auto now = Clock::now();
    for (Link& link : links) {
      if (link.dead) continue;
      if (link.awaited_receipt && now - link.commit_passed > kCommitReceiptWait) close_link(link);
      for (Pipe* pipe : {&link.up, &link.down}) {
        if (link.dead) break;
        pass_on(*pipe, now);
        write_to(link, *pipe, pipe == &link.up ? link.broker : link.client);
      }
    }
    links.remove_if([](const Link& link) { return link.dead; });
    if (fds[0].revents & POLLIN) accept_clients();
  }
}

void FaultProxy::State::accept_clients() {
  for (;;) {
    const int client = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return;
    const int broker = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = loopback(target_port);
    // Loopback: a blocking connect is answered at once (or refused when the broker is down).
    if (broker < 0 || ::connect(broker, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      if (broker >= 0) ::close(broker);
      ::close(client);
      continue;
    }
    set_nonblocking(broker);
    set_nodelay(broker);
    set_nodelay(client);
    Link& link = links.emplace_back();
    link.client = client;
    link.broker = broker;
    ++counters.connections;
    counters.accepted.push_back(Clock::now());
  }
}

void FaultProxy::State::read_from(Link& link, Pipe& pipe, int fd) {
  char buffer[64 * 1024];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) close_link(link);
    return;
  }
  if (n == 0) {
    pipe.source_closed = true;
    return;
  }
  pipe.read_total += static_cast<uint64_t>(n);
  pipe.unsent.append(buffer, static_cast<size_t>(n));
  watch_frames(link, pipe, static_cast<size_t>(n));
}

// A side gone while its direction is stalled. The client leaving ends the
// connection. The broker leaving (its own heart-beat check gave up on us) is
// not told to the client: on a dead path no FIN would reach it either.
void FaultProxy::State::hang_up(Link& link, Pipe& pipe) {
  if (&pipe == &link.up) {
    close_link(link);
    return;
  }
  ::close(link.broker);
  link.broker = -1;
  link.up.stalled = link.down.stalled = true;
}

// Finds the frames completed by the last `new_bytes` read, where each began
// and ended, and fires the armed faults that concern them.
void FaultProxy::State::watch_frames(Link& link, Pipe& pipe, size_t new_bytes) {
  if (pipe.parse_failed) return;
  const uint64_t base = pipe.read_total - new_bytes;
  std::vector<std::pair<stomp::Frame, uint64_t>> frames;  // frame, end offset
  try {
    pipe.parser.feed(std::string_view(pipe.unsent).substr(pipe.unsent.size() - new_bytes));
    while (auto frame = pipe.parser.next()) frames.emplace_back(std::move(*frame), pipe.read_total - pipe.parser.buffered());
  } catch (const stomp::ProtocolError&) {
    pipe.parse_failed = true;
    return;
  }
  // Frame starts: the first byte after a frame's end that is not a heart-beat EOL.
  std::vector<uint64_t> starts;
  size_t next = 0;
  const char* bytes = pipe.unsent.data() + (pipe.unsent.size() - new_bytes);
  for (size_t i = 0; i < new_bytes && next < frames.size(); ++i) {
    const uint64_t offset = base + i;
    if (!pipe.in_frame) {
      if (bytes[i] == '\n' || bytes[i] == '\r') continue;
      pipe.in_frame = true;
      pipe.frame_start = offset;
    }
    if (offset + 1 == frames[next].second) {
      starts.push_back(pipe.frame_start);
      pipe.in_frame = false;
      ++next;
    }
  }
  // The bytes after the last whole frame: only whether a frame has begun matters.
  for (size_t i = frames.empty() ? 0 : static_cast<size_t>(frames.back().second - base); i < new_bytes; ++i)
    if (!pipe.in_frame && bytes[i] != '\n' && bytes[i] != '\r') {
      pipe.in_frame = true;
      pipe.frame_start = base + i;
    }
  if (!frames.empty()) pipe.last_end = frames.back().second;

  for (size_t i = 0; i < frames.size() && i < starts.size(); ++i) {
    const stomp::Frame& frame = frames[i].first;
    const uint64_t start = starts[i], end = frames[i].second;
    if (cut_armed_for(pipe) && !pipe.cut_at && (cut->command.empty() || frame.command == cut->command) &&
        start + cut->bytes >= pipe.emitted && start + cut->bytes < end) {
      pipe.cut_at = start + cut->bytes;
      cut.reset();
      ++counters.cuts;
      counters.last_fired = Clock::now();
    }
    const std::string* receipt = frame.header("receipt");
    if (&pipe == &link.up && drop_armed && frame.command == "COMMIT" && receipt) {
      drop_armed = false;
      link.awaited_receipt = *receipt;
      link.commit_passed = Clock::now();
      link.down.held = true;
    }
    const std::string* receipt_id = frame.header("receipt-id");
    if (&pipe == &link.down && link.awaited_receipt && frame.command == "RECEIPT" && receipt_id &&
        *receipt_id == *link.awaited_receipt) {
      ++counters.commit_drops;
      counters.last_fired = Clock::now();
      close_link(link);
      return;
    }
  }
}

// Hands on what may go now: up to a cut, nothing while held, only whole
// frames while a cut is armed for this direction, else everything read.
void FaultProxy::State::pass_on(Pipe& pipe, Clock::time_point now) {
  uint64_t limit = pipe.read_total;
  if (pipe.cut_at) limit = std::min(limit, *pipe.cut_at);
  else if (pipe.held || pipe.stalled) limit = pipe.emitted;
  else if (cut_armed_for(pipe) && !pipe.parse_failed) limit = std::max(pipe.emitted, pipe.last_end);
  if (limit > pipe.emitted) {
    const size_t count = static_cast<size_t>(limit - pipe.emitted);
    auto due = now + latency_of(pipe);
    if (!pipe.queue.empty()) due = std::max(due, pipe.queue.back().first);
    pipe.queue.emplace_back(due, pipe.unsent.substr(0, count));
    pipe.unsent.erase(0, count);
    pipe.emitted = limit;
  }
  if (pipe.stalled) return;
  while (!pipe.queue.empty() && pipe.queue.front().first <= now) {
    if (pipe.out_offset == pipe.out.size()) {
      pipe.out.clear();
      pipe.out_offset = 0;
    }
    pipe.out += pipe.queue.front().second;
    pipe.queue.pop_front();
  }
}

void FaultProxy::State::write_to(Link& link, Pipe& pipe, int fd) {
  if (fd < 0 || pipe.stalled) return;
  while (pipe.out_offset < pipe.out.size()) {
    const ssize_t n = ::send(fd, pipe.out.data() + pipe.out_offset, pipe.out.size() - pipe.out_offset, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) close_link(link);
      return;
    }
    pipe.out_offset += static_cast<size_t>(n);
  }
  if (pipe.cut_at && pipe.emitted == *pipe.cut_at && pipe.drained()) close_link(link);
  // What is still unsent after pass_on (held back, half a frame) never goes.
  else if (pipe.source_closed && pipe.drained()) close_link(link);
}

void FaultProxy::State::close_link(Link& link) {
  if (link.dead) return;
  link.dead = true;
  ::close(link.client);
  if (link.broker >= 0) ::close(link.broker);
}

}  // namespace gapless::test
