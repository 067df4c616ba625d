// The esmond-style metadata object of a pushed run's test, as elmond's
// metadata.py builds it from the OpenSearch document Logstash made of the
// run (docs/perfsonar5.md, "From a run to OSG's messages"). It becomes the
// `meta` of the run's OSG messages; no part of it enters a gapless-id.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "osg/pscheduler_run.hpp"

namespace gapless::osg {

// The address Logstash takes as the run's observer: `observer` (the
// x-ps-observer header) when given, else the host of task.href, else of
// run.href. URL and host:port forms reduced to the host, brackets removed.
std::string run_observer(const Run& run, std::string_view observer);

// Throws RunError when the test lacks a field the metadata needs (a source
// or observer for input-source, `dest` for input-destination).
nlohmann::json run_metadata(const Run& run, const std::string& observer, const std::string& metadata_key);

}  // namespace gapless::osg
