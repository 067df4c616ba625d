// The http sender drains one http sink's share of the journal: each message's
// body, unchanged, by PUT or POST to the sink's URL (a central Logstash), and
// marks it delivered only on a 2xx answer to its own request (journal
// invariant 5). http_sender.cpp explains how each answer moves a message;
// http_answer_rules.hpp holds the rules.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "sender/counters.hpp"
#include "sender/sink_sender.hpp"

namespace gapless::sender {

class HttpSender : public SinkSender {
 public:
  // `stop`: once true it claims nothing more, waits at most
  // sink.shutdown_timeout for the requests in flight and returns (what had
  // no answer stays pending). `disk_reserve_bytes` as for the STOMP sender.
  HttpSender(SinkConfig sink, std::string journal_path, int64_t disk_reserve_bytes, const std::atomic<bool>& stop);
  ~HttpSender() override;

  void run(bool until_drained) override;

  const SenderCounters& counters() const override { return counters_; }
  Heartbeat& progress() override { return counters_.progress; }

 private:
  class Loop;
  SinkConfig sink_;
  std::string journal_path_;
  int64_t disk_reserve_bytes_;
  const std::atomic<bool>& stop_;
  SenderCounters counters_;
};

}  // namespace gapless::sender
