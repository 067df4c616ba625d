#include "osg/resend_conditions.hpp"

#include "osg/destination.hpp"

namespace gapless::osg {

journal::MessageCondition of_event_types(const std::vector<std::string>& event_types) {
  journal::MessageCondition condition;
  for (const std::string& event_type : event_types)
    for (const DataKind kind : {DataKind::raw, DataKind::summary})
      condition.destinations.push_back(destination_of(event_type, kind));
  condition.header_values["event-type"] = event_types;
  return condition;
}

journal::MessageCondition from_source_host(const std::string& host) {
  return {.destinations = {}, .header_values = {{"input-source", {host}}}};
}

journal::MessageCondition to_destination_host(const std::string& host) {
  return {.destinations = {}, .header_values = {{"input-destination", {host}}}};
}

}  // namespace gapless::osg
