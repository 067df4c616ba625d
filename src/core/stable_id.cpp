#include "core/stable_id.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <memory>

#include "core/error.hpp"
#include "core/hex.hpp"

namespace gapless {

namespace {

void hash_with_length(EVP_MD_CTX* context, std::string_view text) {
  // Fixed 8-byte little-endian length prefix: unambiguous framing of the parts.
  unsigned char length[8];
  uint64_t size = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(size >> (8 * i));
  EVP_DigestUpdate(context, length, sizeof length);
  EVP_DigestUpdate(context, text.data(), text.size());
}

// The collector digests every datapoint it reads, so the fixed costs of a
// digest matter: OpenSSL 3 looks the algorithm up (under a lock) on every
// EVP_DigestInit_ex(EVP_sha256()), so the algorithm is fetched once per
// process and each thread keeps one context for all its digests.
const EVP_MD* sha256() {
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (algorithm == nullptr) throw Error("stable_id: OpenSSL SHA-256 unavailable");
  return algorithm;
}

EVP_MD_CTX* thread_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!context) throw Error("stable_id: out of memory for an OpenSSL digest context");
  return context.get();
}

}  // namespace

std::string stable_id(std::string_view scheme, std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* context = thread_context();
  if (EVP_DigestInit_ex(context, sha256(), nullptr) != 1) throw Error("stable_id: OpenSSL SHA-256 unavailable");
  hash_with_length(context, scheme);
  for (std::string_view part : parts) hash_with_length(context, part);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_DigestFinal_ex(context, digest, &digest_size) != 1 || digest_size < 16)
    throw Error("stable_id: OpenSSL SHA-256 failed");

  return hex_of(std::string_view(reinterpret_cast<const char*>(digest), 16));
}

}  // namespace gapless
