#include "osg/message_time.hpp"

#include <algorithm>
#include <string_view>

namespace gapless::osg {

namespace {

constexpr std::string_view kTimeHeader = "ts_start";
constexpr size_t kMaxDigits = 18;  // 10^18 - 1 < 2^63

bool is_unsigned_integer(std::string_view text) {
  return !text.empty() && text.size() <= kMaxDigits &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::optional<int64_t> message_time(const journal::Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (name != kTimeHeader || !is_unsigned_integer(value)) continue;
    int64_t seconds = 0;
    for (const char digit : value) seconds = seconds * 10 + (digit - '0');
    return seconds;
  }
  return std::nullopt;
}

}  // namespace gapless::osg
