// How the http sender moves a message (one http sink, one thread)
// ===============================================================
//
// The sender does the I/O (journal, libcurl's multi interface, all driven
// from its one thread) and follows http_answer_rules.hpp, which decides with
// no socket what each answer means.
//
// Claim. Pending rows are claimed as the STOMP sender claims them (live
// first, then backfill, then resend; journal order), skipping those in
// flight, up to max_requests_in_flight requests at once. Being in flight
// lives only in memory: the row stays `pending`, so a crash or a request
// without an answer leaves the message to be sent again with the same
// gapless-id. A body above max_message_size is parked alone, never sent, so
// memory holds at most max_requests_in_flight x max_message_size of bodies
// (the answers' bodies are cut at kMaxAnswerBytes).
//
// Send. One request per message: the sink's method (PUT or POST) to its URL,
// the body unchanged, the message's own journaled headers, the configured
// ones (which win), `gapless-id` (request_headers). TLS is verified (ca_file,
// or the system's store); HTTP Basic from login and password_file; no
// redirect is followed; `timeout` bounds the whole request. Connections are
// kept alive and reused by the multi handle's pool.
//
// Deliver. Only a 2xx answer to a message's own request marks it delivered
// (journal invariant 5). Marks are written together, after the window is
// refilled, while the next requests are on the wire. Until its mark is
// written a message stays in flight, so no claim takes it again.
//
// Retry (429, 5xx, timeout, no answer) and sink rejected (401, 403, 404, a
// redirect, TLS that does not verify): the message goes back to pending and
// the whole sink backs off (reconnect_min doubling to reconnect_max, with
// jitter), for ever; after the wait ONE request probes the sink, and only
// its 2xx opens the full max_requests_in_flight again, so a sink that is
// down costs one request per backoff, not a burst. Nothing is parked. The
// sink's trouble is one fault episode (core/fault_episode.hpp) of kind
// broker-unreachable or sink-rejected, logged when it begins and ends,
// counted meanwhile, shown by status and /healthz; never a line per retry.
// Requests already on the wire when the first failure comes finish as they
// will; their failures do not lengthen the backoff again.
//
// Refused (400, 413, 422): the message alone is parked with the status and
// the answer's body as the reason; the others flow. `gapless retry-parked`
// and `discard` treat it as any parked row.
//
// A journal fault is a pause, not a crash, exactly as for the STOMP sender
// (journal_link.hpp): one episode, retried with backoff, the reserve given
// back on a full disk; confirmed messages whose mark failed stay out of
// claims until it is written. A damaged journal ends run().
//
// Stop. No new claim; the requests in flight get at most shutdown_timeout
// to answer, then are abandoned (their rows stay pending); the marks owed
// are written once more.
#include "sender/http_sender.hpp"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "core/backoff.hpp"
#include "core/clock.hpp"
#include "core/destination_filter.hpp"
#include "core/curl_global.hpp"
#include "core/error.hpp"
#include "core/fault_episode.hpp"
#include "core/heartbeat.hpp"
#include "journal/journal.hpp"
#include "sender/http_answer_rules.hpp"
#include "sender/journal_link.hpp"

namespace gapless::sender {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// An answer's body is read for the reason it gives (a parked message's
// reason, a log line); a hostile or broken endpoint cannot fill memory.
constexpr size_t kMaxAnswerBytes = 64 * 1024;

HttpAnswer::Failure failure_of(CURLcode code) {
  switch (code) {
    case CURLE_OK: return HttpAnswer::Failure::none;
    case CURLE_OPERATION_TIMEDOUT: return HttpAnswer::Failure::timed_out;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return HttpAnswer::Failure::tls_rejected;
    default: return HttpAnswer::Failure::unreachable;
  }
}

// One message's request and what came back.
struct Request {
  int64_t message_id = 0;
  std::string gapless_id;
  std::string destination;
  std::string body;
  curl_slist* headers = nullptr;
  std::string answer;
  Clock::time_point sent;
  char error[CURL_ERROR_SIZE] = {};
  CURL* easy = nullptr;

  ~Request() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }

  static size_t on_body(char* data, size_t size, size_t count, void* self) {
    auto* request = static_cast<Request*>(self);
    const size_t bytes = size * count;
    const size_t room = kMaxAnswerBytes - std::min(kMaxAnswerBytes, request->answer.size());
    request->answer.append(data, std::min(bytes, room));
    return bytes;
  }
};

