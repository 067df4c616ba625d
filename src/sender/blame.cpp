#include "sender/blame.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace gapless::sender {

namespace {

// Failure records are dropped when their message is delivered or parked; this
// bounds them when their messages leave by other paths (a parked destination).
constexpr size_t kMaxFailureRecords = 100'000;

}  // namespace

Blame::Blame(const MachineSettings& settings)
    : sink_(settings.sink), attempts_(std::max(settings.message_attempts, 1)) {}

int Blame::failures_of(int64_t message_id) const {
  auto it = failures_.find(message_id);
  return it == failures_.end() ? 0 : it->second.refused + it->second.unattributed;
}

std::optional<ParkMessage> Blame::refused(const OutgoingSend& message, const std::string& words) {
  const int refused = ++failures_[message.message_id].refused;
  if (refused >= attempts_) {
    forget(message.message_id);
    return ParkMessage{message, "refused by the broker " + std::to_string(refused) + " times: " + words};
  }
  spdlog::warn("sender: message refused, will retry sink={} destination={} message={} gapless_id={} refusals={} "
               "parked_after={} error=\"{}\"",
               sink_, message.destination, message.message_id, message.gapless_id, refused, attempts_, words);
  return std::nullopt;
}

Decisions Blame::unattributed(const std::vector<const OutgoingSend*>& suspects, int64_t first_size,
                              InFlightLimit& limit, const std::string& words) {
  Decisions decisions;
  if (suspects.empty()) return decisions;
  int most = 0;
  for (const OutgoingSend* suspect : suspects) most = std::max(most, ++failures_[suspect->message_id].unattributed);

  if (suspects.size() == 1) {
    const OutgoingSend& suspect = *suspects.front();
    const int alone = ++failures_[suspect.message_id].alone;
    if (alone >= attempts_) {
      spdlog::error("sender: message to blame found sink={} destination={} message={} gapless_id={} failures_alone={} "
                    "error=\"{}\"",
                    sink_, suspect.destination, suspect.message_id, suspect.gapless_id, alone, words);
      decisions.park_messages.push_back({suspect, words + " (failed alone " + std::to_string(alone) + " times)"});
      forget(suspect.message_id);
      return decisions;
    }
  }

  if (most >= 2) {
    // Failed twice: not a passing hiccup. Halve the first failing group
    // (window one) until the one message to blame fails alone.
    const int64_t target =
        suspects.size() == 1 ? 1 : std::max<int64_t>(1, std::min(first_size, limit.messages()) / 2);
    if (limit.narrow_to(target))
      spdlog::warn("sender: narrowing down sink={} transaction_size={} window={} suspects={} failures={} error=\"{}\"",
                   sink_, limit.transaction_size(), limit.window(), suspects.size(), most, words);
    decisions.reconnect_at_once = true;
  }

  if (failures_.size() > kMaxFailureRecords) {
    spdlog::warn("sender: forgetting failure records sink={} records={}", sink_, failures_.size());
    failures_.clear();
  }
  return decisions;
}

}  // namespace gapless::sender
