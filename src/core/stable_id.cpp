#include "core/stable_id.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <memory>

#include "core/error.hpp"

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

}  // namespace

std::string stable_id(std::string_view scheme, std::initializer_list<std::string_view> parts) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
    throw Error("stable_id: OpenSSL SHA-256 unavailable");
  hash_with_length(context.get(), scheme);
  for (std::string_view part : parts) hash_with_length(context.get(), part);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_DigestFinal_ex(context.get(), digest, &digest_size);

  static const char hex[] = "0123456789abcdef";
  std::string id;
  for (unsigned int i = 0; i < 16; ++i) {
    id += hex[digest[i] >> 4];
    id += hex[digest[i] & 0xf];
  }
  return id;
}

}  // namespace gapless
