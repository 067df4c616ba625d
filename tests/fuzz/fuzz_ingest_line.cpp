// Fuzzes `gapless ingest`'s line parser (ingest::parse_message_line): one
// JSON line in the directory-queue message form. Catches: a crash, or an
// exception other than gapless::Error (the command would die without naming
// the line); a parsed message without destination or id, or holding a header
// the sender owns; a message that does not survive being written back in the
// same form (base64 body) and parsed again: the same destination, id,
// headers, body bytes and window time, so nothing in the form is read two ways.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "ingest/ingest.hpp"

namespace {

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(written));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  gapless::journal::NewMessage message;
  try {
    message = gapless::ingest::parse_message_line(line);
  } catch (const gapless::Error&) {
    return 0;  // refused, with the reason the command prints
  }
  FUZZ_CHECK(!message.destination.empty(), "a message without a destination was accepted");
  FUZZ_CHECK(!message.gapless_id.empty(), "a message without a gapless-id was accepted");
  for (const auto& [name, value] : message.headers)
    FUZZ_CHECK(name != "destination" && name != "gapless-id" && name != "content-length" && name != "receipt" &&
                   name != "transaction" && name != "persistent",
               "a header the sender owns (or the destination, or the id) was kept as a header");

  nlohmann::json header = nlohmann::json::object();
  for (const auto& [name, value] : message.headers) header[name] = value;
  header["destination"] = message.destination;
  header["gapless-id"] = message.gapless_id;
  const nlohmann::json form = {{"header", header}, {"body", base64(message.body)}, {"encoding", "base64"}};
  gapless::journal::NewMessage again;
  try {
    again = gapless::ingest::parse_message_line(form.dump());
  } catch (const gapless::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    FUZZ_CHECK(false, "an accepted message written back in the same form is refused");
  }
  FUZZ_CHECK(again.destination == message.destination, "the destination changed when written back");
  FUZZ_CHECK(again.gapless_id == message.gapless_id, "the gapless-id changed when written back");
  FUZZ_CHECK(again.headers == message.headers, "the headers changed when written back");
  FUZZ_CHECK(again.body == message.body, "the body bytes changed when written back");
  FUZZ_CHECK(again.window_ts == message.window_ts, "the window time changed when written back");
  return 0;
}
