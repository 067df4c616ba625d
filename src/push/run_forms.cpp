#include "push/run_forms.hpp"

#include <algorithm>

#include "core/destination_filter.hpp"
#include "core/stable_id.hpp"
#include "osg/destination.hpp"
#include "osg/pscheduler_run.hpp"
#include "stomp/message_rules.hpp"

namespace gapless::push {

namespace {

// Room for the headers a sender adds to each SEND, as the collector leaves
// it (collector::read_options): messages are built below the smallest sink's
// max_message_size minus this.
constexpr int64_t kSenderHeaderRoom = 512;

std::string archive_url_of(const osg::Run& run, const FormsSettings& settings) {
  if (!settings.archive_url.empty()) return settings.archive_url;
  if (run.host.empty())
    throw osg::RunError("run.href", "not a pScheduler run this endpoint can name an archive for: neither \"run.href\" "
                                    "nor \"task.href\" gives the host (set push.archive_url)");
  return "https://" + run.host + "/esmond/perfsonar/archive/";
}

void add_osg_messages(const osg::Run& run, std::string_view observer, const FormsSettings& settings, RunForms& forms,
                      std::vector<std::string>& refusals);

}  // namespace

FormsSettings FormsSettings::of(const Config& config) {
  FormsSettings settings;
  settings.sinks = config.sinks;
  settings.archive_url = config.push.archive_url;
  int64_t largest_frame = 10'000'000;
  for (const SinkConfig& sink : config.sinks) largest_frame = std::min(largest_frame, sink.max_message_size);
  settings.build.max_frame_bytes = static_cast<size_t>(std::max<int64_t>(0, largest_frame - kSenderHeaderRoom));
  settings.build.refused_headers = config.messages.refused_headers;
  return settings;
}

std::string run_gapless_id(std::string_view run_id, std::string_view body) {
  return stable_id("pscheduler-run/v1", {run_id, stable_id("pscheduler-body/v1", {body})});
}

RunForms forms_of(std::string_view body, std::string_view observer, const FormsSettings& settings) {
  const osg::Run run = osg::parse_run(body);
  RunForms forms;
  forms.run_id = run.id;
  std::vector<std::string> refusals;

  const std::string destination = osg::run_destination(run);
  if (const DestinationTakers takers = destination_takers(settings.sinks, destination); takers.taken()) {
    journal::NewMessage message;
    message.gapless_id = run_gapless_id(run.id, body);
    message.destination = destination;
    if (!observer.empty()) message.headers.emplace_back("x-ps-observer", std::string(observer));
    message.headers.emplace_back("content-type", "application/json");
    message.body = std::string(body);
    message.window_ts = run.start_ts;
    stomp::HeaderList headers = message.headers;
    headers.emplace_back("gapless-id", message.gapless_id);
    if (const auto refusal = stomp::journal_refusal(destination, headers, settings.build.refused_headers))
      throw osg::RunError("x-ps-observer", "refused: " + *refusal);
    forms.pushed.appended.push_back(std::move(message));
  } else {
    refusals.push_back(takers.refusal);
  }

  try {
    add_osg_messages(run, observer, settings, forms, refusals);
  } catch (const osg::RunError& e) {
    if (forms.pushed.appended.empty()) throw;
    forms.pushed.series.clear();
    forms.osg_refusal = e.field() + ": " + e.what();
  }

  if (forms.pushed.appended.empty() && forms.pushed.series.empty()) {
    std::string why = "run " + run.id + ": ";
    for (size_t i = 0; i < refusals.size(); ++i) why += (i > 0 ? "; " : "") + refusals[i];
    throw NoSinkTakes(why);
  }
  return forms;
}

namespace {

void add_osg_messages(const osg::Run& run, std::string_view observer, const FormsSettings& settings, RunForms& forms,
                      std::vector<std::string>& refusals) {
  const osg::BuildOptions& build = settings.build;
  for (const osg::RunPoint& point : osg::esmond_points(run, archive_url_of(run, settings), observer)) {
    const DestinationTakers takers = destination_takers(settings.sinks, osg::destination_of(point.series));
    if (!takers.taken()) {
      refusals.push_back(takers.refusal);
      continue;
    }
    journal::PushedSeries series;
    series.key = point.series;
    series.metadata = point.metadata.dump();
    try {
      series.messages = osg::build_messages(point.series, point.metadata, {point.point}, build);
    } catch (const Error& e) {
      throw osg::RunError("result", std::string("not a run whose measurements can be sent: ") + e.what());
    }
    series.datapoints.push_back({point.point.ts, point.point.digest, 0});  // one point: one message
    forms.pushed.series.push_back(std::move(series));
  }
}

}  // namespace

bool some_sink_takes_pushes(const std::vector<SinkConfig>& sinks) {
  // The test types perfSONAR hosts run and the event types they map to
  // (docs/perfsonar5.md); an accept list that takes none of them takes no push.
  for (const char* type : {"throughput", "latency", "latencybg", "trace", "rtt"}) {
    osg::Run run;
    run.test_type = type;
    if (destination_takers(sinks, osg::run_destination(run)).taken()) return true;
  }
  for (const char* event : {"throughput", "packet-retransmits", "histogram-owdelay", "packet-loss-rate",
                            "packet-count-lost", "packet-count-sent", "packet-trace", "histogram-rtt", "failures"})
    if (destination_takers(sinks, osg::destination_of(event, osg::DataKind::raw)).taken()) return true;
  return false;
}

}  // namespace gapless::push
