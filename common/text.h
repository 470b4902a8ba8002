// Text from the network or an operator made safe to show: in a log line, an
// error message or a table cell, no byte of it can end a line, move the
// cursor or colour the terminal, and its length is bounded.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace onramp {

inline constexpr size_t kMaxShownBytes = 1024;

// Control bytes (and DEL) as \n, \r, \t or \xNN; cut to `max` bytes with
// "..." appended. Printable ASCII and UTF-8 stay as they are.
std::string printable(std::string_view text, size_t max = kMaxShownBytes);
// printable() in double quotes (not std::quoted, which ADL would prefer for a std::string), for
// error messages: "\"fe80::x\" is not ...".
std::string quote(std::string_view text, size_t max = 64);

}  // namespace onramp
