// Fuzzes the configuration parser (core/config.hpp parse_config, what `gapless
// run --config` and a SIGHUP reload read). Catches: a crash, a hang, or an
// exception other than gapless::Error (toml11's own, std::out_of_range from a
// conversion...), which would end the daemon on a reload with a message that
// names neither the file nor the key.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config.hpp"
#include "core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const gapless::Config config = gapless::parse_config(text, "fuzz.toml");
    (void)config;
  } catch (const gapless::Error&) {
  }
  return 0;
}
