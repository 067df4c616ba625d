// A TOML parse error, as shown to a user, without the values of the file.
//
// The TOML library's errors quote the offending lines of the configuration,
// and a line is often `passcode = "..."` or an http sink's `headers` with a
// token: the error would carry the secret into the terminal, the journal of
// systemd and bug reports. What is kept: the library's message, the file and
// line numbers, each quoted line's key (the text before its `=`) or table
// header, and what the markers under a line say ("expected newline, but got
// 'x'"); values are shown as "...".
#pragma once

#include <string>
#include <string_view>

namespace gapless {

std::string toml_error_without_values(std::string_view error);

}  // namespace gapless
