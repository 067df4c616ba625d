#include "sender/sink_sender.hpp"

#include "core/error.hpp"
#include "sender/http_sender.hpp"
#include "sender/sender.hpp"

namespace gapless::sender {

std::unique_ptr<SinkSender> make_sender(const SinkConfig& sink, const std::string& journal_path,
                                        int64_t disk_reserve_bytes, const std::atomic<bool>& stop) {
  if (sink.protocol == "http") return std::make_unique<HttpSender>(sink, journal_path, disk_reserve_bytes, stop);
  if (sink.protocol == "stomp") return std::make_unique<Sender>(sink, journal_path, disk_reserve_bytes, stop);
  throw Error("sink " + sink.name + ": no sender for protocol \"" + sink.protocol + "\"");
}

}  // namespace gapless::sender
