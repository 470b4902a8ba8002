// Log lines of the controller on stderr: one line per event, a UTC time stamp
// and a level first, and "pop=FRA1" in every line about a PoP so a grep for
// the PoP finds its whole story.
#pragma once

#include <string>
#include <string_view>

namespace onramp::ctl {

enum class LogLevel { info, warning, error };

void log(LogLevel level, std::string_view message);
// The same line, prefixed with "pop=<id> ".
void log_pop(LogLevel level, std::string_view pop, std::string_view message);

// Tests silence the log.
void set_log_enabled(bool enabled);

}  // namespace onramp::ctl
