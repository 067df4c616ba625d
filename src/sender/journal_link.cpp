#include "sender/journal_link.hpp"

namespace gapless::sender {

JournalLink::JournalLink(std::string component, std::string journal_path, int64_t disk_reserve_bytes)
    : journal_path_(std::move(journal_path)),
      episode_(std::move(component)),
      reserve_(journal_path_, disk_reserve_bytes) {}

bool JournalLink::open(const journal::SinkRegistration& sink, const std::atomic<bool>& stop, Heartbeat& progress) {
  while (!stop) {
    if (call([&] { journal_ = journal::Journal::open(journal_path_, {sink}); })) return true;
    sleep_beating(
        std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - std::chrono::steady_clock::now()), stop,
        progress);
  }
  return false;
}

void JournalLink::failed(const journal::JournalError& error) {
  episode_.occurred(journal::fault_kind(error.fault()), error.what());
  if (error.fault() == journal::Fault::full && !reserve_released_) {
    reserve_released_ = true;
    reserve_.release();
  }
  retry_at_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(journal::journal_retry_delay_ms(++failures_));
}

void JournalLink::recovered() {
  failures_ = 0;
  reserve_released_ = false;
  episode_.resolved();
}

}  // namespace gapless::sender
