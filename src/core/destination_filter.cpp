#include "core/destination_filter.hpp"

#include "core/config.hpp"

namespace gapless {

std::vector<std::string> default_accept(std::string_view protocol) {
  if (protocol == "stomp") return {"/topic/>", "/queue/>"};
  if (protocol == "http") return {"/pscheduler/>"};
  return {};
}

std::optional<std::string> accept_entry_error(std::string_view entry) {
  if (entry.empty() || entry.front() != '/')
    return "\"" + std::string(entry) + "\" must start with / (a destination such as /topic/perfsonar.raw.throughput, "
           "or a prefix ending in >, such as /topic/perfsonar.>)";
  const size_t wildcard = entry.find('>');
  if (wildcard != std::string_view::npos && wildcard + 1 != entry.size())
    return "\"" + std::string(entry) + "\" has > before its end (> only ends a prefix, such as /topic/perfsonar.>)";
  return std::nullopt;
}

bool accepts(const std::vector<std::string>& accept, std::string_view destination) {
  for (const std::string& entry : accept) {
    if (!entry.empty() && entry.back() == '>') {
      if (destination.starts_with(std::string_view(entry).substr(0, entry.size() - 1))) return true;
    } else if (destination == entry) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> accept_of(const SinkConfig& sink) {
  return sink.accept.empty() ? default_accept(sink.protocol) : sink.accept;
}

std::string accept_text(const std::vector<std::string>& accept) {
  std::string text = "[";
  for (const std::string& entry : accept) text += (text.size() > 1 ? ", " : "") + entry;
  return text + "]";
}

DestinationTakers destination_takers(const std::vector<SinkConfig>& sinks, std::string_view destination) {
  DestinationTakers takers;
  for (const SinkConfig& sink : sinks)
    if (accepts(accept_of(sink), destination)) takers.sinks.push_back(sink.name);
  if (takers.taken()) return takers;
  takers.refusal = "no sink takes destination \"" + std::string(destination) + "\" (";
  if (sinks.empty()) takers.refusal += "no sink is configured";
  for (size_t i = 0; i < sinks.size(); ++i)
    takers.refusal += (i > 0 ? "; " : "") + ("sink \"" + sinks[i].name + "\" accepts " + accept_text(accept_of(sinks[i])));
  takers.refusal += "): it would be journaled for nobody; add the destination to a sink's accept list, or "
                    "send it to one that a sink accepts";
  return takers;
}

}  // namespace gapless
