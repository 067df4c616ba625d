// The directory a test broker (ActiveMQ or RabbitMQ) lives in, and reading
// the text files it writes there. Shared by harness/broker and
// harness/rabbitmq_node; kept when asked (GAPLESS_KEEP_BROKER), so not a
// support/temp_dir, which removes itself.
#pragma once

#include <filesystem>
#include <string>

namespace gapless::test {

// A new directory "gapless-<kind>-XXXXXX" under $TMPDIR (else /tmp). Throws
// gapless::Error naming `owner` (the class creating it) and the reason.
std::filesystem::path make_broker_dir(const std::string& kind, const std::string& owner);

// The whole file, or "" when it cannot be read (a log not written yet).
std::string read_text_file(const std::filesystem::path& path);

}  // namespace gapless::test
