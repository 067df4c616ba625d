#include "core/curl_global.hpp"

#include <curl/curl.h>
#include <signal.h>

#include <csignal>
#include <mutex>
#include <string>

#include "core/error.hpp"

namespace gapless {

void initialise_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {  // retried when it throws
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
    if (const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
      throw Error(std::string("libcurl initialisation failed: ") + curl_easy_strerror(rc));
  });
}

}  // namespace gapless
