// STOMP 1.2 frames: encoding and an incremental parser.
//
// Wire rules enforced here (STOMP 1.2 spec, see docs/stomp-activemq.md 1.1-1.4):
// - frame = command EOL *(header EOL) EOL body NUL *(EOL); EOL is LF or CR LF.
// - Header names and values are escaped (\\ \n \r \c) in every frame except
//   CONNECT and CONNECTED; any other escape is a protocol error.
// - Repeated headers: the first occurrence wins.
// - With content-length the body is exactly that many octets (NULs allowed)
//   and must be followed by NUL; without it the body ends at the first NUL.
// - EOLs between frames are heart-beats; the parser skips them.
// - Limits on command, header line, header count and body size turn hostile
//   or broken input into a ProtocolError instead of unbounded memory.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace gapless::stomp {

struct Frame {
  std::string command;
  std::vector<std::pair<std::string, std::string>> headers;  // unescaped, in wire order
  std::string body;

  // The first header with this name, or nullptr.
  const std::string* header(std::string_view name) const;
  Frame& add(std::string name, std::string value);
};

class ProtocolError : public Error {
 public:
  using Error::Error;
};

struct Limits {
  size_t max_command_length = 1024;
  size_t max_header_line = 10 * 1024;
  size_t max_headers = 1000;
  size_t max_body = 100 * 1024 * 1024;
};

// Appends the wire form of `frame` to `out`. Adds `content-length` to frames
// that may carry a body (SEND, MESSAGE, ERROR) unless the caller set one.
// Throws ProtocolError for a header name or command that cannot be encoded,
// or a body on a frame that must not have one.
void encode(const Frame& frame, std::string& out);

class Parser {
 public:
  explicit Parser(Limits limits = {});

  void feed(std::string_view bytes);
  // The next complete frame, or nothing until more bytes are fed. Throws
  // ProtocolError (with what was wrong and the offending command) on
  // malformed input; after that the stream is unusable.
  std::optional<Frame> next();
  // Bytes buffered but not yet returned as a frame.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  // Where the parser is inside the current frame. Keeping this between calls
  // (rather than re-parsing from the frame start) means every byte is looked
  // at once however the input is split.
  enum class Stage { between_frames, command, headers, body, failed };

  std::optional<Frame> parse_available();
  bool skip_heart_beats();
  bool parse_command();
  bool parse_header_line();
  std::optional<Frame> parse_body();
  std::optional<size_t> find_from_scan(char byte);
  std::string_view take_line(size_t lf);
  void compact();

  Limits limits_;
  std::string buffer_;
  size_t consumed_ = 0;    // start of the frame being parsed; bytes before it are done
  Stage stage_ = Stage::between_frames;
  size_t line_start_ = 0;  // next unparsed line of the current frame, or its body
  size_t scan_from_ = 0;   // where the search for the next LF or NUL resumes
  Frame frame_;            // command and headers parsed so far
  std::optional<size_t> content_length_;
  std::string failure_;    // the ProtocolError that ended the stream
};

}  // namespace gapless::stomp
