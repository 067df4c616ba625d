// What a pushed run becomes in the journal (docs/perfsonar5.md, "What a
// pushed run becomes"), each form only when some configured sink takes its
// destination (core/destination_filter.hpp):
//
// - The run as pushed: the body unchanged, to osg::run_destination
//   (/pscheduler/run/<test type>), with `x-ps-observer` when the request had
//   one and `content-type: application/json`, for sinks that forward runs
//   (the http sink, to a Logstash). Its gapless-id is a function of the run
//   id and of the body's digest: the same run sent again (a retry after a
//   lost answer) is journaled once, and a run that changed is a new one. Its
//   window time (a resend's, journal invariant 15) is the run's start.
// - Its OSG messages, for the brokers: one series per event type the run
//   maps to (osg::esmond_points), built by the collector's builder under the
//   series key and datapoint digest a backfill from the host's elmond would
//   find, so that push then backfill journals each measurement once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "journal/journal.hpp"
#include "osg/message_builder.hpp"

namespace gapless::push {

// Nothing the run becomes is taken by a configured sink: never journaled
// for nobody. what(): the door's refusal, naming the destinations and sinks.
struct NoSinkTakes : Error {
  using Error::Error;
};

struct FormsSettings {
  std::vector<SinkConfig> sinks;
  std::string archive_url;  // [push] archive_url; empty: https://<the run's host>/esmond/perfsonar/archive/
  osg::BuildOptions build;  // as the collector builds (the sinks' smallest frame, the refused headers)

  static FormsSettings of(const Config& config);
};

struct RunForms {
  std::string run_id;
  journal::PushedRun pushed;
  // Set when the run is journaled as pushed but its OSG messages could not
  // be built (a result field of an unexpected shape): the field and why.
  // Refusing the whole run would lose it for the sinks that forward runs
  // (pScheduler gives a run up after one refusal), so it goes on without them.
  std::string osg_refusal;
};

// Throws osg::RunError (a body that is not a run, a header the door refuses,
// or a run only the brokers take whose OSG messages cannot be built),
// NoSinkTakes.
RunForms forms_of(std::string_view body, std::string_view observer, const FormsSettings& settings);

// The gapless-id of a pushed run: NEVER CHANGE (consumers and the journal
// de-duplicate on it); stable_id("pscheduler-run/v1", {run id, stable_id(
// "pscheduler-body/v1", {body})}).
std::string run_gapless_id(std::string_view run_id, std::string_view body);

// Whether some configured sink takes anything a push can become (a run of
// the common test types, or the OSG messages of their event types); the
// endpoint refuses to start otherwise, naming [push].
bool some_sink_takes_pushes(const std::vector<SinkConfig>& sinks);

}  // namespace gapless::push