struct OwedPark {
  int64_t message_id = 0;
  std::string gapless_id;
  std::string destination;
  std::string reason;
};

}  // namespace

class HttpSender::Loop {
 public:
  Loop(const SinkConfig& sink, const std::string& journal_path, int64_t disk_reserve_bytes,
       const std::atomic<bool>& stop, SenderCounters& counters)
      : sink_(sink),
        stop_(stop),
        counters_(counters),
        journal_("sender sink=" + sink.name, journal_path, disk_reserve_bytes),
        sink_episode_("sender sink=" + sink.name) {
    initialise_curl_once();
    multi_ = curl_multi_init();
    if (multi_ == nullptr) throw Error("sender sink=" + sink.name + ": libcurl could not make a multi handle");
    const long connections = sink.max_requests_in_flight;
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, connections);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, connections);
  }

  ~Loop() {
    abandon_requests();
    curl_multi_cleanup(multi_);
  }

  void run(bool until_drained) {
    spdlog::info("sender: start sink={} protocol=http url={} method={} max_requests_in_flight={}", sink_.name,
                 sink_.url, sink_.method, sink_.max_requests_in_flight);
    if (!open_journal()) return;
    // No connection to hold: "connected" says the URL is not failing, as
    // far as the last answer tells (metrics, systemd's status line).
    counters_.connected = true;
    while (!stop_) {
      counters_.progress.beat();
      write_owed(true);
      fill();
      write_owed(false);
      transfer(requests_.empty() ? milliseconds(200) : milliseconds(50));
      if (until_drained && requests_.empty() && owed_delivered_.empty() && owed_parks_.empty() &&
          nothing_claimable_)
        break;
    }
    shut_down();
  }

 private:
  // ---- the journal (journal_link.hpp: a journal fault is a pause) ---------

  template <typename Work>
  bool journal_call(Work&& work) {
    return journal_.call(std::forward<Work>(work));
  }

  journal::Journal& journal() { return journal_.journal(); }

  // With its accept list (journal invariant 3), as the daemon registered it.
  bool open_journal() { return journal_.open({sink_.name, accept_of(sink_)}, stop_, counters_.progress); }

  // Parks first (a parked message must not be claimed again), marks after
  // the window was refilled (`parks_only` false).
  void write_owed(bool parks_only) {
    while (!owed_parks_.empty()) {
      const OwedPark& park = owed_parks_.front();
      if (!journal_call([&] { journal().park_message(sink_.name, park.message_id, park.reason); })) return;
      spdlog::error("sender: message parked sink={} message={} gapless_id={} destination={} reason=\"{}\"",
                    sink_.name, park.message_id, park.gapless_id, park.destination, park.reason);
      in_flight_.erase(park.message_id);
      owed_parks_.pop_front();
    }
    if (parks_only || owed_delivered_.empty()) return;
    if (!journal_call([&] { journal().mark_delivered(sink_.name, owed_delivered_); })) return;
    for (const int64_t id : owed_delivered_) in_flight_.erase(id);
    counters_.delivered += static_cast<int64_t>(owed_delivered_.size());
    counters_.last_delivered_ms = unix_now_ms();
    spdlog::debug("sender: delivered sink={} messages={}", sink_.name, owed_delivered_.size());
    owed_delivered_.clear();
  }

  // ---- claiming and sending ----------------------------------------------

  // While the sink fails, one request probes it; its 2xx opens the rest.
  size_t request_limit() const { return probing_ ? 1 : static_cast<size_t>(sink_.max_requests_in_flight); }

  bool claiming_paused() const {
    return stop_ || Clock::now() < paused_until_ || !journal_.ready() ||
           (journal_.faulty() && !(owed_delivered_.empty() && owed_parks_.empty()));
  }

  void fill() {
    nothing_claimable_ = false;
    while (requests_.size() < request_limit() && !claiming_paused()) {
      const int64_t budget = static_cast<int64_t>(request_limit()) * sink_.max_message_size - bodies_in_flight();
      if (budget <= 0 && !requests_.empty()) return;
      std::vector<journal::Message> batch;
      if (!journal_call([&] {
            batch = journal().claim(sink_.name, request_limit() - requests_.size(), in_flight_,
                                    std::max<int64_t>(budget, 1));
          }))
        return;
      if (batch.empty()) {
        nothing_claimable_ = true;
        return;
      }
      for (journal::Message& message : batch) start(message);
    }
  }

  int64_t bodies_in_flight() const {
    int64_t bytes = 0;
    for (const auto& [easy, request] : requests_) bytes += static_cast<int64_t>(request->body.size());
    return bytes;
  }

  void start(journal::Message& message) {
    in_flight_.insert(message.id);
    const HttpHeaders headers =
        request_headers(message.headers, sink_.headers, message.gapless_id, message.resend_request_id);
    if (auto refusal = request_refusal(headers, message.body.size(), sink_.max_message_size)) {
      owed_parks_.push_back({message.id, message.gapless_id, message.destination, std::move(*refusal)});
      return;
    }
    auto request = std::make_unique<Request>();
    request->message_id = message.id;
    request->gapless_id = message.gapless_id;
    request->destination = message.destination;
    request->body = std::move(message.body);
    bool content_type = false;
    for (const auto& [name, value] : headers) {
      // "Name;" is how libcurl is told to send a header with an empty value.
      const std::string line = value.empty() ? name + ";" : name + ": " + value;
      request->headers = curl_slist_append(request->headers, line.c_str());
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      content_type = content_type || lower == "content-type";
    }
    // libcurl would add a form's content type to a body it sends; the
    // message's or the configuration's says what it is, or none is sent.
    if (!content_type) request->headers = curl_slist_append(request->headers, "Content-Type:");
    // No 100-continue round trip: the body goes at once.
    request->headers = curl_slist_append(request->headers, "Expect:");

    CURL* easy = curl_easy_init();
    if (easy == nullptr) throw Error("sender sink=" + sink_.name + ": libcurl could not make a handle");
    request->easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, sink_.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request->body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request->body.data());
    if (sink_.method == "put") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
    if (!sink_.login.empty()) {
      curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(easy, CURLOPT_USERNAME, sink_.login.c_str());
      curl_easy_setopt(easy, CURLOPT_PASSWORD, sink_.password.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!sink_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, sink_.ca_file.c_str());
    if (!sink_.cert_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_SSLCERT, sink_.cert_file.c_str());
      curl_easy_setopt(easy, CURLOPT_SSLKEY, sink_.key_file.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(sink_.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(sink_.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Request::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, request.get());
    request->sent = Clock::now();
    if (const CURLMcode rc = curl_multi_add_handle(multi_, easy); rc != CURLM_OK)
      throw Error("sender sink=" + sink_.name + ": libcurl refused a request: " + curl_multi_strerror(rc));
    requests_.emplace(easy, std::move(request));
  }

  // Moves the requests on, waiting at most `wait` for the network, and
  // follows every answer that came.
  void transfer(milliseconds wait) {
    int running = 0;
    curl_multi_perform(multi_, &running);
    take_answers();
    curl_multi_poll(multi_, nullptr, 0, static_cast<int>(wait.count()), nullptr);
    curl_multi_perform(multi_, &running);
    take_answers();
  }

  void take_answers() {
    int left = 0;
    while (CURLMsg* done = curl_multi_info_read(multi_, &left)) {
      if (done->msg != CURLMSG_DONE) continue;
      auto it = requests_.find(done->easy_handle);
      if (it == requests_.end()) continue;
      std::unique_ptr<Request> request = std::move(it->second);
      requests_.erase(it);
      curl_multi_remove_handle(multi_, request->easy);
      follow(*request, answer_of(*request, done->data.result));
    }
  }

  HttpAnswer answer_of(Request& request, CURLcode code) const {
    HttpAnswer answer;
    answer.failure = failure_of(code);
    if (answer.failure != HttpAnswer::Failure::none) {
      answer.error = request.error[0] != '\0' ? request.error : curl_easy_strerror(code);
      return answer;
    }
    curl_easy_getinfo(request.easy, CURLINFO_RESPONSE_CODE, &answer.status);
    char* location = nullptr;
    if (curl_easy_getinfo(request.easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr)
      answer.location = location;
    answer.body = std::move(request.answer);
    return answer;
  }

  void follow(const Request& request, const HttpAnswer& answer) {
    const HttpJudgement judgement = judge_answer(answer, sink_.url);
    switch (judgement.verdict) {
      case HttpVerdict::delivered:
        counters_.latency.observe(std::chrono::duration_cast<milliseconds>(Clock::now() - request.sent));
        owed_delivered_.push_back(request.message_id);
        if (!counters_.connected) {
          counters_.connected = true;
          if (counters_.connections++ > 0) ++counters_.reconnects;
        }
        if (probing_ || failures_ > 0) spdlog::info("sender: sink answers again sink={} url={}", sink_.name, sink_.url);
        failures_ = 0;
        probing_ = false;
        sink_episode_.resolved();
        return;
      case HttpVerdict::message_refused:
        ++counters_.refused;
        counters_.count(BrokerError::refused);
        owed_parks_.push_back({request.message_id, request.gapless_id, request.destination, judgement.reason});
        return;
      case HttpVerdict::retry:
      case HttpVerdict::sink_rejected:
        break;
    }
    in_flight_.erase(request.message_id);  // pending again
    const bool rejected = judgement.verdict == HttpVerdict::sink_rejected;
    counters_.count(rejected ? BrokerError::not_authorized
                    : answer.failure == HttpAnswer::Failure::unreachable ? BrokerError::connect_failed
                    : answer.failure == HttpAnswer::Failure::timed_out  ? BrokerError::connection_lost
                                                                        : BrokerError::flow_control);
    counters_.connected = false;
    sink_episode_.occurred(rejected ? kSinkRejectedKind : kBrokerUnreachableKind, judgement.reason);
    // A request sent before the current backoff began says nothing new.
    if (request.sent < backoff_began_) return;
    backoff_began_ = Clock::now();
    probing_ = true;
    const milliseconds delay = jittered(doubling_delay(sink_.reconnect_min, sink_.reconnect_max, ++failures_));
    paused_until_ = Clock::now() + delay;
    spdlog::debug("sender: sink backs off sink={} retry_in_ms={} reason=\"{}\"", sink_.name, delay.count(),
                  judgement.reason);
  }

  // Half to all of `ceiling`, so that many gapless restarted together do not
  // retry a recovering Logstash in lockstep.
  milliseconds jittered(milliseconds ceiling) {
    std::uniform_int_distribution<int64_t> jitter(ceiling.count() / 2, std::max<int64_t>(ceiling.count(), 1));
    return milliseconds(jitter(random_));
  }

  // ---- stopping ----------------------------------------------------------

  void shut_down() {
    const auto deadline = Clock::now() + sink_.shutdown_timeout;
    while (!requests_.empty() && Clock::now() < deadline) {
      counters_.progress.beat();
      transfer(milliseconds(50));
    }
    if (!requests_.empty())
      spdlog::warn("sender: stopping with requests unanswered sink={} requests={} (their messages stay pending)",
                   sink_.name, requests_.size());
    abandon_requests();
    if (journal_.is_open()) {
      journal_.retry_now();  // one last attempt, whatever the backoff
      write_owed(false);
    }
    if (!owed_delivered_.empty() || !owed_parks_.empty())
      spdlog::warn("sender: stopping with journal writes not made sink={} deliveries={} parks={} (those messages "
                   "stay pending and are sent again with the same gapless-id)",
                   sink_.name, owed_delivered_.size(), owed_parks_.size());
    counters_.connected = false;
    spdlog::info("sender: stopped sink={} delivered={}", sink_.name, counters_.delivered.load());
  }

  void abandon_requests() {
    for (auto& [easy, request] : requests_) {
      curl_multi_remove_handle(multi_, easy);
      in_flight_.erase(request->message_id);
    }
    requests_.clear();
  }

  const SinkConfig& sink_;
  const std::atomic<bool>& stop_;
  SenderCounters& counters_;
  CURLM* multi_ = nullptr;
  std::unordered_map<CURL*, std::unique_ptr<Request>> requests_;
  std::unordered_set<int64_t> in_flight_;  // requests, and answers whose journal write is owed
  std::vector<int64_t> owed_delivered_;
  std::deque<OwedPark> owed_parks_;
  JournalLink journal_;
  FaultEpisode sink_episode_;  // the URL fails (kBrokerUnreachableKind) or rejects the sink (kSinkRejectedKind)
  int failures_ = 0;  // backoffs in a row
  bool probing_ = false;
  Clock::time_point paused_until_{};
  Clock::time_point backoff_began_{};
  bool nothing_claimable_ = false;
  std::mt19937_64 random_{std::random_device{}()};
};

HttpSender::HttpSender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes,
                       const std::atomic<bool>& stop)
    : sink_(std::move(sink)),
      journal_path_(std::move(journal_path)),
      disk_reserve_bytes_(disk_reserve_bytes),
      stop_(stop) {}

HttpSender::~HttpSender() = default;

void HttpSender::run(bool until_drained) {
  Loop loop(sink_, journal_path_, disk_reserve_bytes_, stop_, counters_);
  loop.run(until_drained);
}

}  // namespace gapless::sender
