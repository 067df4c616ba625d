// A fault that repeats for as long as its cause lasts (a full disk, a journal
// locked by another process, a broker that keeps refusing) is one episode:
// logged when it begins, counted while it lasts, logged with its count when
// it ends. An operator then reads one line per episode, not one per retry,
// and the episodes open right now are listed for `gapless status` (the daemon
// publishes open_fault_episodes(); see journal/health_file.hpp).
//
// This is the daemon's one rule against a log flooded by a repeating error:
// a log site that can repeat every second (a journal fault, a broker that
// cannot be reached) reports through an episode rather than logging itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gapless {

struct FaultSnapshot {
  std::string component;   // who suffers it: "sender sink=cern", "collector archive=psds"
  std::string kind;        // what kind: "disk-full", "journal-busy", "journal-io", ...
  std::string last_error;  // the latest occurrence's message
  int64_t since_ms = 0;    // when the episode began (unix ms)
  int64_t last_ms = 0;     // the latest occurrence
  int64_t occurrences = 0;
};

class FaultEpisode {
 public:
  // Whether an open episode is listed by open_fault_episodes() (status, the
  // health file). A fault that status already shows in its own terms (a
  // series that fails is its archive's failed polls and lagging cursor; a
  // failed HTTP request is the caller's answer) is only kept out of the log.
  enum class Listing { listed, log_only };

  // `component` names the sufferer in every log line and in status.
  explicit FaultEpisode(std::string component, Listing listing = Listing::listed);
  ~FaultEpisode();
  FaultEpisode(const FaultEpisode&) = delete;
  FaultEpisode& operator=(const FaultEpisode&) = delete;

  // One occurrence. The first of an episode (or one of another kind than the
  // open episode's) is logged at error level; repeats are counted, and
  // logged at most once a minute with the count so far.
  void occurred(std::string_view kind, std::string_view error);
  // The cause is gone (the operation succeeded): an open episode is logged as
  // resolved, with its count and duration, and closed. Cheap when none is open.
  void resolved();

  bool is_open() const { return open_; }
  int64_t occurrences() const { return occurrences_; }

 private:
  void publish();
  std::string component_;
  Listing listing_;
  bool open_ = false;
  std::string kind_;
  std::string last_error_;
  int64_t since_ms_ = 0;
  int64_t last_ms_ = 0;
  int64_t last_logged_ms_ = 0;
  int64_t occurrences_ = 0;
};

// Every episode open in this process, oldest first.
std::vector<FaultSnapshot> open_fault_episodes();

}  // namespace gapless
