#include "core/fault_episode.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "core/clock.hpp"

namespace gapless {

namespace {

constexpr int64_t kRepeatLogIntervalMs = 60'000;

// The open episodes of the process, by their FaultEpisode object. Episodes
// are opened and closed by the threads that suffer them and read by the one
// that publishes them, hence the mutex.
struct Registry {
  std::mutex mutex;
  std::map<const FaultEpisode*, FaultSnapshot> open;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

FaultEpisode::FaultEpisode(std::string component, Listing listing)
    : component_(std::move(component)), listing_(listing) {}

FaultEpisode::~FaultEpisode() {
  std::lock_guard lock(registry().mutex);
  registry().open.erase(this);
}

void FaultEpisode::occurred(std::string_view kind, std::string_view error) {
  const int64_t now = unix_now_ms();
  if (open_ && kind != kind_) resolved();  // another cause: a new episode
  last_error_ = std::string(error);
  last_ms_ = now;
  if (!open_) {
    open_ = true;
    kind_ = std::string(kind);
    since_ms_ = now;
    occurrences_ = 1;
    last_logged_ms_ = now;
    spdlog::error("fault: begins component=\"{}\" kind={} error=\"{}\"", component_, kind_, last_error_);
  } else {
    ++occurrences_;
    if (now - last_logged_ms_ >= kRepeatLogIntervalMs) {
      last_logged_ms_ = now;
      spdlog::warn("fault: continues component=\"{}\" kind={} occurrences={} for_s={} error=\"{}\"", component_,
                   kind_, occurrences_, (now - since_ms_) / 1000, last_error_);
    }
  }
  publish();
}

void FaultEpisode::resolved() {
  if (!open_) return;
  open_ = false;
  spdlog::info("fault: resolved component=\"{}\" kind={} occurrences={} lasted_s={}", component_, kind_,
               occurrences_, (unix_now_ms() - since_ms_) / 1000);
  std::lock_guard lock(registry().mutex);
  registry().open.erase(this);
}

void FaultEpisode::publish() {
  if (listing_ == Listing::log_only) return;
  std::lock_guard lock(registry().mutex);
  registry().open[this] = FaultSnapshot{component_, kind_, last_error_, since_ms_, last_ms_, occurrences_};
}

std::vector<FaultSnapshot> open_fault_episodes() {
  std::vector<FaultSnapshot> snapshots;
  {
    std::lock_guard lock(registry().mutex);
    for (const auto& [episode, snapshot] : registry().open) snapshots.push_back(snapshot);
  }
  std::sort(snapshots.begin(), snapshots.end(),
            [](const FaultSnapshot& a, const FaultSnapshot& b) { return a.since_ms < b.since_ms; });
  return snapshots;
}

}  // namespace gapless
