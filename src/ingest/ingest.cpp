#include "ingest/ingest.hpp"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "core/error.hpp"

namespace gapless::ingest {

IngestResult ingest_stream(std::istream& input, std::string_view source_name, journal::Journal& journal,
                           size_t batch_size, const Config& config, const BeforeBatch& before_batch) {
  IngestResult result;
  std::vector<journal::NewMessage> batch;
  int64_t line_number = 0;
  int64_t batch_first_line = 1;
  auto flush = [&] {
    if (batch.empty()) return;
    try {
      if (before_batch) before_batch();
    } catch (const AtSizeLimit& e) {
      const std::string before = batch_first_line == 1
                                     ? std::string("nothing was journaled")
                                     : "lines 1-" + std::to_string(batch_first_line - 1) + " were journaled (" +
                                           std::to_string(result.appended) + " new messages; they stay)";
      throw AtSizeLimit("ingest: " + std::string(source_name) + ": stopped before line " +
                        std::to_string(batch_first_line) + ": " + before + ", nothing from line " +
                        std::to_string(batch_first_line) + " on: " + e.what() +
                        " (what is already journaled is skipped)");
    }
    journal::AppendResult appended = journal.append(batch);
    result.appended += appended.appended;
    result.duplicates += appended.duplicates;
    batch.clear();
  };

  std::string line;
  while (std::getline(input, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      batch.push_back(parse_message_at_the_door(line, config));
    } catch (const Error& e) {
      throw Error(std::string(source_name) + ":" + std::to_string(line_number) + ": " + e.what() +
                  "; nothing of lines " + std::to_string(batch_first_line) + "-" + std::to_string(line_number) +
                  " was journaled (" + std::to_string(result.appended) +
                  " messages before them were); mend or remove line " + std::to_string(line_number) +
                  " and run the same command again: only what is missing is added");
    }
    ++result.lines;
    if (batch.size() >= batch_size) {
      flush();
      batch_first_line = line_number + 1;
    }
  }
  if (input.bad()) throw Error(std::string(source_name) + ": read error after line " + std::to_string(line_number));
  flush();
  spdlog::info("ingest: done source={} lines={} appended={} duplicates={}", source_name, result.lines,
               result.appended, result.duplicates);
  return result;
}

}  // namespace gapless::ingest
