#include "sender/http_answer_rules.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "stomp/error_text.hpp"

namespace gapless::sender {

namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Written by libcurl from the request itself; a journaled one would
// contradict it (a wrong length, a second Host).
constexpr std::array<std::string_view, 9> kFramingHeaders = {
    "content-length", "transfer-encoding", "host", "connection", "expect", "keep-alive", "te", "upgrade", "trailer"};

bool is_framing(std::string_view name) {
  return std::any_of(kFramingHeaders.begin(), kFramingHeaders.end(),
                     [&](std::string_view framing) { return same_name(name, framing); });
}

bool is_ours(std::string_view name) { return same_name(name, "gapless-id") || same_name(name, "gapless-resend"); }

bool is_token(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// The answer's body as a reason shows it: an HTML error page (Apache's
// proxy error) without its markup, then cleaned and cut as a broker's words.
std::string body_text(std::string_view body) {
  std::string text;
  const size_t first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && body[first] == '<') {
    bool in_tag = false;
    for (const char c : body) {
      if (c == '<') in_tag = true;
      if (!in_tag) text += c;
      if (c == '>') {
        in_tag = false;
        text += ' ';
      }
    }
  } else {
    text = body.substr(0, 4 * stomp::kMaxErrorText);
  }
  return stomp::clean_error_text(text, 300);
}

std::string status_text(long status, std::string_view body) {
  std::string text = "HTTP " + std::to_string(status);
  const std::string said = body_text(body);
  if (!said.empty()) text += ": " + said;
  return text;
}

}  // namespace

HttpJudgement judge_answer(const HttpAnswer& answer, std::string_view url) {
  const std::string at = std::string(url);
  switch (answer.failure) {
    case HttpAnswer::Failure::unreachable:
      return {HttpVerdict::retry, "no answer from " + at + ": " + stomp::clean_error_text(answer.error)};
    case HttpAnswer::Failure::timed_out:
      return {HttpVerdict::retry, "no answer from " + at + " within the sink's timeout: " +
                                      stomp::clean_error_text(answer.error)};
    case HttpAnswer::Failure::tls_rejected:
      return {HttpVerdict::sink_rejected, "TLS with " + at + " failed (check ca_file, cert_file, key_file): " +
                                              stomp::clean_error_text(answer.error)};
    case HttpAnswer::Failure::none:
      break;
  }
  const long status = answer.status;
  if (status >= 200 && status <= 299) return {HttpVerdict::delivered, ""};
  if (status == 429 || status == 408 || status == 425 || (status >= 500 && status <= 599))
    return {HttpVerdict::retry, at + " answered " + status_text(status, answer.body)};
  if (status == 400 || status == 413 || status == 422)
    return {HttpVerdict::message_refused, at + " refused the message: " + status_text(status, answer.body)};
  if (status >= 300 && status <= 399)
    return {HttpVerdict::sink_rejected,
            at + " answered HTTP " + std::to_string(status) + ", a redirect" +
                (answer.location.empty() ? "" : " to " + stomp::clean_error_text(answer.location, 200)) +
                ": set the sink's url to where it should send"};
  if (status == 401 || status == 403 || status == 407)
    return {HttpVerdict::sink_rejected,
            at + " answered " + status_text(status, answer.body) + " (check the sink's login, password_file, headers)"};
  if (status == 404 || status == 405)
    return {HttpVerdict::sink_rejected,
            at + " answered " + status_text(status, answer.body) + " (check the sink's url and method)"};
  return {HttpVerdict::sink_rejected, at + " answered " + status_text(status, answer.body) +
                                          " (not an answer about one message: the sink pauses)"};
}

HttpHeaders request_headers(const HttpHeaders& message_headers, const HttpHeaders& configured,
                            std::string_view gapless_id, std::optional<int64_t> resend_request_id) {
  HttpHeaders headers;
  for (const auto& [name, value] : message_headers) {
    if (is_framing(name) || is_ours(name)) continue;
    const bool overridden = std::any_of(configured.begin(), configured.end(),
                                        [&](const auto& header) { return same_name(header.first, name); });
    if (!overridden) headers.emplace_back(name, value);
  }
  for (const auto& [name, value] : configured)
    if (!is_ours(name)) headers.emplace_back(name, value);
  headers.emplace_back("gapless-id", std::string(gapless_id));
  if (resend_request_id) headers.emplace_back("gapless-resend", std::to_string(*resend_request_id));
  return headers;
}

std::optional<std::string> request_refusal(const HttpHeaders& headers, size_t body_bytes, int64_t max_message_size) {
  if (static_cast<int64_t>(body_bytes) > max_message_size)
    return "the body is " + std::to_string(body_bytes) + " bytes, above the sink's max_message_size (" +
           std::to_string(max_message_size) + ")";
  for (const auto& [name, value] : headers) {
    if (!is_token(name))
      return "header " + stomp::quoted(name) + " is not a valid HTTP header name, the message cannot be sent over HTTP";
    for (const char c : value)
      if ((stomp::is_control(static_cast<unsigned char>(c)) && c != '\t'))
        return "header " + stomp::quoted(name) + " holds a control character (" + stomp::printable(c) +
               "), the message cannot be sent over HTTP";
  }
  return std::nullopt;
}

}  // namespace gapless::sender
