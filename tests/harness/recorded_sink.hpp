// The set-up of the tests that check what a consumer of the sink received: a
// broker, a workspace whose sink "test" sends to it, and a durable recorder
// subscribed before anything is sent (so it misses nothing).
//
//   gapless::test::RecordedSink sink("transaction_size = 20\n");
//   auto& [broker, workspace, recorder] = sink;
#pragma once

#include <string>

#include "harness/broker.hpp"
#include "harness/stomp_recorder.hpp"
#include "harness/workspace.hpp"

namespace gapless::test {

struct RecordedSink {
  // `sink_keys`: more keys of the sink, as for Workspace.
  explicit RecordedSink(const std::string& sink_keys = "", BrokerOptions broker_options = {});

  TestBroker broker;
  Workspace workspace;
  StompRecorder recorder;
};

}  // namespace gapless::test
