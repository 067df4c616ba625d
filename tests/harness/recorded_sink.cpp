#include "harness/recorded_sink.hpp"

#include <utility>

namespace gapless::test {

RecordedSink::RecordedSink(const std::string& sink_keys, BrokerOptions broker_options)
    : broker(std::move(broker_options)), workspace(broker, sink_keys), recorder(broker.stomp_uri()) {
  recorder.start_and_wait_subscribed();
}

}  // namespace gapless::test
