#include "harness/archiver_client.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace gapless::test {

namespace {

size_t collect(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One plugin process: one easy handle, so one kept-alive connection.
class Worker {
 public:
  explicit Worker(const ArchiverOptions& options) : handle_(curl_easy_init()) {
    if (!options.observer.empty()) headers_ = curl_slist_append(headers_, ("x-ps-observer: " + options.observer).c_str());
    // The stock spec's _headers say "content-type"; the plugin adds its own
    // "Content-Type" because its check for the key is case-sensitive.
    headers_ = curl_slist_append(headers_, "content-type: application/json");
    if (!options.authorization.empty())
      headers_ = curl_slist_append(headers_, ("Authorization: " + options.authorization).c_str());
    headers_ = curl_slist_append(headers_, "Content-Type: application/json");
    headers_ = curl_slist_append(headers_, "Accept: */*");
    curl_easy_setopt(handle_, CURLOPT_URL, options.url.c_str());
    curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(handle_, CURLOPT_USERAGENT, "PycURL/7.45.2 libcurl/7.88.1 OpenSSL/3.0.11 zlib/1.2.13");
    curl_easy_setopt(handle_, CURLOPT_TIMEOUT, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(handle_, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(handle_, CURLOPT_SSL_VERIFYHOST, 0L);
    if (options.op == "put") curl_easy_setopt(handle_, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(handle_, CURLOPT_HEADERFUNCTION, collect);
  }
  ~Worker() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(handle_);
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  ArchiveAttempt send(const std::string& body) {
    ArchiveAttempt attempt;
    char error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(handle_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(handle_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(handle_, CURLOPT_WRITEDATA, &attempt.body);
    curl_easy_setopt(handle_, CURLOPT_HEADERDATA, &attempt.headers);
    const auto started = std::chrono::steady_clock::now();
    const CURLcode code = curl_easy_perform(handle_);
    attempt.latency =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    if (code == CURLE_OK) {
      curl_easy_getinfo(handle_, CURLINFO_RESPONSE_CODE, &attempt.status);
    } else {
      attempt.error = std::string(curl_easy_strerror(code)) + (error[0] != '\0' ? std::string(": ") + error : "");
    }
    long connects = 0;
    curl_easy_getinfo(handle_, CURLINFO_NUM_CONNECTS, &connects);
    connections += connects;
    return attempt;
  }

  int64_t connections = 0;

 private:
  CURL* handle_;
  curl_slist* headers_ = nullptr;
};

}  // namespace

ArchiveRun archive_runs(const std::vector<std::string>& bodies, const ArchiverOptions& options) {
  static std::once_flag initialized;
  std::call_once(initialized, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  ArchiveRun run;
  run.attempts.resize(bodies.size());
  std::atomic<size_t> next{0};
  std::atomic<int64_t> connections{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < options.workers; ++i)
    workers.emplace_back([&, i] {
      std::this_thread::sleep_for(i * options.stagger);
      Worker worker(options);
      for (size_t index = next++; index < bodies.size(); index = next++) run.attempts[index] = worker.send(bodies[index]);
      connections += worker.connections;
    });
  for (std::thread& worker : workers) worker.join();
  run.connections = connections;
  return run;
}

std::string basic_authorization(const std::string& login, const std::string& password) {
  const std::string plain = login + ":" + password;
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                      reinterpret_cast<const unsigned char*>(plain.data()),
                                      static_cast<int>(plain.size()));
  encoded.resize(static_cast<size_t>(written));
  return "Basic " + encoded;
}

}  // namespace gapless::test
