#include "osg/destination.hpp"

namespace gapless::osg {

std::string destination_of(std::string_view event_type, DataKind kind) {
  std::string destination(kind == DataKind::summary ? "/topic/perfsonar.summary." : "/topic/perfsonar.raw.");
  destination += event_type;
  return destination;
}

std::string destination_of(const journal::SeriesKey& series) {
  return destination_of(series.event_type, series.summary_type.empty() ? DataKind::raw : DataKind::summary);
}

}  // namespace gapless::osg
