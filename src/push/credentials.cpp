#include "push/credentials.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <fstream>

#include "core/constant_time.hpp"
#include "core/error.hpp"

namespace gapless::push {

namespace {

std::string first_line(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) throw Error(key + ": cannot read \"" + file + "\"");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty())
    throw Error(key + ": the first line of \"" + file + "\" is empty; an empty secret is an error, not \"no "
                "authentication\"");
  return line;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  return out;
}

bool same_scheme(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

}  // namespace

Credentials Credentials::load(const PushConfig& config) {
  if (!config.token_file.empty()) return bearer(first_line(config.token_file, "push.token_file"));
  if (!config.password_file.empty()) return basic(config.login, first_line(config.password_file, "push.password_file"));
  return none();
}

Credentials Credentials::basic(std::string login, std::string password) {
  Credentials credentials;
  credentials.scheme_ = "Basic";
  credentials.expected_ = base64(login + ":" + password);
  return credentials;
}

Credentials Credentials::bearer(std::string token) {
  Credentials credentials;
  credentials.scheme_ = "Bearer";
  credentials.expected_ = std::move(token);
  return credentials;
}

bool Credentials::accepts(std::string_view authorization) const {
  if (!required()) return true;
  const size_t space = authorization.find(' ');
  if (space == std::string_view::npos || !same_scheme(authorization.substr(0, space), scheme_)) return false;
  std::string_view presented = authorization.substr(space + 1);
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  return equal_in_constant_time(presented, expected_);
}

std::string Credentials::challenge() const {
  return scheme_ == "Basic" ? "Basic realm=\"gapless push\", charset=\"UTF-8\"" : scheme_;
}

}  // namespace gapless::push
