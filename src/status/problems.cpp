// What needs a person; see problems.hpp.
#include "status/problems.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "core/build_info.hpp"
#include "core/restart_watch.hpp"
#include "core/timestamp.hpp"
#include "esmond/time_interval.hpp"
#include "journal/series_description.hpp"
#include "sender/counters.hpp"

namespace gapless::status {

namespace {

// Near the limit: above this share of [journal] max_size.
constexpr double kNearSizeLimit = 0.9;
// Parked messages named one by one per sink; the rest are counted.
constexpr size_t kParkedMessagesShown = 5;

std::string age_of(int64_t since_ms, int64_t now_ms) { return elapsed_text(now_ms - since_ms); }

std::string bytes_text(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

// The sink a sender's fault episode belongs to ("sender sink=NAME"), if it is one.
std::optional<std::string> sink_of(const FaultSnapshot& fault) {
  constexpr std::string_view prefix = "sender sink=";
  if (fault.component.rfind(prefix, 0) != 0) return std::nullopt;
  return fault.component.substr(prefix.size());
}

void daemon_problems(const journal::DaemonHealth& daemon, int64_t now_ms, std::vector<std::string>& problems) {
  for (const FaultSnapshot& fault : daemon.faults)
    if (fault.kind == kRestartRequiredKind)
      problems.push_back("restart required, for " + since_text(fault.since_ms, now_ms) + ": " +
                         shortened_reason(fault.last_error));
  const bool same_build = daemon.version == build_version() && daemon.revision == build_revision();
  if (!same_build) {
    const std::string running = daemon.version.empty()
                                    ? "a gapless that does not publish its version"
                                    : "gapless " + daemon.version + " (revision " + daemon.revision + ")";
    problems.push_back("the daemon (pid " + std::to_string(daemon.pid) + ") runs " + running +
                       ", the installed one is gapless " + build_version() + " (revision " + build_revision() +
                       "): the running daemon runs other code than the installed gapless: restart it");
  }
}

// Measured as the limit is (journal/size_limit.hpp): bytes in use, not the
// file's size, which holds freed pages until they go back.
void journal_size_problem(const Config& config, journal::Journal& journal, std::vector<std::string>& problems) {
  if (config.journal.max_size <= 0) return;
  int64_t bytes = 0;
  try {
    bytes = journal.bytes_in_use();
  } catch (const journal::JournalError&) {
    return;  // a journal that cannot be read says so elsewhere in status
  }
  const double share = static_cast<double>(bytes) / static_cast<double>(config.journal.max_size);
  if (share <= kNearSizeLimit) return;
  char percent[16];
  std::snprintf(percent, sizeof percent, "%.0f%%", share * 100);
  problems.push_back("journal near its size limit: " + bytes_text(static_cast<int64_t>(bytes)) + " of [journal] max_size " +
                     bytes_text(config.journal.max_size) + " (" + percent +
                     "); at the limit collection and ingest pause");
}

void fault_problems(const Config& config, const journal::DaemonHealth& daemon, int64_t now_ms,
                    std::vector<std::string>& problems) {
  for (const FaultSnapshot& fault : daemon.faults) {
    if (fault.kind == kRestartRequiredKind) continue;  // said first, with what to do
    if (const auto sink = sink_of(fault); sink && fault.kind == sender::kBrokerUnreachableKind) {
      // An http sink's occurrences are its failed requests, a STOMP sink's its rounds of connects.
      const SinkConfig* configured = config.find_sink(*sink);
      const bool http = configured != nullptr && configured->protocol == "http";
      const char* failed = http ? " requests failed: " : " connect rounds failed: ";
      problems.push_back("sink " + *sink + " down for " + since_text(fault.since_ms, now_ms) + ", " +
                         std::to_string(fault.occurrences) + failed + shortened_reason(fault.last_error));
      continue;
    }
    if (const auto sink = sink_of(fault); sink && fault.kind == sender::kSinkRejectedKind) {
      problems.push_back("sink " + *sink + " rejected by its endpoint for " + since_text(fault.since_ms, now_ms) +
                         ", paused (nothing parked, its messages wait): " + shortened_reason(fault.last_error) +
                         "; fix the sink's url or credentials, then reload");
      continue;
    }
    problems.push_back("fault in " + fault.component + ": " + fault.kind + " for " +
                       since_text(fault.since_ms, now_ms) + ", " + std::to_string(fault.occurrences) +
                       " occurrences, last " + age_of(fault.last_ms, now_ms) + " ago: " +
                       shortened_reason(fault.last_error));
  }
}

void sink_problems(const Config& config, journal::Journal& journal, const std::vector<journal::SinkStatus>& sinks,
                   int64_t now_ms, std::vector<std::string>& problems) {
  const std::vector<std::string> configured = config.sink_names();
  for (const journal::SinkStatus& sink : sinks) {
    if (std::find(configured.begin(), configured.end(), sink.sink) != configured.end()) continue;
    int64_t pending = 0, parked = 0;
    for (const journal::DestinationStatus& destination : sink.destinations) {
      pending += destination.pending;
      parked += destination.parked;
    }
    problems.push_back("sink " + sink.sink + " is orphaned: in the journal, not in the configuration; its " +
                       std::to_string(pending) + " pending and " + std::to_string(parked) +
                       " parked messages stay until it returns or `gapless retire-sink --sink " + sink.sink +
                       " --reason TEXT`");
  }
  for (const journal::SinkStatus& sink : sinks) {
    for (const journal::DestinationStatus& destination : sink.destinations) {
      if (!destination.parked_destination) continue;
      const journal::ParkedDestination& parked = *destination.parked_destination;
      problems.push_back("sink " + sink.sink + ": destination " + destination.destination + " parked for " +
                         age_of(parked.parked_at_ms, now_ms) + ", " + std::to_string(destination.parked) +
                         " messages (attempts " + std::to_string(parked.attempts) + ", next retry in " +
                         age_of(now_ms, std::max(now_ms, parked.next_retry_ms)) +
                         "): " + shortened_reason(parked.reason));
    }
    const std::vector<journal::ParkedMessage> messages = journal.parked_messages(sink.sink, kParkedMessagesShown + 1);
    for (size_t i = 0; i < messages.size() && i < kParkedMessagesShown; ++i)
      problems.push_back("sink " + sink.sink + ": message " + std::to_string(messages[i].id) + " (" +
                         messages[i].gapless_id + ") parked on " + messages[i].destination + ": " +
                         shortened_reason(messages[i].reason));
    if (messages.size() > kParkedMessagesShown)
      problems.push_back("sink " + sink.sink + ": more messages parked on their own (`gapless status --json` lists "
                         "100)");
  }
}

void archive_problems(const Config& config, journal::Journal& journal,
                      const std::vector<journal::ArchiveHealth>& archives, int64_t now_ms,
                      std::vector<std::string>& problems) {
  for (const journal::ArchiveHealth& archive : archives) {
    if (archive.polls_total == 0 || archive.consecutive_failed_polls == 0) continue;
    const std::string since = archive.last_success_ms
                                  ? "since its last success " + age_of(*archive.last_success_ms, now_ms) + " ago"
                                  : "since its first poll " + age_of(archive.first_poll_ms, now_ms) + " ago, none succeeded";
    std::string text = "archive " + archive.name + " failing: " + std::to_string(archive.consecutive_failed_polls) +
                       " failed polls " + since;
    if (archive.last_error_ms)
      text += "; last error " + age_of(*archive.last_error_ms, now_ms) + " ago: " + shortened_reason(archive.last_error);
    problems.push_back(text);
  }
  for (const ArchiveConfig& archive : config.archives) {
    const int64_t now_s = now_ms / 1000;
    const int64_t allowed_s = kLaggingPollIntervals * archive.poll_interval.count() / 1000;
    int64_t series = 0, lagging = 0, furthest_s = 0;
    std::string furthest;
    for (const journal::Series& read : journal.series_of_archive(archive.url)) {
      if (!read.cursor_ts) continue;
      ++series;
      int64_t cadence_s = read.key.summary_window;
      if (read.key.summary_type.empty()) {
        const nlohmann::json metadata = nlohmann::json::parse(read.metadata, nullptr, false);
        cadence_s = esmond::time_interval(metadata).value_or(0);
      }
      const int64_t behind_s = now_s - *read.cursor_ts;
      if (behind_s <= allowed_s + cadence_s) continue;
      ++lagging;
      if (behind_s > furthest_s) {
        furthest_s = behind_s;
        furthest = journal::describe(read.key);
      }
    }
    if (lagging == 0) continue;
    problems.push_back("archive " + archive.name + " lagging: " + std::to_string(lagging) + " of " +
                       std::to_string(series) + " series have a cursor more than " +
                       std::to_string(kLaggingPollIntervals) + " poll intervals (" +
                       elapsed_text(allowed_s * 1000) +
                       ") plus their cadence behind now; furthest " + elapsed_text(furthest_s * 1000) +
                       ": " + furthest);
  }
}

}  // namespace

std::vector<std::string> find_problems(const Config& config, journal::Journal& journal,
                                       const std::optional<journal::DaemonHealth>& daemon,
                                       const std::vector<journal::SinkStatus>& sinks,
                                       const std::vector<journal::ArchiveHealth>& archives, int64_t now_ms) {
  std::vector<std::string> problems;
  if (daemon) daemon_problems(*daemon, now_ms, problems);
  journal_size_problem(config, journal, problems);
  if (daemon) fault_problems(config, *daemon, now_ms, problems);
  sink_problems(config, journal, sinks, now_ms, problems);
  archive_problems(config, journal, archives, now_ms, problems);
  return problems;
}

std::string fit_to_width(std::string_view original, std::string_view first_indent, std::string_view indent,
                         size_t width) {
  // A broker's or an archive's words may hold line breaks and tabs: one line of text.
  std::string flat(original);
  std::replace_if(flat.begin(), flat.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  const std::string_view text = flat;
  std::string out;
  std::string line(first_indent);
  size_t line_start = line.size();  // where the text of `line` begins (after its indent)
  const auto end_line = [&] {
    while (line.size() > line_start && line.back() == ' ') line.pop_back();
    out += line + "\n";
    line = std::string(indent);
    line_start = line.size();
  };
  size_t at = 0;
  while (at < text.size()) {
    size_t word_end = text.find(' ', at);
    if (word_end == std::string_view::npos) word_end = text.size();
    std::string_view word = text.substr(at, word_end - at);
    const size_t room = width > line.size() ? width - line.size() : 0;
    const bool line_empty = line.size() == line_start;
    const size_t needed = word.size() + (line_empty ? 0 : 1);
    if (needed <= room) {
      if (!line_empty) line += ' ';
      line += word;
    } else if (!line_empty && word.size() <= width - std::min(width, indent.size())) {
      end_line();  // the word goes whole on the next line
      continue;
    } else {
      // Longer than any line: broken where the line ends.
      if (!line_empty) line += ' ';
      const size_t fits = width > line.size() ? width - line.size() : 0;
      if (fits == 0) {
        end_line();
        continue;
      }
      line += word.substr(0, fits);
      end_line();
      at += fits;
      continue;
    }
    at = word_end + 1;
  }
  if (line.size() > line_start || out.empty()) end_line();
  return out;
}

std::string elapsed_text(int64_t ms) {
  int64_t seconds = std::max<int64_t>(0, ms) / 1000;
  constexpr std::pair<int64_t, const char*> kUnits[] = {{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}};
  for (size_t i = 0; i < std::size(kUnits); ++i) {
    const auto [size, name] = kUnits[i];
    if (seconds < size && size > 1) continue;
    std::string text = std::to_string(seconds / size) + name;
    const int64_t rest = seconds % size;
    if (i + 1 < std::size(kUnits) && rest / kUnits[i + 1].first > 0)
      text += std::to_string(rest / kUnits[i + 1].first) + kUnits[i + 1].second;
    return text;
  }
  return "0s";
}

std::string since_text(int64_t since_ms, int64_t now_ms) {
  return age_of(since_ms, now_ms) + " (since " + format_timestamp(since_ms / 1000) + ")";
}

std::string shortened_reason(std::string_view reason, size_t limit) {
  if (reason.size() <= limit) return std::string(reason);
  const size_t tail = limit / 4;
  const size_t head = limit - tail - 5;
  return std::string(reason.substr(0, head)) + " ... " + std::string(reason.substr(reason.size() - tail));
}

}  // namespace gapless::status
